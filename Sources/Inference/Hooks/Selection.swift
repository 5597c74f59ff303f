import Foundation

// "Ask, then observe": what a capture selects (layers, heads, query positions, and for attention
// the form: full rows, top-k keys, or mass on labelled spans), and its resolution against a
// model and a sequence into concrete `CaptureLayout`s. Nothing outside a layout is copied.

/// Index `i` of 0..<n, negative counting from the end (-1 = n - 1); nil when outside.
public func wrappedIndex(_ i: Int, count n: Int) -> Int? {
    let r = i < 0 ? i + n : i
    return r >= 0 && r < n ? r : nil
}

/// The slice `a:b` of 0..<n as Python takes it: missing ends are 0 and n, negative ends count
/// from the end, both are clipped to 0...n (empty when a >= b).
func sliceRange(_ a: Int?, _ b: Int?, count n: Int) -> Range<Int> {
    func norm(_ v: Int?, _ dflt: Int) -> Int {
        guard let v else { return dflt }
        return min(max(v < 0 ? v + n : v, 0), n)
    }
    let lo = norm(a, 0), hi = norm(b, n)
    return lo < hi ? lo..<hi : n..<n
}

/// A selection of indices along one axis (layers, heads): Python-like text `0,3,5:8,-1`, `:4`,
/// `-2:`, `all` / `*`. Ranges are half-open; negative numbers count from the end.
public struct IndexSelection: Sendable, Equatable {
    public enum Item: Sendable, Equatable { case index(Int), range(Int?, Int?) }
    public var items: [Item]
    /// Everything.
    public static let all = IndexSelection(items: [.range(nil, nil)])

    public init(items: [Item]) { self.items = items }
    public init(_ indices: [Int]) { items = indices.map { .index($0) } }

    /// Parses `0,3,5:8,-1`, `all`. `what` names the axis in errors ("layer", "head").
    public init(parsing text: String, what: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t == "all" || t == "*" || t == ":" {
            self = .all
            return
        }
        var items: [Item] = []
        for part in t.split(separator: ",", omittingEmptySubsequences: false) {
            let p = part.trimmingCharacters(in: .whitespaces)
            if let i = Int(p) {
                items.append(.index(i))
                continue
            }
            let ends = p.split(separator: ":", omittingEmptySubsequences: false)
            guard ends.count == 2 else {
                throw HookError.badSelection(what: what, text: text, reason: "'\(p)' is not an index or a range a:b")
            }
            func bound(_ s: Substring) throws -> Int? {
                let s = s.trimmingCharacters(in: .whitespaces)
                if s.isEmpty { return nil }
                guard let v = Int(s) else {
                    throw HookError.badSelection(what: what, text: text, reason: "'\(s)' is not an integer")
                }
                return v
            }
            items.append(.range(try bound(ends[0]), try bound(ends[1])))
        }
        guard !items.isEmpty else { throw HookError.emptySelection(what: what, text: text) }
        self.items = items
    }

    /// The sorted, distinct indices in 0..<count. Out-of-range single indices are errors made by
    /// `outOfRange`; ranges are clipped like Python slices, and an empty result is an error.
    public func resolve(count n: Int, what: String, outOfRange: (Int) -> HookError) throws -> [Int] {
        var set = Set<Int>()
        for item in items {
            switch item {
            case .index(let i):
                guard let r = wrappedIndex(i, count: n) else { throw outOfRange(i) }
                set.insert(r)
            case .range(let a, let b):
                set.formUnion(sliceRange(a, b, count: n))
            }
        }
        guard !set.isEmpty else { throw HookError.emptySelection(what: what, text: description) }
        return set.sorted()
    }

    public var description: String {
        items.map {
            switch $0 {
            case .index(let i): return "\(i)"
            case .range(let a, let b): return "\(a.map(String.init) ?? ""):\(b.map(String.init) ?? "")"
            }
        }.joined(separator: ",")
    }
}

extension IndexSelection: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: Int...) { self.init(elements) }
}

/// Which query positions to capture. Positions are absolute: 0 is the first prompt token, and the
/// decode steps that follow a prompt of P tokens are P, P+1, ...
public struct QuerySelection: Sendable, Equatable {
    public enum Item: Sendable, Equatable {
        /// Every position (prompt and decode steps).
        case all
        /// Every prompt position.
        case prompt
        /// The last n prompt positions.
        case last(Int)
        /// Every decode step.
        case decode
        /// One position; negative counts from the end of the whole sequence.
        case position(Int)
        /// Half-open range of positions (Python slice semantics, negatives from the end).
        case range(Int?, Int?)
    }
    public var items: [Item]

    public init(_ items: [Item]) { self.items = items }
    public static let all = QuerySelection([.all])
    public static func last(_ n: Int) -> QuerySelection { QuerySelection([.last(n)]) }
    public static let prompt = QuerySelection([.prompt])
    public static let decode = QuerySelection([.decode])
    public static func positions(_ p: [Int]) -> QuerySelection { QuerySelection(p.map { .position($0) }) }

    /// Parses a comma-separated list of `all`, `prompt`, `decode`, `last:N`, `a:b`, `n`.
    public init(parsing text: String) throws {
        var items: [Item] = []
        for part in text.split(separator: ",") {
            let p = part.trimmingCharacters(in: .whitespaces).lowercased()
            switch p {
            case "all", "*": items.append(.all)
            case "prompt": items.append(.prompt)
            case "decode", "generated", "gen": items.append(.decode)
            default:
                if p.hasPrefix("last:") || p.hasPrefix("last") && Int(p.dropFirst(4)) != nil {
                    let num = p.hasPrefix("last:") ? p.dropFirst(5) : p.dropFirst(4)
                    guard let n = Int(num), n > 0 else {
                        throw HookError.badSelection(
                            what: "query", text: text, reason: "last:N needs a positive N, got '\(num)'")
                    }
                    items.append(.last(n))
                } else if let i = Int(p) {
                    items.append(.position(i))
                } else {
                    let ends = p.split(separator: ":", omittingEmptySubsequences: false)
                    guard ends.count == 2 else {
                        throw HookError.badSelection(
                            what: "query", text: text,
                            reason: "'\(p)' is not all, prompt, decode, last:N, a position or a range a:b")
                    }
                    func bound(_ s: Substring) throws -> Int? {
                        if s.isEmpty { return nil }
                        guard let v = Int(s) else {
                            throw HookError.badSelection(what: "query", text: text, reason: "'\(s)' is not an integer")
                        }
                        return v
                    }
                    items.append(.range(try bound(ends[0]), try bound(ends[1])))
                }
            }
        }
        guard !items.isEmpty else { throw HookError.emptySelection(what: "query", text: text) }
        self.items = items
    }

    /// Sorted distinct absolute positions for a prompt of `prompt` tokens followed by `decode` steps.
    public func resolve(prompt p: Int, decode d: Int) throws -> [Int] {
        let n = p + d
        var set = Set<Int>()
        for item in items {
            switch item {
            case .all: set.formUnion(0..<n)
            case .prompt: set.formUnion(0..<p)
            case .last(let k): set.formUnion(max(0, p - k)..<p)
            case .decode: set.formUnion(p..<n)
            case .position(let i):
                guard let r = wrappedIndex(i, count: n) else { throw HookError.queryOutOfRange(i, length: n) }
                set.insert(r)
            case .range(let a, let b):
                set.formUnion(sliceRange(a, b, count: n))
            }
        }
        guard !set.isEmpty else { throw HookError.emptySelection(what: "query", text: description) }
        return set.sorted()
    }

    public var description: String {
        items.map {
            switch $0 {
            case .all: return "all"
            case .prompt: return "prompt"
            case .last(let k): return "last:\(k)"
            case .decode: return "decode"
            case .position(let i): return "\(i)"
            case .range(let a, let b): return "\(a.map(String.init) ?? ""):\(b.map(String.init) ?? "")"
            }
        }.joined(separator: ",")
    }
}

/// A labelled half-open range of key positions `start..<end`, for attention-mass captures.
public struct TokenSpan: Sendable, Equatable, Hashable {
    public var label: String
    public var start: Int
    public var end: Int
    public init(_ label: String, _ start: Int, _ end: Int) {
        self.label = label
        self.start = start
        self.end = end
    }

    /// The tokens covering the first occurrence (at or after `occurrence`-th) of `text` in the
    /// concatenated bytes of `pieces` (one entry per token, e.g. `Tokenizer.pieceBytes`).
    public static func find(_ text: String, label: String, in pieces: [[UInt8]]) throws -> TokenSpan {
        let needle = Array(text.utf8)
        guard !needle.isEmpty else { throw HookError.emptySpan(label: label, start: 0, end: 0) }
        var hay: [UInt8] = [], starts: [Int] = []
        for p in pieces {
            starts.append(hay.count)
            hay += p
        }
        guard hay.count >= needle.count else { throw HookError.spanNotFound(label: label, text: text) }
        var at = -1
        search: for i in 0...(hay.count - needle.count) {
            for j in 0..<needle.count where hay[i + j] != needle[j] { continue search }
            at = i
            break
        }
        guard at >= 0 else { throw HookError.spanNotFound(label: label, text: text) }
        // first token whose bytes reach past `at`; last token that starts before at + len
        let endByte = at + needle.count
        var first = 0
        while first + 1 < starts.count && starts[first + 1] <= at { first += 1 }
        var last = first
        while last + 1 < starts.count && starts[last + 1] < endByte { last += 1 }
        return TokenSpan(label, first, last + 1)
    }

    /// Parses `label=a:b` (token positions, half-open; negatives from the end of `length`).
    /// Returns nil when the right-hand side is not a numeric range (then it is text to find).
    public static func parseRange(_ spec: String, length n: Int) throws -> TokenSpan? {
        guard let eq = spec.firstIndex(of: "=") else {
            throw HookError.badSelection(what: "span", text: spec, reason: "expected label=start:end or label=text")
        }
        let label = String(spec[..<eq]).trimmingCharacters(in: .whitespaces)
        let rhs = spec[spec.index(after: eq)...]
        guard !label.isEmpty else {
            throw HookError.badSelection(what: "span", text: spec, reason: "the label is empty")
        }
        let parts = rhs.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = Int(parts[0].trimmingCharacters(in: .whitespaces)),
            let b = Int(parts[1].trimmingCharacters(in: .whitespaces))
        else { return nil }
        let s = TokenSpan(label, a < 0 ? a + n : a, b < 0 ? b + n : b)
        try s.validate(length: n, given: (a, b))
        return s
    }

    func validate(length n: Int, given: (Int, Int)? = nil) throws {
        let (ga, gb) = given ?? (start, end)
        guard start < end else { throw HookError.emptySpan(label: label, start: ga, end: gb) }
        guard start >= 0 && end <= n else {
            throw HookError.spanOutOfRange(label: label, start: ga, end: gb, length: n)
        }
    }
}

/// How attention rows (`hook_pattern`, `hook_attn_scores`) are captured.
public enum AttentionForm: Sendable, Equatable {
    /// Whole rows over every key (`full` when every query is selected, else `rows`).
    case rows
    /// The k largest keys per row: values `[head, query, k]` plus int32 key indices (padded with
    /// index -1 and value 0 when a row has fewer than k keys). Ties: the lower key index first.
    case topK(Int)
    /// Attention mass summed over each span's keys (those not after the query) `[head, query, span]`.
    /// Pattern only.
    case spanMass([TokenSpan])

    var name: String {
        switch self {
        case .rows: return "rows"
        case .topK: return "top-k"
        case .spanMass: return "span mass"
        }
    }
}

/// One request: hooks (names, short forms or globs), and the layers, heads and query positions
/// to keep. Layers filter every per-layer hook; heads apply to hooks with a head axis (query
/// heads; for `hook_k`/`hook_v`/`hook_rot_k` they select the key/value heads those query heads read).
public struct CaptureRequest: Sendable, Equatable {
    public var hooks: [String]
    public var layers: IndexSelection?
    public var heads: IndexSelection?
    public var queries: QuerySelection
    /// Applies to attention hooks; other hooks always capture whole rows.
    public var form: AttentionForm

    public init(
        hooks: [String], layers: IndexSelection? = nil, heads: IndexSelection? = nil,
        queries: QuerySelection = .all, form: AttentionForm = .rows
    ) {
        self.hooks = hooks
        self.layers = layers
        self.heads = heads
        self.queries = queries
        self.form = form
    }
}

/// One resolved capture: a hook point and exactly what is kept of it, with the shape of the
/// tensor it fills (one HDF5 dataset, or one `CapturedTensor` in memory).
public struct CaptureLayout: Sendable, Equatable {
    public enum Form: String, Sendable { case full, rows, topk, spanMass = "span_mass" }
    public var point: HookPoint
    public var form: Form
    /// Selected query heads (for hooks with heads), in order.
    public var queryHeads: [Int]?
    /// Indices along the head axis: `queryHeads`, or for hook_k/v/rot_k the distinct KV heads they read.
    public var heads: [Int]?
    /// Absolute positions along the `pos`/`query` axis, in order.
    public var queries: [Int]
    /// Shape of the value tensor.
    public var shape: [Int]
    /// Axis names, e.g. ["head", "query", "key"].
    public var axes: [String]
    /// Top-k: k.
    public var k: Int?
    public var spans: [TokenSpan]?
    /// Number of positions the run was planned for (the key axis length of attention rows).
    public var sequenceLength: Int
    /// Whether some selected queries are decode steps.
    public var includesDecode: Bool

    public var name: String { point.name }
    public var count: Int { shape.reduce(1, *) }
    /// The sibling index tensor of a top-k capture, `<hook>.topk_indices`.
    public var indicesName: String? { form == .topk ? name + ".topk_indices" : nil }
}

/// The resolved captures of one run: every request matched against the model and a sequence of
/// `promptLength` prompt tokens followed by `decodeSteps` decode steps. A plan for one decode step
/// of a session at position P (`InferenceSession.step(token:capturing:into:)`) has P prompt
/// tokens (possibly 0) and one decode step.
public struct TracePlan: Sendable {
    public let config: ModelConfig
    public let promptLength: Int
    public let decodeSteps: Int
    public let captures: [CaptureLayout]

    public var sequenceLength: Int { promptLength + decodeSteps }

    public init(config c: ModelConfig, requests: [CaptureRequest], promptLength: Int, decodeSteps: Int = 0) throws {
        precondition(promptLength >= 0 && decodeSteps >= 0 && promptLength + decodeSteps > 0)
        self.config = c
        self.promptLength = promptLength
        self.decodeSteps = decodeSteps
        let n = promptLength + decodeSteps
        var out: [CaptureLayout] = []
        var seen: [String: Int] = [:]
        for r in requests {
            guard !r.hooks.isEmpty else { throw HookError.noHooks }
            var points = try HookPoint.resolve(r.hooks, nLayers: c.nLayers)
            if !c.qkNorm {
                // QK-norm hooks exist only in families with QK-norm: dropped from globs, an error
                // when they are all the request names.
                let kept = points.filter { $0.kind != .qNormed && $0.kind != .kNormed }
                if kept.isEmpty, let first = points.first {
                    throw HookError.notInModel(
                        first.name, reason: "\(c.architecture) has no QK-norm (Qwen3 and Gemma 3 have)")
                }
                points = kept
            }
            if let sel = r.layers {
                let layers = Set(
                    try sel.resolve(count: c.nLayers, what: "layer") {
                        HookError.layerOutOfRange($0, nLayers: c.nLayers)
                    })
                points = points.filter { !$0.kind.isPerLayer || layers.contains($0.layer!) }
                if points.isEmpty { throw HookError.emptySelection(what: "layer", text: sel.description) }
            }
            let heads = try (r.heads ?? .all).resolve(count: c.nHeads, what: "head") {
                HookError.headOutOfRange($0, nHeads: c.nHeads)
            }
            let queries = try r.queries.resolve(prompt: promptLength, decode: decodeSteps)
            if case .spanMass(let spans) = r.form {
                guard !spans.isEmpty else { throw HookError.emptySelection(what: "span", text: "") }
                for s in spans { try s.validate(length: n) }
            }
            if case .topK(let k) = r.form, k < 1 {
                throw HookError.badSelection(what: "top-k", text: "\(k)", reason: "k must be at least 1")
            }
            if r.form != .rows, let first = points.first, !points.contains(where: { $0.kind.isAttention }) {
                throw HookError.formNotApplicable(form: r.form.name, hook: first.name)
            }
            for p in points {
                let layout = try Self.layout(
                    p, config: c, heads: heads, queries: queries, form: r.form, length: n,
                    promptLength: promptLength, explicitForm: r.form != .rows)
                if let i = seen[layout.name] {
                    if out[i] != layout { throw HookError.duplicateCapture(layout.name) }
                    continue
                }
                seen[layout.name] = out.count
                out.append(layout)
            }
        }
        guard !out.isEmpty else { throw HookError.noHooks }
        captures = out.sorted { $0.point < $1.point }
    }

    static func layout(
        _ p: HookPoint, config c: ModelConfig, heads: [Int], queries: [Int], form: AttentionForm,
        length n: Int, promptLength: Int, explicitForm: Bool
    ) throws -> CaptureLayout {
        let nq = queries.count
        let allQueries = nq == n
        var l = CaptureLayout(
            point: p, form: allQueries ? .full : .rows, queryHeads: nil, heads: nil, queries: queries,
            shape: [], axes: [], k: nil, spans: nil, sequenceLength: n,
            includesDecode: (queries.last ?? 0) >= promptLength)
        if p.kind.hasHeads {
            l.queryHeads = heads
            l.heads = p.kind.usesKVHeads ? Array(Set(heads.map { $0 / c.groupSize })).sorted() : heads
        }
        let nh = l.heads?.count ?? 0
        switch p.kind {
        case .embed, .residPre, .attnOut, .mlpOut, .residPost, .lnFinal, .residMid, .ln1Normalized, .ln2Normalized:
            l.shape = [nq, c.dModel]
            l.axes = ["pos", "d_model"]
        case .mlpPre, .mlpPost:
            l.shape = [nq, c.dFF]
            l.axes = ["pos", "d_mlp"]
        case .logits:
            l.shape = [nq, c.vocabSize]
            l.axes = ["pos", "d_vocab"]
        case .q, .qNormed, .rotQ, .z:
            l.shape = [nq, nh, c.dHead]
            l.axes = ["pos", "head", "d_head"]
        case .k, .v, .kNormed, .rotK:
            l.shape = [nq, nh, c.dHead]
            l.axes = ["pos", "kv_head", "d_head"]
        case .result:
            l.shape = [nq, nh, c.dModel]
            l.axes = ["pos", "head", "d_model"]
        case .pattern, .attnScores:
            switch form {
            case .rows:
                l.shape = [nh, nq, n]
                l.axes = ["head", "query", "key"]
            case .topK(let k):
                l.form = .topk
                l.k = k
                l.shape = [nh, nq, k]
                l.axes = ["head", "query", "k"]
            case .spanMass(let spans):
                guard p.kind == .pattern else { throw HookError.formNotApplicable(form: "span mass", hook: p.name) }
                l.form = .spanMass
                l.spans = spans
                l.shape = [nh, nq, spans.count]
                l.axes = ["head", "query", "span"]
            }
        }
        return l
    }
}
