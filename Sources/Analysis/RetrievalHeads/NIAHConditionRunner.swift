import Foundation
import Inference
import TraceStore

/// What the NIAH condition sweeps (`AblationRunner`, `KVPolicyRunner`) share: the suite, the model,
/// its tokenizer and the trial builder (made once, with the suite's text checked against the
/// tokenizer), the extra group attributes, the execution order, the resume bookkeeping, a trial's
/// metrics and the held-out passage's per-token NLL.
public class NIAHConditionRunner {
    public let probe: NIAHProbe
    public let model: Model
    public let tokenizer: Tokenizer
    public let builder: NIAHTrialBuilder
    /// Extra attributes for the group (e.g. the scores file, the threshold).
    public var attributes: [String: H5AttributeValue] = [:]

    init(probe: NIAHProbe, model: Model, tokenizer: Tokenizer, chatTemplate: ((String) -> String)?) throws {
        try NIAHTextCheck.check(probe, tokenizer: tokenizer)
        self.probe = probe
        self.model = model
        self.tokenizer = tokenizer
        self.builder = NIAHTrialBuilder(probe: probe, tokenizer: tokenizer, chatTemplate: chatTemplate)
    }

    /// The order in which a run executes the trials: shared-prefix order, or grid order without
    /// `reusePrefix`.
    static func trialOrder(_ trials: [NIAHTrial], reusePrefix: Bool) -> [Int] {
        reusePrefix ? RetrievalHeadSweep.sharedPrefixOrder(trials.map(\.promptTokens)) : Array(trials.indices)
    }

    /// What a resumed run already holds: trial * `conditions` + condition of every stored record,
    /// and the conditions whose perplexity is stored.
    static func stored(
        records: H5Group, perplexity: H5Group, conditions: Int
    ) throws -> (
        trials: Set<Int>, perplexity: Set<Int>
    ) {
        var done = Set<Int>()
        let rows = try RecordTable.read(
            group: records, columns: [.init("trial_index", .int64), .init("condition", .int64)])
        for (t, c) in zip(rows.ints("trial_index"), rows.ints("condition")) { done.insert(t * conditions + c) }
        let ppl = try RecordTable.read(group: perplexity, columns: [.init("condition", .int64)]).ints("condition")
        return (done, Set(ppl))
    }

    /// A trial's metrics (`AblationMetric` order): ROUGE-1 recall x100, NeedleBench v1 (NaN without a
    /// keyword), exact recovery x100.
    static func metrics(_ t: NIAHTrial, response: String, scorer: RougeScorer) -> [Double] {
        let rouge = NeedleRetrievalScore.score(realNeedle: t.needle.realNeedle, response: response, scorer: scorer)
        let nb =
            t.needle.keyword.map {
                NeedleBench.scoreV1(prediction: response, reference: t.needle.needle, keyword: $0).score
            } ?? .nan
        let exact = NeedleRecovery.recovered(realNeedle: t.needle.realNeedle, response: response) ? 100.0 : 0
        return [rouge, nb, exact]
    }

    /// The progress label of a trial of condition `name`.
    static func label(_ name: String, _ t: NIAHTrial) -> String {
        "\(name): \(t.needle.id) length \(t.cell.length) depth " + RetrievalRunFile.fmtDepth(t.cell.depth)
    }

    /// NLL (nats) of `tokens[i + 1]` given tokens 0...i, for every i, with whatever interventions
    /// and KV policy the session has (one teacher-forced prefill from an empty cache; the session
    /// is reset before and after).
    static func tokenNLL(session: InferenceSession, tokens: [Int32]) throws -> [Double] {
        session.reset()
        defer { session.reset() }
        var out: [Double] = []
        out.reserveCapacity(max(tokens.count - 1, 0))
        let n = tokens.count
        try session.prefill(tokens: tokens, logits: .all) { pos, row in
            guard pos + 1 < n else { return }
            var m = -Float.infinity
            for x in row where x > m { m = x }
            var s = 0.0
            for x in row { s += Double(Foundation.exp(x - m)) }
            out.append(Double(m) + Foundation.log(s) - Double(row[Int(tokens[pos + 1])]))
        }
        return out
    }
}
