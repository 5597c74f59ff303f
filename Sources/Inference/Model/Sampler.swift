import Foundation

/// xoshiro256** seeded through SplitMix64: fast, and the same sequence on every platform for a seed.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) * 0x1p-24 }
}

/// Chooses the next token from logits: greedy (temperature 0) or temperature sampling restricted
/// to the top-k tokens and then to the smallest set whose probability reaches top-p. Seeded, so a
/// run is reproducible.
public struct Sampler: Sendable {
    public var temperature: Float
    /// 0: no top-k restriction.
    public var topK: Int
    /// 1: no nucleus restriction.
    public var topP: Float
    public private(set) var rng: SeededGenerator

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        rng = SeededGenerator(seed: seed)
    }

    public var isGreedy: Bool { temperature <= 0 || topK == 1 }

    /// Index of the largest logit (the first one on ties, as torch.argmax).
    /// Inlinable so that callers get a specialized loop (unspecialized, iterating a generic
    /// collection's indices cost ~10% of a decode step over a 49k vocabulary).
    @inlinable
    public static func argmax<C: Collection>(_ logits: C) -> Int where C.Element == Float, C.Index == Int {
        if let r = logits.withContiguousStorageIfAvailable({ argmax(buffer: $0) }) { return r }
        var best = logits.startIndex, bestValue = -Float.infinity
        for i in logits.indices where logits[i] > bestValue {
            best = i
            bestValue = logits[i]
        }
        return best - logits.startIndex
    }

    /// Index of the largest value of a buffer (the first one on ties; 0 when none exceeds -inf).
    @inlinable
    public static func argmax(buffer b: UnsafeBufferPointer<Float>) -> Int {
        var best = 0, bestValue = -Float.infinity
        for i in 0..<b.count where b[i] > bestValue {
            best = i
            bestValue = b[i]
        }
        return best
    }

    public mutating func sample(_ logits: [Float]) -> Int32 {
        if isGreedy { return Int32(Self.argmax(logits)) }
        // Candidates sorted by logit, cut to top-k.
        var idx = Array(0..<logits.count)
        let k = topK > 0 ? min(topK, logits.count) : logits.count
        if k < logits.count {
            idx = Array(idx.sorted { logits[$0] > logits[$1] }.prefix(k))
        } else {
            idx.sort { logits[$0] > logits[$1] }
        }
        let maxLogit = logits[idx[0]]
        var probs = idx.map { Foundation.exp((logits[$0] - maxLogit) / temperature) }
        let total = probs.reduce(0, +)
        for i in probs.indices { probs[i] /= total }
        // Nucleus: keep the shortest prefix whose mass reaches topP (at least one token).
        var keep = probs.count
        if topP < 1 {
            var cum: Float = 0
            for i in probs.indices {
                cum += probs[i]
                if cum >= topP {
                    keep = i + 1
                    break
                }
            }
        }
        let mass = probs[..<keep].reduce(0, +)
        let u = rng.nextUnitFloat() * mass
        var cum: Float = 0
        for i in 0..<keep {
            cum += probs[i]
            if u < cum { return Int32(idx[i]) }
        }
        return Int32(idx[keep - 1])
    }
}
