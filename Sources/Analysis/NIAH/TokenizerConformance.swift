import Foundation
import Inference

// `Inference.Tokenizer` as the `TextTokenizer` that NIAH trial construction uses.
//
// Choice of `parseSpecial` (text of control tokens such as "<|im_start|>" becomes those
// tokens): **on**, for every call. Reasons:
//
// - `NIAHTrialBuilder` encodes the chat-wrapped prompt text through this same method; with
//   `parseSpecial` off, "<|im_start|>user" would be tokenized as plain characters and the
//   model would never see its chat template. The protocol's documentation asks for it.
// - It is what the original does: Wu et al. call Hugging Face `enc.encode(text)` /
//   `apply_chat_template(tokenize=True)`, which split added special tokens out of any text,
//   haystack included; llama.cpp's `parse_special` does the same. It is also the default of
//   `Tokenizer.encode`, so code that imports Analysis and calls `encode(_:addSpecial:)` keeps
//   its meaning (this overload wins overload resolution over the one with a defaulted
//   `parseSpecial`).
//
// Haystack text must still never turn into special tokens. That is guaranteed by a check
// rather than by the flag: `Tokenizer.controlTokenTexts(in:)` lists the control-token texts a
// string contains, and the retrieval-head and ablation runners (`NIAHTextCheck`) refuse a
// suite whose haystack, needles or questions contain any (the Jargon File and the shipped
// needles contain none). With that check passing, encoding with or without `parseSpecial`
// gives the same haystack tokens, and only the template's own markers become control tokens.

extension Tokenizer: TextTokenizer {
    /// `encode(text, addSpecial: addSpecial, parseSpecial: true)` (see the file comment).
    public func encode(_ text: String, addSpecial: Bool) -> [Int32] {
        encode(text, addSpecial: addSpecial, parseSpecial: true)
    }

    /// `decode(ids, skipSpecial: false)`: special tokens render as their text, as Hugging Face
    /// `decode` does by default (Wu et al.'s `decode_tokens`).
    public func decode(_ ids: [Int32]) -> String {
        decode(ids, skipSpecial: false)
    }

    /// `pieceBytes(id, special: true)`: the token's bytes as `decode` concatenates them (control
    /// tokens as their text), so byte offsets in the prompt line up with its decoded text.
    public func pieceBytes(of id: Int32) -> [UInt8] {
        pieceBytes(id, special: true)
    }

    /// Texts of control / unknown tokens (those `parseSpecial` would turn into a single special
    /// token) that occur in `text`, longest first, without duplicates.
    ///
    /// A token's text occurs where its UTF-8 bytes do, which is how `encode` splits special
    /// tokens out of text (llama.cpp's `tokenizer_st_partition`). The search is bytewise
    /// (memchr + memcmp): Foundation's `String.contains` took ~21 s of CPU for Gemma 3's 262,144-token
    /// vocabulary against a 300 KB haystack.
    public func controlTokenTexts(in text: String) -> [String] {
        let hay = Array(text.utf8)
        var present = [Bool](repeating: false, count: 256) // [256] bytes that occur in `text`
        for b in hay { present[Int(b)] = true }
        var found: [String] = []
        hay.withUnsafeBufferPointer { haystack in
            for id in 0..<Int32(vocabSize) where isSpecial(id) {
                let t = tokenString(id)
                guard let first = t.utf8.first, present[Int(first)], !found.contains(t) else { continue }
                if ByteSearch.occurs(Array(t.utf8), in: haystack) { found.append(t) }
            }
        }
        return found.sorted { $0.count > $1.count || ($0.count == $1.count && $0 < $1) }
    }
}

/// Byte-string search for `controlTokenTexts(in:)`.
enum ByteSearch {
    /// Whether `needle` (non-empty) occurs in `haystack`: memchr for its first byte, then memcmp.
    static func occurs(_ needle: [UInt8], in haystack: UnsafeBufferPointer<UInt8>) -> Bool {
        let m = needle.count
        guard m > 0, m <= haystack.count, let base = haystack.baseAddress else { return false }
        let first = Int32(needle[0])
        return needle.withUnsafeBufferPointer { n in
            var pos = 0
            while haystack.count - pos >= m {
                guard let hit = memchr(base + pos, first, haystack.count - pos - m + 1) else { return false }
                let p = UnsafeRawPointer(base).distance(to: UnsafeRawPointer(hit))
                if memcmp(base + p, n.baseAddress!, m) == 0 { return true }
                pos = p + 1
            }
            return false
        }
    }
}

/// The check that keeps haystack text out of special tokens (see TokenizerConformance.swift).
public enum NIAHTextCheck {
    public struct Problem: Error, Equatable, CustomStringConvertible {
        public var field: String
        public var tokens: [String]
        public var description: String {
            "\(field) contains the text of special token(s) \(tokens.map { "\"\($0)\"" }.joined(separator: ", ")), "
                + "which the tokenizer would turn into control tokens"
        }
    }

    /// Throws `Problem` if the haystack, a needle, a question or an answer of `probe` contains
    /// the text of a control token of `tokenizer`.
    public static func check(_ probe: NIAHProbe, tokenizer: Tokenizer) throws {
        let hay = tokenizer.controlTokenTexts(in: probe.haystackText)
        if !hay.isEmpty { throw Problem(field: "the haystack", tokens: hay) }
        for n in probe.needles {
            for (name, text) in [("needle", n.needle), ("question", n.question), ("real_needle", n.realNeedle)] {
                let t = tokenizer.controlTokenTexts(in: text)
                if !t.isEmpty { throw Problem(field: "\(name) of needle \"\(n.id)\"", tokens: t) }
            }
        }
    }
}
