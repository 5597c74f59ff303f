import CNative
import Foundation
import GGUF

/// A heap buffer of Float32 that frees itself; the storage behind weights, caches and scratch.
/// Unlike `[Float]` it has a stable address, so kernels take its pointer without closures.
public final class FloatBuffer: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    /// A zero-filled buffer of `count` floats.
    public init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { pointer.deallocate() }

    public var buffer: UnsafeMutableBufferPointer<Float> { .init(start: pointer, count: count) }
    public var array: [Float] { Array(buffer) }
}

/// A weight matrix's ggml blocks: `rows` rows of `rowBytes` bytes of `type`. Read in place from the
/// GGUF mapping (which `owner` keeps alive), or an owned 64-byte-aligned copy (tests, tools).
/// Decoding multiplies them directly (`hl_qmatmul`, for the types it supports); prefill decodes
/// panels of rows on the fly (`hl_sgemm_nt_panels`).
public final class QuantizedBlocks: @unchecked Sendable {
    public let type: GGMLType
    public let rowBytes: Int
    public let byteCount: Int
    public let pointer: UnsafeRawPointer
    /// What keeps `pointer` valid when it is not owned (the `GGUFFile`); nil when owned.
    private let owner: AnyObject?

    /// Types with a direct kernel (others are used through their Float32 dequantization only).
    public static func isSupported(_ type: GGMLType) -> Bool { hl_qtype_supported(Int32(type.rawValue)) != 0 }

    /// Copies `rows * rowBytes` bytes of `type` blocks from `source`.
    public init(type: GGMLType, rows: Int, cols: Int, source: UnsafeRawPointer) {
        precondition(cols % type.blockSize == 0)
        self.type = type
        rowBytes = cols / type.blockSize * type.bytesPerBlock
        byteCount = rows * rowBytes
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        p.copyMemory(from: source, byteCount: byteCount)
        pointer = UnsafeRawPointer(p)
        owner = nil
    }

    /// The blocks at `source`, valid while `owner` lives (no copy).
    public init(type: GGMLType, rows: Int, cols: Int, mapped source: UnsafeRawPointer, owner: AnyObject) {
        precondition(cols % type.blockSize == 0)
        self.type = type
        rowBytes = cols / type.blockSize * type.bytesPerBlock
        byteCount = rows * rowBytes
        pointer = source
        self.owner = owner
    }

    /// Rows `range` of `q` (no copy; keeps `q` alive).
    init(rowsOf q: QuantizedBlocks, _ range: Range<Int>) {
        type = q.type
        rowBytes = q.rowBytes
        byteCount = range.count * rowBytes
        pointer = q.pointer + range.lowerBound * q.rowBytes
        owner = q
    }

    deinit {
        if owner == nil { UnsafeMutableRawPointer(mutating: pointer).deallocate() }
    }

    /// Writes rows `first ..< first + count` as Float32 into dst [count, cols]: the values of
    /// `GGMLType.dequantize` (rows start on block boundaries, so a row range decodes exactly as
    /// the same rows of the whole tensor).
    public func dequantizeRows(_ first: Int, count: Int, cols: Int, into dst: UnsafeMutablePointer<Float>) {
        type.dequantize(pointer + first * rowBytes, count: count * cols, into: dst)
    }
}

/// How prefill's matrix products read the weights (`HEADLIGHT_WEIGHTS=f32|quantized`).
public enum WeightFormat: String, Sendable, CaseIterable {
    /// A Float32 copy of every matrix, made at load (~4 bytes per weight, plus the mapped file):
    /// one sgemm per column block. The comparison path.
    case f32
    /// Weights stay in the GGUF mapping; prefill decodes panels of rows into per-thread scratch
    /// and multiplies each with sgemm (hl_sgemm_nt_panels). The default.
    case quantized

    /// HEADLIGHT_WEIGHTS, else `.quantized`; an unknown value is reported once and ignored.
    static let fromEnvironment: WeightFormat = {
        guard let v = ProcessInfo.processInfo.environment["HEADLIGHT_WEIGHTS"], !v.isEmpty else { return .quantized }
        if let f = WeightFormat(rawValue: v) { return f }
        FileHandle.standardError.write(Data("headlight: ignoring HEADLIGHT_WEIGHTS=\(v) (use f32 or quantized)\n".utf8))
        return .quantized
    }()
}

/// The Float32 values of a matrix, made on first use when they are not made at load (matrices
/// kept in ggml blocks: analyses that read weights directly, the f32 comparison path).
final class LazyFloats: @unchecked Sendable {
    private let lock = NSLock()
    private var buffer: FloatBuffer?
    private let make: () -> FloatBuffer

    init(_ make: @escaping () -> FloatBuffer) { self.make = make }
    init(_ buffer: FloatBuffer) {
        self.buffer = buffer
        make = { buffer }
    }

    var value: FloatBuffer {
        lock.lock()
        defer { lock.unlock() }
        if let b = buffer { return b }
        let b = make()
        buffer = b
        return b
    }

    var isMade: Bool {
        lock.lock()
        defer { lock.unlock() }
        return buffer != nil
    }
}

/// A weight matrix `[rows, cols]`, row-major: `rows` outputs of `cols` inputs each, which is a
/// GGUF tensor with dims `[cols, rows]` as stored. A linear layer computes `y = x · Wᵀ`. Vectors
/// (norm weights, biases) have `rows = 1, cols = n`.
///
/// Matrices stored in a ggml block format (anything but F32) keep their blocks in `blocks`, read
/// in place from the GGUF mapping: decoding multiplies them directly (`quantized`, the types
/// `hl_qmatmul` supports: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q6_K) and prefill decodes panels of
/// rows on the fly. Their Float32 values (`data`, `storage`) are made at load only with
/// `WeightFormat.f32`, otherwise on first use (analyses reading weights; cached). Vectors and F32
/// matrices are Float32 copies made at load.
public struct WeightMatrix: @unchecked Sendable {
    public let name: String
    public let rows: Int
    public let cols: Int
    /// The ggml blocks of a matrix (rows > 1) in a format other than F32.
    public let blocks: QuantizedBlocks?
    /// `blocks`, when `QuantizedBlocks.isSupported(type)` (the decoding kernel's formats).
    public var quantized: QuantizedBlocks? {
        guard let b = blocks, QuantizedBlocks.isSupported(b.type) else { return nil }
        return b
    }
    private let floats: LazyFloats

    /// The Float32 values `[rows, cols]` (made on first use for matrices kept in blocks).
    public var storage: FloatBuffer { floats.value }
    public var data: UnsafeMutablePointer<Float> { floats.value.pointer }
    public var count: Int { rows * cols }
    /// Whether the Float32 values exist now (made at load or by an earlier use of `data`).
    public var hasFloatValues: Bool { floats.isMade }

    /// Reads tensor `name` of `file`, checking its ggml dims against `dims`. `format` .f32 makes
    /// the Float32 copy of a block-format matrix now (otherwise it is made on first use).
    public init(_ file: GGUFFile, _ name: String, dims: [Int], format: WeightFormat = .quantized) throws {
        guard let t = file.tensor(named: name) else { throw ModelError.missingTensor(name) }
        // Trailing 1-dims are insignificant in ggml shapes.
        func trim(_ d: [Int]) -> [Int] {
            var d = d
            while d.count > 1 && d.last == 1 { d.removeLast() }
            return d
        }
        guard trim(t.dims) == trim(dims) else { throw ModelError.tensorShape(name, expected: dims, found: t.dims) }
        guard t.type.canDequantize else { throw ModelError.unsupportedTensorType(name, type: t.type.name) }
        self.name = name
        let cols = dims[0], rows = dims.count > 1 ? dims.dropFirst().reduce(1, *) : 1, count = t.elementCount
        self.cols = cols
        self.rows = rows
        let src = file.data(of: t).baseAddress
        func decodeAll() -> FloatBuffer {
            let b = FloatBuffer(count: count)
            if count > 0, let src { t.type.dequantize(src, count: count, into: b.pointer) }
            return b
        }
        if rows > 1, count > 0, t.type != .f32, cols % t.type.blockSize == 0, let src {
            let b = QuantizedBlocks(type: t.type, rows: rows, cols: cols, mapped: src, owner: file)
            blocks = b
            let lazy = LazyFloats {
                let f = FloatBuffer(count: rows * cols) // [rows, cols]
                b.dequantizeRows(0, count: rows, cols: cols, into: f.pointer)
                return f
            }
            if format == .f32 { _ = lazy.value }
            floats = lazy
        } else {
            blocks = nil
            floats = LazyFloats(decodeAll())
        }
    }

    /// A vector weight (norm scale, bias) of `n` elements.
    public init(_ file: GGUFFile, vector name: String, count n: Int) throws {
        try self.init(file, name, dims: [n])
    }

    /// Rows `range` of `m` as their own matrix (the parts of a fused tensor: Phi-3's attn_qkv and
    /// ffn_up), blocks included (no copy).
    public init(rowsOf m: WeightMatrix, _ range: Range<Int>, name: String) {
        precondition(range.lowerBound >= 0 && range.upperBound <= m.rows)
        self.name = name
        let rows = range.count, cols = m.cols
        self.rows = rows
        self.cols = cols
        func copyRows() -> FloatBuffer {
            let f = FloatBuffer(count: rows * cols) // [rows, cols]
            f.pointer.update(from: m.data + range.lowerBound * cols, count: rows * cols)
            return f
        }
        if let q = m.blocks {
            let b = QuantizedBlocks(rowsOf: q, range)
            blocks = b
            floats =
                m.hasFloatValues
                ? LazyFloats(copyRows())
                : LazyFloats {
                    let f = FloatBuffer(count: rows * cols) // [rows, cols]
                    b.dequantizeRows(0, count: rows, cols: cols, into: f.pointer)
                    return f
                }
        } else {
            blocks = nil
            floats = LazyFloats(copyRows())
        }
    }

    public init(name: String, rows: Int, cols: Int, values: [Float]) {
        precondition(values.count == rows * cols)
        self.name = name
        self.rows = rows
        self.cols = cols
        floats = LazyFloats(FloatBuffer(values))
        blocks = nil
    }

    /// A matrix from raw ggml blocks of `type` (`rows * cols / blockSize` blocks), copied and kept
    /// as its blocks (tests, tools); its Float32 values are made at once.
    public init(name: String, rows: Int, cols: Int, type: GGMLType, blocks source: UnsafeRawBufferPointer) {
        precondition(type.canDequantize && cols % type.blockSize == 0)
        precondition(source.count >= rows * cols / type.blockSize * type.bytesPerBlock)
        self.name = name
        self.rows = rows
        self.cols = cols
        let f = FloatBuffer(count: rows * cols) // [rows, cols]
        if rows * cols > 0 {
            type.dequantize(source.baseAddress!, count: rows * cols, into: f.pointer)
        }
        floats = LazyFloats(f)
        blocks =
            rows * cols > 0 && type != .f32
            ? QuantizedBlocks(type: type, rows: rows, cols: cols, source: source.baseAddress!) : nil
    }

    /// Copies row `r` (Float32, `cols` values) into `dst`: decoded from the blocks when the matrix
    /// has no Float32 copy (token embedding lookups), the same values as `data`.
    public func copyRow(_ r: Int, into dst: UnsafeMutablePointer<Float>) {
        precondition(r >= 0 && r < rows)
        if let b = blocks, !floats.isMade {
            b.dequantizeRows(r, count: 1, cols: cols, into: dst)
        } else {
            dst.update(from: data + r * cols, count: cols)
        }
    }
}

/// The weights of one transformer block, llama.cpp names in comments.
public struct LayerWeights: Sendable {
    public let attnNorm: WeightMatrix // blk.N.attn_norm.weight   [D]
    public let wq: WeightMatrix // blk.N.attn_q.weight      [H*dh, D]
    public let wk: WeightMatrix // blk.N.attn_k.weight      [Hkv*dh, D]
    public let wv: WeightMatrix // blk.N.attn_v.weight      [Hkv*dh, D]
    public let bq: WeightMatrix? // blk.N.attn_q.bias        [H*dh]   (qwen2)
    public let bk: WeightMatrix? // blk.N.attn_k.bias        [Hkv*dh] (qwen2)
    public let bv: WeightMatrix? // blk.N.attn_v.bias        [Hkv*dh] (qwen2)
    public let wo: WeightMatrix // blk.N.attn_output.weight [D, H*dh]
    public let ffnNorm: WeightMatrix // blk.N.ffn_norm.weight    [D]
    public let wGate: WeightMatrix // blk.N.ffn_gate.weight    [F, D]
    public let wUp: WeightMatrix // blk.N.ffn_up.weight      [F, D]
    public let wDown: WeightMatrix // blk.N.ffn_down.weight    [D, F]
    public var qNorm: WeightMatrix? // blk.N.attn_q_norm.weight          [dh] (Qwen3, Gemma 3)
    public var kNorm: WeightMatrix? // blk.N.attn_k_norm.weight          [dh] (Qwen3, Gemma 3)
    public var postAttnNorm: WeightMatrix? // blk.N.post_attention_norm.weight [D]  (Gemma 2/3)
    public var postFFNNorm: WeightMatrix? // blk.N.post_ffw_norm.weight        [D]  (Gemma 2/3)
}

/// All weights: the matrices read in place from the GGUF mapping (their Float32 copies made at load
/// only with `WeightFormat.f32`: SmolLM2-135M ~540 MB), vectors as Float32.
public struct ModelWeights: Sendable {
    public let tokenEmbedding: WeightMatrix // token_embd.weight        [V, D]
    public let layers: [LayerWeights]
    public let outputNorm: WeightMatrix // output_norm.weight       [D]
    /// output.weight [V, D], or the token embedding when tied.
    public let output: WeightMatrix
    /// rope_freqs.weight [dh_rope / 2] (llama 3 frequency factors), if the file has it.
    public let ropeFreqFactors: [Float]?

    /// Loads the llama.cpp tensor layout for `config`. Q/K biases are loaded when present
    /// (required when `config.attentionBias`); QK-norm and post-norm weights when the config has
    /// them (then required); fused tensors split (`config.tensorLayout`). A missing tensor is
    /// `ModelError.missingTensor` naming it. Matrices stay in the GGUF mapping (`format` .quantized)
    /// or also get Float32 copies now (.f32).
    public init(file: GGUFFile, config c: ModelConfig, format: WeightFormat = KernelConfig.weights) throws {
        let d = c.dModel
        tokenEmbedding = try WeightMatrix(file, "token_embd.weight", dims: [d, c.vocabSize], format: format)
        var layers: [LayerWeights] = []
        layers.reserveCapacity(c.nLayers)
        for i in 0..<c.nLayers {
            let p = "blk.\(i)."
            func bias(_ name: String, _ n: Int) throws -> WeightMatrix? {
                if c.attentionBias || file.tensor(named: p + name) != nil {
                    return try WeightMatrix(file, vector: p + name, count: n)
                }
                return nil
            }
            let attnNorm = try WeightMatrix(file, vector: p + "attn_norm.weight", count: d)
            let wq: WeightMatrix, wk: WeightMatrix, wv: WeightMatrix, wGate: WeightMatrix, wUp: WeightMatrix
            switch c.tensorLayout {
            case .separate:
                wq = try WeightMatrix(file, p + "attn_q.weight", dims: [d, c.qWidth], format: format)
                wk = try WeightMatrix(file, p + "attn_k.weight", dims: [d, c.kvWidth], format: format)
                wv = try WeightMatrix(file, p + "attn_v.weight", dims: [d, c.kvWidth], format: format)
                wGate = try WeightMatrix(file, p + "ffn_gate.weight", dims: [d, c.dFF], format: format)
                wUp = try WeightMatrix(file, p + "ffn_up.weight", dims: [d, c.dFF], format: format)
            case .fusedQKVGateUp:
                // attn_qkv [H*dh + 2*Hkv*dh, D]: Q rows, then K, then V; ffn_up [2F, D]: gate, then up.
                let qkv = try WeightMatrix(
                    file, p + "attn_qkv.weight", dims: [d, c.qWidth + 2 * c.kvWidth], format: format)
                wq = WeightMatrix(rowsOf: qkv, 0..<c.qWidth, name: p + "attn_qkv.weight[q]")
                wk = WeightMatrix(rowsOf: qkv, c.qWidth..<(c.qWidth + c.kvWidth), name: p + "attn_qkv.weight[k]")
                wv = WeightMatrix(rowsOf: qkv, (c.qWidth + c.kvWidth)..<qkv.rows, name: p + "attn_qkv.weight[v]")
                let gateUp = try WeightMatrix(file, p + "ffn_up.weight", dims: [d, 2 * c.dFF], format: format)
                wGate = WeightMatrix(rowsOf: gateUp, 0..<c.dFF, name: p + "ffn_up.weight[gate]")
                wUp = WeightMatrix(rowsOf: gateUp, c.dFF..<(2 * c.dFF), name: p + "ffn_up.weight[up]")
            }
            func vector(_ name: String, _ n: Int, when wanted: Bool) throws -> WeightMatrix? {
                wanted ? try WeightMatrix(file, vector: p + name, count: n) : nil
            }
            layers.append(
                LayerWeights(
                    attnNorm: attnNorm, wq: wq, wk: wk, wv: wv,
                    bq: try bias("attn_q.bias", c.qWidth),
                    bk: try bias("attn_k.bias", c.kvWidth),
                    bv: try bias("attn_v.bias", c.kvWidth),
                    wo: try WeightMatrix(file, p + "attn_output.weight", dims: [c.qWidth, d], format: format),
                    ffnNorm: try WeightMatrix(file, vector: p + "ffn_norm.weight", count: d),
                    wGate: wGate, wUp: wUp,
                    wDown: try WeightMatrix(file, p + "ffn_down.weight", dims: [c.dFF, d], format: format),
                    qNorm: try vector("attn_q_norm.weight", c.dHead, when: c.qkNorm),
                    kNorm: try vector("attn_k_norm.weight", c.dHead, when: c.qkNorm),
                    postAttnNorm: try vector("post_attention_norm.weight", d, when: c.postNorms),
                    postFFNNorm: try vector("post_ffw_norm.weight", d, when: c.postNorms)))
        }
        self.layers = layers
        outputNorm = try WeightMatrix(file, vector: "output_norm.weight", count: d)
        output =
            c.tiedEmbeddings
            ? tokenEmbedding : try WeightMatrix(file, "output.weight", dims: [d, c.vocabSize], format: format)
        if file.tensor(named: "rope_freqs.weight") != nil {
            ropeFreqFactors = try WeightMatrix(file, vector: "rope_freqs.weight", count: c.ropeDims / 2).storage.array
        } else {
            ropeFreqFactors = nil
        }
    }
}
