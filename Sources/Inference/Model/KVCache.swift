/// The Float32 key/value cache of one session: per layer, K and V for up to `maxContext`
/// positions. Keys are stored after RoPE. Row `pos` of a layer holds all KV heads of that position.
public final class KVCache: @unchecked Sendable {
    public let nLayers: Int
    public let maxContext: Int // C
    /// Floats per row: Hkv * dh.
    public let rowWidth: Int
    let keys: [FloatBuffer] // L x [C, Hkv, dh]
    let values: [FloatBuffer] // L x [C, Hkv, dh]
    /// Positions filled (equal to the session's position).
    public internal(set) var count = 0

    public init(config: ModelConfig, maxContext: Int) {
        nLayers = config.nLayers
        self.maxContext = maxContext
        rowWidth = config.kvWidth
        keys = (0..<config.nLayers).map { _ in FloatBuffer(count: maxContext * config.kvWidth) }
        values = (0..<config.nLayers).map { _ in FloatBuffer(count: maxContext * config.kvWidth) }
    }

    /// Start of layer `layer`'s keys, [C, Hkv, dh].
    public func keys(layer: Int) -> UnsafeMutablePointer<Float> { keys[layer].pointer }
    /// Start of layer `layer`'s values, [C, Hkv, dh].
    public func values(layer: Int) -> UnsafeMutablePointer<Float> { values[layer].pointer }

    /// Forgets every position (the memory is kept and overwritten).
    public func clear() { count = 0 }

    /// Keeps only the first `n` positions (to re-run from a shared prefix).
    public func truncate(to n: Int) {
        precondition(n >= 0 && n <= count, "truncate(to: \(n)) with \(count) positions cached")
        count = n
    }

    /// Bytes held by the cache.
    public var byteCount: Int { 2 * nLayers * maxContext * rowWidth * MemoryLayout<Float>.size }
}
