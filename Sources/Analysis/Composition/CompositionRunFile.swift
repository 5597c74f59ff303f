import Foundation
import TraceStore

/// The `/composition` group of a run file (written by `headlight report composition`).
///
/// ```
/// /composition  @analysis = "composition", @analysis_version = 1
///               @heads            str[]   "L.H" of each row/column, in order
///               @fold_norm_gains  int     1 if RMSNorm gains were folded into the weights
///               @baseline_q, @baseline_k, @baseline_v   float64  random-matrix baseline
///               @baseline_draws   int
///               @selection        str     how the heads were chosen
///               @heads_source     str     run file the heads came from (basename), if any
///               @note             str     the approximations (RoPE, GQA, RMSNorm)
///   q_comp, k_comp, v_comp  float64 [writer, reader]   NaN unless layer(writer) < layer(reader)
///   head_scores             float64 [head]             retrieval score of each head, if known
/// ```
public enum CompositionRunFile {
    public static let group = "composition"
    public static let analysisVersion = 1

    public static func write(
        _ s: CompositionScores, to file: H5File, selection: String, headsSource: String?,
        headScores: [Double]?, baselineDraws: Int
    ) throws {
        if try file.exists(group) { try file.remove(group) }
        let g = try file.createGroup(group)
        try g.setAttribute("analysis", "composition")
        try g.setAttribute("analysis_version", analysisVersion)
        try g.setAttribute("heads", s.heads.map(\.description))
        try g.setAttribute("fold_norm_gains", s.foldedNormGains)
        try g.setAttribute("baseline_q", s.baseline[.q] ?? .nan)
        try g.setAttribute("baseline_k", s.baseline[.k] ?? .nan)
        try g.setAttribute("baseline_v", s.baseline[.v] ?? .nan)
        try g.setAttribute("baseline_draws", baselineDraws)
        try g.setAttribute("selection", selection)
        if let headsSource { try g.setAttribute("heads_source", headsSource) }
        try g.setAttribute("note", CompositionScores.approximationNote)
        let n = s.heads.count
        for kind in CompositionScores.Kind.allCases {
            let ds = try g.createDataset("\(kind.rawValue)_comp", data: s.matrix(kind).flatMap { $0 }, shape: [n, n])
            try ds.setAttribute("axes", ["writer", "reader"])
        }
        if let headScores, headScores.count == n {
            try g.createDataset("head_scores", data: headScores)
        }
    }

    /// Reads the group back (nil when the file has none).
    public static func read(_ file: H5File) throws -> (scores: CompositionScores, headScores: [Double]?, note: String?)?
    {
        guard try file.exists(group) else { return nil }
        let g = try file.group(group)
        let names = try g.stringsAttribute("heads")
        let heads = names.compactMap(HeadIndex.init)
        let n = heads.count
        guard n == names.count else { return nil }
        func matrix(_ k: CompositionScores.Kind) throws -> [[Double]] {
            let name = "\(k.rawValue)_comp"
            guard try g.exists(name) else {
                return [[Double]](repeating: [Double](repeating: .nan, count: n), count: n)
            }
            let flat = try g.dataset(name).read(Double.self)
            guard flat.count == n * n else {
                return [[Double]](repeating: [Double](repeating: .nan, count: n), count: n)
            }
            return (0..<n).map { Array(flat[($0 * n)..<(($0 + 1) * n)]) }
        }
        var baseline: [CompositionScores.Kind: Double] = [:]
        for k in CompositionScores.Kind.allCases {
            baseline[k] = try g.attributeIfPresent("baseline_\(k.rawValue)")?.doubleValue ?? .nan
        }
        let fold = try g.attributeIfPresent("fold_norm_gains")?.intValue ?? 0
        let s = CompositionScores(
            heads: heads, q: try matrix(.q), k: try matrix(.k), v: try matrix(.v),
            baseline: baseline, foldedNormGains: fold != 0)
        var hs: [Double]?
        if try g.exists("head_scores") { hs = try g.dataset("head_scores").read(Double.self) }
        return (s, hs, try g.attributeIfPresent("note")?.stringValue)
    }
}
