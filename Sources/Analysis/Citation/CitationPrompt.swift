import Foundation
import Inference

// The citation prompt, the mapping from text to token positions, and long-context padding.
//
// Prompt (one user turn in the model's chat template, then the assistant header):
//
//     <instruction>
//
//     [1] <passage 1>
//     [2] <passage 2>
//     ...
//
//     Question: <question>
//
// Passage spans are the tokens of each passage's text only: the "[k] " number marker and the
// newline are left out, so a head that attends to the markers (which look like the citation
// the answer will write) does not count as attending to the passage. Spans are mapped from byte
// ranges: a token belongs to a span when its bytes overlap the passage text.

public enum CitationPrompt {
    public static let defaultInstruction =
        "Answer the question using only the numbered passages below. Copy the answer words exactly from "
        + "the passage that contains them, and cite that passage by its number in square brackets, like [2]."

    /// The user message and the byte range of each passage's text in it.
    public static func userText(
        passages: [String], question: String, instruction: String = defaultInstruction
    )
        -> (text: String, passages: [Range<Int>])
    {
        var out = Array(instruction.utf8)
        out += Array("\n\n".utf8)
        var ranges: [Range<Int>] = []
        for (i, p) in passages.enumerated() {
            if i > 0 { out.append(10) }
            out += Array("[\(i + 1)] ".utf8)
            let start = out.count
            out += Array(p.utf8)
            ranges.append(start..<out.count)
        }
        out += Array("\n\nQuestion: \(question)".utf8)
        return (String(decoding: out, as: UTF8.self), ranges)
    }

    /// The full prompt text (ready for the answer) and the passages' byte ranges in it. `chat`
    /// wraps the user text (e.g. `ChatTemplate.apply` with the generation prompt); the user text
    /// must appear verbatim in its output. Without it the prompt is the user text + "\nAnswer: ".
    public static func render(
        passages: [String], question: String, instruction: String = defaultInstruction,
        chat: ((String) throws -> String)?
    ) throws -> (text: String, passages: [Range<Int>]) {
        let (user, ranges) = userText(passages: passages, question: question, instruction: instruction)
        guard let chat else { return (user + "\nAnswer: ", ranges) }
        let rendered = try chat(user)
        let r = Array(rendered.utf8), u = Array(user.utf8)
        guard let at = TokenAlignment.find(u, in: r) else {
            throw CitationError.tokenAlignment(id: "-", detail: "the chat template changed the user message")
        }
        return (rendered, ranges.map { ($0.lowerBound + at)..<($0.upperBound + at) })
    }
}

/// Byte offsets of tokens within a text.
public enum TokenAlignment {
    /// First occurrence of `needle` in `hay`.
    public static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard !needle.isEmpty, hay.count >= needle.count else { return needle.isEmpty ? 0 : nil }
        outer: for i in 0...(hay.count - needle.count) {
            for j in 0..<needle.count where hay[i + j] != needle[j] { continue outer }
            return i
        }
        return nil
    }

    /// Where each token starts and ends in `text`, given the bytes of every token of its encoding.
    /// The pieces must concatenate to `text` preceded by anything (a BOS token's text, the space
    /// a SentencePiece tokenizer adds); offsets are relative to `text` (negative for such a
    /// prefix). nil if they do not.
    public static func offsets(pieces: [[UInt8]], text: [UInt8]) -> (starts: [Int], ends: [Int])? {
        var all: [UInt8] = []
        var starts: [Int] = [], ends: [Int] = []
        for p in pieces {
            starts.append(all.count)
            all += p
            ends.append(all.count)
        }
        guard all.count >= text.count else { return nil }
        let shift = all.count - text.count
        guard all[shift...].elementsEqual(text) else { return nil }
        return (starts.map { $0 - shift }, ends.map { $0 - shift })
    }

    /// The tokens whose bytes overlap `r` (nil when none do; zero-width tokens never do).
    public static func tokens(covering r: Range<Int>, starts: [Int], ends: [Int]) -> Range<Int>? {
        guard !r.isEmpty else { return nil }
        var first: Int?, last = -1
        for i in starts.indices where ends[i] > starts[i] && ends[i] > r.lowerBound && starts[i] < r.upperBound {
            if first == nil { first = i }
            last = i
        }
        guard let f = first else { return nil }
        return f..<(last + 1)
    }
}

/// Extra distractor passages for long contexts (`--pad-to`).
public enum CitationPadding {
    /// Passages usable as padding for `item`: every passage of `pool`, deduplicated, minus those
    /// already in the item and those holding the item's gold answer (normalized).
    public static func candidates(for item: CitationItem, pool: [String]) -> [String] {
        let have = Set(item.passages.map(CitationText.normalize))
        let gold = item.gold.map(CitationText.normalize)
        var seen = Set<String>()
        var out: [String] = []
        for p in pool {
            let n = CitationText.normalize(p)
            guard !have.contains(n), seen.insert(n).inserted else { continue }
            if let g = gold, n.contains(g) { continue }
            out.append(p)
        }
        return out
    }

    /// `item` with `extra` inserted among its passages: the original passages keep their order
    /// at positions drawn uniformly (seeded), the extra ones fill the other slots in order;
    /// the answer's citation markers and `source` are renumbered.
    public static func insert(_ extra: [String], into item: CitationItem, seed: UInt64) -> CitationItem {
        guard !extra.isEmpty else { return item }
        let n0 = item.passages.count, total = n0 + extra.count
        var g = SeededGenerator(seed: seed)
        let pos = SeededRandom.sampleIndices(from: total, count: n0, using: &g).sorted()
        var out = [String](repeating: "", count: total)
        var isOrig = [Bool](repeating: false, count: total)
        for (i, p) in pos.enumerated() {
            out[p] = item.passages[i]
            isOrig[p] = true
        }
        var e = 0
        for k in 0..<total where !isOrig[k] {
            out[k] = extra[e]
            e += 1
        }
        var r = item
        r.passages = out
        r.source = item.source.map { pos[$0] }
        r.answer = item.answer.map { a in
            CitationParser.renumber(a) { k in (k >= 1 && k <= n0) ? pos[k - 1] + 1 : k }
        }
        return r
    }
}
