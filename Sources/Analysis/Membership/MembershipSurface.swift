import Foundation

/// Surface features of a document's text for the "blind" baseline: a classifier that never
/// sees the model, only how the text looks. Whatever AUC it reaches measures how separable the
/// member and non-member sets are by their form alone (a distribution shift between the sets),
/// which the model-based AUCs also pick up without any memorization.
public enum MembershipSurfaceFeatures {
    public static let names = [
        "chars", "lines", "mean_line_length", "max_line_length", "blank_line_ratio",
        "comment_line_ratio", "docstring_quote_ratio", "mean_indent", "tab_indent_ratio",
        "non_ascii_ratio", "digit_ratio", "uppercase_ratio", "punctuation_ratio",
        "mean_word_length", "chars_per_token"
    ]

    /// The features of `text` (the text the model scored), in `names` order. `tokens` is the
    /// token count of that text (for chars per token).
    public static func compute(_ text: String, tokens: Int) -> [Double] {
        let scalars = Array(text.unicodeScalars)
        let n = Double(max(scalars.count, 1))
        var nonASCII = 0, digits = 0, upper = 0, punct = 0
        var wordLen = 0, words = 0, inWord = false
        for s in scalars {
            let v = s.value
            if v > 127 { nonASCII += 1 }
            if v >= 48 && v <= 57 { digits += 1 }
            if v >= 65 && v <= 90 { upper += 1 }
            let isWordChar = (v >= 48 && v <= 57) || (v >= 65 && v <= 90) || (v >= 97 && v <= 122) || v == 95
            if !isWordChar && v > 32 && v < 127 { punct += 1 }
            if isWordChar {
                wordLen += 1
                if !inWord {
                    words += 1
                    inWord = true
                }
            } else {
                inWord = false
            }
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { String($0) }
        let nl = Double(max(lines.count, 1))
        var blank = 0, comment = 0, docQuote = 0, tabIndent = 0, maxLen = 0, totalLen = 0
        var indentSum = 0, indented = 0
        for line in lines {
            let c = line.unicodeScalars.count
            totalLen += c
            maxLen = max(maxLen, c)
            let stripped = line.drop { $0 == " " || $0 == "\t" }
            if stripped.isEmpty {
                blank += 1
                continue
            }
            if stripped.hasPrefix("#") { comment += 1 }
            if stripped.contains("\"\"\"") || stripped.contains("'''") { docQuote += 1 }
            if line.hasPrefix("\t") { tabIndent += 1 }
            var indent = 0
            for ch in line.unicodeScalars {
                if ch == " " { indent += 1 } else if ch == "\t" { indent += 4 } else { break }
            }
            indentSum += indent
            indented += 1
        }
        return [
            Double(scalars.count), Double(lines.count), Double(totalLen) / nl, Double(maxLen),
            Double(blank) / nl, Double(comment) / nl, Double(docQuote) / nl,
            indented > 0 ? Double(indentSum) / Double(indented) : 0, Double(tabIndent) / nl,
            Double(nonASCII) / n, Double(digits) / n, Double(upper) / n, Double(punct) / n,
            words > 0 ? Double(wordLen) / Double(words) : 0,
            Double(scalars.count) / Double(max(tokens, 1))
        ]
    }
}
