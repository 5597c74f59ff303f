import Foundation
import Inference

/// When a greedy NIAH answer stops (Wu et al.): after a token whose text contains a line feed
/// ("<0x0A>"), or an end-of-generation token. The stopping token is generated and kept.
/// `NeedleDecoder` and `NeedleAttention` both stop by this rule.
public enum NeedleStopRule {
    /// Whether the text of token `id` contains a line feed (special tokens count as no text).
    public static func containsNewline(_ id: Int32, tokenizer: Tokenizer) -> Bool {
        tokenizer.decodeBytes([id], removeSpecial: false, unparseSpecial: false).contains(0x0A)
    }

    /// `containsNewline` of every id below `vocabSize` (ids the tokenizer does not know: false).
    public static func newlineTable(tokenizer: Tokenizer, vocabSize: Int) -> [Bool] {
        var table = [Bool](repeating: false, count: vocabSize)
        for id in 0..<min(vocabSize, tokenizer.vocabSize) {
            table[id] = containsNewline(Int32(id), tokenizer: tokenizer)
        }
        return table
    }

    /// The ids a generation stops at: line-feed tokens and end-of-generation tokens.
    public static func stopTokens(tokenizer: Tokenizer, vocabSize: Int) -> Set<Int32> {
        let table = newlineTable(tokenizer: tokenizer, vocabSize: vocabSize)
        return tokenizer.endOfGeneration.union(table.indices.filter { table[$0] }.map { Int32($0) })
    }
}
