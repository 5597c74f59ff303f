// The `/captures` group of a `headlight trace` run file (docs/run-file.md, "Captures"), reduced to
// what the attention viewer draws: attention patterns binned to at most `maxBins` query and key
// bins, attention mass on spans, and the norms of residual-stream-like hooks. Reading is
// streamed (one head and 64 query rows at a time), so a long capture never sits in memory whole.
//
// Binning ("downsampling") is exact and documented on every figure: an axis of n stored
// positions is cut into min(n, maxBins) contiguous bins of ⌊n/b⌋ or ⌈n/b⌉ positions; a pattern
// cell is the attention mass on the keys of its key bin, averaged over the queries of its query
// bin (rows still sum to 1). With n <= maxBins every bin is one position and nothing is lost.
import Foundation
import TraceStore

/// Contiguous bins over the stored positions of one axis.
public struct PositionBins: Sendable, Equatable {
    /// Absolute token positions along the axis, in stored order.
    public var positions: [Int]
    /// Per bin, indices into `positions` (contiguous, covering them all in order).
    public var ranges: [Range<Int>]

    public init(positions: [Int], maxBins: Int) {
        self.positions = positions
        let n = positions.count, b = min(n, max(1, maxBins))
        ranges = (0..<b).map { i in (i * n / b)..<((i + 1) * n / b) }
    }

    public var count: Int { ranges.count }
    /// True when some bin holds more than one position.
    public var isDownsampled: Bool { ranges.count < positions.count }
    /// First and last position of bin `i`.
    public func span(_ i: Int) -> ClosedRange<Int> {
        positions[ranges[i].lowerBound]...positions[ranges[i].upperBound - 1]
    }
    /// Bin of every stored index: [positions.count].
    var binOfIndex: [Int] {
        var out = [Int](repeating: 0, count: positions.count)
        for (b, r) in ranges.enumerated() { for i in r { out[i] = b } }
        return out
    }
    /// The largest bin size (positions per bin).
    public var maxBinSize: Int { ranges.map(\.count).max() ?? 0 }
}

/// What a trace run file captured, ready to draw.
public struct TraceCaptureData: Sendable {
    /// One head's attention pattern (`hook_pattern`, forms full / rows / topk), binned.
    public struct Pattern: Sendable {
        public var layer: Int
        public var head: Int
        /// `full`, `rows` or `topk`.
        public var form: String
        /// `topk`: keys kept per query row.
        public var k: Int?
        public var rows: PositionBins
        public var cols: PositionBins
        /// [rowBin][colBin]: attention mass on the key bin, averaged over the query bin's rows.
        /// `topk`: the stored (top-k) mass only; NaN where none of the stored keys fall.
        public var values: [[Double]]
    }

    /// `hook_pattern` in `span_mass` form for one layer: mass averaged over the stored queries.
    public struct SpanMass: Sendable {
        public var layer: Int
        public var heads: [Int]
        public var labels: [String]
        public var spans: [Range<Int>]
        public var queries: [Int]
        /// [head][span], mean over the stored queries.
        public var values: [[Double]]
    }

    /// L2 norms of a `[pos, d_model]` capture (`hook_embed`, resid_pre/post, attn_out, mlp_out,
    /// `ln_final.hook_normalized`), binned over positions (mean of the norms in a bin).
    public struct Norms: Sendable {
        /// The hook name without its block prefix, e.g. `hook_resid_post`.
        public var kind: String
        public var layer: Int?
        public var bins: PositionBins
        public var values: [Double]
    }

    /// Text of every token position (`/token_strings`).
    public var tokens: [String]
    public var promptLength: Int?
    public var patterns: [Pattern] = []
    public var spanMass: [SpanMass] = []
    public var norms: [Norms] = []
    /// Captures not drawn (hooks the viewer has no figure for), by dataset name.
    public var notDrawn: [String] = []
    /// The largest number of positions a pattern axis had before binning.
    public var longestAxis: Int = 0

    public var isEmpty: Bool { patterns.isEmpty && spanMass.isEmpty && norms.isEmpty }

    /// Kinds of `[pos, d_model]` hooks whose norms are drawn.
    static let normKinds: Set<String> = [
        "hook_embed", "hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out",
        "ln_final.hook_normalized"
    ]

    /// Reads `/captures` of `f` (nil if the file has none), or with `prefix` (`/inputs/NAME`) that
    /// input's captures and tokens. Throws `TraceStoreError` naming the dataset when a capture does
    /// not have the layout its attributes describe.
    public static func read(_ f: H5File, at prefix: String = "", maxBins: Int = 64) throws -> TraceCaptureData? {
        let capturesPath = prefix.isEmpty ? "captures" : prefix + RunFile.captures
        guard try f.kind(of: capturesPath) == .group else { return nil }
        let g = try f.group(capturesPath)
        var tokens: [String] = []
        if try f.kind(of: prefix + RunFile.tokenStrings) == .dataset {
            tokens = try f.dataset(prefix + RunFile.tokenStrings).readStrings()
        }
        var out = TraceCaptureData(tokens: tokens)
        if try f.kind(of: prefix + RunFile.tokens) == .dataset {
            out.promptLength = RR.int(try f.dataset(prefix + RunFile.tokens), "prompt_length")
        }
        for name in try g.children().sorted(by: hookOrder) {
            guard try g.kind(of: name) == .dataset else { continue }
            let ds = try g.dataset(name)
            let form = RR.string(ds, "form") ?? "full"
            if form == "topk_indices" || name.hasSuffix(".queries") { continue }
            let hook = RR.string(ds, "hook") ?? name
            let kind = hookKind(hook)
            if kind == "attn.hook_pattern" {
                switch form {
                case "full", "rows", "topk":
                    out.patterns += try readPattern(ds, group: g, form: form, maxBins: maxBins, into: &out)
                case "span_mass":
                    out.spanMass.append(try readSpanMass(ds, group: g))
                default:
                    out.notDrawn.append(name)
                }
            } else if normKinds.contains(kind), form == "full" || form == "rows" {
                out.norms.append(try readNorms(ds, group: g, kind: kind, maxBins: maxBins * 2))
            } else {
                out.notDrawn.append(name)
            }
        }
        return out
    }

    /// `blocks.12.attn.hook_pattern` -> `attn.hook_pattern`; names without a block prefix unchanged.
    static func hookKind(_ hook: String) -> String {
        let parts = hook.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        if parts.count == 3, parts[0] == "blocks", Int(parts[1]) != nil { return String(parts[2]) }
        return hook
    }

    static func layerOf(_ hook: String) -> Int? {
        // A dataset path (/captures/blocks.3.attn.hook_pattern) or a hook name.
        let parts = (hook.split(separator: "/").last ?? Substring(hook)).split(separator: ".")
        return parts.count >= 2 && parts[0] == "blocks" ? Int(parts[1]) : nil
    }

    /// Datasets in layer order (blocks.2 before blocks.10), others by name.
    static func hookOrder(_ a: String, _ b: String) -> Bool {
        let la = layerOf(a) ?? -1, lb = layerOf(b) ?? -1
        return la != lb ? la < lb : a < b
    }

    // MARK: readers

    private static func bad(_ ds: H5Dataset, _ detail: String) -> TraceStoreError {
        .shapeMismatch(file: ds.file.path, object: ds.name, detail: detail)
    }

    /// The absolute positions of the query (or pos) axis: `queries`, `queries_dataset`, or all.
    private static func queryPositions(_ ds: H5Dataset, group: H5Group, count n: Int) throws -> [Int] {
        var q: [Int]
        if let v = RR.attr(ds, "queries") {
            switch v {
            case .ints(let a): q = a.map { Int($0) }
            case .int(let i): q = [Int(i)]
            default: throw bad(ds, "attribute queries is not an integer array")
            }
        } else if let other = RR.string(ds, "queries_dataset") {
            q = try group.dataset(other).read(Int64.self).map { Int($0) }
        } else {
            q = Array(0..<n)
        }
        guard q.count == n else { throw bad(ds, "\(q.count) query positions listed for a query axis of \(n)") }
        return q
    }

    private static func heads(_ ds: H5Dataset, count n: Int) throws -> [Int] {
        guard let v = RR.attr(ds, "heads") else { return Array(0..<n) }
        let h: [Int]
        switch v {
        case .ints(let a): h = a.map { Int($0) }
        case .int(let i): h = [Int(i)]
        default: throw bad(ds, "attribute heads is not an integer array")
        }
        guard h.count == n else { throw bad(ds, "\(h.count) heads listed for a head axis of \(n)") }
        return h
    }

    private static func checkAxes(_ ds: H5Dataset, _ expected: [String]) throws -> [Int] {
        let shape = try ds.shape
        if let axes = RR.stringList(ds, "axes"), axes != expected {
            throw bad(ds, "axes \(axes), expected \(expected)")
        }
        guard shape.count == expected.count else {
            throw bad(ds, "rank \(shape.count), expected \(expected.count) (\(expected.joined(separator: ", ")))")
        }
        return shape
    }

    private static func readPattern(
        _ ds: H5Dataset, group: H5Group, form: String, maxBins: Int, into out: inout TraceCaptureData
    ) throws -> [Pattern] {
        let topk = form == "topk"
        let shape = try checkAxes(ds, ["head", "query", topk ? "k" : "key"]) // [nh, nq, nk | k]
        let nh = shape[0], nq = shape[1], nk = shape[2]
        guard let layer = RR.int(ds, "layer") ?? layerOf(RR.string(ds, "hook") ?? ds.name) else {
            throw bad(ds, "no layer attribute")
        }
        let headList = try heads(ds, count: nh)
        let queries = try queryPositions(ds, group: group, count: nq)
        let keyLength = RR.int(ds, "key_length") ?? (topk ? (queries.max() ?? -1) + 1 : nk)
        guard keyLength >= 0, topk || keyLength == nk else {
            throw bad(ds, "key_length \(keyLength) differs from the key axis \(nk)")
        }
        var indices: H5Dataset?
        if topk {
            let iname = String(ds.name.split(separator: "/").last ?? "") + ".topk_indices"
            guard try group.kind(of: iname) == .dataset else { throw bad(ds, "no sibling dataset \(iname)") }
            indices = try group.dataset(iname)
            guard try indices!.shape == shape else { throw bad(indices!, "shape differs from the values' \(shape)") }
        }
        out.longestAxis = max(out.longestAxis, nq, keyLength)
        let rows = PositionBins(positions: queries, maxBins: maxBins)
        let cols = PositionBins(positions: Array(0..<keyLength), maxBins: maxBins)
        let rowBin = rows.binOfIndex, colBin = cols.binOfIndex
        var result: [Pattern] = []
        let block = 64
        for hi in 0..<nh {
            var acc = [[Double]](repeating: [Double](repeating: topk ? .nan : 0, count: cols.count), count: rows.count)
            var q0 = 0
            while q0 < nq {
                let qn = min(block, nq - q0)
                let v = try ds.read(Float.self, start: [hi, q0, 0], count: [1, qn, nk]) // [qn, nk]
                let idx = try indices?.read(Int32.self, start: [hi, q0, 0], count: [1, qn, nk]) // [qn, k]
                for r in 0..<qn {
                    let rb = rowBin[q0 + r]
                    for j in 0..<nk {
                        let x = Double(v[r * nk + j])
                        guard x.isFinite else { continue }
                        let key: Int
                        if let idx {
                            key = Int(idx[r * nk + j])
                            if key < 0 { continue }
                            guard key < keyLength else {
                                throw bad(ds, "top-k index \(key) outside the \(keyLength) keys")
                            }
                        } else {
                            key = j
                        }
                        let cb = colBin[key]
                        acc[rb][cb] = acc[rb][cb].isNaN ? x : acc[rb][cb] + x
                    }
                }
                q0 += qn
            }
            for (b, r) in rows.ranges.enumerated() {
                let n = Double(r.count)
                acc[b] = acc[b].map { $0 / n }
            }
            result.append(
                Pattern(
                    layer: layer, head: headList[hi], form: form, k: topk ? nk : nil, rows: rows, cols: cols,
                    values: acc))
        }
        return result
    }

    private static func readSpanMass(_ ds: H5Dataset, group: H5Group) throws -> SpanMass {
        let shape = try checkAxes(ds, ["head", "query", "span"]) // [nh, nq, ns]
        let nh = shape[0], nq = shape[1], ns = shape[2]
        guard let layer = RR.int(ds, "layer") ?? layerOf(RR.string(ds, "hook") ?? ds.name) else {
            throw bad(ds, "no layer attribute")
        }
        let labels = RR.stringList(ds, "span_labels") ?? (0..<ns).map { "span \($0)" }
        func ints(_ name: String) -> [Int]? {
            if case .ints(let a)? = RR.attr(ds, name) { return a.map { Int($0) } }
            if case .int(let i)? = RR.attr(ds, name) { return [Int(i)] }
            return nil
        }
        let starts = ints("span_starts") ?? [], ends = ints("span_ends") ?? []
        guard labels.count == ns, starts.count == ns, ends.count == ns else {
            throw bad(ds, "span_labels/span_starts/span_ends do not list \(ns) spans")
        }
        let v = try ds.read(Float.self) // [nh, nq, ns]
        var values = [[Double]](repeating: [Double](repeating: 0, count: ns), count: nh)
        for h in 0..<nh {
            for s in 0..<ns {
                var sum = 0.0
                for q in 0..<nq { sum += Double(v[(h * nq + q) * ns + s]) }
                values[h][s] = nq > 0 ? sum / Double(nq) : .nan
            }
        }
        return SpanMass(
            layer: layer, heads: try heads(ds, count: nh), labels: labels,
            spans: zip(starts, ends).map { $0..<max($0, $1) }, queries: try queryPositions(ds, group: group, count: nq),
            values: values)
    }

    private static func readNorms(_ ds: H5Dataset, group: H5Group, kind: String, maxBins: Int) throws -> Norms {
        let shape = try checkAxes(ds, ["pos", "d_model"]) // [np, D]
        let np = shape[0], d = shape[1]
        let positions = try queryPositions(ds, group: group, count: np)
        let bins = PositionBins(positions: positions, maxBins: maxBins)
        let binOf = bins.binOfIndex
        var sums = [Double](repeating: 0, count: bins.count)
        var p0 = 0
        while p0 < np {
            let n = min(256, np - p0)
            let v = try ds.read(Float.self, start: [p0, 0], count: [n, d]) // [n, D]
            for r in 0..<n {
                var s = 0.0
                for j in 0..<d { s += Double(v[r * d + j]) * Double(v[r * d + j]) }
                sums[binOf[p0 + r]] += s.squareRoot()
            }
            p0 += n
        }
        for (b, r) in bins.ranges.enumerated() { sums[b] /= Double(max(r.count, 1)) }
        return Norms(kind: kind, layer: RR.int(ds, "layer"), bins: bins, values: sums)
    }
}

extension TraceCaptureData.Pattern {
    /// The same pattern with at most `maxBins` bins per axis, merging neighbouring bins: a merged
    /// cell is the mass on the merged keys averaged over the merged queries (weighted by the
    /// number of queries in each bin), as if binned from the positions directly.
    public func coarsened(maxBins: Int) -> TraceCaptureData.Pattern {
        guard rows.count > maxBins || cols.count > maxBins else { return self }
        func merge(_ b: PositionBins) -> (PositionBins, [Range<Int>]) {
            let groups = PositionBins(positions: Array(0..<b.count), maxBins: maxBins).ranges // of old bins
            var nb = b
            nb.ranges = groups.map { b.ranges[$0.lowerBound].lowerBound..<b.ranges[$0.upperBound - 1].upperBound }
            return (nb, groups)
        }
        let (newRows, rowGroups) = merge(rows)
        let (newCols, colGroups) = merge(cols)
        var v = [[Double]](repeating: [Double](repeating: .nan, count: newCols.count), count: newRows.count)
        for (rb, rg) in rowGroups.enumerated() {
            let total = Double(rg.map { rows.ranges[$0].count }.reduce(0, +))
            for (cb, cg) in colGroups.enumerated() {
                var sum = 0.0, any = false
                for r in rg {
                    let w = Double(rows.ranges[r].count)
                    for c in cg where values[r][c].isFinite {
                        sum += values[r][c] * w
                        any = true
                    }
                }
                v[rb][cb] = any ? sum / total : (form == "topk" ? .nan : 0)
            }
        }
        var p = self
        p.rows = newRows
        p.cols = newCols
        p.values = v
        return p
    }
}

/// One prompt of a batch trace file (`/inputs/NAME`, written by `trace --prompts`).
public struct TraceInputData: Sendable {
    public var name: String
    /// The prompt text as given (`tokens` @`prompt`).
    public var prompt: String?
    public var data: TraceCaptureData

    /// The inputs of `f` in the order of `/inputs` @`names` (the prompts file's order), or of the
    /// group's members when that attribute is absent; empty when the file has no `/inputs`.
    public static func readAll(_ f: H5File, maxBins: Int = 64) throws -> [TraceInputData] {
        guard try f.kind(of: "inputs") == .group else { return [] }
        let g = try f.group("inputs")
        let names = try g.attributeIfPresent("names")?.stringsValue ?? g.children().sorted()
        var out: [TraceInputData] = []
        for name in names {
            let prefix = "/inputs/" + name
            guard try f.kind(of: prefix) == .group else {
                throw TraceStoreError.notFound(file: f.path, object: prefix)
            }
            let data = try TraceCaptureData.read(f, at: prefix, maxBins: maxBins) ?? TraceCaptureData(tokens: [])
            let prompt =
                try f.kind(of: prefix + RunFile.tokens) == .dataset
                ? RR.string(try f.dataset(prefix + RunFile.tokens), RunFile.Attr.prompt) : nil
            out.append(TraceInputData(name: name, prompt: prompt, data: data))
        }
        return out
    }
}
