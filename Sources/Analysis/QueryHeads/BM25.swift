import Foundation

/// Okapi BM25 over a small corpus (the candidate passages of one question), the rule of the PyPI
/// package rank-bm25 (`BM25Okapi`, checked against its numbers: Tests/Fixtures/bm25):
///
///     idf(w)    = ln(N - n_w + 0.5) - ln(n_w + 0.5)       n_w: documents containing w
///                 (negative idf, w in more than half the documents, is replaced by
///                  epsilon x the mean idf over every word of the corpus)
///     score(d)  = sum over query tokens q (repeats count each time) of
///                 idf(q) * f(q, d) * (k1 + 1) / (f(q, d) + k1 * (1 - b + b * |d| / avgdl))
///
/// Query words absent from the corpus add 0. Defaults k1 = 1.5, b = 0.75, epsilon = 0.25.
public struct BM25: Sendable {
    public var k1: Double
    public var b: Double
    public var epsilon: Double
    /// Per document: token -> count.
    let frequencies: [[String: Int]]
    let lengths: [Int]
    public let averageLength: Double
    /// Word -> idf after the epsilon floor.
    public let idf: [String: Double]
    /// Mean idf over the corpus' words before the floor (rank-bm25's `average_idf`).
    public let averageIDF: Double

    /// Lowercased maximal runs of Unicode letters and digits (Python `re.findall(r"[^\W_]+",
    /// text.lower())` for the texts the fixtures hold).
    public static func tokenize(_ text: String) -> [String] {
        var out: [String] = []
        var cur = ""
        for ch in text.lowercased() {
            if ch.isLetter || ch.isNumber {
                cur.append(ch)
            } else if !cur.isEmpty {
                out.append(cur)
                cur = ""
            }
        }
        if !cur.isEmpty { out.append(cur) }
        return out
    }

    /// A corpus of already tokenized documents (at least one).
    public init(documents: [[String]], k1: Double = 1.5, b: Double = 0.75, epsilon: Double = 0.25) {
        precondition(!documents.isEmpty, "BM25 needs at least one document")
        self.k1 = k1
        self.b = b
        self.epsilon = epsilon
        var freqs: [[String: Int]] = []
        var docFreq: [String: Int] = [:]
        for d in documents {
            var f: [String: Int] = [:]
            for w in d { f[w, default: 0] += 1 }
            for w in f.keys { docFreq[w, default: 0] += 1 }
            freqs.append(f)
        }
        frequencies = freqs
        lengths = documents.map(\.count)
        averageLength = Double(lengths.reduce(0, +)) / Double(documents.count)
        let n = Double(documents.count)
        var idf: [String: Double] = [:]
        var sum = 0.0
        for (w, c) in docFreq {
            let v = log(n - Double(c) + 0.5) - log(Double(c) + 0.5)
            idf[w] = v
            sum += v
        }
        averageIDF = docFreq.isEmpty ? 0 : sum / Double(docFreq.count)
        let floor = epsilon * averageIDF
        for (w, v) in idf where v < 0 { idf[w] = floor }
        self.idf = idf
    }

    /// `init(documents:)` with `tokenize` applied to each text.
    public init(texts: [String], k1: Double = 1.5, b: Double = 0.75, epsilon: Double = 0.25) {
        self.init(documents: texts.map(Self.tokenize), k1: k1, b: b, epsilon: epsilon)
    }

    /// Scores of every document for a tokenized query.
    public func scores(query: [String]) -> [Double] {
        var out = [Double](repeating: 0, count: lengths.count)
        // An empty corpus (every document empty) has average length 0: every term frequency is 0.
        let avg = averageLength > 0 ? averageLength : 1
        for q in query {
            guard let w = idf[q] else { continue }
            for d in 0..<lengths.count {
                let f = Double(frequencies[d][q] ?? 0)
                out[d] += w * (f * (k1 + 1) / (f + k1 * (1 - b + b * Double(lengths[d]) / avg)))
            }
        }
        return out
    }

    /// Scores for a query text (`tokenize`d).
    public func scores(query: String) -> [Double] { scores(query: Self.tokenize(query)) }
}
