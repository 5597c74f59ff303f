import Foundation

// Head-aware KV-cache policies (DuoAttention, RazorAttention, StreamingLLM / LM-Infinite, Squeezed
// and Recycled Attention): which cached keys each query head may read, as a server that evicts
// keys would run it. A policy acts on the attention mask of its head in prefill *and* decode, so
// a windowed head never sees an evicted key, not even while the prompt is prefilled.
//
// Semantics, for a query at absolute position p of a head under each policy (on top of the causal
// mask and the layer's own sliding window, e.g. Gemma 3's local layers, which always apply):
//   full          keys 0...p
//   window W, S   keys k with k < S (attention sinks) or p - k < W (the W most recent, p included)
//   topk K        the K keys of 0...p with the highest scores q·k (ties: the earliest key first);
//                 all of 0...p when p + 1 <= K. The cache keeps every key (it must, to choose).
//   drop          no key: the head's cache is dropped and its output z is 0.

/// The KV policy of one query head.
public enum HeadKVPolicy: Sendable, Equatable, Hashable, CustomStringConvertible {
    case full
    /// The `size` most recent keys (the query's own included) plus the first `sinks` keys.
    case window(size: Int, sinks: Int)
    /// The `k` highest-scoring keys per query.
    case topk(Int)
    /// No keys: output 0.
    case drop

    /// `full`, `drop`, `window:W` / `window:W+S` (S sinks; default `defaultSinks`), `topk:K`
    /// (also `window=W`, `topk=K`).
    public init(parsing text: String, defaultSinks: Int = 4) throws {
        let t = text.lowercased().trimmingCharacters(in: .whitespaces)
        func int(_ s: Substring, _ what: String) throws -> Int {
            guard let v = Int(s) else {
                throw KVPolicyError.badPolicy(text: text, reason: "\(what) '\(s)' is not an integer")
            }
            return v
        }
        switch t {
        case "full": self = .full
        case "drop": self = .drop
        default:
            let parts = t.split(maxSplits: 1, whereSeparator: { $0 == ":" || $0 == "=" })
            guard parts.count == 2 else {
                throw KVPolicyError.badPolicy(
                    text: text, reason: "expected full, drop, window:W[+S] or topk:K")
            }
            switch parts[0] {
            case "window":
                let ws = parts[1].split(separator: "+", omittingEmptySubsequences: false)
                guard ws.count <= 2 else {
                    throw KVPolicyError.badPolicy(text: text, reason: "expected window:W or window:W+S")
                }
                let w = try int(ws[0], "window size")
                let s = ws.count == 2 ? try int(ws[1], "sink count") : defaultSinks
                self = .window(size: w, sinks: s)
            case "topk":
                self = .topk(try int(parts[1], "K"))
            default:
                throw KVPolicyError.badPolicy(
                    text: text, reason: "unknown policy '\(parts[0])'; expected full, drop, window:W[+S] or topk:K")
            }
        }
        try validate()
    }

    /// Checks the parameters alone (W >= 1, S >= 0, K >= 1).
    public func validate() throws {
        switch self {
        case .full, .drop: return
        case .window(let w, let s):
            guard w >= 1 else {
                throw KVPolicyError.badPolicy(text: description, reason: "window size W must be >= 1 (got \(w))")
            }
            guard s >= 0 else {
                throw KVPolicyError.badPolicy(text: description, reason: "sink count S must be >= 0 (got \(s))")
            }
        case .topk(let k):
            guard k >= 1 else { throw KVPolicyError.badPolicy(text: description, reason: "K must be >= 1 (got \(k))") }
        }
    }

    /// Checks the parameters against a context of `context` tokens: K must not exceed it (a top-K
    /// policy with K >= the context is full attention, most likely not what was meant).
    public func validate(context: Int) throws {
        try validate()
        if case .topk(let k) = self, k > context { throw KVPolicyError.topKExceedsContext(k: k, context: context) }
    }

    public var description: String {
        switch self {
        case .full: return "full"
        case .drop: return "drop"
        case .window(let w, let s): return "window:\(w)+\(s)"
        case .topk(let k): return "topk:\(k)"
        }
    }

    /// Cache entries (keys, and as many values) the head needs after `tokens` tokens, in a layer
    /// whose own sliding window is `layerWindow` (0: none). `topk` keeps every key.
    public func cachedTokens(context tokens: Int, layerWindow: Int = 0) -> Int {
        let cap = layerWindow > 0 ? min(tokens, layerWindow) : tokens
        switch self {
        case .full, .topk: return cap
        case .drop: return 0
        case .window(let w, let s): return min(cap, w + s)
        }
    }

    /// Whether a query at `position` may read key `key` (causal mask and layer window included;
    /// `topk` is decided by scores and answers for the causal/layer-window candidates).
    public func admits(key: Int, position: Int, layerWindow: Int = 0) -> Bool {
        guard key <= position, key >= 0 else { return false }
        if layerWindow > 0 && position - key >= layerWindow { return false }
        switch self {
        case .full, .topk: return true
        case .drop: return false
        case .window(let w, let s): return key < s || position - key < w
        }
    }
}

/// The KV policy of every query head of a model: `rest` for heads not listed in `heads`.
public struct KVPolicy: Sendable, Equatable {
    /// Policy of the heads not in `heads`.
    public var rest: HeadKVPolicy
    /// (layer, head) -> policy.
    public var heads: [KVHeadAddress: HeadKVPolicy]

    public init(rest: HeadKVPolicy = .full, heads: [KVHeadAddress: HeadKVPolicy] = [:]) {
        self.rest = rest
        self.heads = heads
    }

    /// Full KV cache on `fullHeads`, `rest` on every other head (DuoAttention's split).
    public init(full fullHeads: [(layer: Int, head: Int)], rest: HeadKVPolicy) {
        self.rest = rest
        heads = [:]
        for h in fullHeads { heads[KVHeadAddress(layer: h.layer, head: h.head)] = .full }
    }

    public func policy(layer: Int, head: Int) -> HeadKVPolicy {
        heads[KVHeadAddress(layer: layer, head: head)] ?? rest
    }

    /// Whether every head is `full` (no policy at all).
    public var isFull: Bool { rest == .full && heads.values.allSatisfy { $0 == .full } }

    /// Checks every policy and head address against the model and a context of `context` tokens.
    public func validate(config c: ModelConfig, context: Int) throws {
        try rest.validate(context: context)
        for (a, p) in heads.sorted(by: { ($0.key.layer, $0.key.head) < ($1.key.layer, $1.key.head) }) {
            guard a.layer >= 0 && a.layer < c.nLayers else {
                throw HookError.layerOutOfRange(a.layer, nLayers: c.nLayers)
            }
            guard a.head >= 0 && a.head < c.nHeads else { throw HookError.headOutOfRange(a.head, nHeads: c.nHeads) }
            try p.validate(context: context)
        }
    }

    /// KV-cache bytes this policy needs after `tokens` tokens: the sum over layers l and KV heads g
    /// of 2 (K and V) x dh x `bytesPerValue` x n(l, g), where n(l, g) is the largest
    /// `cachedTokens` of the query heads sharing KV head g (a KV head is stored once for its
    /// group, so one full query head keeps the group's cache whole).
    public func cacheBytes(config c: ModelConfig, tokens: Int, bytesPerValue: Int = 2) -> Int {
        var total = 0
        for l in 0..<c.nLayers {
            for g in 0..<c.nKVHeads {
                var n = 0
                for h in (g * c.groupSize)..<((g + 1) * c.groupSize) {
                    n = max(n, policy(layer: l, head: h).cachedTokens(context: tokens, layerWindow: c.window(l)))
                }
                total += 2 * c.dHead * bytesPerValue * n
            }
        }
        return total
    }
}

/// A query head (layer, head) addressed by a KV policy.
public struct KVHeadAddress: Hashable, Sendable, Comparable {
    public var layer: Int
    public var head: Int
    public init(layer: Int, head: Int) {
        self.layer = layer
        self.head = head
    }
    public static func < (a: Self, b: Self) -> Bool { (a.layer, a.head) < (b.layer, b.head) }
}

public enum KVPolicyError: LocalizedError, Equatable, Sendable {
    case badPolicy(text: String, reason: String)
    case topKExceedsContext(k: Int, context: Int)

    public var errorDescription: String? {
        switch self {
        case .badPolicy(let t, let r): return "bad KV policy '\(t)': \(r)"
        case .topKExceedsContext(let k, let n):
            return "KV policy topk:\(k) keeps more keys than the context holds (\(n) tokens)"
        }
    }

    public var recoverySuggestion: String? {
        switch self {
        case .badPolicy: return "write full, drop, window:W+S (W >= 1 recent keys, S >= 0 sinks) or topk:K (K >= 1)"
        case .topKExceedsContext: return "choose K below the context length (topk with K >= context is full attention)"
        }
    }
}
