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

/// A dense Float32 weight matrix `[rows, cols]`, row-major: `rows` outputs of `cols` inputs each,
/// which is a GGUF tensor with dims `[cols, rows]` dequantized as stored. A linear layer computes
/// `y = x · Wᵀ`. Vectors (norm weights, biases) have `rows = 1, cols = n`.
public struct WeightMatrix: @unchecked Sendable {
    public let name: String
    public let rows: Int
    public let cols: Int
    public let storage: FloatBuffer

    public var data: UnsafeMutablePointer<Float> { storage.pointer }
    public var count: Int { rows * cols }

    /// Dequantizes tensor `name` of `file`, checking its ggml dims against `dims`.
    public init(_ file: GGUFFile, _ name: String, dims: [Int]) throws {
        guard let t = file.tensor(named: name) else { throw ModelError.missingTensor(name) }
        // Trailing 1-dims are insignificant in ggml shapes.
        func trim(_ d: [Int]) -> [Int] { var d = d; while d.count > 1 && d.last == 1 { d.removeLast() }; return d }
        guard trim(t.dims) == trim(dims) else { throw ModelError.tensorShape(name, expected: dims, found: t.dims) }
        guard t.type.canDequantize else { throw ModelError.unsupportedTensorType(name, type: t.type.name) }
        self.name = name
        cols = dims[0]
        rows = dims.count > 1 ? dims.dropFirst().reduce(1, *) : 1
        storage = FloatBuffer(count: t.elementCount)
        if t.elementCount > 0 {
            t.type.dequantize(file.data(of: t).baseAddress!, count: t.elementCount, into: storage.pointer)
        }
    }

    /// A vector weight (norm scale, bias) of `n` elements.
    public init(_ file: GGUFFile, vector name: String, count n: Int) throws {
        try self.init(file, name, dims: [n])
    }

    public init(name: String, rows: Int, cols: Int, values: [Float]) {
        precondition(values.count == rows * cols)
        self.name = name; self.rows = rows; self.cols = cols
        storage = FloatBuffer(values)
    }
}

/// The weights of one transformer block, llama.cpp names in comments.
public struct LayerWeights: Sendable {
    public let attnNorm: WeightMatrix        // blk.N.attn_norm.weight   [D]
    public let wq: WeightMatrix              // blk.N.attn_q.weight      [H*dh, D]
    public let wk: WeightMatrix              // blk.N.attn_k.weight      [Hkv*dh, D]
    public let wv: WeightMatrix              // blk.N.attn_v.weight      [Hkv*dh, D]
    public let bq: WeightMatrix?             // blk.N.attn_q.bias        [H*dh]   (qwen2)
    public let bk: WeightMatrix?             // blk.N.attn_k.bias        [Hkv*dh] (qwen2)
    public let bv: WeightMatrix?             // blk.N.attn_v.bias        [Hkv*dh] (qwen2)
    public let wo: WeightMatrix              // blk.N.attn_output.weight [D, H*dh]
    public let ffnNorm: WeightMatrix         // blk.N.ffn_norm.weight    [D]
    public let wGate: WeightMatrix           // blk.N.ffn_gate.weight    [F, D]
    public let wUp: WeightMatrix             // blk.N.ffn_up.weight      [F, D]
    public let wDown: WeightMatrix           // blk.N.ffn_down.weight    [D, F]
}

/// All weights, dequantized to Float32 at load (SmolLM2-135M: ~540 MB).
public struct ModelWeights: Sendable {
    public let tokenEmbedding: WeightMatrix  // token_embd.weight        [V, D]
    public let layers: [LayerWeights]
    public let outputNorm: WeightMatrix      // output_norm.weight       [D]
    /// output.weight [V, D], or the token embedding when tied.
    public let output: WeightMatrix
    /// rope_freqs.weight [dh_rope / 2] (llama 3 frequency factors), if the file has it.
    public let ropeFreqFactors: [Float]?

    /// Loads the llama.cpp tensor layout for `config`. Q/K biases are loaded when present
    /// (required when `config.attentionBias`).
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
            layers.append(LayerWeights(
                attnNorm: try WeightMatrix(file, vector: p + "attn_norm.weight", count: d),
                wq: try WeightMatrix(file, p + "attn_q.weight", dims: [d, c.qWidth]),
                wk: try WeightMatrix(file, p + "attn_k.weight", dims: [d, c.kvWidth]),
                wv: try WeightMatrix(file, p + "attn_v.weight", dims: [d, c.kvWidth]),
                bq: try bias("attn_q.bias", c.qWidth),
                bk: try bias("attn_k.bias", c.kvWidth),
                bv: try bias("attn_v.bias", c.kvWidth),
                wo: try WeightMatrix(file, p + "attn_output.weight", dims: [c.qWidth, d]),
                ffnNorm: try WeightMatrix(file, vector: p + "ffn_norm.weight", count: d),
                wGate: try WeightMatrix(file, p + "ffn_gate.weight", dims: [d, c.dFF]),
                wUp: try WeightMatrix(file, p + "ffn_up.weight", dims: [d, c.dFF]),
                wDown: try WeightMatrix(file, p + "ffn_down.weight", dims: [c.dFF, d])))
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
