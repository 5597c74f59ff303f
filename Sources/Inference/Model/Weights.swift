import CNative
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

/// A weight matrix's original ggml blocks, kept for the quantized matrix-vector kernels
/// (`hl_qmatmul`): `rows` rows of `rowBytes` bytes, 64-byte aligned.
public final class QuantizedBlocks: @unchecked Sendable {
    public let type: GGMLType
    public let rowBytes: Int
    public let byteCount: Int
    public let pointer: UnsafeMutableRawPointer

    /// Types with a direct kernel (others are used through their Float32 dequantization only).
    public static func isSupported(_ type: GGMLType) -> Bool { hl_qtype_supported(Int32(type.rawValue)) != 0 }

    /// Copies `rows * rowBytes` bytes of `type` blocks from `source`.
    public init(type: GGMLType, rows: Int, cols: Int, source: UnsafeRawPointer) {
        precondition(cols % type.blockSize == 0)
        self.type = type
        rowBytes = cols / type.blockSize * type.bytesPerBlock
        byteCount = rows * rowBytes
        pointer = .allocate(byteCount: max(byteCount, 1), alignment: 64)
        pointer.copyMemory(from: source, byteCount: byteCount)
    }

    deinit { pointer.deallocate() }
}

/// A dense Float32 weight matrix `[rows, cols]`, row-major: `rows` outputs of `cols` inputs each,
/// which is a GGUF tensor with dims `[cols, rows]` dequantized as stored. A linear layer computes
/// `y = x · Wᵀ`. Vectors (norm weights, biases) have `rows = 1, cols = n`.
///
/// Matrices stored in a format with a quantized kernel (Q4_0, Q4_1, Q8_0, Q4_K, Q6_K) also keep
/// their original blocks in `quantized`: decoding (one or a few rows at a time) multiplies those,
/// reading ~1/6 of the bytes of the Float32 copy, which prefill's sgemm uses.
public struct WeightMatrix: @unchecked Sendable {
    public let name: String
    public let rows: Int
    public let cols: Int
    public let storage: FloatBuffer
    /// The ggml blocks, when `QuantizedBlocks.isSupported(type)` and this is a matrix (rows > 1).
    public let quantized: QuantizedBlocks?

    public var data: UnsafeMutablePointer<Float> { storage.pointer }
    public var count: Int { rows * cols }

    /// Dequantizes tensor `name` of `file`, checking its ggml dims against `dims`.
    public init(_ file: GGUFFile, _ name: String, dims: [Int]) throws {
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
        cols = dims[0]
        rows = dims.count > 1 ? dims.dropFirst().reduce(1, *) : 1
        storage = FloatBuffer(count: t.elementCount)
        var quantized: QuantizedBlocks?
        if t.elementCount > 0 {
            let src = file.data(of: t).baseAddress!
            t.type.dequantize(src, count: t.elementCount, into: storage.pointer)
            if rows > 1, QuantizedBlocks.isSupported(t.type), cols % t.type.blockSize == 0 {
                quantized = QuantizedBlocks(type: t.type, rows: rows, cols: cols, source: src)
            }
        }
        self.quantized = quantized
    }

    /// A vector weight (norm scale, bias) of `n` elements.
    public init(_ file: GGUFFile, vector name: String, count n: Int) throws {
        try self.init(file, name, dims: [n])
    }

    /// Rows `range` of `m` as their own matrix (the parts of a fused tensor: Phi-3's attn_qkv and
    /// ffn_up), quantized blocks included.
    public init(rowsOf m: WeightMatrix, _ range: Range<Int>, name: String) {
        precondition(range.lowerBound >= 0 && range.upperBound <= m.rows)
        self.name = name
        rows = range.count
        cols = m.cols
        storage = FloatBuffer(count: rows * cols)
        storage.pointer.update(from: m.data + range.lowerBound * cols, count: rows * cols)
        if let q = m.quantized {
            quantized = QuantizedBlocks(
                type: q.type, rows: rows, cols: cols, source: q.pointer + range.lowerBound * q.rowBytes)
        } else {
            quantized = nil
        }
    }

    public init(name: String, rows: Int, cols: Int, values: [Float]) {
        precondition(values.count == rows * cols)
        self.name = name
        self.rows = rows
        self.cols = cols
        storage = FloatBuffer(values)
        quantized = nil
    }

    /// A matrix from raw ggml blocks of `type` (`rows * cols / blockSize` blocks), dequantized
    /// for `storage` and kept for the quantized kernels when supported (tests, tools).
    public init(name: String, rows: Int, cols: Int, type: GGMLType, blocks: UnsafeRawBufferPointer) {
        precondition(type.canDequantize && cols % type.blockSize == 0)
        precondition(blocks.count >= rows * cols / type.blockSize * type.bytesPerBlock)
        self.name = name
        self.rows = rows
        self.cols = cols
        storage = FloatBuffer(count: rows * cols)
        if rows * cols > 0 {
            type.dequantize(blocks.baseAddress!, count: rows * cols, into: storage.pointer)
        }
        quantized =
            rows * cols > 0 && QuantizedBlocks.isSupported(type)
            ? QuantizedBlocks(type: type, rows: rows, cols: cols, source: blocks.baseAddress!) : nil
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

/// All weights, dequantized to Float32 at load (SmolLM2-135M: ~540 MB), plus the original blocks
/// of the quantized matrices (SmolLM2-135M Q4_1: ~92 MB) for decoding.
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
    /// `ModelError.missingTensor` naming it.
    public init(file: GGUFFile, config c: ModelConfig) throws {
        let d = c.dModel
        tokenEmbedding = try WeightMatrix(file, "token_embd.weight", dims: [d, c.vocabSize])
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
                wq = try WeightMatrix(file, p + "attn_q.weight", dims: [d, c.qWidth])
                wk = try WeightMatrix(file, p + "attn_k.weight", dims: [d, c.kvWidth])
                wv = try WeightMatrix(file, p + "attn_v.weight", dims: [d, c.kvWidth])
                wGate = try WeightMatrix(file, p + "ffn_gate.weight", dims: [d, c.dFF])
                wUp = try WeightMatrix(file, p + "ffn_up.weight", dims: [d, c.dFF])
            case .fusedQKVGateUp:
                // attn_qkv [H*dh + 2*Hkv*dh, D]: Q rows, then K, then V; ffn_up [2F, D]: gate, then up.
                let qkv = try WeightMatrix(file, p + "attn_qkv.weight", dims: [d, c.qWidth + 2 * c.kvWidth])
                wq = WeightMatrix(rowsOf: qkv, 0..<c.qWidth, name: p + "attn_qkv.weight[q]")
                wk = WeightMatrix(rowsOf: qkv, c.qWidth..<(c.qWidth + c.kvWidth), name: p + "attn_qkv.weight[k]")
                wv = WeightMatrix(rowsOf: qkv, (c.qWidth + c.kvWidth)..<qkv.rows, name: p + "attn_qkv.weight[v]")
                let gateUp = try WeightMatrix(file, p + "ffn_up.weight", dims: [d, 2 * c.dFF])
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
                    wo: try WeightMatrix(file, p + "attn_output.weight", dims: [c.qWidth, d]),
                    ffnNorm: try WeightMatrix(file, vector: p + "ffn_norm.weight", count: d),
                    wGate: wGate, wUp: wUp,
                    wDown: try WeightMatrix(file, p + "ffn_down.weight", dims: [c.dFF, d]),
                    qNorm: try vector("attn_q_norm.weight", c.dHead, when: c.qkNorm),
                    kNorm: try vector("attn_k_norm.weight", c.dHead, when: c.qkNorm),
                    postAttnNorm: try vector("post_attention_norm.weight", d, when: c.postNorms),
                    postFFNNorm: try vector("post_ffw_norm.weight", d, when: c.postNorms)))
        }
        self.layers = layers
        outputNorm = try WeightMatrix(file, vector: "output_norm.weight", count: d)
        output = c.tiedEmbeddings ? tokenEmbedding : try WeightMatrix(file, "output.weight", dims: [d, c.vocabSize])
        if file.tensor(named: "rope_freqs.weight") != nil {
            ropeFreqFactors = try WeightMatrix(file, vector: "rope_freqs.weight", count: c.ropeDims / 2).storage.array
        } else {
            ropeFreqFactors = nil
        }
    }
}
