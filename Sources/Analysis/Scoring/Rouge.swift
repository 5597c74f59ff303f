/// ROUGE-N as Google's `rouge_score` package (0.1.2) computes it with its
/// default tokenizer — what Wu et al. call with
/// `RougeScorer(['rouge1', 'rougeL'], use_stemmer=True)`.
///
/// Tokenizer (`rouge_score.tokenize.tokenize`): lowercase (Python
/// `str.lower()`), replace every run of characters outside [a-z0-9] with a
/// space, split on spaces, Porter-stem (NLTK_EXTENSIONS mode) every token
/// longer than 3 characters, drop empty tokens. Non-ASCII letters therefore
/// vanish ("café" -> "caf"); the only non-ASCII characters whose lowercase
/// is ASCII are U+0130 "İ" (-> "i" + U+0307, so "i" survives) and U+212A
/// KELVIN SIGN (-> "k"), handled explicitly.
///
/// Scores: n-gram counts; overlap = sum over target n-grams of
/// min(target count, prediction count); precision = overlap /
/// max(prediction n-grams, 1), recall = overlap / max(target n-grams, 1),
/// F = 2PR / (P + R) or 0.
public struct RougeScore: Equatable, Sendable {
    public var precision: Double
    public var recall: Double
    public var fmeasure: Double
}

public struct RougeScorer: Sendable {
    public let stemmer: PorterStemmer?

    public init(useStemmer: Bool = true) {
        stemmer = useStemmer ? PorterStemmer(mode: .nltkExtensions) : nil
    }

    /// `rouge_score.tokenize.tokenize(text, stemmer)`.
    public func tokenize(_ text: String) -> [String] {
        var cleaned = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            switch s.value {
            case 0x41...0x5A: cleaned.append(Unicode.Scalar(s.value + 0x20)!) // A-Z
            case 0x61...0x7A, 0x30...0x39: cleaned.append(s) // a-z 0-9
            case 0x130:
                cleaned.append("i")
                cleaned.append(" ") // İ -> i + U+0307
            case 0x212A: cleaned.append("k") // KELVIN SIGN -> k
            default: cleaned.append(" ")
            }
        }
        var tokens: [String] = []
        for piece in String(cleaned).split(separator: " ", omittingEmptySubsequences: true) {
            let t = String(piece)
            if let st = stemmer, t.utf8.count > 3 {
                let stemmed = st.stem(t)
                if !stemmed.isEmpty { tokens.append(stemmed) }
            } else {
                tokens.append(t)
            }
        }
        return tokens
    }

    /// ROUGE-N of `prediction` against `target` (argument order as `RougeScorer.score(target, prediction)`).
    public func rougeN(_ n: Int, target: String, prediction: String) -> RougeScore {
        Self.score(ngrams(tokenize(target), n), ngrams(tokenize(prediction), n))
    }

    /// ROUGE-1 recall of `target` in `prediction`, in 0...1.
    public func rouge1Recall(target: String, prediction: String) -> Double {
        rougeN(1, target: target, prediction: prediction).recall
    }

    func ngrams(_ tokens: [String], _ n: Int) -> [String: Int] {
        var c: [String: Int] = [:]
        guard n > 0, tokens.count >= n else { return c }
        for i in 0...(tokens.count - n) {
            c[tokens[i..<(i + n)].joined(separator: " "), default: 0] += 1
        }
        return c
    }

    static func score(_ target: [String: Int], _ prediction: [String: Int]) -> RougeScore {
        var overlap = 0
        for (g, k) in target { overlap += min(k, prediction[g] ?? 0) }
        let tc = target.values.reduce(0, +), pc = prediction.values.reduce(0, +)
        let p = Double(overlap) / Double(max(pc, 1))
        let r = Double(overlap) / Double(max(tc, 1))
        let f = p + r > 0 ? 2 * p * r / (p + r) : 0
        return RougeScore(precision: p, recall: r, fmeasure: f)
    }
}

/// Wu et al.'s success rule for a trial: ROUGE-1 recall (stemmed) of the
/// needle answer in the response, x100, strictly above 50.
public enum NeedleRetrievalScore {
    public static let successThreshold = 50.0

    /// `scorer.score(real_needle, response)['rouge1'].recall * 100`.
    public static func score(realNeedle: String, response: String, scorer: RougeScorer = RougeScorer()) -> Double {
        scorer.rouge1Recall(target: realNeedle, prediction: response) * 100
    }

    public static func succeeded(_ score: Double) -> Bool { score > successThreshold }
}
