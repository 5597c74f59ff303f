/// The pre-tokenizer of a byte-level BPE vocabulary: splits text into words before merging.
///
/// llama.cpp (llama-vocab.cpp) picks a list of regular expressions from `tokenizer.ggml.pre`
/// and applies them in order, each one splitting every piece the previous ones produced
/// (unicode.cpp, `unicode_regex_split`). The common expressions are hand-written scanners there;
/// the rest run through std::regex over a "collapsed" text in which every non-ASCII code point is
/// replaced by a byte standing for its category. Both are re-implemented here as scanners over
/// code points with the same category data (`UnicodeFlags`), so no regex engine is involved.
///
/// Word boundaries are given as lengths, in code points, of consecutive pieces.
enum PreTokenizer: String, Sendable, CaseIterable {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`
    case gpt2
    /// StarCoder / SmolLM: `\p{N}` (every digit on its own), then the GPT-2 expression.
    case starcoder
    /// Llama 3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*` |
    /// `\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3
    /// Qwen2: as Llama 3 with `\p{N}` instead of `\p{N}{1,3}`.
    case qwen2
    /// llama.cpp's fallback: `[\p{P}\$\+<=>\^~\|]+`, the GPT-2 expression, `\p{N}+`, `[0-9][0-9][0-9]`.
    case `default`

    /// How llama.cpp treats one `tokenizer.ggml.pre` value.
    struct Config {
        var kind: PreTokenizer
        /// A whole word that is itself a vocabulary entry becomes that token, merges or not.
        var ignoreMerges = false
        /// llama_detokenize's clean-up of " ." / " 's" etc.
        var cleanSpaces = true
        /// add_bos default before `tokenizer.ggml.add_bos_token` overrides it.
        var addBOS = false
    }

    /// The configuration for a `tokenizer.ggml.pre` value (llama-vocab.cpp, `llama_vocab::impl::load`);
    /// nil for values Headlight does not implement.
    static func config(for pre: String) -> Config? {
        switch pre {
        case "default":
            return Config(kind: .default)
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano":
            return Config(kind: .llama3, ignoreMerges: true, addBOS: true)
        case "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
            "modern-bert", "mpt", "olmo", "jais", "exaone4", "jina-v1-en", "jina-v2-code", "roberta-bpe":
            return Config(kind: .gpt2)
        case "starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2":
            return Config(kind: .starcoder)
        case "smollm", "command-r":
            return Config(kind: .starcoder, cleanSpaces: false)
        case "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open":
            return Config(kind: .qwen2, cleanSpaces: false)
        case "stablelm2", "megrez":
            return Config(kind: .qwen2)
        default:
            return nil
        }
    }

    static let supportedNames = [
        "default", "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
        "midm-2.0", "lfm2", "jina-v5-nano", "gpt-2", "phi-2", "jina-es", "jina-de",
        "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum", "modern-bert", "mpt",
        "olmo", "jais", "exaone4", "jina-v1-en", "jina-v2-code", "roberta-bpe", "starcoder",
        "refact", "codeshell", "exaone", "minerva-7b", "mellum2", "smollm", "command-r",
        "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open",
        "stablelm2", "megrez"
    ]

    /// Splits `cpts` (one fragment of text, as code points) into word lengths.
    func split(_ cpts: UnsafeBufferPointer<UInt32>, flags: UnicodeFlags) -> [Int] {
        if cpts.isEmpty { return [] }
        let whole = [cpts.count]
        switch self {
        case .gpt2:
            return Self.gpt2(cpts, whole, flags)
        case .starcoder:
            let digits = Self.isolate(cpts, whole) { flags.isNumber($0) }
            return Self.gpt2(cpts, digits, flags)
        case .llama3:
            return Self.llama3(cpts, whole, flags, maxDigits: 3)
        case .qwen2:
            return Self.llama3(cpts, whole, flags, maxDigits: 1)
        case .default:
            var s = Self.runs(cpts, whole) { c in
                switch c {
                case 0x24, 0x2B, 0x3C, 0x3D, 0x3E, 0x5E, 0x7E, 0x7C: return true // $ + < = > ^ ~ |
                default: return flags.isPunctuation(c)
                }
            }
            s = Self.gpt2(cpts, s, flags)
            s = Self.runs(cpts, s) { flags.isNumber($0) }
            return Self.asciiDigitTriples(cpts, s)
        }
    }

    // MARK: - Scanners

    private static let outOfRange: UInt32 = 0xFFFF_FFFF

    @inline(__always) private static func isContractionTail1(_ c: UInt32) -> Bool {
        c == 0x73 || c == 0x74 || c == 0x6D || c == 0x64 // s t m d
    }

    @inline(__always) private static func isContractionTail2(_ a: UInt32, _ b: UInt32) -> Bool {
        (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) // re ve ll
    }

    @inline(__always) private static func asciiLower(_ c: UInt32) -> UInt32 {
        (c >= 0x41 && c <= 0x5A) ? c + 0x20 : c
    }

    /// The GPT-2 expression, as unicode.cpp's `unicode_regex_split_custom_gpt2`.
    static func gpt2(_ c: UnsafeBufferPointer<UInt32>, _ segments: [Int], _ u: UnicodeFlags) -> [Int] {
        let L = UnicodeFlags.letter, N = UnicodeFlags.number, W = UnicodeFlags.whitespace
        var out: [Int] = []
        out.reserveCapacity(segments.count + c.count / 4)
        var start = 0
        for length in segments {
            let ini = start, end = start + length
            start = end
            @inline(__always) func cpt(_ p: Int) -> UInt32 { p < end ? c[p] : outOfRange }
            @inline(__always) func fl(_ p: Int) -> UInt8 { p < end ? u.flags(c[p]) : 0 }
            var prev = ini
            @inline(__always) func add(_ e: Int) -> Int {
                let n = e - prev
                if n > 0 { out.append(n) }
                prev = e
                return n
            }
            var pos = ini
            while pos < end {
                let cp = c[pos]
                let f = fl(pos)
                // 's|'t|'re|'ve|'m|'ll|'d
                if cp == 0x27 && pos + 1 < end {
                    let n1 = c[pos + 1]
                    if isContractionTail1(n1) {
                        pos += add(pos + 2)
                        continue
                    }
                    if pos + 2 < end && isContractionTail2(n1, c[pos + 2]) {
                        pos += add(pos + 3)
                        continue
                    }
                }
                let f2 = cp == 0x20 ? fl(pos + 1) : f
                // <space>?\p{L}+
                if f2 & L != 0 {
                    if cp == 0x20 { pos += 1 }
                    while fl(pos) & L != 0 { pos += 1 }
                    _ = add(pos)
                    continue
                }
                // <space>?\p{N}+
                if f2 & N != 0 {
                    if cp == 0x20 { pos += 1 }
                    while fl(pos) & N != 0 { pos += 1 }
                    _ = add(pos)
                    continue
                }
                // <space>?[^\s\p{L}\p{N}]+
                if f2 & (W | L | N) == 0 && f2 != 0 {
                    if cp == 0x20 { pos += 1 }
                    while true {
                        let g = fl(pos)
                        if g == 0 || g & (W | L | N) != 0 { break }
                        pos += 1
                    }
                    _ = add(pos)
                    continue
                }
                var spaces = 0
                while fl(pos + spaces) & W != 0 { spaces += 1 }
                // \s+(?!\S)
                if spaces > 1 && cpt(pos + spaces) != outOfRange {
                    pos += spaces - 1
                    _ = add(pos)
                    continue
                }
                // \s+
                if spaces > 0 {
                    pos += spaces
                    _ = add(pos)
                    continue
                }
                pos += 1
                _ = add(pos)
            }
        }
        return out
    }

    /// The Llama 3 expression (`maxDigits` 3) and Qwen2's (`maxDigits` 1), as unicode.cpp's
    /// `unicode_regex_split_custom_llama3` / `_qwen2`.
    static func llama3(
        _ c: UnsafeBufferPointer<UInt32>, _ segments: [Int], _ u: UnicodeFlags,
        maxDigits: Int
    ) -> [Int] {
        let L = UnicodeFlags.letter, N = UnicodeFlags.number, W = UnicodeFlags.whitespace
        var out: [Int] = []
        out.reserveCapacity(segments.count + c.count / 4)
        var start = 0
        for length in segments {
            let ini = start, end = start + length
            start = end
            @inline(__always) func cpt(_ p: Int) -> UInt32 { p < end ? c[p] : outOfRange }
            @inline(__always) func fl(_ p: Int) -> UInt8 { p < end ? u.flags(c[p]) : 0 }
            var prev = ini
            @inline(__always) func add(_ e: Int) -> Int {
                let n = e - prev
                if n > 0 { out.append(n) }
                prev = e
                return n
            }
            var pos = ini
            while pos < end {
                let cp = c[pos]
                let f = fl(pos)
                // (?i:'s|'t|'re|'ve|'m|'ll|'d)
                if cp == 0x27 && pos + 1 < end {
                    let n1 = asciiLower(c[pos + 1])
                    if isContractionTail1(n1) {
                        pos += add(pos + 2)
                        continue
                    }
                    if pos + 2 < end && isContractionTail2(n1, asciiLower(c[pos + 2])) {
                        pos += add(pos + 3)
                        continue
                    }
                }
                // [^\r\n\p{L}\p{N}]?\p{L}+
                if !(cp == 0x0D || cp == 0x0A || f & N != 0) {
                    if f & L != 0 || fl(pos + 1) & L != 0 {
                        pos += 1
                        while fl(pos) & L != 0 { pos += 1 }
                        _ = add(pos)
                        continue
                    }
                }
                // \p{N}{1,3} (or \p{N})
                if f & N != 0 {
                    var first = pos
                    while fl(pos) & N != 0 {
                        pos += 1
                        if pos - first >= maxDigits {
                            _ = add(pos)
                            first = pos
                        }
                    }
                    _ = add(pos)
                    continue
                }
                // <space>?[^\s\p{L}\p{N}]+[\r\n]*
                let f2 = cp == 0x20 ? fl(pos + 1) : f
                if f2 & (W | L | N) == 0 && f != 0 {
                    if cp == 0x20 { pos += 1 }
                    var g = f2
                    while g & (W | L | N) == 0 && g != 0 {
                        pos += 1
                        g = fl(pos)
                    }
                    while cpt(pos) == 0x0D || cpt(pos) == 0x0A { pos += 1 }
                    _ = add(pos)
                    continue
                }
                var spaces = 0
                var lastLineBreakEnd = 0
                while fl(pos + spaces) & W != 0 {
                    let c2 = cpt(pos + spaces)
                    if c2 == 0x0D || c2 == 0x0A { lastLineBreakEnd = pos + spaces + 1 }
                    spaces += 1
                }
                // \s*[\r\n]+
                if lastLineBreakEnd > 0 {
                    pos = lastLineBreakEnd
                    _ = add(pos)
                    continue
                }
                // \s+(?!\S)
                if spaces > 1 && cpt(pos + spaces) != outOfRange {
                    pos += spaces - 1
                    _ = add(pos)
                    continue
                }
                // \s+
                if spaces > 0 {
                    pos += spaces
                    _ = add(pos)
                    continue
                }
                pos += 1
                _ = add(pos)
            }
        }
        return out
    }

    /// A single-code-point class used as a whole expression (e.g. `\p{N}`): every matching code point
    /// becomes its own piece, and the text between matches stays in one piece.
    static func isolate(
        _ c: UnsafeBufferPointer<UInt32>, _ segments: [Int],
        _ matches: (UInt32) -> Bool
    ) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(segments.count)
        var start = 0
        for length in segments {
            let end = start + length
            var gap = start
            for p in start..<end where matches(c[p]) {
                if p > gap { out.append(p - gap) }
                out.append(1)
                gap = p + 1
            }
            if end > gap { out.append(end - gap) }
            start = end
        }
        return out
    }

    /// `[class]+`: every maximal run of matching code points becomes a piece, as does the text between runs.
    static func runs(_ c: UnsafeBufferPointer<UInt32>, _ segments: [Int], _ matches: (UInt32) -> Bool) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(segments.count)
        var start = 0
        for length in segments {
            let end = start + length
            var gap = start
            var p = start
            while p < end {
                if matches(c[p]) {
                    var q = p + 1
                    while q < end && matches(c[q]) { q += 1 }
                    if p > gap { out.append(p - gap) }
                    out.append(q - p)
                    gap = q
                    p = q
                } else {
                    p += 1
                }
            }
            if end > gap { out.append(end - gap) }
            start = end
        }
        return out
    }

    /// `[0-9][0-9][0-9]`: leftmost non-overlapping triples of ASCII digits become pieces.
    static func asciiDigitTriples(_ c: UnsafeBufferPointer<UInt32>, _ segments: [Int]) -> [Int] {
        @inline(__always) func digit(_ x: UInt32) -> Bool { x >= 0x30 && x <= 0x39 }
        var out: [Int] = []
        out.reserveCapacity(segments.count)
        var start = 0
        for length in segments {
            let end = start + length
            var gap = start
            var p = start
            while p + 3 <= end {
                if digit(c[p]) && digit(c[p + 1]) && digit(c[p + 2]) {
                    if p > gap { out.append(p - gap) }
                    out.append(3)
                    p += 3
                    gap = p
                } else {
                    p += 1
                }
            }
            if end > gap { out.append(end - gap) }
            start = end
        }
        return out
    }
}
