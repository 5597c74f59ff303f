import Foundation

// Locating the needle by its text, for the trials where Wu et al.'s token-set rule
// (`locateNeedleSpan`, their `find_needle_idx`) finds no window.
//
// Why the token rule can fail: it compares the tokens of `real_needle` encoded alone with the
// prompt's tokens, and tolerates fewer than 10% of the needle's distinct tokens differing. A
// token at each edge of the needle can differ in context:
// - the first one when `real_needle` starts a sentence but the needle has it mid-sentence
//   ("Because" alone vs " because" in "... everyone because he is ...");
// - the last one when the text after the needle has no leading space and the vocabulary
//   merges across the boundary. A SentencePiece vocabulary without a dummy prefix (Gemma 3)
//   splices "... a car." before "[Usenet] ..." (depth 0) or "</book>" (depth 100) with no
//   space, and the prompt then holds ".[" or ".</" instead of ".".
// With 17 distinct needle tokens ("mr-green" on Gemma 3) two misses leave 15/17 = 0.88 and no
// window qualifies. SmolLM2's byte-level BPE has neither merge, so it loses only the first.
//
// The text rule asks what the span means: the prompt tokens whose bytes carry the needle's
// text. It concatenates the tokens' bytes, finds `real_needle` there (ASCII letters compared
// case-insensitively, so "Because" matches "because"), and takes every token overlapping the
// match, including one that also carries a neighbour's bytes (".[").

/// How a trial's needle span was found.
public enum NeedleSpanRule: String, Sendable, Equatable {
    /// Wu et al.'s token-set window (`locateNeedleSpan`): the original's rule.
    case tokenSet = "token-set"
    /// The token-set rule found no window; the span is the tokens carrying the needle's text
    /// (`locateNeedleText`).
    case text
    /// Neither rule found the needle: `real_needle`'s text does not occur in the prompt (ASCII
    /// letters compared case-insensitively), e.g. it is not part of the needle sentence.
    case notFound = "not-found"
}

/// The prompt tokens carrying the first occurrence of `text` (leading and trailing whitespace
/// trimmed) in the concatenated bytes of `prompt`, ASCII letters compared case-insensitively:
/// from the token holding its first byte to the token holding its last. A token that holds
/// bytes of the text and of a neighbour (".[" after "car.") is inside the span. nil when the
/// text is empty or does not occur.
public func locateNeedleText(_ text: String, in prompt: [Int32], pieceBytes: (Int32) -> [UInt8]) -> Range<Int>? {
    let target = Array(text.trimmingCharacters(in: .whitespacesAndNewlines).utf8).map(asciiLower)
    guard !target.isEmpty else { return nil }
    var bytes: [UInt8] = [] // [total prompt bytes], lower-cased ASCII
    var owner: [Int] = [] // [total prompt bytes]: index in `prompt` of the token each byte comes from
    for (i, id) in prompt.enumerated() {
        for b in pieceBytes(id) {
            bytes.append(asciiLower(b))
            owner.append(i)
        }
    }
    guard bytes.count >= target.count else { return nil }
    for start in 0...(bytes.count - target.count) where bytes[start] == target[0] {
        var k = 1
        while k < target.count && bytes[start + k] == target[k] { k += 1 }
        if k == target.count { return owner[start]..<(owner[start + target.count - 1] + 1) }
    }
    return nil
}

/// The needle span of a prompt and the rule that found it: Wu et al.'s token-set rule first (so
/// trials it locates keep the original's span exactly), then the text rule.
public func locateNeedle(
    answerTokens: [Int32], answerText: String, in prompt: [Int32], tokenizer: any TextTokenizer
) -> (span: Range<Int>?, rule: NeedleSpanRule) {
    if let s = locateNeedleSpan(needle: answerTokens, in: prompt) { return (s, .tokenSet) }
    if let s = locateNeedleText(answerText, in: prompt, pieceBytes: tokenizer.pieceBytes(of:)) { return (s, .text) }
    return (nil, .notFound)
}

private func asciiLower(_ b: UInt8) -> UInt8 { (0x41...0x5A).contains(b) ? b + 0x20 : b }
