import CNative

/// The key/value cache of one session: per layer, K and V for up to `maxContext` positions, as
/// Float32 or IEEE binary16 (`storage`, see `KVStorage`). Keys are stored after RoPE. Row `pos`
/// of a layer holds all KV heads of that position.
///
/// Float32: the forward pass writes and reads the rows in place (`keys(layer:)`). Binary16: it
/// computes new rows in Float32 and stores them with `store(keys:...)` / `store(values:...)`
/// (rounded to nearest even, and the rounded values written back to the caller's rows, so what
/// it captures is what the cache holds); the attention kernels read `halfKeys(layer:)` directly,
/// and the paths built on Float32 products (captured patterns, KV policies) read a widened copy
/// of one layer (`floatKeys(layer:rows:)`).
public final class KVCache: @unchecked Sendable {
    public let nLayers: Int
    public let maxContext: Int // C
    /// Values per row: Hkv * dh.
    public let rowWidth: Int
    public let storage: KVStorage
    let keys: [FloatBuffer] // f32: L x [C, Hkv, dh]; f16: none
    let values: [FloatBuffer] // f32: L x [C, Hkv, dh]; f16: none
    let halfKeys: [HalfBuffer] // f16: L x [C, Hkv, dh] binary16; f32: none
    let halfValues: [HalfBuffer] // f16: L x [C, Hkv, dh] binary16; f32: none
    /// Positions filled (equal to the session's position).
    public internal(set) var count = 0

    /// f16: one layer's keys / values widened to Float32 ([C, Hkv, dh], allocated at first use),
    /// valid for the (layer, rows, generation) they were made for.
    private var keyView: WidenedRows?
    private var valueView: WidenedRows?
    /// Bumped by every store, so a widened copy made before it is not reused.
    private var generation = 0

    public init(config: ModelConfig, maxContext: Int, storage: KVStorage = .f32) {
        nLayers = config.nLayers
        self.maxContext = maxContext
        rowWidth = config.kvWidth
        self.storage = storage
        let n = maxContext * config.kvWidth, layers = storage == .f32 ? config.nLayers : 0
        keys = (0..<layers).map { _ in FloatBuffer(count: n) }
        values = (0..<layers).map { _ in FloatBuffer(count: n) }
        let halfLayers = storage == .f16 ? config.nLayers : 0
        halfKeys = (0..<halfLayers).map { _ in HalfBuffer(count: n) }
        halfValues = (0..<halfLayers).map { _ in HalfBuffer(count: n) }
    }

    /// Start of layer `layer`'s Float32 keys, [C, Hkv, dh] (Float32 storage only).
    public func keys(layer: Int) -> UnsafeMutablePointer<Float> {
        precondition(storage == .f32, "keys(layer:) of a \(storage) KV cache: use floatKeys(layer:rows:)")
        return keys[layer].pointer
    }
    /// Start of layer `layer`'s Float32 values, [C, Hkv, dh] (Float32 storage only).
    public func values(layer: Int) -> UnsafeMutablePointer<Float> {
        precondition(storage == .f32, "values(layer:) of a \(storage) KV cache: use floatValues(layer:rows:)")
        return values[layer].pointer
    }

    /// Start of layer `layer`'s binary16 keys, [C, Hkv, dh] (binary16 storage only).
    public func halfKeys(layer: Int) -> UnsafeMutablePointer<UInt16> {
        precondition(storage == .f16, "halfKeys(layer:) of a \(storage) KV cache")
        return halfKeys[layer].pointer
    }
    /// Start of layer `layer`'s binary16 values, [C, Hkv, dh] (binary16 storage only).
    public func halfValues(layer: Int) -> UnsafeMutablePointer<UInt16> {
        precondition(storage == .f16, "halfValues(layer:) of a \(storage) KV cache")
        return halfValues[layer].pointer
    }

    /// Layer `layer`'s keys as Float32, [C, Hkv, dh] with rows 0..<rows valid: the cache itself
    /// (f32) or a widened copy (f16; valid until the next store or the next call for another
    /// layer or row count).
    public func floatKeys(layer: Int, rows: Int) -> UnsafePointer<Float> {
        if storage == .f32 { return UnsafePointer(keys[layer].pointer) }
        return widened(&keyView, halfKeys[layer], layer: layer, rows: rows)
    }
    /// Layer `layer`'s values as Float32, as `floatKeys(layer:rows:)`.
    public func floatValues(layer: Int, rows: Int) -> UnsafePointer<Float> {
        if storage == .f32 { return UnsafePointer(values[layer].pointer) }
        return widened(&valueView, halfValues[layer], layer: layer, rows: rows)
    }

    private func widened(_ view: inout WidenedRows?, _ src: HalfBuffer, layer: Int, rows: Int) -> UnsafePointer<Float> {
        precondition(rows >= 0 && rows <= maxContext)
        let v = view ?? WidenedRows(count: maxContext * rowWidth)
        view = v
        if v.layer != layer || v.rows != rows || v.generation != generation {
            hl_f16_to_f32(src.pointer, v.buffer.pointer, rows * rowWidth) // [rows, Hkv, dh]
            v.layer = layer
            v.rows = rows
            v.generation = generation
        }
        return UnsafePointer(v.buffer.pointer)
    }

    /// f16: stores Float32 rows `src` [T, Hkv, dh] as keys start..<start+T of `layer`, rounded
    /// to binary16, and replaces `src` by the rounded values. f32: nothing (the forward pass
    /// writes the cache rows in place).
    func store(keys src: UnsafeMutablePointer<Float>, layer: Int, start: Int, rows: Int) {
        guard storage == .f16 else { return }
        store(src, into: halfKeys[layer].pointer + start * rowWidth, count: rows * rowWidth)
    }

    /// As `store(keys:layer:start:rows:)`, for values.
    func store(values src: UnsafeMutablePointer<Float>, layer: Int, start: Int, rows: Int) {
        guard storage == .f16 else { return }
        store(src, into: halfValues[layer].pointer + start * rowWidth, count: rows * rowWidth)
    }

    private func store(_ src: UnsafeMutablePointer<Float>, into dst: UnsafeMutablePointer<UInt16>, count n: Int) {
        precondition(n >= 0)
        generation &+= 1
        hl_f32_to_f16(src, dst, n)
        hl_f16_to_f32(dst, src, n)
    }

    /// Copies rows 0..<n of every layer's keys and values from `source` (same shape and storage;
    /// another session's cache) and sets `count` to n.
    func copyRows(from source: KVCache, count n: Int) {
        precondition(
            source.nLayers == nLayers && source.rowWidth == rowWidth && source.storage == storage
                && n <= maxContext && n <= source.count, "copyRows of \(n) rows from an incompatible cache")
        let m = n * rowWidth
        generation &+= 1
        for l in 0..<nLayers {
            switch storage {
            case .f32:
                keys[l].pointer.update(from: source.keys[l].pointer, count: m) // [n, Hkv, dh]
                values[l].pointer.update(from: source.values[l].pointer, count: m)
            case .f16:
                halfKeys[l].pointer.update(from: source.halfKeys[l].pointer, count: m) // [n, Hkv, dh]
                halfValues[l].pointer.update(from: source.halfValues[l].pointer, count: m)
            }
        }
        count = n
    }

    /// Forgets every position (the memory is kept and overwritten).
    public func clear() { count = 0 }

    /// Keeps only the first `n` positions (to re-run from a shared prefix).
    public func truncate(to n: Int) {
        precondition(n >= 0 && n <= count, "truncate(to: \(n)) with \(count) positions cached")
        count = n
    }

    /// Bytes held by the cache (K and V of every layer; a widened f16 layer copy, made only for
    /// captured patterns and KV policies, not included).
    public var byteCount: Int { 2 * nLayers * maxContext * rowWidth * storage.bytesPerValue }
}

/// `count` binary16 values (raw IEEE bits), zero-filled.
final class HalfBuffer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<UInt16>
    let count: Int

    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }
}

/// One layer's binary16 rows widened to Float32, and which rows they are.
private final class WidenedRows {
    let buffer: FloatBuffer // [C, Hkv, dh]
    var layer = -1
    var rows = -1
    var generation = -1

    init(count: Int) { buffer = FloatBuffer(count: count) }
}
