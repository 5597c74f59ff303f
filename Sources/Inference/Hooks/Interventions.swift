import Foundation

// Interventions: head ablations and activation patching, addressed like captures (layer, head,
// absolute position) and applied during prefill, decode or both. Set them on a session
// (`interventions`, `headMeans`, `patches`); they apply from the next `prefill`/`step` on.

/// How a head is ablated.
public enum AblationMethod: Sendable, Equatable {
    /// The head's output z (probabilities · values) is set to 0.
    case zero
    /// z is replaced by its mean: `InferenceSession.headMeans[layer]` (a reference run, see
    /// `Model.meanHeadOutputs`) when set, else the running mean of the head's own (unablated) z over
    /// the current sequence, positions 0...q (causal, so prefill and decode agree; at position 0 it
    /// equals the head's own output).
    case mean
    /// Uniform attention: the query is zeroed after RoPE (Wu et al.'s rule), so every score is 0
    /// and the softmax averages the values of keys 0...q.
    case uniform
    /// All attention on the first token: z = v of key 0 (the head's KV head).
    case bos
    /// z multiplied by a factor.
    case scale(Float)

    /// `zero`, `mean`, `uniform`, `bos`, `scale=2.5` (also `scale2.5`, `scale:2.5`).
    public init(parsing text: String) throws {
        let t = text.lowercased()
        switch t {
        case "zero", "0": self = .zero
        case "mean": self = .mean
        case "uniform": self = .uniform
        case "bos", "first": self = .bos
        default:
            if t.hasPrefix("scale") {
                var num = t.dropFirst(5)
                if num.first == "=" || num.first == ":" || num.first == "x" { num = num.dropFirst() }
                if let s = Float(num), s.isFinite {
                    self = .scale(s)
                    return
                }
            }
            throw HookError.badSelection(
                what: "ablation method", text: text,
                reason: "expected zero, mean, uniform, bos or scale=FACTOR")
        }
    }

    public var description: String {
        switch self {
        case .zero: return "zero"
        case .mean: return "mean"
        case .uniform: return "uniform"
        case .bos: return "bos"
        case .scale(let s): return "scale=\(s)"
        }
    }
}

/// When an intervention applies: during prefill (prompt chunks), decode steps, or both.
public enum InterventionPhase: String, Sendable {
    case prefill, decode, both

    func covers(_ p: ForwardPhase) -> Bool {
        switch self {
        case .both: return true
        case .prefill: return p == .prefill
        case .decode: return p == .decode
        }
    }
}

/// Which kind of pass is running: `prefill` (prompt chunks) or `decode` (`step`).
public enum ForwardPhase: String, Sendable { case prefill, decode }

/// Ablates (or scales) query head `head` of block `layer`.
public struct HeadIntervention: Sendable, Equatable {
    public var layer: Int
    public var head: Int
    public var method: AblationMethod
    public var phase: InterventionPhase

    public init(layer: Int, head: Int, method: AblationMethod, phase: InterventionPhase = .both) {
        self.layer = layer
        self.head = head
        self.method = method
        self.phase = phase
    }

    /// Parses a comma-separated list of `L.H[:method]` (method default `defaultMethod`); `L.*` is
    /// every head of layer L, `*.H` head H of every layer; negative indices count from the end.
    public static func parse(
        _ text: String, config c: ModelConfig, defaultMethod: AblationMethod = .zero,
        phase: InterventionPhase = .both
    ) throws -> [HeadIntervention] {
        var out: [HeadIntervention] = []
        for raw in text.split(separator: ",") {
            let item = raw.trimmingCharacters(in: .whitespaces)
            var addr = Substring(item), method = defaultMethod
            if let colon = item.firstIndex(of: ":") {
                addr = item[..<colon]
                method = try AblationMethod(parsing: String(item[item.index(after: colon)...]))
            }
            let parts = addr.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw HookError.badSelection(
                    what: "ablation", text: item, reason: "expected LAYER.HEAD[:method], e.g. 3.4:zero")
            }
            func indices(_ s: Substring, _ n: Int, _ err: (Int) -> HookError) throws -> [Int] {
                if s == "*" { return Array(0..<n) }
                guard let i = Int(s) else {
                    throw HookError.badSelection(what: "ablation", text: item, reason: "'\(s)' is not an index or *")
                }
                guard let r = wrappedIndex(i, count: n) else { throw err(i) }
                return [r]
            }
            let layers = try indices(parts[0], c.nLayers) { HookError.layerOutOfRange($0, nLayers: c.nLayers) }
            let heads = try indices(parts[1], c.nHeads) { HookError.headOutOfRange($0, nHeads: c.nHeads) }
            for l in layers {
                for h in heads { out.append(HeadIntervention(layer: l, head: h, method: method, phase: phase)) }
            }
        }
        return out
    }

    public var description: String { "\(layer).\(head):\(method.description)@\(phase.rawValue)" }
}

/// Replaces activations with values from another run (activation patching). Values are given for
/// absolute positions `start..<start + rows`; positions outside that range are left alone.
public struct ActivationPatch: Sendable {
    public enum Target: Sendable, Hashable {
        /// A head's output z (width dh), replacing it before W_O.
        case headOutput(layer: Int, head: Int)
        /// The residual stream entering the block (width D).
        case residPre(layer: Int)
        /// The attention output added to the residual stream (width D).
        case attnOut(layer: Int)
        /// The MLP output (width D).
        case mlpOut(layer: Int)
        /// The residual stream leaving the block (width D).
        case residPost(layer: Int)

        var layer: Int {
            switch self {
            case .headOutput(let l, _), .residPre(let l), .attnOut(let l), .mlpOut(let l), .residPost(let l): return l
            }
        }

        /// The hook point the patch replaces (hook_z for a head output).
        var kind: HookKind {
            switch self {
            case .headOutput: return .z
            case .residPre: return .residPre
            case .attnOut: return .attnOut
            case .mlpOut: return .mlpOut
            case .residPost: return .residPost
            }
        }
    }
    public var target: Target
    public var start: Int
    /// `[rows, width]` row-major.
    public var values: [Float]
    public var phase: InterventionPhase

    public init(_ target: Target, start: Int = 0, values: [Float], phase: InterventionPhase = .both) {
        self.target = target
        self.start = start
        self.values = values
        self.phase = phase
    }

    /// A patch from a captured tensor of another run: `hook_z` (pick `head`, the index of a
    /// captured query head) or a `[pos, d_model]` hook (resid_pre/attn_out/mlp_out/resid_post).
    /// The capture's positions must be contiguous.
    public init(from t: CapturedTensor, head: Int? = nil, phase: InterventionPhase = .both) throws {
        let l = t.layout
        guard let layer = l.point.layer, let first = l.queries.first, l.queries.last! - first + 1 == l.queries.count
        else {
            throw HookError.badSelection(
                what: "patch", text: l.name, reason: "needs a per-layer capture of contiguous positions")
        }
        switch l.point.kind {
        case .z:
            guard let head, let hi = l.heads?.firstIndex(of: head) else {
                throw HookError.badSelection(
                    what: "patch", text: l.name, reason: "head \(head.map(String.init) ?? "nil") was not captured")
            }
            let nh = l.shape[1], dh = l.shape[2]
            var v = [Float](repeating: 0, count: l.queries.count * dh)
            for r in 0..<l.queries.count {
                for j in 0..<dh { v[r * dh + j] = t.values[(r * nh + hi) * dh + j] }
            }
            self.init(.headOutput(layer: layer, head: head), start: first, values: v, phase: phase)
        case .residPre: self.init(.residPre(layer: layer), start: first, values: t.values, phase: phase)
        case .attnOut: self.init(.attnOut(layer: layer), start: first, values: t.values, phase: phase)
        case .mlpOut: self.init(.mlpOut(layer: layer), start: first, values: t.values, phase: phase)
        case .residPost: self.init(.residPost(layer: layer), start: first, values: t.values, phase: phase)
        default:
            throw HookError.badSelection(
                what: "patch", text: l.name, reason: "only hook_z and residual-stream hooks can be patched")
        }
    }
}

/// Per-layer intervention tables, rebuilt when the session's lists change.
final class InterventionTable {
    struct Head {
        var head: Int
        var method: AblationMethod
    }
    /// [layer] -> per phase: heads whose query is zeroed (uniform), heads whose z is rewritten.
    var uniform: [[ForwardPhase: [Int]]]
    var zHeads: [[ForwardPhase: [Head]]]
    var patches: [[ActivationPatch]]
    /// [layer] -> the heads whose KV policy is not `full`, in head order (every phase).
    var policies: [[(head: Int, policy: HeadKVPolicy)]]
    let any: [Bool]

    init(
        config c: ModelConfig, interventions: [HeadIntervention], patches: [ActivationPatch], means: [Int: [Float]]?,
        kvPolicy: KVPolicy? = nil, maxContext: Int = Int.max
    ) throws {
        var policies = [[(head: Int, policy: HeadKVPolicy)]](repeating: [], count: c.nLayers)
        if let kv = kvPolicy, !kv.isFull {
            try kv.validate(config: c, context: maxContext)
            for l in 0..<c.nLayers {
                for h in 0..<c.nHeads {
                    let pol = kv.policy(layer: l, head: h)
                    if pol != .full { policies[l].append((h, pol)) }
                }
            }
        }
        self.policies = policies
        var uniform = [[ForwardPhase: [Int]]](repeating: [:], count: c.nLayers)
        var zHeads = [[ForwardPhase: [Head]]](repeating: [:], count: c.nLayers)
        var byLayer = [[ActivationPatch]](repeating: [], count: c.nLayers)
        for iv in interventions {
            guard iv.layer >= 0 && iv.layer < c.nLayers else {
                throw HookError.layerOutOfRange(iv.layer, nLayers: c.nLayers)
            }
            guard iv.head >= 0 && iv.head < c.nHeads else { throw HookError.headOutOfRange(iv.head, nHeads: c.nHeads) }
            if iv.method == .mean, let means {
                guard let m = means[iv.layer] else {
                    throw HookError.badSelection(
                        what: "head means", text: "layer \(iv.layer)",
                        reason: "headMeans has no entry for this layer (layers present: \(means.keys.sorted()))")
                }
                guard m.count == c.qWidth else {
                    throw HookError.badSelection(
                        what: "head means", text: "layer \(iv.layer)",
                        reason: "expected \(c.qWidth) values (H x dh), found \(m.count)")
                }
            }
            for ph in [ForwardPhase.prefill, .decode] where iv.phase.covers(ph) {
                if iv.method == .uniform {
                    uniform[iv.layer][ph, default: []].append(iv.head)
                } else {
                    zHeads[iv.layer][ph, default: []].append(Head(head: iv.head, method: iv.method))
                }
            }
        }
        for p in patches {
            let l = p.target.layer
            guard l >= 0 && l < c.nLayers else { throw HookError.layerOutOfRange(l, nLayers: c.nLayers) }
            let width: Int
            if case .headOutput(_, let h) = p.target {
                guard h >= 0 && h < c.nHeads else { throw HookError.headOutOfRange(h, nHeads: c.nHeads) }
                width = c.dHead
            } else {
                width = c.dModel
            }
            guard p.values.count % width == 0, p.start >= 0 else {
                throw HookError.badSelection(
                    what: "patch", text: "\(p.target)",
                    reason: "\(p.values.count) values are not whole rows of \(width)")
            }
            byLayer[l].append(p)
        }
        any = (0..<c.nLayers).map { l in
            !uniform[l].values.allSatisfy(\.isEmpty) || !zHeads[l].values.allSatisfy(\.isEmpty) || !byLayer[l].isEmpty
                || !policies[l].isEmpty
        }
        self.uniform = uniform
        self.zHeads = zHeads
        self.patches = byLayer
    }

    var needsRunningMeans: Bool { zHeads.contains { $0.values.contains { $0.contains { $0.method == .mean } } } }

    func patches(_ l: Int, _ phase: ForwardPhase) -> [ActivationPatch] {
        patches[l].filter { $0.phase.covers(phase) }
    }

}

/// Prefix sums of one head's original output z from position `start` on: row i holds
/// sum(z[start...start+i]) ([rows, dh], Double), for `.mean` ablation without reference means.
struct RunningMean {
    var start: Int
    var prefix: [Double] = []

    func rows(_ dh: Int) -> Int { prefix.count / dh }

    /// Keeps positions < n; false when nothing is left.
    mutating func truncate(to n: Int, dHead dh: Int) -> Bool {
        guard n > start else { return false }
        let keep = (n - start) * dh
        if prefix.count > keep { prefix.removeLast(prefix.count - keep) }
        return true
    }
}

extension ActivationPatch {
    /// Copies this patch's rows that fall in positions p..<p+t into `dst` (row r of the chunk at
    /// dst + r * stride, width floats).
    func apply(start p: Int, rows t: Int, to dst: UnsafeMutablePointer<Float>, stride: Int, width: Int) {
        let n = values.count / width
        let lo = max(p, start), hi = min(p + t, start + n)
        guard lo < hi else { return }
        values.withUnsafeBufferPointer { v in
            for pos in lo..<hi {
                (dst + (pos - p) * stride).update(from: v.baseAddress! + (pos - start) * width, count: width)
            }
        }
    }
}
