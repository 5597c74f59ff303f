import Foundation

/// NeedleBench single-needle scores as OpenCompass computes them
/// (`opencompass/datasets/needlebench/origin.py` and
/// `needlebench_v2/origin.py`, `NeedleBenchOriginEvaluator.score`).
///
/// - v1: the prediction and the reference (the full needle sentence; the
///   original wraps it in newlines, which the whitespace removal drops)
///   lose all whitespace (`re.sub(r'\s+', '', ...)`, Python's `\s`); score
///   = 100 * (1 - Levenshtein / max(len)), or 100 when both are empty;
///   then 100 if the keyword occurs in the *raw* prediction, else 0.2 x
///   that score. No lowercasing: the keyword test is a case-sensitive
///   substring test. With `trim` (the evaluator's `use_trim`, off by
///   default) the stripped prediction is first cut near the reference's
///   length (`_trim_prediction`).
/// - v2: 100 if the keyword occurs in the raw prediction, else 0.
///
/// Lengths, distances and substrings are over Unicode scalars (Python `str`).
public enum NeedleBench {
    public struct V1: Equatable, Sendable {
        public var score: Double
        public var editDistance: Int
        public var keywordFound: Bool
    }

    public static func scoreV1(prediction: String, reference: String, keyword: String, trim: Bool = false) -> V1 {
        var pred = PythonText.removingSpaces(prediction)
        let ref = PythonText.removingSpaces(reference)
        if trim { pred = trimPrediction(pred, reference: ref) }
        let d = levenshtein(pred, ref)
        let m = max(pred.count, ref.count)
        var score = m != 0 ? 100 * (1 - Double(d) / Double(m)) : 100
        let found = PythonText.contains(Array(prediction.unicodeScalars), Array(keyword.unicodeScalars))
        score = found ? 100 : 0.2 * score
        return V1(score: score, editDistance: d, keywordFound: found)
    }

    public static func scoreV2(prediction: String, keyword: String) -> Double {
        PythonText.contains(Array(prediction.unicodeScalars), Array(keyword.unicodeScalars)) ? 100 : 0
    }

    /// `_trim_prediction`: keep at most int(1.2 * len(ref)) scalars; if that
    /// is longer than int(0.8 * len(ref)) and the reference's last character
    /// occurs after position int(0.8 * len(ref)), cut just after its first
    /// occurrence there.
    static func trimPrediction(_ p: [Unicode.Scalar], reference r: [Unicode.Scalar]) -> [Unicode.Scalar] {
        guard let lastRef = r.last else { return p } // the original raises on an empty reference
        let l08 = Int(0.8 * Double(r.count)), l12 = Int(1.2 * Double(r.count))
        var t = Array(p.prefix(l12))
        if t.count > l08, let k = t[l08...].firstIndex(of: lastRef) { t = Array(t[...k]) }
        return t
    }

    /// Levenshtein distance (unit insert, delete, substitute) over scalars.
    public static func levenshtein(_ a: String, _ b: String) -> Int {
        levenshtein(Array(a.unicodeScalars), Array(b.unicodeScalars))
    }

    public static func levenshtein<T: Equatable>(_ a: [T], _ b: [T]) -> Int {
        let (s, t) = a.count >= b.count ? (a, b) : (b, a)
        if t.isEmpty { return s.count }
        var prev = Array(0...t.count)
        var cur = [Int](repeating: 0, count: t.count + 1)
        for (i, x) in s.enumerated() {
            cur[0] = i + 1
            for (j, y) in t.enumerated() {
                cur[j + 1] = Swift.min(prev[j + 1] + 1, cur[j] + 1, prev[j] + (x == y ? 0 : 1))
            }
            swap(&prev, &cur)
        }
        return prev[t.count]
    }
}

/// Exact needle recovery: does the response contain the whole needle
/// answer? Both texts are normalized — NFKC, lowercased, every character
/// that is not a letter or a digit replaced by a space, runs of spaces
/// collapsed, ends trimmed — and the normalized answer must occur in the
/// normalized response on word boundaries. So case, punctuation, quotes,
/// apostrophes and line breaks do not matter; words, their order and
/// their spelling do (no stemming: "smashed" does not match "smash").
public enum NeedleRecovery {
    public static func normalize(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        var pendingSpace = false
        for s in text.precomposedStringWithCompatibilityMapping.lowercased().unicodeScalars {
            let p = s.properties
            if p.isAlphabetic || p.numericType != nil {
                if pendingSpace && !out.isEmpty { out.append(" ") }
                pendingSpace = false
                out.append(s)
            } else {
                pendingSpace = true
            }
        }
        return String(out)
    }

    public static func recovered(realNeedle: String, response: String) -> Bool {
        let n = normalize(realNeedle)
        guard !n.isEmpty else { return false }
        let hay = Array((" " + normalize(response) + " ").unicodeScalars)
        return PythonText.contains(hay, Array((" " + n + " ").unicodeScalars))
    }
}
