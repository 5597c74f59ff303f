/// Decodes tokens one at a time (e.g. while generating) without ever splitting a UTF-8 sequence:
/// bytes that may still be completed by the next token's bytes are held back.
///
///     var d = tokenizer.streamDecoder()
///     for id in generated { print(d.push(id), terminator: "") }
///     print(d.finish())
///
/// The concatenation of everything `push` and `finish` return equals decoding all the pieces at
/// once (llama.cpp's `token_to_piece` per token, as its examples stream them; no
/// detokenizer space clean-up). Bytes that can never become valid UTF-8 come out as U+FFFD.
public struct StreamDecoder {
    public let tokenizer: Tokenizer
    /// Control / unknown tokens produce no text.
    public let skipSpecial: Bool
    private var pending: [UInt8] = []

    public init(tokenizer: Tokenizer, skipSpecial: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecial = skipSpecial
    }

    /// Bytes held back because they end in an incomplete UTF-8 sequence.
    public var pendingBytes: [UInt8] { pending }

    /// Adds one token; returns the text that is now complete (possibly empty).
    public mutating func push(_ id: Int32) -> String {
        push(bytes: tokenizer.pieceBytes(id, special: !skipSpecial))
    }

    /// Adds raw bytes; returns the text that is now complete.
    public mutating func push(bytes: [UInt8]) -> String {
        pending.append(contentsOf: bytes)
        let keep = Self.incompleteSuffixLength(pending)
        let ready = pending.count - keep
        if ready == 0 { return "" }
        let text = String(decoding: pending[..<ready], as: UTF8.self)
        pending.removeFirst(ready)
        return text
    }

    /// Returns whatever is still held back (an incomplete sequence shows as U+FFFD) and resets.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// How many trailing bytes form a proper prefix of a valid UTF-8 sequence (0...3).
    static func incompleteSuffixLength(_ b: [UInt8]) -> Int {
        let n = b.count
        // Find the last lead byte within the final 3 bytes.
        var i = n - 1
        var steps = 0
        while i >= 0 && steps < 3 && b[i] & 0xC0 == 0x80 {
            i -= 1
            steps += 1
        }
        guard i >= 0 else { return 0 }
        let lead = b[i]
        let need: Int
        switch lead {
        case 0xC2...0xDF: need = 2
        case 0xE0...0xEF: need = 3
        case 0xF0...0xF4: need = 4
        default: return 0 // ASCII or an invalid lead: nothing to wait for
        }
        let have = n - i
        guard have < need else { return 0 }
        // The second byte's range depends on the lead (no overlongs, surrogates, > U+10FFFF).
        if have >= 2 {
            let s = b[i + 1]
            let ok: Bool
            switch lead {
            case 0xE0: ok = (0xA0...0xBF).contains(s)
            case 0xED: ok = (0x80...0x9F).contains(s)
            case 0xF0: ok = (0x90...0xBF).contains(s)
            case 0xF4: ok = (0x80...0x8F).contains(s)
            default: ok = true
            }
            if !ok { return 0 }
        }
        return have
    }
}
