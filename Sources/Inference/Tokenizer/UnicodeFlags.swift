#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Unicode character classes as llama.cpp's pre-tokenizers see them (unicode.cpp's
/// `unicode_cpt_flags`): the general-category group of a code point (\p{L}, \p{N}, \p{P}, ...)
/// plus the `\s` whitespace set.
///
/// llama.cpp's tables were generated from Unicode 15.1; the Swift runtime may know a newer
/// version, so code points assigned after 15.1 count as unassigned here, exactly as in
/// llama.cpp. (Checked: this gives llama.cpp's category for all 0x110000 code points.)
///
/// Categories are computed lazily per 256-code-point block and cached; the ASCII block is
/// precomputed. Not thread-safe: the owning `Tokenizer` serializes access.
final class UnicodeFlags {
    static let number: UInt8 = 1 // \p{N}
    static let letter: UInt8 = 2 // \p{L}
    static let punctuation: UInt8 = 4 // \p{P}
    static let whitespace: UInt8 = 8 // \s as llama.cpp defines it (White_Space)
    static let mark: UInt8 = 16 // \p{M}
    static let symbol: UInt8 = 32 // \p{S}
    static let undefined: UInt8 = 64 // unassigned (Cn), as of Unicode 15.1
    static let other: UInt8 = 128 // \p{C} except Cn, and \p{Z}

    /// One byte per code point; 0 = not computed yet (every computed value is non-zero).
    private let table: UnsafeMutablePointer<UInt8>

    init() {
        table = UnsafeMutablePointer<UInt8>(OpaquePointer(calloc(0x110000, 1)!))
        fill(block: 0)
    }

    deinit { free(table) }

    @inline(__always)
    func flags(_ cpt: UInt32) -> UInt8 {
        guard cpt < 0x110000 else { return 0 }
        let f = table[Int(cpt)]
        if f != 0 { return f }
        fill(block: Int(cpt >> 8))
        return table[Int(cpt)]
    }

    @inline(__always) func isLetter(_ c: UInt32) -> Bool { flags(c) & Self.letter != 0 }
    @inline(__always) func isNumber(_ c: UInt32) -> Bool { flags(c) & Self.number != 0 }
    @inline(__always) func isWhitespace(_ c: UInt32) -> Bool { flags(c) & Self.whitespace != 0 }
    @inline(__always) func isPunctuation(_ c: UInt32) -> Bool { flags(c) & Self.punctuation != 0 }

    private func fill(block b: Int) {
        for i in 0..<256 { table[b << 8 | i] = Self.compute(UInt32(b << 8 | i)) }
    }

    /// The White_Space code points (unicode.cpp's `unicode_set_whitespace`).
    static func isWhiteSpaceProperty(_ c: UInt32) -> Bool {
        switch c {
        case 0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    static func compute(_ c: UInt32) -> UInt8 {
        var f: UInt8
        if let s = Unicode.Scalar(c) {
            let p = s.properties
            if let age = p.age, age.major < 15 || (age.major == 15 && age.minor <= 1) {
                switch p.generalCategory {
                case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
                    f = letter
                case .decimalNumber, .letterNumber, .otherNumber:
                    f = number
                case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
                    .initialPunctuation, .finalPunctuation, .otherPunctuation:
                    f = punctuation
                case .nonspacingMark, .spacingMark, .enclosingMark:
                    f = mark
                case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
                    f = symbol
                case .unassigned:
                    f = undefined
                default:
                    f = other
                }
            } else {
                f = undefined
            }
        } else {
            f = other // surrogates (Cs)
        }
        if isWhiteSpaceProperty(c) { f |= whitespace }
        return f
    }
}
