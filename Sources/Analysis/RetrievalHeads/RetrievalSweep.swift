import Foundation
import Inference
import TraceStore

/// One trial of a detection sweep, as stored in the run file.
public struct RetrievalTrialRecord: Equatable, Sendable {
    /// Index of the cell in the suite's grid (needles x lengths x depths, `NIAHProbe.cells`).
    public var trialIndex: Int
    public var needleID: String
    public var needleIndex: Int
    public var length: Int
    public var depth: Double
    public var promptTokens: Int
    /// Needle span [start, end) in the prompt; -1, -1 when not located.
    public var spanStart: Int
    public var spanEnd: Int
    public var response: String
    public var generatedTokens: Int
    public var stop: String
    /// ROUGE-1 recall x100 of `real_needle` in the response.
    public var rouge: Double
    /// rouge > 50.
    public var success: Bool
    /// Entered the head-score mean: success and the needle span was located.
    public var counted: Bool
    /// Trial score of every head, row-major [layers, heads].
    public var headScores: [Double]
    /// Tokens prefilled for this trial (the rest of the prompt came from the previous trial's cache).
    public var prefilledTokens: Int
    public var seconds: Double

    public var located: Bool { spanStart >= 0 }

    /// Equality of everything but timing and prefix reuse (which depend on the run, not the model).
    public func sameResult(as o: RetrievalTrialRecord) -> Bool {
        var a = self, b = o
        a.seconds = 0
        b.seconds = 0
        a.prefilledTokens = 0
        b.prefilledTokens = 0
        return a == b
    }
}

/// The sweep's outcome.
public struct RetrievalSweepResult: Sendable {
    /// All records, in grid order (`trialIndex` ascending).
    public var records: [RetrievalTrialRecord]
    public var scores: RetrievalHeadScores
    public var threshold: Double
    /// False when the sweep stopped early (`stopAfter`): nothing was finalized.
    public var finished: Bool
    /// Trials run by this invocation (not counting those resumed from a partial file).
    public var ranNow: Int
    public var resumedTrials: Int
    public var seconds: Double
    /// Of `seconds`: wall time of this invocation's prefills (with prefix copies) and decoding.
    public var prefillSeconds = 0.0
    public var decodeSeconds = 0.0

    public var retrievalHeads: [(head: HeadIndex, score: Double)] { scores.above(threshold) }
}

/// Progress of a sweep, for progress bars: work is measured in prompt tokens to prefill (plus
/// a fixed cost per decode step), so the ETA weighs long trials more.
public struct SweepProgress: Sendable {
    public var done: Int
    public var total: Int
    public var workDone: Double
    public var workTotal: Double
    public var label: String
}

/// Options of a detection sweep.
public struct RetrievalSweepOptions: Sendable {
    /// Heads above this score are retrieval heads (Wu et al.: 0.1).
    public var threshold: Double = RetrievalCopyRule.defaultHeadThreshold
    /// Reuse the KV cache of a shared prompt prefix between consecutive trials.
    public var reusePrefix = true
    /// Run trials in lexicographic order of their prompt tokens (maximizes prefix reuse) rather
    /// than grid order. Records keep their `trialIndex`; results do not depend on the order.
    public var sharedPrefixOrder = true
    /// Stop (without finalizing) after this many trials of this invocation (tests of resume).
    public var stopAfter: Int?
    /// Run only these trial indices (a shard, `ShardPlan`); nil runs the whole grid. The sweep
    /// finishes when all of them are done.
    public var trialSubset: [Int]?
    /// Trials decoded together (`NeedleDecoder.decodeBatch`): one matrix-matrix product per step
    /// over B KV caches. Results, record order and checkpoints do not depend on it; 1 decodes one
    /// trial at a time.
    public var decodeBatch = RetrievalSweepOptions.defaultDecodeBatch
    /// Default `decodeBatch` (measured on the default sweep, docs/run-file.md).
    public static let defaultDecodeBatch = 4
    public init() {}
}

/// The retrieval-head detection sweep of Wu et al. on a NIAH probe, writing a resumable run
/// file (group `/retrieval_heads`, docs/run-file.md).
public final class RetrievalHeadSweep {
    public let probe: NIAHProbe
    public let model: Model
    public let tokenizer: Tokenizer
    public let builder: NIAHTrialBuilder
    /// Mutable so that a shard's `trialSubset` can be set once the trials (and their costs) are built.
    public var options: RetrievalSweepOptions

    public init(
        probe: NIAHProbe, model: Model, tokenizer: Tokenizer, chatTemplate: ((String) -> String)?,
        options: RetrievalSweepOptions = RetrievalSweepOptions()
    ) throws {
        try NIAHTextCheck.check(probe, tokenizer: tokenizer)
        self.probe = probe
        self.model = model
        self.tokenizer = tokenizer
        self.builder = NIAHTrialBuilder(probe: probe, tokenizer: tokenizer, chatTemplate: chatTemplate)
        self.options = options
    }

    /// Every trial of the grid, in grid order.
    public func buildTrials() throws -> [NIAHTrial] {
        try probe.cells.map { try builder.trial($0) }
    }

    /// Runs (or resumes) the sweep, writing into `file` (the open file of a `RunFileWriter`;
    /// the caller finalizes it when `finished`).
    public func run(
        file: H5File, trials given: [NIAHTrial]? = nil,
        progress: ((SweepProgress) -> Void)? = nil
    ) throws -> RetrievalSweepResult {
        let start = Date()
        let trials = try given ?? buildTrials()
        let c = model.config
        let store = try RetrievalRunFile.open(
            file, probe: probe, layers: c.nLayers, heads: c.nHeads,
            plannedTrials: trials.count, options: options)
        let done = Set(try store.trialIndices())
        let resumed = done.count

        let order = executionOrder(trials)
        let subset = options.trialSubset.map(Set.init)
        let todo = order.filter { !done.contains($0) && subset?.contains($0) != false }
        // Work estimate per trial: prompt tokens not shared with the previous trial run, plus the
        // attention work (quadratic), plus decode steps.
        var work: [Int: Double] = [:]
        var prev: [Int32] = []
        for i in todo {
            let p = trials[i].promptTokens
            var k = 0
            if options.reusePrefix { while k < min(p.count, prev.count) - 1 && p[k] == prev[k] { k += 1 } }
            let n = Double(p.count - k), L = Double(p.count)
            work[i] = n * (1 + L / 8000) + Double(probe.suite.maxNewTokens) * 10
            prev = p
        }
        let workTotal = work.values.reduce(0, +)
        var workDone = 0.0

        let maxPrompt = todo.map { trials[$0].promptTokens.count }.max() ?? 1
        try model.checkContext(
            maxPrompt + probe.suite.maxNewTokens + 1,
            for: "a trial prompt of \(maxPrompt) tokens + max_new_tokens \(probe.suite.maxNewTokens) + 1")
        let session = model.makeSession(maxContext: maxPrompt + probe.suite.maxNewTokens + 1)
        let decoder = NeedleDecoder(
            session: session, tokenizer: tokenizer, reusePrefix: options.reusePrefix,
            decodeBatch: options.decodeBatch)
        let scorer = RougeScorer()
        var ran = 0
        progress?(
            SweepProgress(
                done: resumed, total: subset?.count ?? trials.count, workDone: 0, workTotal: workTotal,
                label: "starting"))
        let run = options.stopAfter.map { Array(todo.prefix(max($0, 0))) } ?? todo
        // Each record's `seconds` is the wall time since the previous record (or the start): with
        // batched decoding a batch's time is spread over its records as they complete.
        var t0 = Date()
        try decoder.runTrials(
            run.map { NeedleTrialInput(prompt: trials[$0].promptTokens, span: trials[$0].needleSpan) },
            maxNewTokens: probe.suite.maxNewTokens, scoreHeads: true
        ) { k, out in
            let i = run[k], t = trials[i]
            let rouge = NeedleRetrievalScore.score(
                realNeedle: t.needle.realNeedle, response: out.response, scorer: scorer)
            let success = NeedleRetrievalScore.succeeded(rouge)
            let rec = RetrievalTrialRecord(
                trialIndex: i, needleID: t.needle.id, needleIndex: t.cell.needleIndex, length: t.cell.length,
                depth: t.cell.depth, promptTokens: t.promptTokens.count,
                spanStart: t.needleSpan?.lowerBound ?? -1, spanEnd: t.needleSpan?.upperBound ?? -1,
                response: out.response, generatedTokens: out.generated.count, stop: out.stop.rawValue,
                rouge: rouge, success: success, counted: success && t.needleSpan != nil,
                headScores: out.headScores ?? [Double](repeating: 0, count: c.nLayers * c.nHeads),
                prefilledTokens: out.prefilledTokens, seconds: Date().timeIntervalSince(t0))
            try store.append(rec)
            try file.flush() // checkpoint: the record is on disk before the next one is appended
            t0 = Date()
            ran += 1
            workDone += work[i] ?? 0
            progress?(
                SweepProgress(
                    done: resumed + ran, total: subset?.count ?? trials.count, workDone: workDone, workTotal: workTotal,
                    label: "\(t.needle.id) length \(t.cell.length) depth \(RetrievalRunFile.fmtDepth(t.cell.depth))"))
        }
        let records = try store.records().sorted { $0.trialIndex < $1.trialIndex }
        let finished = records.count == (subset?.count ?? trials.count)
        let scores = RetrievalHeadScores.aggregate(
            trialScores: records.map(\.headScores), counted: records.map(\.counted),
            layers: c.nLayers, heads: c.nHeads)
        if finished { try store.writeSummary(scores: scores, records: records, threshold: options.threshold) }
        return RetrievalSweepResult(
            records: records, scores: scores, threshold: options.threshold, finished: finished,
            ranNow: ran, resumedTrials: resumed, seconds: Date().timeIntervalSince(start),
            prefillSeconds: decoder.prefillSeconds, decodeSeconds: decoder.decodeSeconds)
    }

    /// The order in which a run executes `trials` (and stores their records): shared-prefix
    /// order, or grid order without `sharedPrefixOrder`. A shard runs its trials in this order too,
    /// so its records are a subsequence of the single run's.
    public func executionOrder(_ trials: [NIAHTrial]) -> [Int] {
        options.sharedPrefixOrder
            ? RetrievalHeadSweep.sharedPrefixOrder(trials.map(\.promptTokens)) : Array(trials.indices)
    }

    /// Token cost of every trial (`ShardPlan.trialCost`), for `ShardPlan.assign`.
    public func shardCosts(_ trials: [NIAHTrial]) -> [Int] {
        trials.map { ShardPlan.trialCost(promptTokens: $0.promptTokens.count, decodeSteps: probe.suite.maxNewTokens) }
    }

    /// Indices sorted by prompt tokens, lexicographically (ties by index): consecutive prompts
    /// then share the longest possible prefixes.
    public static func sharedPrefixOrder(_ prompts: [[Int32]]) -> [Int] {
        prompts.indices.sorted { a, b in
            let x = prompts[a], y = prompts[b]
            for k in 0..<min(x.count, y.count) where x[k] != y[k] { return x[k] < y[k] }
            return x.count != y.count ? x.count < y.count : a < b
        }
    }
}

/// The `/retrieval_heads` group of a run file.
///
/// ```
/// /retrieval_heads                 @analysis "retrieval_heads", @analysis_version 1, @suite (sorted-key JSON),
///                                  @suite_name, @needles (JSONL of the needles used), @haystack_files,
///                                  @n_layers, @n_heads, @planned_trials, @success_threshold (50), @rule (text),
///                                  @threshold (0.1), @reuse_prefix, @shared_prefix_order, @decode_batch;
///                                  when finished also
///                                  @trials, @counted_trials, @located_trials, @successful_trials,
///                                  @threshold_heads (str[] "L.H", highest first)
///   scores                float64 [layer, head]   mean trial score over counted trials (0 if none counted)
///   retrieval_heads       int64   [rank, 2]       (layer, head) of heads with score > threshold, highest first
///   retrieval_head_scores float64 [rank]          their scores
///   trials/                                       one row per trial, in execution order (parallel datasets,
///                                                 extendible; checkpointed after every trial):
///     trial_index int64 (cell index in the grid needles x lengths x depths), needle_id str, needle_index int64,
///     length int64, depth float64, prompt_tokens int64, span_start / span_end int64 (-1: not located),
///     response str, generated_tokens int64, stop str (newline | end_of_generation | max_tokens | context_full),
///     rouge1_recall float64 (x100), success int8 (> 50), counted int8 (success and located),
///     head_scores float64 [trial, layer, head], prefilled_tokens int64, seconds float64
/// ```
/// Root attribute `sweep_seconds` (float64) is the wall time of the invocation that finished.
public final class RetrievalRunFile {
    public static let group = "retrieval_heads"
    public static let analysisVersion = 1

    let root: H5Group
    let table: RecordTable
    let layers: Int
    let heads: Int

    /// The columns of `trials/` (the record table's layout, for writing and reading).
    public static func columns(layers: Int, heads: Int) -> [RecordTable.Column] {
        [
            .init("trial_index", .int64), .init("needle_id", .string), .init("needle_index", .int64),
            .init("length", .int64), .init("depth", .float64), .init("prompt_tokens", .int64),
            .init("span_start", .int64), .init("span_end", .int64), .init("response", .string),
            .init("generated_tokens", .int64), .init("stop", .string), .init("rouge1_recall", .float64),
            .init("success", .int8), .init("counted", .int8),
            .init("head_scores", .float64Block([layers, heads]), axes: ["trial", "layer", "head"]),
            .init("prefilled_tokens", .int64), .init("seconds", .float64)
        ]
    }

    init(root: H5Group, table: RecordTable, layers: Int, heads: Int) {
        self.root = root
        self.table = table
        self.layers = layers
        self.heads = heads
    }

    /// The suite as stored: sorted-key JSON.
    public static func suiteJSON(_ s: NIAHSuite) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: try e.encode(s), as: UTF8.self)
    }

    public static func needlesJSONL(_ needles: [NIAHNeedle]) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return try needles.map { String(decoding: try e.encode($0), as: UTF8.self) }.joined(separator: "\n")
    }

    static func fmtDepth(_ d: Double) -> String { d == d.rounded() ? String(Int(d)) : String(d) }

    /// Opens the group, creating it in a new file; in a resumed file checks that the stored
    /// suite, dimensions and sweep options match (else `partialMismatch`).
    static func open(
        _ file: H5File, probe: NIAHProbe, layers: Int, heads: Int, plannedTrials: Int,
        options: RetrievalSweepOptions
    ) throws -> RetrievalRunFile {
        let suite = try suiteJSON(probe.suite)
        let needles = try needlesJSONL(probe.needles)
        let g: H5Group
        if try file.exists(group) {
            g = try file.group(group)
            func check(_ name: String, _ want: H5AttributeValue) throws {
                let have = try g.attributeIfPresent(name)
                if have != want {
                    throw RetrievalHeadsError.partialMismatch(
                        file: file.path,
                        detail: "its \(name) (\(have.map { "\($0)" } ?? "none")) differs from this run's (\(want)); "
                            + "delete it to start over, or rerun with the same options")
                }
            }
            try check("suite", .string(suite))
            try check("needles", .string(needles))
            try check("n_layers", .int(Int64(layers)))
            try check("n_heads", .int(Int64(heads)))
            try check("planned_trials", .int(Int64(plannedTrials)))
        } else {
            g = try file.createGroup(group)
            try g.setAttribute("analysis", "retrieval_heads")
            try g.setAttribute("analysis_version", analysisVersion)
            try g.setAttribute("suite", suite)
            try g.setAttribute("suite_name", probe.suite.name)
            try g.setAttribute("needles", needles)
            try g.setAttribute("haystack_files", probe.haystackFiles.map(\.lastPathComponent))
            try g.setAttribute("n_layers", layers)
            try g.setAttribute("n_heads", heads)
            try g.setAttribute("planned_trials", plannedTrials)
            try g.setAttribute("success_threshold", RetrievalCopyRule.successThreshold)
            try g.setAttribute(
                "rule",
                "Wu et al. 2024: prefill prompt[:-1] without capture; greedy decode from the last prompt token, at "
                    + "most max_new_tokens steps, stopping after a token containing a newline or an end-of-generation "
                    + "token; per step and query head, if the top-1 attended key (lowest index on ties) lies in the "
                    + "needle span [s, s+n) and prompt[key] equals the generated token, the head's trial score += 1/n; "
                    + "trials count when ROUGE-1 recall x100 (rouge_score, stemmed) of real_needle > 50 and the span "
                    + "was located; score = mean over counted trials")
        }
        // Options that do not change results are recorded but not checked.
        try g.setAttribute("reuse_prefix", options.reusePrefix)
        try g.setAttribute("decode_batch", options.decodeBatch)
        try g.setAttribute("shared_prefix_order", options.sharedPrefixOrder)
        try g.setAttribute("threshold", options.threshold)
        let tg = try g.requireGroup("trials")
        let table = try RecordTable(group: tg, columns: columns(layers: layers, heads: heads))
        return RetrievalRunFile(root: g, table: table, layers: layers, heads: heads)
    }

    func append(_ r: RetrievalTrialRecord) throws {
        try table.append([
            "trial_index": .int(r.trialIndex), "needle_id": .string(r.needleID), "needle_index": .int(r.needleIndex),
            "length": .int(r.length), "depth": .double(r.depth), "prompt_tokens": .int(r.promptTokens),
            "span_start": .int(r.spanStart), "span_end": .int(r.spanEnd), "response": .string(r.response),
            "generated_tokens": .int(r.generatedTokens), "stop": .string(r.stop), "rouge1_recall": .double(r.rouge),
            "success": .int(r.success ? 1 : 0), "counted": .int(r.counted ? 1 : 0),
            "head_scores": .doubles(r.headScores),
            "prefilled_tokens": .int(r.prefilledTokens), "seconds": .double(r.seconds)
        ])
    }

    /// Trial indices of the stored records.
    func trialIndices() throws -> [Int] {
        try RecordTable.read(group: table.group, columns: [.init("trial_index", .int64)]).ints("trial_index")
    }

    /// The stored records, in file (execution) order.
    func records() throws -> [RetrievalTrialRecord] {
        try Self.readRecords(table.group, layers: layers, heads: heads, allowIncomplete: false)
    }

    static func readRecords(
        _ tg: H5Group, layers: Int, heads: Int,
        allowIncomplete: Bool
    ) throws -> [RetrievalTrialRecord] {
        let t = try RecordTable.read(
            group: tg, columns: columns(layers: layers, heads: heads),
            allowIncomplete: allowIncomplete)
        let idx = t.ints("trial_index"), needleID = t.strings("needle_id"), ni = t.ints("needle_index")
        let len = t.ints("length"), depth = t.doubles("depth"), pt = t.ints("prompt_tokens")
        let ss = t.ints("span_start"), se = t.ints("span_end"), resp = t.strings("response")
        let gen = t.ints("generated_tokens"), stop = t.strings("stop"), rouge = t.doubles("rouge1_recall")
        let succ = t.ints("success"), cnt = t.ints("counted"), hs = t.blocks("head_scores")
        let pre = t.ints("prefilled_tokens"), sec = t.doubles("seconds")
        return (0..<t.count).map { i in
            RetrievalTrialRecord(
                trialIndex: idx[i], needleID: needleID[i], needleIndex: ni[i], length: len[i],
                depth: depth[i], promptTokens: pt[i], spanStart: ss[i], spanEnd: se[i],
                response: resp[i], generatedTokens: gen[i], stop: stop[i], rouge: rouge[i],
                success: succ[i] != 0, counted: cnt[i] != 0, headScores: hs[i],
                prefilledTokens: pre[i], seconds: sec[i])
        }
    }

    /// Scores [layers, heads], the threshold list and the summary attributes (written once, when
    /// every trial is done).
    func writeSummary(scores: RetrievalHeadScores, records: [RetrievalTrialRecord], threshold: Double) throws {
        for name in ["scores", "retrieval_heads", "retrieval_head_scores"] where try root.exists(name) {
            try root.remove(name)
        }
        let s = try root.createDataset("scores", data: scores.scores, shape: [layers, heads])
        try s.setAttribute("axes", ["layer", "head"])
        let above = scores.above(threshold)
        let pairs = above.flatMap { [Int64($0.head.layer), Int64($0.head.head)] }
        let rh = try root.createDataset("retrieval_heads", data: pairs, shape: [above.count, 2])
        try rh.setAttribute("axes", ["rank", "layer_head"])
        try rh.setAttribute("threshold", threshold)
        try root.createDataset("retrieval_head_scores", data: above.map(\.score), shape: [above.count])
        try root.setAttribute("threshold_heads", above.map { $0.head.description })
        try root.setAttribute("threshold", threshold)
        try root.setAttribute("counted_trials", scores.countedTrials)
        try root.setAttribute("located_trials", records.filter(\.located).count)
        try root.setAttribute("successful_trials", records.filter(\.success).count)
        try root.setAttribute("trials", records.count)
    }

    // MARK: Reading

    /// Everything a `/retrieval_heads` group holds: what `ablate`, `cite`, `report attention` and
    /// reports read (the one reader of the group).
    public struct Contents: Sendable {
        public var layers: Int
        public var heads: Int
        /// From `scores` when the sweep finished; else averaged from the stored trial records
        /// (`RetrievalHeadScores.aggregate`: 0 when no trial counts).
        public var scores: RetrievalHeadScores
        /// The sweep finished: `scores` and the summary attributes were stored.
        public var finished: Bool
        public var threshold: Double
        public var suiteJSON: String
        public var suiteName: String
        public var plannedTrials: Int
        /// All stored records, in grid order (`trialIndex` ascending).
        public var records: [RetrievalTrialRecord]
        public var modelSHA256: String?
        public var modelFile: String?
    }

    /// Reads the `/retrieval_heads` group of an open run file; nil if the file has none. Every
    /// dataset and attribute the writer stores must be there, with its type and shape (else a
    /// `TraceStoreError` / `RecordTableError` naming the file and object). `allowIncomplete`
    /// reads a sweep that did not finish (no summary yet; record columns cut to the shortest).
    public static func read(_ f: H5File, allowIncomplete: Bool = false) throws -> Contents? {
        guard try f.kind(of: group) != nil else { return nil }
        let g = try f.group(group)
        let layers = try g.intAttribute("n_layers"), heads = try g.intAttribute("n_heads")
        guard layers > 0, heads > 0 else {
            throw TraceStoreError.shapeMismatch(
                file: f.path, object: g.name,
                detail: "n_layers \(layers), n_heads \(heads)")
        }
        let stored = try readRecords(
            try g.group("trials"), layers: layers, heads: heads,
            allowIncomplete: allowIncomplete)
        let records = stored.sorted { $0.trialIndex < $1.trialIndex }
        let finished = try g.kind(of: "scores") != nil
        let scores: RetrievalHeadScores
        if finished || !allowIncomplete {
            let ds = try g.dataset("scores")
            try ds.requireShape([layers, heads])
            scores = RetrievalHeadScores(
                layers: layers, heads: heads, scores: try ds.read(Double.self),
                countedTrials: try g.intAttribute("counted_trials"))
        } else {
            // Summed in file order, as reports always did.
            scores = RetrievalHeadScores.aggregate(
                trialScores: stored.map(\.headScores),
                counted: stored.map(\.counted), layers: layers, heads: heads)
        }
        return Contents(
            layers: layers, heads: heads, scores: scores, finished: finished,
            threshold: try g.doubleAttribute("threshold"), suiteJSON: try g.stringAttribute("suite"),
            suiteName: try g.stringAttribute("suite_name"),
            plannedTrials: try g.intAttribute("planned_trials"),
            records: records,
            modelSHA256: try f.attributeIfPresent(RunFile.Attr.modelSHA256)?.stringValue,
            modelFile: try f.attributeIfPresent(RunFile.Attr.modelFile)?.stringValue)
    }

    /// Opens the run file at `path` (which must be complete unless `allowIncomplete`) and reads
    /// its `/retrieval_heads` group; `badScoresFile` if it has none.
    public static func read(path: String, allowIncomplete: Bool = false) throws -> Contents {
        let f = try RunFile.open(path, allowIncomplete: allowIncomplete)
        defer { try? f.close() }
        guard let c = try read(f, allowIncomplete: allowIncomplete) else {
            throw RetrievalHeadsError.badScoresFile(
                file: path,
                detail: "no /\(group) group (not a retrieval-heads run file)")
        }
        return c
    }
}
