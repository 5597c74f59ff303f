import Foundation
import GGUF
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A tokenizer could not be built from a GGUF file's metadata.
public struct TokenizerError: Error, LocalizedError, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}

/// Per-token attributes, as llama.cpp's `llama_token_attr` (bit values match).
public struct TokenAttributes: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let unknown = TokenAttributes(rawValue: 1 << 0)
    public static let unused = TokenAttributes(rawValue: 1 << 1)
    public static let normal = TokenAttributes(rawValue: 1 << 2)
    public static let control = TokenAttributes(rawValue: 1 << 3)
    public static let userDefined = TokenAttributes(rawValue: 1 << 4)
    public static let byte = TokenAttributes(rawValue: 1 << 5)
    public static let normalized = TokenAttributes(rawValue: 1 << 6)
    public static let lstrip = TokenAttributes(rawValue: 1 << 7)
    public static let rstrip = TokenAttributes(rawValue: 1 << 8)
    public static let singleWord = TokenAttributes(rawValue: 1 << 9)

    /// From `tokenizer.ggml.token_type` (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte).
    public init(tokenType: Int) {
        switch tokenType {
        case 1: self = .normal
        case 2: self = .unknown
        case 3: self = .control
        case 4: self = .userDefined
        case 5: self = .unused
        case 6: self = .byte
        default: self = []
        }
    }
}

/// A GGUF model's tokenizer, reproducing llama.cpp's (src/llama-vocab.cpp) token ids exactly.
///
/// Supported: `tokenizer.ggml.model = gpt2` (byte-level BPE; pre-tokenizers listed in
/// `PreTokenizer.config(for:)`: smollm/starcoder, gpt-2, llama3/llama-bpe, qwen2, default, ...)
/// and `llama` (SentencePiece BPE with byte fallback).
///
/// Thread-safe: encoding takes an internal lock (it uses a word cache and scratch buffers).
public final class Tokenizer: @unchecked Sendable {
    public enum Model: String, Sendable {
        /// Byte-level BPE (GGUF `gpt2`).
        case bpe = "gpt2"
        /// SentencePiece BPE (GGUF `llama`).
        case spm = "llama"
    }

    public let model: Model
    /// `tokenizer.ggml.pre` ("default" when absent; empty for SentencePiece).
    public let pre: String
    public var vocabSize: Int { tokens.count }

    public let bos: Int32?
    public let eos: Int32?
    public let eot: Int32?
    public let eom: Int32?
    public let unk: Int32?
    public let pad: Int32?
    public let sep: Int32?
    public let mask: Int32?
    public let fimPre: Int32?, fimSuf: Int32?, fimMid: Int32?, fimPad: Int32?, fimRep: Int32?, fimSep: Int32?
    /// Whether `encode(addSpecial: true)` prepends BOS / appends EOS.
    public let addBOS: Bool
    public let addEOS: Bool
    /// SentencePiece: a space is prepended to the text (and removed again when decoding).
    public let addSpacePrefix: Bool
    /// llama_detokenize's clean-up of " ." " ," " 's" etc. (BPE, depending on the pre-tokenizer).
    public let cleanSpaces: Bool
    /// End-of-generation tokens (EOS, EOT, EOM and the others llama.cpp recognizes by name).
    public let endOfGeneration: Set<Int32>

    /// Raw vocabulary strings.
    public let tokens: [String]
    public let scores: [Float]
    public let attributes: [TokenAttributes]
    /// Byte-exact (see `TokenText`); the last of byte-identical duplicates wins, as in llama.cpp.
    private let tokenToID: [TokenText: Int32]
    private let tokenUTF8: [[UInt8]]
    /// Control / user-defined / unknown tokens, longest text first (matched before anything else).
    private let specialTokens: [Int32]

    private let preTokenizer: PreTokenizer?
    private let bpe: ByteLevelBPE?
    private let spm: SentencePieceBPE?
    private let flags = UnicodeFlags()
    private let lock = NSLock()
    private var wordCache: [ArraySlice<UInt8>: [Int32]] = [:]
    private static let wordCacheLimit = 200_000

    // MARK: - Loading

    public convenience init(gguf: GGUFFile) throws {
        try self.init(metadata: gguf.metadata, source: gguf.url.lastPathComponent)
    }

    /// Builds the tokenizer from GGUF metadata. `source` names the file in error messages.
    public init(metadata meta: [String: GGUFValue], source: String = "GGUF metadata") throws {
        func fail(_ msg: String) -> TokenizerError { TokenizerError("\(source): \(msg)") }
        func string(_ key: String) throws -> String? {
            guard let v = meta[key] else { return nil }
            guard let s = v.stringValue else { throw fail("'\(key)' should be a string, found \(v.typeName)") }
            return s
        }
        func bool(_ key: String) throws -> Bool? {
            guard let v = meta[key] else { return nil }
            guard let b = v.boolValue else { throw fail("'\(key)' should be a bool, found \(v.typeName)") }
            return b
        }

        // Vocabulary type.
        guard let modelName = try string("tokenizer.ggml.model") else {
            throw fail("missing 'tokenizer.ggml.model' (the file has no tokenizer)")
        }
        switch modelName {
        case "gpt2": model = .bpe
        case "llama": model = .spm
        default:
            throw fail("unsupported tokenizer.ggml.model '\(modelName)' (supported: gpt2, llama)")
        }

        // Tokens, scores, types.
        guard let tokV = meta["tokenizer.ggml.tokens"] else { throw fail("missing 'tokenizer.ggml.tokens'") }
        guard case .array(.string, let tokItems) = tokV else {
            throw fail("'tokenizer.ggml.tokens' should be array[string], found \(tokV.typeName)")
        }
        guard !tokItems.isEmpty else { throw fail("'tokenizer.ggml.tokens' is empty") }
        var tokens = tokItems.map { $0.stringValue! }
        for i in tokens.indices where tokens[i].isEmpty { tokens[i] = "[EMPTY_\(i)]" }
        let n = tokens.count

        var scores = [Float](repeating: 0, count: n)
        if let v = meta["tokenizer.ggml.scores"] {
            guard case .array(let t, let a) = v, t == .float32 || t == .int32 else {
                throw fail("'tokenizer.ggml.scores' should be array[f32], found \(v.typeName)")
            }
            guard a.count >= n else { throw fail("'tokenizer.ggml.scores' has \(a.count) entries for \(n) tokens") }
            for i in 0..<n { scores[i] = Float(a[i].doubleValue ?? 0) }
        }
        var attrs = [TokenAttributes](repeating: .normal, count: n)
        if let v = meta["tokenizer.ggml.token_type"] {
            guard case .array(let t, let a) = v,
                t == .int32 || t == .uint32 || t == .int8 || t == .uint8
                    || t == .int16 || t == .uint16 || t == .int64 || t == .uint64
            else {
                throw fail("'tokenizer.ggml.token_type' should be array[i32], found \(v.typeName)")
            }
            guard a.count >= n else {
                throw fail("'tokenizer.ggml.token_type' has \(a.count) entries for \(n) tokens")
            }
            for i in 0..<n { attrs[i] = TokenAttributes(tokenType: a[i].intValue ?? 0) }
        }
        var tokenToID: [TokenText: Int32] = [:]
        tokenToID.reserveCapacity(n)
        for (i, t) in tokens.enumerated() { tokenToID[TokenText(t)] = Int32(i) }

        // Pre-tokenizer and defaults by type (llama_vocab::impl::load).
        var addBOS = false, addEOS = false, addSpacePrefix = false, cleanSpaces = false
        var bos: Int32?, eos: Int32?, unk: Int32?
        var preName = ""
        var config: PreTokenizer.Config?
        switch model {
        case .spm:
            bos = 1
            eos = 2
            unk = 0
            addSpacePrefix = true
            addBOS = true
        case .bpe:
            bos = 11
            eos = 11
            preName = try string("tokenizer.ggml.pre") ?? "default"
            guard let c = PreTokenizer.config(for: preName) else {
                throw fail(
                    "unsupported tokenizer.ggml.pre '\(preName)' (supported: "
                        + PreTokenizer.supportedNames.joined(separator: ", ") + ")")
            }
            config = c
            cleanSpaces = c.cleanSpaces
            addBOS = c.addBOS
        }
        if let p = try bool("tokenizer.ggml.add_space_prefix") { addSpacePrefix = p }
        pre = preName

        // Special token ids: defaults, disabled when out of range, then the GGUF keys.
        func specialID(_ key: String, _ def: Int32?) throws -> Int32? {
            var id = def
            if let d = id, Int(d) >= n { id = nil }
            guard let v = meta[key] else { return id }
            guard let x = v.intValue else { throw fail("'\(key)' should be an integer, found \(v.typeName)") }
            if x >= 0 && x < n { return Int32(x) }
            return id // llama.cpp warns and keeps the default
        }
        let k = "tokenizer.ggml."
        self.bos = try specialID(k + "bos_token_id", bos)
        self.eos = try specialID(k + "eos_token_id", eos)
        var eot = try specialID(k + "eot_token_id", nil)
        var eom = try specialID(k + "eom_token_id", nil)
        self.unk = try specialID(k + "unknown_token_id", unk)
        self.sep = try specialID(k + "seperator_token_id", nil)
        self.pad = try specialID(k + "padding_token_id", nil)
        self.mask = try specialID(k + "mask_token_id", nil)
        var fimPre = try specialID(k + "fim_pre_token_id", nil)
        var fimSuf = try specialID(k + "fim_suf_token_id", nil)
        var fimMid = try specialID(k + "fim_mid_token_id", nil)
        var fimPad = try specialID(k + "fim_pad_token_id", nil)
        var fimRep = try specialID(k + "fim_rep_token_id", nil)
        var fimSep = try specialID(k + "fim_sep_token_id", nil)
        fimPre = try specialID(k + "prefix_token_id", fimPre)
        fimSuf = try specialID(k + "suffix_token_id", fimSuf)
        fimMid = try specialID(k + "middle_token_id", fimMid)

        if let b = try bool(k + "add_bos_token") { addBOS = b }
        if let e = try bool(k + "add_eos_token") { addEOS = e }
        if addBOS && self.bos == nil { addBOS = false }
        if addEOS && self.eos == nil { addEOS = false }
        self.addBOS = addBOS
        self.addEOS = addEOS
        self.addSpacePrefix = addSpacePrefix
        self.cleanSpaces = cleanSpaces

        // Tokens llama.cpp recognizes by their text. It scans an unordered_map, so when several
        // candidates exist its pick is arbitrary; here the lowest id wins.
        func detect(_ current: Int32?, _ names: [String]) -> Int32? {
            if let current { return current }
            guard let i = names.compactMap({ tokenToID[TokenText($0)] }).min() else { return nil }
            attrs[Int(i)].insert(.control)
            return i
        }
        func markControl(_ names: [String], in ids: inout Set<Int32>) {
            for i in names.compactMap({ tokenToID[TokenText($0)] }) {
                ids.insert(i)
                attrs[Int(i)].insert(.control)
            }
        }
        eot = detect(
            eot,
            [
                "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>",
                "<end_of_utterance>"
            ])
        eom = detect(eom, ["<|eom_id|>"])
        fimPre = detect(
            fimPre,
            [
                "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>",
                "▁<PRE>", "<|code_prefix|>", "<|prefix|>"
            ])
        fimSuf = detect(
            fimSuf,
            [
                "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>",
                "▁<SUF>", "<|code_suffix|>", "<|suffix|>"
            ])
        fimMid = detect(
            fimMid,
            [
                "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>",
                "▁<MID>", "<|code_middle|>", "<|middle|>"
            ])
        fimPad = detect(fimPad, ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"])
        fimRep = detect(fimRep, ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"])
        fimSep = detect(fimSep, ["<|file_sep|>"])
        for i in 0..<n
        where attrs[i].contains(.control) && !attrs[i].contains(.unused)
            && tokens[i].contains("unused")
        {
            attrs[i].insert(.unused)
        }

        var eog = Set<Int32>()
        for id in [fimPad, fimRep, fimSep] { if let id { eog.insert(id) } }
        markControl(
            [
                "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
                "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
                "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
                "<｜end▁of▁sentence｜>", "[e~["
            ], in: &eog)
        for t in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let i = tokenToID[TokenText(t)] { attrs[Int(i)] = .userDefined }
        }
        for id in [self.eos, eot, eom] { if let id { eog.insert(id) } }
        // gpt-oss: "<|end|>" is not an end of generation when "<|return|>" and "<|call|>" exist.
        do {
            let texts = Set(eog.map { tokens[Int($0)] })
            if (texts.contains("<|return|>") && texts.contains("<|call|>") && texts.contains("<|end|>"))
                || (texts.contains("<|calls|>") && texts.contains("<|flush|>") && texts.contains("<|end|>")),
                let end = eog.first(where: { tokens[Int($0)] == "<|end|>" })
            {
                eog.remove(end)
                attrs[Int(end)] = .userDefined
            }
            if texts.contains("<|tool_response>") || texts.contains("<|plamo:eos|>"),
                let s = eog.first(where: { tokens[Int($0)] == "</s>" })
            {
                eog.remove(s)
                attrs[Int(s)] = .normal
            }
        }
        self.eot = eot
        self.eom = eom
        self.fimPre = fimPre
        self.fimSuf = fimSuf
        self.fimMid = fimMid
        self.fimPad = fimPad
        self.fimRep = fimRep
        self.fimSep = fimSep
        self.endOfGeneration = eog

        // Phi-3: special tokens swallow the whitespace after them.
        let generalName = (try string("general.name") ?? "").lowercased()
        if generalName.contains("phi-3") || generalName.contains("phi3") {
            for i in 0..<n where !attrs[i].isDisjoint(with: [.control, .userDefined, .unknown]) {
                attrs[i].insert(.rstrip)
            }
            if let i = tokenToID[TokenText("</s>")] { attrs[Int(i)].insert(.rstrip) }
            for t in ["<unk>", "<s>", "<|endoftext|>"] {
                if let i = tokenToID[TokenText(t)] { attrs[Int(i)].remove(.rstrip) }
            }
        }

        let special = (0..<n).filter { !attrs[$0].isDisjoint(with: [.control, .userDefined, .unknown]) }
        let utf8 = tokens.map { Array($0.utf8) }
        specialTokens = special.sorted { a, b in
            utf8[a].count != utf8[b].count ? utf8[a].count > utf8[b].count : a < b
        }.map { Int32($0) }

        self.tokens = tokens
        self.scores = scores
        self.attributes = attrs
        self.tokenToID = tokenToID
        self.tokenUTF8 = utf8

        switch model {
        case .bpe:
            guard let mv = meta["tokenizer.ggml.merges"] else { throw fail("missing 'tokenizer.ggml.merges'") }
            guard case .array(.string, let items) = mv else {
                throw fail("'tokenizer.ggml.merges' should be array[string], found \(mv.typeName)")
            }
            preTokenizer = config!.kind
            bpe = try ByteLevelBPE(
                merges: items.map { $0.stringValue! }, tokenToID: tokenToID,
                ignoreMerges: config!.ignoreMerges)
            spm = nil
        case .spm:
            preTokenizer = nil
            bpe = nil
            spm = SentencePieceBPE(tokenToID: tokenToID, scores: scores, unknown: self.unk)
        }
    }

    // MARK: - Lookup

    /// The raw vocabulary string of a token (e.g. "Ġthe", "▁the", "<0x0A>", "<|im_start|>").
    public func tokenString(_ id: Int32) -> String {
        guard id >= 0, Int(id) < tokens.count else { return "" }
        return tokens[Int(id)]
    }

    /// The id of a vocabulary string, if it is one.
    public func tokenID(_ text: String) -> Int32? { tokenToID[TokenText(text)] }

    public func attributes(of id: Int32) -> TokenAttributes {
        guard id >= 0, Int(id) < attributes.count else { return [] }
        return attributes[Int(id)]
    }

    /// Control or unknown tokens (the ones llama.cpp hides unless asked to render special tokens).
    public func isSpecial(_ id: Int32) -> Bool { !attributes(of: id).isDisjoint(with: [.control, .unknown]) }

    /// EOS, EOT, EOM, and the other end-of-generation tokens llama.cpp recognizes (`llama_vocab_is_eog`).
    public func isEndOfGeneration(_ id: Int32) -> Bool { endOfGeneration.contains(id) }

    // MARK: - Encoding

    /// Tokenizes `text` as `llama_tokenize(vocab, text, add_special, parse_special)`.
    /// - Parameters:
    ///   - addSpecial: add BOS / EOS as the model asks (`tokenizer.ggml.add_bos_token` / `add_eos_token`).
    ///   - parseSpecial: text of control tokens (e.g. "<|im_start|>") becomes those tokens; otherwise
    ///     it is tokenized as plain text. User-defined tokens are matched either way.
    public func encode(_ text: String, addSpecial: Bool = true, parseSpecial: Bool = true) -> [Int32] {
        let bytes = Array(text.utf8)
        lock.lock()
        defer { lock.unlock() }
        return encodeLocked(bytes, addSpecial: addSpecial, parseSpecial: parseSpecial)
    }

    /// Tokenizes raw bytes, which need not be valid UTF-8 (`tokenize` reading standard input):
    /// valid text gives the same tokens as `encode(_:)`; a byte that is not part of a valid UTF-8
    /// sequence is kept as that byte (byte-level BPE: its byte token; SentencePiece: its
    /// <0xXX> byte-fallback token) instead of being replaced by U+FFFD. For pre-tokenization it
    /// counts as one U+FFFD code point.
    public func encode(bytes: [UInt8], addSpecial: Bool = true, parseSpecial: Bool = true) -> [Int32] {
        lock.lock()
        defer { lock.unlock() }
        return encodeLocked(bytes, addSpecial: addSpecial, parseSpecial: parseSpecial)
    }

    private enum Fragment {
        case text(start: Int, count: Int)
        case token(Int32)
    }

    private func encodeLocked(_ text: [UInt8], addSpecial: Bool, parseSpecial: Bool) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(text.count / 3 + 4)
        let fragments = text.withUnsafeBufferPointer { partition($0, parseSpecial: parseSpecial) }
        switch model {
        case .bpe:
            if addSpecial && addBOS, let b = bos { out.append(b) }
            var cpts: [UInt32] = []
            var offsets: [Int] = []
            for f in fragments {
                switch f {
                case .token(let t):
                    out.append(t)
                case .text(let start, let count):
                    encodeBPE(text, start..<(start + count), cpts: &cpts, offsets: &offsets, into: &out)
                }
            }
            if addSpecial && addEOS, let e = eos { out.append(e) }
        case .spm:
            if addSpecial && addBOS, let b = bos { out.append(b) }
            var prevSpecial = true
            for f in fragments {
                switch f {
                case .token(let t):
                    out.append(t)
                    prevSpecial = true
                case .text(let start, let count):
                    var s: [UInt8] = []
                    s.reserveCapacity(count * 3 + 3)
                    if addSpacePrefix && prevSpecial { s.append(contentsOf: [0xE2, 0x96, 0x81]) }
                    for b in text[start..<(start + count)] {
                        if b == 0x20 { s.append(contentsOf: [0xE2, 0x96, 0x81]) } else { s.append(b) }
                    }
                    spm!.encode(s, into: &out)
                    prevSpecial = false
                }
            }
            if addSpecial && addEOS, let e = eos { out.append(e) }
        }
        return out
    }

    /// Splits the text at special-token occurrences (llama.cpp's `tokenizer_st_partition`): for each
    /// special token, longest first, every text fragment is split at its non-overlapping occurrences.
    private func partition(_ text: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> [Fragment] {
        if text.isEmpty { return [] }
        var fragments: [Fragment] = [.text(start: 0, count: text.count)]
        var present = [Bool](repeating: false, count: 256)
        for b in text { present[Int(b)] = true }
        let base = text.baseAddress!
        for id in specialTokens {
            let a = attributes[Int(id)]
            if !parseSpecial && !a.isDisjoint(with: [.control, .unknown]) { continue }
            let needle = tokenUTF8[Int(id)]
            if needle.isEmpty || !present[Int(needle[0])] || needle.count > text.count { continue }
            var changed = false
            var result: [Fragment] = []
            for f in fragments {
                guard case .text(let start, let count) = f, count >= needle.count else {
                    result.append(f)
                    continue
                }
                var pos = start
                let end = start + count
                while pos < end {
                    let found: Int? = needle.withUnsafeBufferPointer { Self.find($0, in: base, pos, end) }
                    guard let m = found else { break }
                    changed = true
                    var leftCount = m - pos
                    if a.contains(.lstrip) {
                        while leftCount > 0 && Self.isCSpace(text[pos + leftCount - 1]) { leftCount -= 1 }
                    }
                    if leftCount > 0 { result.append(.text(start: pos, count: leftCount)) }
                    result.append(.token(id))
                    pos = m + needle.count
                    if a.contains(.rstrip) && pos < end {
                        while pos < end && Self.isCSpace(text[pos]) { pos += 1 }
                    }
                }
                if pos < end { result.append(.text(start: pos, count: end - pos)) }
            }
            if changed { fragments = result }
        }
        return fragments
    }

    /// First occurrence of `needle` in `base[from..<to]` (memchr for the first byte, then memcmp).
    private static func find(
        _ needle: UnsafeBufferPointer<UInt8>, in base: UnsafePointer<UInt8>,
        _ from: Int, _ to: Int
    ) -> Int? {
        let m = needle.count
        let first = Int32(needle[0])
        var pos = from
        while to - pos >= m {
            guard let hit = memchr(base + pos, first, to - pos - m + 1) else { return nil }
            let p = UnsafePointer<UInt8>(hit.assumingMemoryBound(to: UInt8.self)) - base
            if memcmp(base + p, needle.baseAddress!, m) == 0 { return p }
            pos = p + 1
        }
        return nil
    }

    @inline(__always) private static func isCSpace(_ b: UInt8) -> Bool { b == 0x20 || (b >= 0x09 && b <= 0x0D) }

    private func encodeBPE(
        _ text: [UInt8], _ range: Range<Int>, cpts: inout [UInt32], offsets: inout [Int],
        into out: inout [Int32]
    ) {
        // Code points and their byte offsets. Text from a String is valid UTF-8; raw bytes
        // (`encode(bytes:)`) may not be: an invalid byte becomes one U+FFFD code point here and
        // stays itself in the word the BPE encodes (words are cut from `text` by offset).
        cpts.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        text.withUnsafeBufferPointer { bytes in
            var i = range.lowerBound
            let n = range.upperBound
            while i < n {
                let b0 = UInt32(bytes[i])
                offsets.append(i)
                if b0 >= 0x80 && Self.validUTF8Length(bytes, i, end: n) == 0 {
                    cpts.append(0xFFFD)
                    i += 1
                } else if b0 < 0x80 {
                    cpts.append(b0)
                    i += 1
                } else if b0 < 0xE0 {
                    cpts.append((b0 & 0x1F) << 6 | UInt32(bytes[i + 1] & 0x3F))
                    i += 2
                } else if b0 < 0xF0 {
                    cpts.append((b0 & 0x0F) << 12 | UInt32(bytes[i + 1] & 0x3F) << 6 | UInt32(bytes[i + 2] & 0x3F))
                    i += 3
                } else {
                    cpts.append(
                        (b0 & 0x07) << 18 | UInt32(bytes[i + 1] & 0x3F) << 12
                            | UInt32(bytes[i + 2] & 0x3F) << 6 | UInt32(bytes[i + 3] & 0x3F))
                    i += 4
                }
            }
            offsets.append(n)
        }
        let words = cpts.withUnsafeBufferPointer { preTokenizer!.split($0, flags: flags) }
        var c = 0
        let bpe = self.bpe!
        for w in words {
            let start = offsets[c], end = offsets[c + w]
            c += w
            let key = text[start..<end]
            if let cached = wordCache[key] {
                out.append(contentsOf: cached)
                continue
            }
            let before = out.count
            text.withUnsafeBufferPointer {
                bpe.encode(word: UnsafeBufferPointer(rebasing: $0[start..<end]), into: &out)
            }
            if wordCache.count >= Self.wordCacheLimit { wordCache.removeAll(keepingCapacity: true) }
            wordCache[ArraySlice(Array(key))] = Array(out[before...])
        }
    }

    /// Length of the well-formed UTF-8 sequence at `i` (before `end`), or 0 if there is none
    /// (Unicode table 3-7: no overlong forms, surrogates or code points above U+10FFFF).
    public static func validUTF8Length(_ b: UnsafeBufferPointer<UInt8>, _ i: Int, end: Int) -> Int {
        let b0 = b[i]
        var need = 0
        var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
        switch b0 {
        case 0x00...0x7F: return 1
        case 0xC2...0xDF: need = 2
        case 0xE0:
            need = 3
            lo = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: need = 3
        case 0xED:
            need = 3
            hi = 0x9F
        case 0xF0:
            need = 4
            lo = 0x90
        case 0xF1...0xF3: need = 4
        case 0xF4:
            need = 4
            hi = 0x8F
        default: return 0
        }
        guard i + need <= end, (lo...hi).contains(b[i + 1]) else { return 0 }
        for k in 2..<need where !(0x80...0xBF).contains(b[i + k]) { return 0 }
        return need
    }

    // MARK: - Decoding

    /// The bytes a token stands for, as llama.cpp's `llama_token_to_piece` (no lstrip).
    /// With `special == false`, control and unknown tokens give no bytes.
    public func pieceBytes(_ id: Int32, special: Bool = true) -> [UInt8] {
        guard id >= 0, Int(id) < tokens.count else { return [] }
        let a = attributes[Int(id)]
        if !special && !a.isDisjoint(with: [.unknown, .control]) { return [] }
        if !a.isDisjoint(with: [.unknown, .control, .userDefined]) { return tokenUTF8[Int(id)] }
        if a.contains(.normal) {
            switch model {
            case .spm: return Self.unescapeSpaces(tokenUTF8[Int(id)])
            case .bpe: return Self.byteDecode(tokens[Int(id)])
            }
        }
        if a.contains(.byte) { return [Self.byteValue(tokenUTF8[Int(id)])] }
        return []
    }

    /// A token's text with its bytes decoded (e.g. "Ġthe" -> " the"), special tokens as their text.
    /// A token holding part of a UTF-8 sequence shows U+FFFD; use `pieceBytes` or `StreamDecoder` for those.
    public func piece(_ id: Int32) -> String {
        String(decoding: pieceBytes(id, special: true), as: UTF8.self)
    }

    /// Detokenizes as llama.cpp's `llama_detokenize(tokens, remove_special: skipSpecial,
    /// unparse_special: !skipSpecial)`: special tokens are rendered as their text unless
    /// `skipSpecial`, which also drops the BOS / EOS that `encode(addSpecial: true)` adds.
    public func decode(_ ids: [Int32], skipSpecial: Bool = false) -> String {
        String(decoding: decodeBytes(ids, removeSpecial: skipSpecial, unparseSpecial: !skipSpecial), as: UTF8.self)
    }

    /// `llama_detokenize` as bytes.
    public func decodeBytes(_ ids: [Int32], removeSpecial: Bool, unparseSpecial: Bool) -> [UInt8] {
        var list = ids[...]
        var removeSpace = addSpacePrefix
        if removeSpecial && addBOS, let first = list.first, first == bos {
            removeSpace = false
            list = list.dropFirst()
        }
        if removeSpecial && addEOS, let last = list.last, last == eos {
            list = list.dropLast()
        }
        var text: [UInt8] = []
        for id in list {
            var p = pieceBytes(id, special: unparseSpecial)
            if removeSpace, p.first == 0x20 { p.removeFirst() }
            removeSpace = false
            text.append(contentsOf: p)
        }
        if cleanSpaces { Self.cleanUpSpaces(&text) }
        return text
    }

    /// llama_detokenize's `clean_spaces` passes, transcribed index for index.
    static func cleanUpSpaces(_ t: inout [UInt8]) {
        let space: UInt8 = 0x20, apos: UInt8 = 0x27
        // 1: " ?", " !", " .", " ,"
        let total1 = t.count
        var total = total1 > 0 ? 1 : 0
        var i = 1
        while i < total1 {
            let x = t[i]
            if t[i - 1] == space && (x == 0x3F || x == 0x21 || x == 0x2E || x == 0x2C) { total -= 1 }
            t[total] = x
            total += 1
            i += 1
        }
        // 2: " ' " -> "'"
        let total2 = total
        total = total2 > 0 ? 1 : 0
        i = 1
        while i < total2 {
            let x = t[i]
            if x == apos && i + 1 < total2 && t[i - 1] == space && t[i + 1] == space {
                total -= 1
                i += 1
                t[i] = 0
            }
            t[total] = x
            total += 1
            i += 1
        }
        // 3: " 's", " 'm", " 're", " 've"
        let total3 = total
        total = total3 > 0 ? 1 : 0
        i = 1
        while i < total3 {
            let x = t[i]
            if t[i - 1] == space && x == apos && i + 1 < total3 {
                let x1 = t[i + 1]
                if x1 == 0x74 || x1 == 0x64 { // 't 'd
                } else if x1 == 0x73 || x1 == 0x6D { // 's 'm
                    total -= 1
                } else if i + 2 < total3 {
                    let x2 = t[i + 2]
                    if (x1 == 0x72 && x2 == 0x65) || (x1 == 0x76 && x2 == 0x65) { total -= 1 } // 're 've
                }
            }
            t[total] = x
            total += 1
            i += 1
        }
        t.removeSubrange(total...)
    }

    /// "▁" -> " " (SentencePiece pieces).
    private static func unescapeSpaces(_ b: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var i = 0
        while i < b.count {
            if i + 2 < b.count && b[i] == 0xE2 && b[i + 1] == 0x96 && b[i + 2] == 0x81 {
                out.append(0x20)
                i += 3
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return out
    }

    /// Byte-level BPE token text -> bytes (llama.cpp's `llama_decode_text`, including its
    /// "[UNK_BYTE_0x..]" rendering of characters outside the byte map).
    static func byteDecode(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        let table = ByteEncoding.byteForScalar
        for s in text.unicodeScalars {
            let v = Int(s.value)
            if v < table.count, table[v] >= 0 {
                out.append(UInt8(table[v]))
            } else {
                out.append(contentsOf: Array("[UNK_BYTE_0x".utf8))
                for b in String(s).utf8 { out.append(contentsOf: Array(String(format: "%02x", b).utf8)) }
                out.append(contentsOf: Array(text.utf8))
                out.append(0x5D)
            }
        }
        return out
    }

    /// "<0xAB>" -> 0xAB (llama.cpp parses the two characters after "<0x" with strtol).
    private static func byteValue(_ b: [UInt8]) -> UInt8 {
        guard b.count >= 4 else { return 0 }
        var v = 0
        for c in b[3..<min(5, b.count)] {
            let d: Int
            switch c {
            case 0x30...0x39: d = Int(c) - 0x30
            case 0x41...0x46: d = Int(c) - 0x41 + 10
            case 0x61...0x66: d = Int(c) - 0x61 + 10
            default: return UInt8(truncatingIfNeeded: v)
            }
            v = v * 16 + d
        }
        return UInt8(truncatingIfNeeded: v)
    }

    /// A decoder for generated tokens one at a time that never splits a UTF-8 sequence.
    public func streamDecoder(skipSpecial: Bool = false) -> StreamDecoder {
        StreamDecoder(tokenizer: self, skipSpecial: skipSpecial)
    }
}
