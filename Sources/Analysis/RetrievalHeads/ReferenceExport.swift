import Foundation
import Inference

/// The JSON that `headlight retrieval-heads --export-trials` writes for the transformers
/// reference script (Tests/Fixtures/retrieval/reference_detect.py): the prompts as token ids
/// and the needle spans, so that tokenization cannot confound the comparison.
public enum RetrievalReferenceExport {
    public struct Trial: Codable, Equatable, Sendable {
        public var trial_index: Int
        public var needle_id: String
        public var length: Int
        public var depth: Double
        public var prompt_ids: [Int32]
        /// [start, end) or nil when the span was not located.
        public var span: [Int]?
        public var real_needle: String
    }

    public struct File: Codable, Equatable, Sendable {
        public var format = "headlight-retrieval-trials"
        public var model_file: String
        public var suite: String
        public var max_new_tokens: Int
        /// Headlight's end-of-generation ids (the script also uses the Hugging Face tokenizer's EOS).
        public var eog_ids: [Int32]
        /// Ids whose text contains a line feed, as Headlight's decoder sees them (for a cross-check).
        public var newline_ids: [Int32]
        public var success_threshold: Double
        public var trials: [Trial]
    }

    public static func make(trials: [NIAHTrial], probe: NIAHProbe, tokenizer: Tokenizer, modelFile: String) -> File {
        var nl: [Int32] = []
        for id in 0..<Int32(tokenizer.vocabSize)
        where tokenizer.decodeBytes([id], removeSpecial: false, unparseSpecial: false).contains(0x0A) { nl.append(id) }
        return File(
            model_file: modelFile, suite: probe.suite.name, max_new_tokens: probe.suite.maxNewTokens,
            eog_ids: tokenizer.endOfGeneration.sorted(), newline_ids: nl,
            success_threshold: RetrievalCopyRule.successThreshold,
            trials: trials.enumerated().map { i, t in
                Trial(
                    trial_index: i, needle_id: t.needle.id, length: t.cell.length, depth: t.cell.depth,
                    prompt_ids: t.promptTokens, span: t.needleSpan.map { [$0.lowerBound, $0.upperBound] },
                    real_needle: t.needle.realNeedle)
            })
    }

    public static func write(
        trials: [NIAHTrial], probe: NIAHProbe, tokenizer: Tokenizer, model: URL, to url: URL
    ) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        try e.encode(make(trials: trials, probe: probe, tokenizer: tokenizer, modelFile: model.lastPathComponent))
            .write(to: url, options: .atomic)
    }
}
