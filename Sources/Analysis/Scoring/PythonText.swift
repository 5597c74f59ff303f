/// Python `str` behaviours the reference implementations rely on, on Unicode
/// scalars (Python strings are sequences of code points, not of grapheme
/// clusters, so every length, index and comparison here is per scalar).
enum PythonText {
    /// `str.isspace()` / `re` `\s` for `str` patterns: the Unicode White_Space
    /// characters plus U+001C...U+001F (bidi class B/S), exactly 29 scalars.
    static func isSpace(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A,
            0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// `len(text.split())`: the number of maximal runs of non-space scalars.
    static func wordCount(_ text: String) -> Int {
        var n = 0, inWord = false
        for s in text.unicodeScalars {
            if isSpace(s) {
                inWord = false
            } else if !inWord {
                inWord = true
                n += 1
            }
        }
        return n
    }

    /// `re.sub(r'\s+', '', text)` as scalars.
    static func removingSpaces(_ text: String) -> [Unicode.Scalar] {
        text.unicodeScalars.filter { !isSpace($0) }
    }

    /// `needle in haystack` for `str`: scalar-wise substring test (no
    /// canonical equivalence, unlike `String.contains`). Empty needle: true.
    static func contains(_ haystack: [Unicode.Scalar], _ needle: [Unicode.Scalar]) -> Bool {
        firstIndex(of: needle, in: haystack) != nil
    }

    static func firstIndex(of needle: [Unicode.Scalar], in haystack: [Unicode.Scalar]) -> Int? {
        if needle.isEmpty { return 0 }
        guard needle.count <= haystack.count else { return nil }
        let first = needle[0]
        var i = 0
        let last = haystack.count - needle.count
        while i <= last {
            if haystack[i] == first {
                var j = 1
                while j < needle.count && haystack[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i }
            }
            i += 1
        }
        return nil
    }

    /// Python's universal-newline reading (`open(path, 'r')`): "\r\n" and a
    /// lone "\r" become "\n".
    static func universalNewlines(_ text: String) -> String {
        guard text.unicodeScalars.contains("\r") else { return text }
        var out = String.UnicodeScalarView()
        var it = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = it.next()
        while let s = pending {
            pending = it.next()
            if s == "\r" {
                out.append("\n")
                if pending == "\n" { pending = it.next() }
            } else {
                out.append(s)
            }
        }
        return String(out)
    }
}
