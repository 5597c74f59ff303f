import Foundation
import Inference

// Token-level scoring for document membership (Meeus et al. 2024, §3.1): a document's tokens
// are run through the model in sliding windows and every token gets its negative
// log-likelihood NLL_i = -log p(t_i | context) and the top-1 probability p_max,i of the
// distribution that predicted it.

/// One sliding window over a document's token sequence.
///
/// The window feeds tokens `start ..< start + count` to a fresh model context (no KV cache
/// carried over) and scores tokens `firstScored ..< start + count`: token t is predicted by
/// the logits at window row t - 1 - start. Every token of the document except the first is
/// scored exactly once, in the first window that predicts it with context.
public struct MembershipWindow: Sendable, Equatable, CustomStringConvertible {
    public let start: Int
    public let count: Int
    public let firstScored: Int

    public init(start: Int, count: Int, firstScored: Int) {
        self.start = start
        self.count = count
        self.firstScored = firstScored
    }

    public var end: Int { start + count }
    /// Absolute indices of the tokens this window scores.
    public var scored: Range<Int> { firstScored..<end }
    /// Window rows whose logits are needed (row r predicts window token r + 1).
    public var rows: Range<Int> { (firstScored - 1 - start)..<(count - 1) }

    public var description: String { "[\(start), \(end)) scores [\(firstScored), \(end))" }
}

public enum MembershipWindowing {
    /// Windows of `window` tokens every `stride` tokens over `n` tokens (1 <= stride < window).
    ///
    /// Window k starts at k * stride and holds min(window, n - k * stride) tokens; windows are
    /// added until one reaches the end of the sequence. Window 0 scores tokens 1 ..< its end;
    /// window k > 0 scores the tokens after the end of window k - 1, i.e. `stride` new tokens
    /// (fewer in the last window), each with at least window - stride tokens of context.
    /// With Meeus et al.'s 128-token windows and stride 127, consecutive windows overlap by one
    /// token (the last token of window k is the first, unscored, context token of window k + 1)
    /// and every row of every window is used. The first token of the sequence has no context
    /// and is never scored; n < 2 gives no window.
    public static func windows(tokenCount n: Int, window: Int, stride: Int) -> [MembershipWindow] {
        precondition(window >= 2, "MembershipWindowing: window must be >= 2")
        precondition(stride >= 1 && stride < window, "MembershipWindowing: need 1 <= stride < window")
        guard n >= 2 else { return [] }
        var out = [MembershipWindow(start: 0, count: min(window, n), firstScored: 1)]
        while out.last!.end < n {
            let prev = out.last!
            let start = prev.start + stride
            out.append(MembershipWindow(start: start, count: min(window, n - start), firstScored: prev.end))
        }
        return out
    }
}

/// Runs a window of tokens from an empty context and hands back the logits of the rows asked
/// for. `InferenceSession` is the real one; tests use fakes.
public protocol WindowLogitsSource: AnyObject {
    var vocabularySize: Int { get }
    /// Runs `tokens` in a fresh context and calls `body(row, logits[V])` for every row in
    /// `rows`, increasing. The buffer is valid only during the call.
    func logits(
        window tokens: [Int32], rows: Range<Int>,
        _ body: (Int, UnsafeBufferPointer<Float>) throws -> Void) throws
}

/// The model as a `WindowLogitsSource`: each window is a `reset()` and one `prefill` (a window
/// up to the session's chunk size is a single chunk), with logits only at the rows asked for.
public final class SessionWindowLogits: WindowLogitsSource {
    public let session: InferenceSession
    public init(session: InferenceSession) { self.session = session }
    public var vocabularySize: Int { session.config.vocabSize }

    public func logits(
        window tokens: [Int32], rows: Range<Int>,
        _ body: (Int, UnsafeBufferPointer<Float>) throws -> Void
    ) throws {
        session.reset()
        try session.prefill(tokens: tokens, logits: .positions(Set(rows)), body)
    }
}

/// The token scores of one document.
public struct DocumentTokenScores: Sendable {
    /// Scored token ids (positions 1 ..< n of the document's sequence).
    public var targets: [Int] = []
    /// NLL_i = -log p_i of each target (natural log).
    public var nll: [Double] = []
    /// Top-1 probability of the distribution that predicted each target.
    public var pMax: [Double] = []
    /// Per window: the range of indices into `targets` it scored.
    public var windowRanges: [Range<Int>] = []
    /// Sum over scored positions of the softmax rows (for the general-probability reference),
    /// if requested.
    public var probabilitySum: [Double]?
    /// Tokens fed to the model, overlap included.
    public var forwardTokens = 0

    public init() {}

    public var count: Int { targets.count }
    public var logProbs: [Double] { nll.map { -$0 } }
}

/// Log-softmax statistics of one logits row.
public enum LogitsRow {
    /// (NLL of `target`, top-1 probability) of a logits row, computed as
    /// lse = max + log sum exp(x - max), NLL = lse - x[target], p_max = exp(max - lse) =
    /// 1 / sum exp(x - max). The exponentials use a fast float exp (relative error ~2e-7).
    /// With `probabilityAccumulator` the row's softmax is added into it (length V).
    @inline(__always)
    public static func statistics(
        _ row: UnsafeBufferPointer<Float>, target: Int,
        scratch: UnsafeMutablePointer<Float>,
        probabilityAccumulator: UnsafeMutablePointer<Double>? = nil
    ) -> (nll: Double, pMax: Double) {
        let n = row.count
        let x = row.baseAddress!
        var m0 = -Float.infinity, m1 = m0, m2 = m0, m3 = m0
        var i = 0
        while i + 4 <= n {
            m0 = x[i] > m0 ? x[i] : m0
            m1 = x[i + 1] > m1 ? x[i + 1] : m1
            m2 = x[i + 2] > m2 ? x[i + 2] : m2
            m3 = x[i + 3] > m3 ? x[i + 3] : m3
            i += 4
        }
        while i < n {
            m0 = x[i] > m0 ? x[i] : m0
            i += 1
        }
        let m = Swift.max(Swift.max(m0, m1), Swift.max(m2, m3))
        for j in 0..<n { scratch[j] = fastExp(x[j] - m) }
        // Sum in float blocks of 256 (vectorized), blocks added in double: relative error
        // ~1e-7 where one float accumulator over 49k terms drifts by ~1e-5.
        var sum = 0.0
        i = 0
        while i + 256 <= n {
            var acc = SIMD8<Float>()
            var k = i
            while k < i + 256 {
                acc += UnsafeRawPointer(scratch + k).loadUnaligned(as: SIMD8<Float>.self)
                k += 8
            }
            sum += Double(acc.sum())
            i += 256
        }
        while i < n {
            sum += Double(scratch[i])
            i += 1
        }
        if let p = probabilityAccumulator {
            let inv = 1 / sum
            for j in 0..<n { p[j] += Double(scratch[j]) * inv }
        }
        let lse = Double(m) + Foundation.log(sum)
        return (lse - Double(x[target]), 1 / sum)
    }

    /// exp(x), Cephes `expf` (`FastMath.exp`, as the forward pass's softmax).
    @inline(__always)
    static func fastExp(_ x0: Float) -> Float { FastMath.exp(x0) }
}

public enum MembershipScoring {
    /// Scores every token of `tokens` (except the first) in sliding windows.
    public static func scoreDocument(
        tokens: [Int32], window: Int, stride: Int,
        source: WindowLogitsSource,
        accumulateProbabilities: Bool = false
    ) throws -> DocumentTokenScores {
        let v = source.vocabularySize
        var out = DocumentTokenScores()
        let windows = MembershipWindowing.windows(tokenCount: tokens.count, window: window, stride: stride)
        let total = max(tokens.count - 1, 0)
        out.targets.reserveCapacity(total)
        out.nll.reserveCapacity(total)
        out.pMax.reserveCapacity(total)
        var probs: [Double]? = accumulateProbabilities ? [Double](repeating: 0, count: v) : nil
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: v)
        defer { scratch.deallocate() }
        for w in windows {
            let chunk = Array(tokens[w.start..<w.end])
            let begin = out.targets.count
            var expectedRow = w.rows.lowerBound
            try source.logits(window: chunk, rows: w.rows) { row, logits in
                precondition(row == expectedRow && logits.count == v, "WindowLogitsSource: unexpected row \(row)")
                expectedRow += 1
                let target = Int(chunk[row + 1])
                let s: (nll: Double, pMax: Double)
                if probs != nil {
                    s = probs!.withUnsafeMutableBufferPointer { p in
                        LogitsRow.statistics(
                            logits, target: target, scratch: scratch, probabilityAccumulator: p.baseAddress)
                    }
                } else {
                    s = LogitsRow.statistics(logits, target: target, scratch: scratch)
                }
                out.targets.append(target)
                out.nll.append(s.nll)
                out.pMax.append(s.pMax)
            }
            precondition(expectedRow == w.rows.upperBound, "WindowLogitsSource: missing rows")
            out.windowRanges.append(begin..<out.targets.count)
            out.forwardTokens += w.count
        }
        out.probabilitySum = probs
        return out
    }

    /// Progress of a multi-document scoring run.
    public struct Progress: Sendable {
        public var documentsDone: Int
        public var documents: Int
        public var tokensDone: Int
        public var tokens: Int
        public var seconds: Double
        public var tokensPerSecond: Double { seconds > 0 ? Double(tokensDone) / seconds : 0 }
        public var etaSeconds: Double? {
            tokensDone > 0 ? seconds * Double(tokens - tokensDone) / Double(tokensDone) : nil
        }
    }

    /// Scores many documents with `workers` concurrent sources (one per worker, made by
    /// `makeSource(workerIndex)`; a `Model` is shared read-only, each source has its own
    /// session). Documents are handed out in order; `progress` is called (serialized) after
    /// each document. Results are in input order.
    public static func scoreDocuments(
        _ documents: [[Int32]], window: Int, stride: Int,
        workers: Int = 1, accumulateProbabilities: Bool = false,
        makeSource: (Int) throws -> WindowLogitsSource,
        progress: ((Progress) -> Void)? = nil
    ) throws -> [DocumentTokenScores] {
        let n = documents.count
        let nWorkers = max(1, min(workers, n))
        let sources = try (0..<nWorkers).map(makeSource)
        let totalTokens = documents.reduce(0) { $0 + max($1.count - 1, 0) }
        let lock = NSLock()
        var results = [DocumentTokenScores?](repeating: nil, count: n)
        var next = 0, done = 0, tokensDone = 0
        var firstError: Error?
        let start = Date()
        let work: (Int) -> Void = { w in
            while true {
                lock.lock()
                if next >= n || firstError != nil {
                    lock.unlock()
                    return
                }
                let i = next
                next += 1
                lock.unlock()
                do {
                    let r = try scoreDocument(
                        tokens: documents[i], window: window, stride: stride,
                        source: sources[w], accumulateProbabilities: accumulateProbabilities)
                    lock.lock()
                    results[i] = r
                    done += 1
                    tokensDone += r.count
                    let p = Progress(
                        documentsDone: done, documents: n, tokensDone: tokensDone, tokens: totalTokens,
                        seconds: Date().timeIntervalSince(start))
                    progress?(p)
                    lock.unlock()
                } catch {
                    lock.lock()
                    if firstError == nil { firstError = error }
                    lock.unlock()
                    return
                }
            }
        }
        if nWorkers == 1 {
            work(0)
        } else {
            let box = UncheckedBox(work)
            DispatchQueue.concurrentPerform(iterations: nWorkers) { w in box.value(w) }
        }
        if let firstError { throw firstError }
        return results.map { $0! }
    }
}

private final class UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
