import Foundation
import GGUF

// Dimension names used in the shape comments of this folder (defined once, after llm.c):
//   T       tokens in the current chunk (prefill: up to `InferenceSession.maxChunk`; decode: 1)
//   P       absolute position of the chunk's first token (tokens already in the KV cache)
//   S       keys attended to by the chunk: P + T
//   C       the session's maximum context (KV cache rows)
//   D       d_model (embedding length)              F   FFN hidden size
//   H       query heads     Hkv  key/value heads    dh  head dimension
//   V       vocabulary size L    layers

/// How rotary position embeddings pair up the dimensions of a head (ggml's `rope_type`).
public enum RopeStyle: String, Sendable, Codable {
    /// ggml mode 0 (LLAMA_ROPE_TYPE_NORM): rotates adjacent pairs (x[2i], x[2i+1]). llama.cpp's
    /// converter permutes the rows of a llama model's Q and K weights so that this reproduces
    /// Hugging Face's rotate-half RoPE.
    case normal
    /// ggml mode 2 (LLAMA_ROPE_TYPE_NEOX): rotates (x[i], x[i + n/2]), as Hugging Face does; used
    /// by architectures stored unpermuted (qwen2, ...).
    case neox
}

/// The non-linearity of the gated MLP: down(act(gate·x) ⊙ up·x).
public enum MLPActivation: String, Sendable, Codable {
    /// SwiGLU: silu(g) = g · sigmoid(g) (Llama, Qwen, Phi-3).
    case silu
    /// GeGLU with the tanh approximation of GELU (Gemma 2/3; llama.cpp `ggml_gelu`, HF
    /// `gelu_pytorch_tanh`): 0.5 g (1 + tanh(√(2/π) (g + 0.044715 g³))).
    case geluTanh = "gelu_tanh"
}

/// How the tensors of a block are laid out in the file.
public enum TensorLayout: String, Sendable, Codable {
    /// attn_q / attn_k / attn_v and ffn_gate / ffn_up (llama.cpp's Llama set).
    case separate
    /// attn_qkv (Q rows, then K, then V) and ffn_up holding gate rows then up rows (Phi-3); split
    /// at load into the separate matrices, so every block runs the same projections.
    case fusedQKVGateUp = "fused"
}

/// The hyperparameters of a decoder-only transformer, decoded from GGUF metadata by the
/// model's family (see `ModelFamily`). Everything the forward pass needs to know.
public struct ModelConfig: Sendable, Equatable {
    /// `general.architecture`, e.g. "llama" or "qwen2".
    public var architecture: String
    public var nLayers: Int // L
    public var dModel: Int // D
    public var nHeads: Int // H
    public var nKVHeads: Int // Hkv (GQA: H is a multiple of Hkv)
    public var dHead: Int // dh
    public var dFF: Int // F
    public var vocabSize: Int // V
    /// Training context length from the file (`{arch}.context_length`).
    public var contextLength: Int
    public var rmsNormEps: Float
    public var ropeStyle: RopeStyle
    /// `{arch}.rope.freq_base`.
    public var ropeBase: Float
    /// Rotated dimensions per head (`{arch}.rope.dimension_count`, <= dh; the rest pass through).
    public var ropeDims: Int
    /// Linear RoPE scaling: positions are multiplied by this (1 / `rope.scaling.factor`).
    public var ropeFreqScale: Float
    /// Q, K, V projections have biases (qwen2).
    public var attentionBias: Bool
    /// No `output.weight`: the output head reuses `token_embd.weight`.
    public var tiedEmbeddings: Bool

    // Family features beyond Llama (defaults: Llama's behaviour). Set by the family's decoder.

    /// Per layer: the sliding-window size n_swa (a query at p sees keys k with p - k < n_swa), or 0
    /// for full causal attention. [L]
    public var layerWindow: [Int]
    /// RoPE base and linear scale of the sliding-window layers (Gemma 3: 10000 and 1, while global
    /// layers use `ropeBase` / `ropeFreqScale`). Equal to those when the family has one RoPE.
    public var ropeBaseSWA: Float
    public var ropeFreqScaleSWA: Float
    /// Attention logits are multiplied by this (default 1/√dh).
    public var attentionScale: Float
    /// Attention logit soft-capping s ← cap · tanh(s / cap) before the mask (Gemma 2); 0 = off.
    public var attnLogitSoftcap: Float
    /// Final logit soft-capping of the output head (Gemma 2); 0 = off.
    public var finalLogitSoftcap: Float
    /// RMSNorm of each query/key head over dh before RoPE (`attn_q_norm`, `attn_k_norm`: Qwen3, Gemma 3).
    public var qkNorm: Bool
    /// RMSNorm of the attention and MLP outputs before they join the residual stream
    /// (`post_attention_norm`, `post_ffw_norm`: Gemma 2/3).
    public var postNorms: Bool
    public var activation: MLPActivation
    /// The token embedding is multiplied by this (Gemma: √D); 1 = none.
    public var embeddingScale: Float
    public var tensorLayout: TensorLayout

    public init(
        architecture: String, nLayers: Int, dModel: Int, nHeads: Int, nKVHeads: Int, dHead: Int,
        dFF: Int, vocabSize: Int, contextLength: Int, rmsNormEps: Float, ropeStyle: RopeStyle,
        ropeBase: Float, ropeDims: Int, ropeFreqScale: Float = 1, attentionBias: Bool,
        tiedEmbeddings: Bool
    ) {
        self.architecture = architecture
        self.nLayers = nLayers
        self.dModel = dModel
        self.nHeads = nHeads
        self.nKVHeads = nKVHeads
        self.dHead = dHead
        self.dFF = dFF
        self.vocabSize = vocabSize
        self.contextLength = contextLength
        self.rmsNormEps = rmsNormEps
        self.ropeStyle = ropeStyle
        self.ropeBase = ropeBase
        self.ropeDims = ropeDims
        self.ropeFreqScale = ropeFreqScale
        self.attentionBias = attentionBias
        self.tiedEmbeddings = tiedEmbeddings
        layerWindow = [Int](repeating: 0, count: nLayers)
        ropeBaseSWA = ropeBase
        ropeFreqScaleSWA = ropeFreqScale
        attentionScale = 1 / Float(dHead).squareRoot()
        attnLogitSoftcap = 0
        finalLogitSoftcap = 0
        qkNorm = false
        postNorms = false
        activation = .silu
        embeddingScale = 1
        tensorLayout = .separate
    }

    /// Sliding window of layer `l` (0: full causal attention).
    @inline(__always) public func window(_ l: Int) -> Int { layerWindow[l] }
    /// Whether any layer uses a sliding window.
    public var hasSlidingWindow: Bool { layerWindow.contains { $0 > 0 } }
    /// "sliding" or "full" per layer (run-file attribute `layer_attention`, `inspect`).
    public var layerAttentionKinds: [String] { layerWindow.map { $0 > 0 ? "sliding" : "full" } }
    /// Whether sliding-window layers rotate with their own RoPE table.
    var separateSWARope: Bool {
        hasSlidingWindow && (ropeBaseSWA != ropeBase || ropeFreqScaleSWA != ropeFreqScale)
    }

    /// Query heads sharing one key/value head.
    public var groupSize: Int { nHeads / nKVHeads }
    /// H * dh: width of the concatenated query heads (and of z).
    public var qWidth: Int { nHeads * dHead }
    /// Hkv * dh: width of one K or V cache row.
    public var kvWidth: Int { nKVHeads * dHead }
    /// Parameters in the dense weights (embedding counted once when tied).
    public var parameterCount: Int {
        let attn = dModel * qWidth * 2 + dModel * kvWidth * 2 + (attentionBias ? qWidth + 2 * kvWidth : 0)
        let mlp = 3 * dModel * dFF
        let norms = 2 * dModel + (postNorms ? 2 * dModel : 0) + (qkNorm ? 2 * dHead : 0)
        let perLayer = attn + mlp + norms
        return nLayers * perLayer + vocabSize * dModel * (tiedEmbeddings ? 1 : 2) + dModel
    }
}

/// Why a model could not be loaded or run.
public enum ModelError: LocalizedError, Equatable {
    case unsupportedArchitecture(String, supported: [String])
    case missingTensor(String)
    case tensorShape(String, expected: [Int], found: [Int])
    case unsupportedTensorType(String, type: String)
    case invalidConfig(key: String, reason: String)
    /// The head sizes of the file cannot run on Headlight's kernels.
    case unsupportedHeadDim(key: Int, value: Int, reason: String)
    case contextFull(position: Int, adding: Int, maxContext: Int)
    case tokenOutOfRange(Int32, vocabSize: Int)
    case emptyInput

    public var errorDescription: String? {
        switch self {
        case .unsupportedArchitecture(let arch, let supported):
            return "unsupported model architecture '\(arch)'; Headlight supports: \(supported.joined(separator: ", "))"
        case .missingTensor(let name):
            return "the model file has no tensor '\(name)'"
        case .tensorShape(let name, let expected, let found):
            return "tensor '\(name)' has shape \(found), expected \(expected) (ggml order, row length first)"
        case .unsupportedTensorType(let name, let type):
            return "tensor '\(name)' has type \(type), which Headlight cannot dequantize"
        case .invalidConfig(let key, let reason):
            return "model metadata '\(key)': \(reason)"
        case .unsupportedHeadDim(let k, let v, let reason):
            return "unsupported head size (key_length \(k), value_length \(v)): \(reason)"
        case .contextFull(let position, let adding, let maxContext):
            return "context full: \(position) tokens cached + \(adding) new > max context \(maxContext)"
        case .tokenOutOfRange(let token, let vocab):
            return "token id \(token) is outside the vocabulary [0, \(vocab))"
        case .emptyInput:
            return "no tokens to process"
        }
    }
}
