import Foundation
import Inference

// The seeded generator itself is `Inference.SeededGenerator` (xoshiro256** seeded through
// SplitMix64, public, `RandomNumberGenerator`); Analysis re-uses it rather than declaring a
// second type of the same name (which would make `SeededGenerator` ambiguous for every file
// importing both modules).
//
// Everything below is written out here instead of relying on the standard library's
// `Int.random(in:using:)`, `shuffled(using:)` or `randomElement(using:)`, whose algorithms are
// implementation details that may change between Swift versions or platforms. Given the same
// sequence of `next()` values these functions return the same results everywhere; the
// fixture script Tests/Fixtures/stats/make_fixtures.py re-implements them in Python and the
// tests compare.

/// Deterministic random helpers over any `RandomNumberGenerator` (normally `SeededGenerator`).
public enum SeededRandom {
    /// Uniform integer in 0..<n (n > 0) by Lemire's multiply-shift with rejection:
    /// m = x * n (128-bit); reject while low64(m) < (2^64 - n) mod n; return high64(m).
    /// Unbiased; consumes one `next()` except on (rare) rejection.
    public static func uniformInt<G: RandomNumberGenerator>(below n: Int, using g: inout G) -> Int {
        precondition(n > 0, "uniformInt(below:) needs n > 0")
        let bound = UInt64(n)
        var m = g.next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = g.next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }

    /// Uniform Double in [0, 1) from the top 53 bits of one `next()`.
    public static func unitDouble<G: RandomNumberGenerator>(using g: inout G) -> Double {
        Double(g.next() >> 11) * 0x1p-53
    }

    /// In-place Fisher-Yates shuffle (Durstenfeld): for i = n-1 down to 1, swap a[i] with
    /// a[uniformInt(below: i + 1)].
    public static func shuffle<T, G: RandomNumberGenerator>(_ a: inout [T], using g: inout G) {
        var i = a.count - 1
        while i > 0 {
            let j = uniformInt(below: i + 1, using: &g)
            if i != j { a.swapAt(i, j) }
            i -= 1
        }
    }

    public static func shuffled<T, G: RandomNumberGenerator>(_ a: [T], using g: inout G) -> [T] {
        var b = a
        shuffle(&b, using: &g)
        return b
    }

    /// A random permutation of 0..<n (`shuffled(Array(0..<n))`).
    public static func permutation<G: RandomNumberGenerator>(_ n: Int, using g: inout G) -> [Int] {
        shuffled(Array(0..<n), using: &g)
    }

    /// `k` distinct indices from 0..<n, uniformly, in draw order: a partial Fisher-Yates from
    /// the front (for i in 0..<k: j = i + uniformInt(below: n - i); swap a[i], a[j]; take
    /// a[0..<k]), kept sparse so it costs O(k) memory even for huge n.
    public static func sampleIndices<G: RandomNumberGenerator>(
        from n: Int, count k: Int,
        using g: inout G
    ) -> [Int] {
        precondition(k >= 0 && k <= n, "sampleIndices: need 0 <= k <= n")
        var displaced: [Int: Int] = [:] // position -> value, where it differs from identity
        var out: [Int] = []
        out.reserveCapacity(k)
        for i in 0..<k {
            let j = i + uniformInt(below: n - i, using: &g)
            let vi = displaced[i] ?? i, vj = displaced[j] ?? j
            displaced[j] = vi
            displaced[i] = vj
            out.append(vj)
        }
        return out
    }

    /// `k` elements of `a` without replacement, in draw order (see `sampleIndices`).
    public static func sample<T, G: RandomNumberGenerator>(
        _ a: [T], count k: Int,
        using g: inout G
    ) -> [T] {
        sampleIndices(from: a.count, count: k, using: &g).map { a[$0] }
    }

    /// n indices drawn uniformly from 0..<n with replacement (one bootstrap resample).
    public static func bootstrapIndices<G: RandomNumberGenerator>(_ n: Int, using g: inout G) -> [Int] {
        (0..<n).map { _ in uniformInt(below: n, using: &g) }
    }
}
