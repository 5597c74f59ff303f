import Foundation
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// Hook points, named as in TransformerLens (`HookedTransformer.hook_dict`), and the resolver
// that turns what a user types (full names, short forms, globs, negative layer indices) into
// concrete hook points. Shapes of the captured values are documented on `HookKind` and in
// docs/run-file.md; dimension names as in Model/ModelConfig.swift.

/// A kind of hook point. Per-layer kinds exist once per block (`blocks.{L}.<rawValue>`).
public enum HookKind: String, CaseIterable, Sendable, Codable {
    /// Token embeddings `[pos, D]` (no positional embedding in this family: equals resid_pre of layer 0).
    case embed = "hook_embed"
    /// Residual stream entering block L `[pos, D]`.
    case residPre = "hook_resid_pre"
    /// Input of the attention norm, normalized without its weight: x / rms(x) `[pos, D]` (as
    /// ln_final.hook_normalized).
    case ln1Normalized = "ln1.hook_normalized"
    /// Queries before RoPE `[pos, H, dh]` (dims in Hugging Face order, see `HookSet`).
    case q = "attn.hook_q"
    /// Keys before RoPE `[pos, Hkv, dh]` (key/value heads: GQA models have fewer).
    case k = "attn.hook_k"
    /// Values `[pos, Hkv, dh]`.
    case v = "attn.hook_v"
    /// Queries after the per-head QK RMSNorm, before RoPE `[pos, H, dh]` (only families with QK-norm:
    /// Qwen3, Gemma 3).
    case qNormed = "attn.hook_q_normed"
    /// Keys after the per-head QK RMSNorm, before RoPE `[pos, Hkv, dh]` (QK-norm families).
    case kNormed = "attn.hook_k_normed"
    /// Queries after RoPE `[pos, H, dh]` (what the attention uses; `.uniform` zeroes them here).
    case rotQ = "attn.hook_rot_q"
    /// Keys after RoPE `[pos, Hkv, dh]`.
    case rotK = "attn.hook_rot_k"
    /// Scaled (and soft-capped, Gemma 2), causally masked attention scores `[head, query, key]`
    /// (-inf above the diagonal and, in sliding-window layers, before the window).
    case attnScores = "attn.hook_attn_scores"
    /// Attention probabilities `[head, query, key]`.
    case pattern = "attn.hook_pattern"
    /// Per-head attention outputs (probabilities · values) `[pos, H, dh]`.
    case z = "attn.hook_z"
    /// Per-head contributions to the residual stream, z_h · W_O[:, h]ᵀ `[pos, H, D]`.
    case result = "attn.hook_result"
    /// Attention output `[pos, D]` (sum of hook_result over heads).
    case attnOut = "hook_attn_out"
    /// Residual stream between attention and MLP, x + attn_out `[pos, D]`.
    case residMid = "hook_resid_mid"
    /// Input of the MLP norm, normalized without its weight: x / rms(x) `[pos, D]`.
    case ln2Normalized = "ln2.hook_normalized"
    /// Gate pre-activation xn · W_gateᵀ `[pos, F]`.
    case mlpPre = "mlp.hook_pre"
    /// act(gate) ⊙ (xn · W_upᵀ), the input of W_down `[pos, F]`.
    case mlpPost = "mlp.hook_post"
    /// MLP output `[pos, D]` (after the post-MLP norm in Gemma).
    case mlpOut = "hook_mlp_out"
    /// Residual stream leaving block L `[pos, D]`.
    case residPost = "hook_resid_post"
    /// Final RMSNorm output before its weight, x / rms(x) `[pos, D]` (TransformerLens folds the weight
    /// into the unembedding, so its hook_normalized has no weight either).
    case lnFinal = "ln_final.hook_normalized"
    /// Output logits `[pos, V]`.
    case logits = "logits"

    /// Exists once per block.
    public var isPerLayer: Bool {
        switch self {
        case .embed, .lnFinal, .logits: return false
        default: return true
        }
    }

    /// Has a head axis (heads can be selected).
    public var hasHeads: Bool {
        switch self {
        case .q, .k, .v, .qNormed, .kNormed, .rotQ, .rotK, .attnScores, .pattern, .z, .result: return true
        default: return false
        }
    }

    /// The head axis indexes key/value heads (query heads are mapped to their KV head, h / (H / Hkv)).
    public var usesKVHeads: Bool { self == .k || self == .v || self == .kNormed || self == .rotK }

    /// `[head, query, key]` attention tensors (selection forms rows / top-k / span mass apply).
    public var isAttention: Bool { self == .pattern || self == .attnScores }

    /// The full name at `layer` (ignored for global hooks).
    public func name(layer: Int?) -> String {
        isPerLayer ? "blocks.\(layer ?? 0).\(rawValue)" : rawValue
    }

    /// Short aliases accepted by the resolver, after TransformerLens' `utils.get_act_name`
    /// ("pattern", "attn" -> hook_pattern, "scores", "resid_pre", "q", ...).
    static let aliases: [String: HookKind] = {
        var m: [String: HookKind] = [:]
        for k in HookKind.allCases {
            m[k.rawValue] = k
            let last = k.rawValue.split(separator: ".").last.map(String.init) ?? k.rawValue
            m[last] = k // hook_pattern, hook_normalized
            if last.hasPrefix("hook_") { m[String(last.dropFirst(5))] = k } // pattern, resid_pre
        }
        // "hook_normalized" / "normalized" stay ln_final's (TransformerLens' get_act_name);
        // the block norms are "ln1.hook_normalized" / "ln2.hook_normalized" (or "ln1", "ln2").
        m["hook_normalized"] = .lnFinal
        m["ln1"] = .ln1Normalized
        m["ln2"] = .ln2Normalized
        m["q_normed"] = .qNormed
        m["k_normed"] = .kNormed
        m["mlp_pre"] = .mlpPre
        m["mlp_post"] = .mlpPost
        m["attn"] = .pattern
        m["scores"] = .attnScores
        m["rot_q"] = .rotQ
        m["rot_k"] = .rotK
        m["ln_final"] = .lnFinal
        m["normalized"] = .lnFinal
        m["embed"] = .embed
        m["unembed"] = .logits
        return m
    }()
}

/// One concrete hook point: a kind and, for per-layer kinds, a layer (0..<L).
public struct HookPoint: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var kind: HookKind
    public var layer: Int?

    public init(_ kind: HookKind, layer: Int? = nil) {
        precondition(
            kind.isPerLayer == (layer != nil), "\(kind.rawValue) \(kind.isPerLayer ? "needs" : "takes no") layer")
        self.kind = kind
        self.layer = layer
    }

    /// TransformerLens name, e.g. `blocks.3.attn.hook_pattern`, `logits`.
    public var name: String { kind.name(layer: layer) }
    public var description: String { name }

    /// Forward-pass order: embed, then blocks in order (each in `HookKind` order), then ln_final, logits.
    public static func < (a: HookPoint, b: HookPoint) -> Bool {
        func rank(_ p: HookPoint) -> (Int, Int, Int) {
            let order = HookKind.allCases.firstIndex(of: p.kind)!
            switch p.kind {
            case .embed: return (0, 0, order)
            case .lnFinal, .logits: return (2, 0, order)
            default: return (1, p.layer ?? 0, order)
            }
        }
        return rank(a) < rank(b)
    }

    /// Every hook point of a model with `nLayers` blocks, in forward order.
    public static func all(nLayers: Int) -> [HookPoint] {
        var out = [HookPoint(.embed)]
        for l in 0..<nLayers {
            for k in HookKind.allCases where k.isPerLayer { out.append(HookPoint(k, layer: l)) }
        }
        out += [HookPoint(.lnFinal), HookPoint(.logits)]
        return out
    }

    /// Resolves what a user wrote into hook points, in forward order:
    ///
    /// - a full name: `blocks.3.attn.hook_pattern`, `hook_embed`, `ln_final.hook_normalized`, `logits`;
    /// - a negative layer index: `blocks.-1.hook_resid_post` is the last block;
    /// - a short form without `blocks.{L}.`: `attn.hook_pattern`, `hook_resid_pre`, `pattern`, `z`,
    ///   `resid_post` (TransformerLens' `get_act_name` aliases) = that hook in every layer;
    /// - a glob (`*`, `?`, `[...]`) matched against every full name: `blocks.*.attn.hook_pattern`,
    ///   `blocks.1?.hook_*`, `*` (everything).
    ///
    /// Errors name the input and list the valid names or layer range.
    public static func resolve(_ pattern: String, nLayers: Int) throws -> [HookPoint] {
        let text = pattern.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { throw HookError.unknownHook(pattern, valid: validNames) }
        // blocks.{L}.rest
        if text.hasPrefix("blocks.") {
            let rest = text.dropFirst("blocks.".count)
            if let dot = rest.firstIndex(of: "."), let l = Int(rest[..<dot]) {
                let tail = String(rest[rest.index(after: dot)...])
                let layer = try normalizeLayer(l, nLayers: nLayers)
                if isGlob(tail) {
                    let matched = HookKind.allCases.filter { $0.isPerLayer && fnmatch(tail, $0.rawValue, 0) == 0 }
                    guard !matched.isEmpty else { throw HookError.noMatch(pattern, valid: validNames) }
                    return matched.map { HookPoint($0, layer: layer) }
                }
                guard
                    let kind = HookKind.allCases.first(where: { $0.rawValue == tail && $0.isPerLayer })
                        ?? HookKind.aliases[tail].flatMap({ $0.isPerLayer ? $0 : nil })
                else {
                    throw HookError.unknownHook(pattern, valid: validNames)
                }
                return [HookPoint(kind, layer: layer)]
            }
        }
        if isGlob(text) {
            let matched = all(nLayers: nLayers).filter { fnmatch(text, $0.name, 0) == 0 }
            guard !matched.isEmpty else { throw HookError.noMatch(pattern, valid: validNames) }
            return matched
        }
        if text.hasPrefix("blocks.") {
            // blocks.<not a number>...
            let rest = text.dropFirst("blocks.".count)
            let head = rest.split(separator: ".", maxSplits: 1).first.map(String.init) ?? ""
            throw HookError.badLayer(head, in: pattern, nLayers: nLayers)
        }
        guard let kind = HookKind.aliases[text] else { throw HookError.unknownHook(pattern, valid: validNames) }
        return kind.isPerLayer ? (0..<nLayers).map { HookPoint(kind, layer: $0) } : [HookPoint(kind)]
    }

    /// Resolves several patterns (comma-separated lists are split), without duplicates, in forward order.
    public static func resolve(_ patterns: [String], nLayers: Int) throws -> [HookPoint] {
        var set = Set<HookPoint>()
        for p in patterns.flatMap({ $0.split(separator: ",").map(String.init) }) {
            set.formUnion(try resolve(p, nLayers: nLayers))
        }
        return set.sorted()
    }

    /// Names listed in error messages.
    public static var validNames: [String] {
        HookKind.allCases.map { $0.isPerLayer ? "blocks.{L}.\($0.rawValue)" : $0.rawValue }
    }

    static func isGlob(_ s: String) -> Bool { s.contains { "*?[".contains($0) } }

    static func normalizeLayer(_ l: Int, nLayers: Int) throws -> Int {
        guard let r = wrappedIndex(l, count: nLayers) else { throw HookError.layerOutOfRange(l, nLayers: nLayers) }
        return r
    }
}

/// A malformed hook name or selection. Every message names the input and the valid range.
public enum HookError: LocalizedError, Equatable, Sendable {
    case unknownHook(String, valid: [String])
    /// A hook point this model's family does not have (e.g. attn.hook_q_normed without QK-norm).
    case notInModel(String, reason: String)
    case noMatch(String, valid: [String])
    case badLayer(String, in: String, nLayers: Int)
    case layerOutOfRange(Int, nLayers: Int)
    case headOutOfRange(Int, nHeads: Int)
    case queryOutOfRange(Int, length: Int)
    case badSelection(what: String, text: String, reason: String)
    case emptySelection(what: String, text: String)
    case emptySpan(label: String, start: Int, end: Int)
    case spanOutOfRange(label: String, start: Int, end: Int, length: Int)
    case spanNotFound(label: String, text: String)
    case formNotApplicable(form: String, hook: String)
    case duplicateCapture(String)
    case noHooks
    /// A capture of a pass that starts at `position` asks for an earlier query (already run).
    case queryAlreadyRun(Int, position: Int)

    public var errorDescription: String? {
        switch self {
        case .unknownHook(let h, let valid):
            return "unknown hook '\(h)'; valid hooks: \(valid.joined(separator: ", ")) "
                + "(short forms such as 'attn.hook_pattern' or 'pattern' select every layer; globs like "
                + "'blocks.*.attn.hook_pattern' and negative layers like 'blocks.-1.hook_resid_post' work too)"
        case .notInModel(let h, let reason):
            return "hook '\(h)' does not exist in this model: \(reason)"
        case .noMatch(let h, let valid):
            return "hook pattern '\(h)' matches no hook point; valid hooks: \(valid.joined(separator: ", "))"
        case .badLayer(let l, let h, let n):
            return "'\(l)' in hook '\(h)' is not a layer index; valid layers: 0...\(n - 1) (or -\(n)...-1)"
        case .layerOutOfRange(let l, let n):
            return
                "layer \(l) is out of range: the model has \(n) layers (valid: 0...\(n - 1), or -\(n)...-1 from the "
                + "end)"
        case .headOutOfRange(let h, let n):
            return
                "head \(h) is out of range: the model has \(n) query heads per layer (valid: 0...\(n - 1), or "
                + "-\(n)...-1)"
        case .queryOutOfRange(let q, let n):
            return
                "query position \(q) is out of range: the sequence has \(n) positions (valid: 0...\(n - 1), or "
                + "-\(n)...-1 from the end)"
        case .badSelection(let what, let text, let reason):
            return "cannot read \(what) selection '\(text)': \(reason)"
        case .emptySelection(let what, let text):
            return "\(what) selection '\(text)' selects nothing"
        case .emptySpan(let label, let a, let b):
            return "span '\(label)' = \(a):\(b) is empty (spans are half-open token ranges start:end with start < end)"
        case .spanOutOfRange(let label, let a, let b, let n):
            return
                "span '\(label)' = \(a):\(b) is outside the sequence of \(n) tokens (valid: 0 <= start < end <= \(n))"
        case .spanNotFound(let label, let text):
            return "span '\(label)': the text \"\(text)\" does not occur in the prompt"
        case .formNotApplicable(let form, let hook):
            return
                "\(form) applies to attention hooks only (hook_pattern\(form == "top-k" ? ", hook_attn_scores" : "")), "
                + "not to '\(hook)'"
        case .duplicateCapture(let h):
            return "hook '\(h)' is requested twice with different selections"
        case .noHooks:
            return "no hooks requested"
        case .queryAlreadyRun(let q, let p):
            return "query position \(q) was already run (the session is at position \(p)); capture it with a trace "
                + "from position 0, or rewind the session with truncate(to:) first"
        }
    }
}
