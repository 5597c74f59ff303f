import Foundation
import TraceStore

extension MembershipConfig {
    /// The parameter attributes of `/membership` (window ... forest_trees).
    func write(to g: H5Group) throws {
        try g.setAttribute("analysis", "membership")
        try g.setAttribute("analysis_version", MembershipRunFile.analysisVersion)
        try g.setAttribute("window", window)
        try g.setAttribute("stride", stride)
        try g.setAttribute("reference", reference.rawValue)
        try g.setAttribute("normalizations", normalizations.map(\.rawValue))
        try g.setAttribute("features", features.rawValue)
        try g.setAttribute("histogram_bins", histogramBins)
        try g.setAttribute("classifier", classifier.rawValue)
        try g.setAttribute("folds", folds)
        try g.setAttribute("seed", Int64(bitPattern: seed))
        try g.setAttribute("min_k", minK)
        try g.setAttribute("max_tokens_per_doc", maxTokensPerDocument)
        try g.setAttribute("bootstrap_resamples", bootstrapResamples)
        try g.setAttribute("forest_trees", forestTrees)
    }

    /// Reads what `write(to:)` wrote (a shard's parameters); a missing or unknown value is a
    /// `TraceStoreError` naming the attribute.
    static func read(from g: H5Group, file: String) throws -> MembershipConfig {
        func bad(_ key: String, _ value: String) -> TraceStoreError {
            .invalidArgument(file: file, object: "\(g.name) @\(key)", detail: "unknown value '\(value)'")
        }
        var c = MembershipConfig()
        c.window = try g.intAttribute("window")
        c.stride = try g.intAttribute("stride")
        let r = try g.stringAttribute("reference")
        guard let ref = MembershipReference(rawValue: r) else { throw bad("reference", r) }
        c.reference = ref
        c.normalizations = try g.stringsAttribute("normalizations").map {
            guard let n = MembershipNormalization(rawValue: $0) else { throw bad("normalizations", $0) }
            return n
        }
        let f = try g.stringAttribute("features")
        guard let features = MembershipFeatureKind(rawValue: f) else { throw bad("features", f) }
        c.features = features
        c.histogramBins = try g.intAttribute("histogram_bins")
        let k = try g.stringAttribute("classifier")
        guard let classifier = MembershipClassifierKind(rawValue: k) else { throw bad("classifier", k) }
        c.classifier = classifier
        c.folds = try g.intAttribute("folds")
        c.seed = UInt64(bitPattern: Int64(try g.intAttribute("seed")))
        c.minK = try g.doubleAttribute("min_k")
        c.maxTokensPerDocument = try g.intAttribute("max_tokens_per_doc")
        c.bootstrapResamples = try g.intAttribute("bootstrap_resamples")
        c.forestTrees = try g.intAttribute("forest_trees")
        do { try c.validate() } catch let e as MembershipInputError {
            throw TraceStoreError.invalidArgument(file: file, object: g.name, detail: e.message)
        }
        return c
    }
}

/// What a `membership --shard K/N` run stores besides the parameters: every scored document of
/// the shard with all a merge needs to evaluate the whole set as a single run does (the token
/// scores bit for bit, the decoded texts for the surface features and zlib ratios).
///
/// ```
/// /membership  parameters (MembershipConfig), set_name, set_path, caveat, warnings,
///              skipped_names, skipped_reasons, workers, scoring_seconds
///   shard_documents/item, name, source, label, n_tokens, n_tokens_original,
///                   n_scored, n_windows, forward_tokens, text_bytes     [doc]  (RecordTable)
///   shard_documents/tokens             int64   [sum n_tokens]
///   shard_documents/targets            int64   [sum n_scored]
///   shard_documents/nll, p_max         float64 [sum n_scored]
///   shard_documents/window_ends        int64   [sum n_windows]  end of each window's scored range
///   shard_documents/window_text_bytes  int64   [sum n_windows]
///   shard_documents/text               uint8   [bytes]  per document: its text, then its windows' texts (UTF-8)
///   shard_documents/probability_sum    float64 [doc, vocab]  (reference gp only)
/// ```
public struct MembershipShardRecords: Sendable {
    /// Plan item (index into the documents with text, in input order) of each document.
    public var items: [Int]
    public var documents: [MembershipScoredDocument]

    public init(items: [Int], documents: [MembershipScoredDocument]) {
        self.items = items
        self.documents = documents
    }

    static let group = "shard_documents"
    static let columns: [RecordTable.Column] = [
        .init("item", .int64), .init("name", .string), .init("source", .string), .init("label", .int64),
        .init("n_tokens", .int64), .init("n_tokens_original", .int64), .init("n_scored", .int64),
        .init("n_windows", .int64), .init("forward_tokens", .int64), .init("text_bytes", .int64)
    ]

    func write(to parent: H5Group) throws {
        let g = try parent.createGroup(Self.group)
        var rows: [[String: RecordTable.Value]] = []
        var tokens: [Int64] = [], targets: [Int64] = [], nll: [Double] = [], pMax: [Double] = []
        var ends: [Int64] = [], windowBytes: [Int64] = [], text: [UInt8] = []
        var probabilities: [Double] = [] // [doc, vocab]
        let vocab = documents.first?.scores.probabilitySum?.count
        for (item, d) in zip(items, documents) {
            let s = d.scores
            let bytes = Array(d.text.utf8)
            rows.append([
                "item": .int(item), "name": .string(d.name), "source": .string(d.source),
                "label": .int(d.label.map { $0 ? 1 : 0 } ?? -1), "n_tokens": .int(d.tokens.count),
                "n_tokens_original": .int(d.originalTokenCount), "n_scored": .int(s.count),
                "n_windows": .int(s.windowRanges.count), "forward_tokens": .int(s.forwardTokens),
                "text_bytes": .int(bytes.count)
            ])
            tokens += d.tokens.map(Int64.init)
            targets += s.targets.map(Int64.init)
            nll += s.nll
            pMax += s.pMax
            ends += s.windowRanges.map { Int64($0.upperBound) }
            text += bytes
            for w in d.windowTexts {
                let b = Array(w.utf8)
                windowBytes.append(Int64(b.count))
                text += b
            }
            if let vocab {
                guard let p = s.probabilitySum, p.count == vocab else {
                    preconditionFailure("MembershipShardRecords: probability sums missing for some documents")
                }
                probabilities += p
            }
        }
        try RecordTable.write(group: g, columns: Self.columns, rows: rows)
        try g.createDataset("tokens", data: tokens)
        try g.createDataset("targets", data: targets)
        try g.createDataset("nll", data: nll)
        try g.createDataset("p_max", data: pMax)
        try g.createDataset("window_ends", data: ends)
        try g.createDataset("window_text_bytes", data: windowBytes)
        try g.createDataset("text", data: text)
        if let vocab { try g.createDataset("probability_sum", data: probabilities, shape: [documents.count, vocab]) }
    }

    static func read(from parent: H5Group, file: String) throws -> MembershipShardRecords {
        let g = try parent.group(group)
        let rows = try RecordTable.read(group: g, columns: columns)
        func flat<T: H5Scalar>(_ name: String, _ type: T.Type) throws -> [T] {
            let ds = try g.dataset(name)
            return try ds.count == 0 ? [] : try ds.read(T.self)
        }
        let tokens = try flat("tokens", Int64.self), targets = try flat("targets", Int64.self)
        let nll = try flat("nll", Double.self), pMax = try flat("p_max", Double.self)
        let ends = try flat("window_ends", Int64.self), windowBytes = try flat("window_text_bytes", Int64.self)
        let text = try flat("text", UInt8.self)
        var probabilities: [Double]?, vocab = 0
        if try g.kind(of: "probability_sum") == .dataset {
            let ds = try g.dataset("probability_sum")
            let shape = try ds.shape
            guard shape.count == 2, shape[0] == rows.count else {
                throw TraceStoreError.shapeMismatch(
                    file: file, object: ds.name, detail: "shape \(shape), expected [\(rows.count), vocab]")
            }
            vocab = shape[1]
            probabilities = rows.count == 0 ? [] : try ds.read(Double.self)
        }
        let nTokens = rows.ints("n_tokens"), nScored = rows.ints("n_scored"), nWindows = rows.ints("n_windows")
        let textBytes = rows.ints("text_bytes")
        func check(_ name: String, _ have: Int, _ want: Int) throws {
            guard have == want else {
                throw TraceStoreError.shapeMismatch(
                    file: file, object: "\(g.name)/\(name)", detail: "\(have) values, the documents need \(want)")
            }
        }
        try check("tokens", tokens.count, nTokens.reduce(0, +))
        try check("targets", targets.count, nScored.reduce(0, +))
        try check("nll", nll.count, nScored.reduce(0, +))
        try check("p_max", pMax.count, nScored.reduce(0, +))
        try check("window_ends", ends.count, nWindows.reduce(0, +))
        try check("window_text_bytes", windowBytes.count, nWindows.reduce(0, +))
        try check("text", text.count, textBytes.reduce(0, +) + Int(windowBytes.reduce(0, +)))
        var out = MembershipShardRecords(items: rows.ints("item"), documents: [])
        var t = 0, s = 0, w = 0, b = 0
        for i in 0..<rows.count {
            var scores = DocumentTokenScores()
            scores.targets = targets[s..<(s + nScored[i])].map { Int($0) }
            scores.nll = Array(nll[s..<(s + nScored[i])])
            scores.pMax = Array(pMax[s..<(s + nScored[i])])
            var begin = 0
            for e in ends[w..<(w + nWindows[i])] {
                guard Int(e) >= begin, Int(e) <= nScored[i] else {
                    throw TraceStoreError.invalidArgument(
                        file: file, object: "\(g.name)/window_ends", detail: "document \(i): bad window end \(e)")
                }
                scores.windowRanges.append(begin..<Int(e))
                begin = Int(e)
            }
            scores.forwardTokens = rows.ints("forward_tokens")[i]
            if let probabilities { scores.probabilitySum = Array(probabilities[(i * vocab)..<((i + 1) * vocab)]) }
            func string(_ n: Int) -> String {
                defer { b += n }
                return String(decoding: text[b..<(b + n)], as: UTF8.self)
            }
            let docText = string(textBytes[i])
            let windowTexts = windowBytes[w..<(w + nWindows[i])].map { string(Int($0)) }
            let label = rows.ints("label")[i]
            out.documents.append(
                MembershipScoredDocument(
                    name: rows.strings("name")[i], label: label < 0 ? nil : label == 1,
                    source: rows.strings("source")[i], tokens: tokens[t..<(t + nTokens[i])].map { Int32($0) },
                    originalTokenCount: rows.ints("n_tokens_original")[i], scores: scores, text: docText,
                    windowTexts: windowTexts))
            t += nTokens[i]
            s += nScored[i]
            w += nWindows[i]
        }
        return out
    }
}

extension MembershipRunFile {
    /// `set_name`, `set_path`, `caveat` and `warnings` of `/membership`.
    static func writeInputs(_ g: H5Group, setName: String?, setPath: String?, warnings: [String]) throws {
        if let s = setName { try g.setAttribute("set_name", s) }
        if let s = setPath { try g.setAttribute("set_path", s) }
        try g.setAttribute("caveat", MembershipAnalysis.caveat)
        if !warnings.isEmpty { try g.setAttribute("warnings", warnings) }
    }

    /// The `/membership` group of a shard (`membership --shard K/N`): the run's parameters and
    /// inputs (the same in every shard) and the records of its `documents` (plan items
    /// `items`), no evaluation: `headlight merge` evaluates all shards' documents together.
    public static func writeShard(
        _ documents: [MembershipScoredDocument], items: [Int], config: MembershipConfig, setName: String?,
        setPath: String?, warnings: [String], skipped: [(name: String, reason: String)], workers: Int,
        scoringSeconds: Double, to file: H5File
    ) throws {
        let g = try file.createGroup(group)
        try config.write(to: g)
        try writeInputs(g, setName: setName, setPath: setPath, warnings: warnings)
        if !skipped.isEmpty {
            try g.setAttribute("skipped_names", skipped.map(\.name))
            try g.setAttribute("skipped_reasons", skipped.map(\.reason))
        }
        try g.setAttribute("workers", workers)
        try g.setAttribute("scoring_seconds", scoringSeconds)
        try MembershipShardRecords(items: items, documents: documents).write(to: g)
    }
}
