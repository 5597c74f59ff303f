import Foundation
import TraceStore

/// The `/lens` group of a run file (written by `headlight lens`): the logit lens at chosen
/// positions and, with a target token, the direct logit attribution of every component.
///
/// ```
/// /lens  @analysis = "lens", @analysis_version = 1
///        @positions int64[P]   absolute prompt positions
///        @rows      str[L+1]   "0".."L-1" (blocks.r.hook_resid_pre), "final" (last hook_resid_post)
///        @top       int        k
///        @target, @baseline        int64 token ids (-1: none);  @target_text, @baseline_text str
///        @norm      str        "rms"; @norm_eps float64
///   top_ids         int32   [row, pos, k]   tokens by descending lens logit
///   top_logits      float32 [row, pos, k]
///   log_normalizer  float64 [row, pos]      log Σ exp(logits): p = exp(top_logit − log_normalizer)
///   token_ids int32 [n], token_texts str [n]   text of every token id above (and target/baseline)
///   model_top       int32   [pos]           the model's own top-1 (equals top_ids[L, pos, 0])
///   target_logit, baseline_logit float64 [row, pos];  target_rank int64 [row, pos]   (with a target)
///   dla/            (with a target)
///     heads float64 [pos, layer, head], attention_bias float64 [pos, layer], mlp float64 [pos, layer],
///     embed, total, logit_diff, final_scale float64 [pos],
///     direction float32 [D] (W_U[target] − W_U[baseline]), ln_final_weight float32 [D],
///     @head_sum_error, @residual_error float64
/// ```
public enum LensRunFile {
    public static let group = "lens"
    public static let analysisVersion = 1

    /// Writes `lens`; `text` gives the text of a token id (stored for every id the group names).
    public static func write(_ lens: LogitLens, text: (Int32) -> String, to file: H5File) throws {
        if try file.exists(group) { try file.remove(group) }
        let g = try file.createGroup(group)
        let R = lens.rows, P = lens.positions.count, k = lens.request.top
        try g.setAttribute("analysis", "lens")
        try g.setAttribute("analysis_version", analysisVersion)
        try g.setAttribute("positions", lens.positions)
        try g.setAttribute("rows", lens.rowLabels)
        try g.setAttribute("top", k)
        try g.setAttribute("target", Int(lens.request.target ?? -1))
        try g.setAttribute("baseline", Int(lens.request.baseline ?? -1))
        if let t = lens.request.target { try g.setAttribute("target_text", text(t)) }
        if let b = lens.request.baseline { try g.setAttribute("baseline_text", text(b)) }
        try g.setAttribute("norm", "rms")
        func axes(_ ds: H5Dataset, _ a: [String]) throws { try ds.setAttribute("axes", a) }
        try axes(try g.createDataset("top_ids", data: lens.topIDs, shape: [R, P, k]), ["row", "pos", "k"])
        try axes(try g.createDataset("top_logits", data: lens.topLogits, shape: [R, P, k]), ["row", "pos", "k"])
        try axes(try g.createDataset("model_top", data: lens.modelTop), ["pos"])
        try axes(try g.createDataset("log_normalizer", data: lens.logNormalizer, shape: [R, P]), ["row", "pos"])
        let named = Set(lens.topIDs + lens.modelTop + [lens.request.target, lens.request.baseline].compactMap { $0 })
        let ids = named.sorted()
        try g.createDataset("token_ids", data: ids)
        try g.createDataset("token_texts", strings: ids.map(text))
        guard lens.request.target != nil else { return }
        try axes(try g.createDataset("target_logit", data: lens.targetLogit, shape: [R, P]), ["row", "pos"])
        try axes(try g.createDataset("baseline_logit", data: lens.baselineLogit, shape: [R, P]), ["row", "pos"])
        try axes(
            try g.createDataset("target_rank", data: lens.targetRank.map(Int64.init), shape: [R, P]), ["row", "pos"])
        guard let a = lens.attribution else { return }
        let d = try g.createGroup("dla")
        let L = lens.layers, H = lens.heads
        try axes(try d.createDataset("heads", data: a.heads, shape: [P, L, H]), ["pos", "layer", "head"])
        try axes(try d.createDataset("attention_bias", data: a.attentionBias, shape: [P, L]), ["pos", "layer"])
        try axes(try d.createDataset("mlp", data: a.mlp, shape: [P, L]), ["pos", "layer"])
        for (name, v) in [
            ("embed", a.embed), ("total", a.total), ("logit_diff", a.logitDifference), ("final_scale", a.finalScale)
        ] {
            try axes(try d.createDataset(name, data: v), ["pos"])
        }
        try d.createDataset("direction", data: a.direction)
        try d.createDataset("ln_final_weight", data: a.normWeight)
        try d.setAttribute("head_sum_error", a.headSumError)
        try d.setAttribute("residual_error", a.residualError)
    }

    /// Reads the group back (nil when the file has none); every shape is checked.
    public static func read(_ file: H5File) throws -> LensRunData? {
        guard try file.exists(group) else { return nil }
        let g = try file.group(group)
        func bad(_ object: String, _ detail: String) -> LensError {
            .badRunFile(file: file.path, object: object, detail: detail)
        }
        let positions = try g.intsAttribute("positions")
        let rows = try g.stringsAttribute("rows")
        let k = try g.intAttribute("top")
        let P = positions.count, R = rows.count, L = R - 1
        guard P > 0, L >= 1, k >= 1 else {
            throw bad("@positions/@rows/@top", "empty lens (\(P) positions, \(R) rows, top \(k))")
        }
        func read<T: H5Scalar>(_ grp: H5Group, _ name: String, _ shape: [Int], _ type: T.Type) throws -> [T] {
            let ds = try grp.dataset(name)
            let found = try ds.shape
            guard found == shape else { throw bad(name, "shape \(found), expected \(shape)") }
            return try ds.read(T.self)
        }
        let target = try g.intAttribute("target"), baseline = try g.intAttribute("baseline")
        var lens = LogitLens(
            request: LogitLensRequest(
                positions: positions, top: k, target: target >= 0 ? Int32(target) : nil,
                baseline: baseline >= 0 ? Int32(baseline) : nil),
            layers: L, heads: 0, topIDs: try read(g, "top_ids", [R, P, k], Int32.self),
            topLogits: try read(g, "top_logits", [R, P, k], Float.self),
            logNormalizer: try read(g, "log_normalizer", [R, P], Double.self), targetLogit: [], baselineLogit: [],
            targetRank: [], modelTop: try read(g, "model_top", [P], Int32.self), attribution: nil)
        let ids = try g.dataset("token_ids").read(Int32.self)
        let texts = try g.dataset("token_texts").readStrings()
        guard ids.count == texts.count else {
            throw bad("token_texts", "\(texts.count) texts for \(ids.count) token_ids")
        }
        var data = LensRunData(lens: lens, texts: Dictionary(zip(ids, texts)) { a, _ in a })
        guard target >= 0 else { return data }
        lens.targetLogit = try read(g, "target_logit", [R, P], Double.self)
        lens.baselineLogit = try read(g, "baseline_logit", [R, P], Double.self)
        lens.targetRank = try read(g, "target_rank", [R, P], Int64.self).map { Int($0) }
        if try g.exists("dla") {
            let d = try g.group("dla")
            let hs = try d.dataset("heads").shape
            guard hs.count == 3, hs[0] == P, hs[1] == L, hs[2] >= 1 else {
                throw bad("dla/heads", "shape \(hs), expected [\(P), \(L), heads]")
            }
            lens.heads = hs[2]
            let D = try d.dataset("direction").shape.first ?? 0
            lens.attribution = DirectLogitAttribution(
                heads: try read(d, "heads", hs, Double.self),
                attentionBias: try read(d, "attention_bias", [P, L], Double.self),
                mlp: try read(d, "mlp", [P, L], Double.self), embed: try read(d, "embed", [P], Double.self),
                total: try read(d, "total", [P], Double.self),
                logitDifference: try read(d, "logit_diff", [P], Double.self),
                finalScale: try read(d, "final_scale", [P], Double.self),
                direction: try read(d, "direction", [D], Float.self),
                normWeight: try read(d, "ln_final_weight", [D], Float.self),
                headSumError: try d.doubleAttribute("head_sum_error"),
                residualError: try d.doubleAttribute("residual_error"))
        }
        data.lens = lens
        return data
    }
}

/// The `/lens` group as read back: the lens and the text of every token id it names.
public struct LensRunData: Sendable {
    public var lens: LogitLens
    public var texts: [Int32: String]

    /// The text of `id` (its id in angle brackets when the file has none).
    public func text(_ id: Int32) -> String { texts[id] ?? "<\(id)>" }
}
