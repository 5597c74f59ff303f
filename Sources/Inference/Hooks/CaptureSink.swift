import Foundation

/// A block of captured values, in the coordinates of its capture's tensor (`CaptureLayout.shape`):
/// `count[i]` elements from `start[i]` along each axis, row-major. The block is delivered as rows
/// along the last axis, each `width` floats long; row i is `row(i)[0..<valid]` followed by zeros
/// (attention rows past the keys computed so far). Pointers are valid only during the call.
public struct CaptureBlock {
    public let start: [Int]
    public let count: [Int]
    /// Rows (product of `count` without the last axis).
    public let rows: Int
    /// Row length (`count.last`).
    public let width: Int
    /// Leading elements of each row present in memory; the rest of the row is zero.
    public let valid: Int
    let rowPointer: (Int) -> UnsafePointer<Float>

    init(start: [Int], count: [Int], valid: Int? = nil, row: @escaping (Int) -> UnsafePointer<Float>) {
        self.start = start
        self.count = count
        width = count.last ?? 1
        rows = count.dropLast().reduce(1, *)
        self.valid = min(valid ?? width, width)
        rowPointer = row
    }

    /// Row i's `valid` leading values.
    public func row(_ i: Int) -> UnsafePointer<Float> { rowPointer(i) }

    /// Copies the block into `dst` (rows * width floats), zero-padding each row.
    public func copy(into dst: UnsafeMutablePointer<Float>) {
        for i in 0..<rows {
            let d = dst + i * width
            d.update(from: rowPointer(i), count: valid)
            if valid < width { (d + valid).update(repeating: 0, count: width - valid) }
        }
    }
}

/// Where captured values go. `HookSet` calls `prepare` once, then `write` for every block as the
/// forward pass produces it (layer by layer, chunk by chunk, decode step by decode step), and
/// `finish` at the end. Errors thrown here abort the forward pass that produced the block.
public protocol CaptureSink: AnyObject {
    func prepare(_ plan: TracePlan) throws
    /// Values of capture `plan.captures[capture]`.
    func write(_ capture: Int, _ block: CaptureBlock) throws
    /// Key indices of a top-k capture (same block as its values).
    func writeIndices(_ capture: Int, start: [Int], count: [Int], _ values: UnsafeBufferPointer<Int32>) throws
    /// The run is over after `positions` positions (fewer than planned if generation stopped early).
    func finish(positions: Int) throws
}

/// A captured tensor held in memory.
public struct CapturedTensor: Sendable {
    public let layout: CaptureLayout
    /// Row-major values of `layout.shape`.
    public var values: [Float]
    /// Top-k key indices (same shape), else nil.
    public var indices: [Int32]?

    public var shape: [Int] { layout.shape }
    public var axes: [String] { layout.axes }

    /// Flat offset of an index tuple.
    public func offset(_ idx: [Int]) -> Int {
        precondition(idx.count == shape.count)
        var o = 0
        for (i, d) in zip(idx, shape) { o = o * d + i }
        return o
    }

    public subscript(_ idx: Int...) -> Float { values[offset(idx)] }

    /// For `[head, query, ...]` attention tensors: the stored row of query head `head` at absolute
    /// position `query` (keys 0...query for rows forms; k or span entries otherwise), or nil if not captured.
    public func attentionRow(head: Int, query: Int) -> [Float]? {
        guard layout.point.kind.isAttention, let hi = layout.heads?.firstIndex(of: head),
            let qi = layout.queries.firstIndex(of: query)
        else { return nil }
        let w = shape[2], base = (hi * shape[1] + qi) * w
        let n = (layout.form == .full || layout.form == .rows) ? min(query + 1, w) : w
        return Array(values[base..<(base + n)])
    }

    /// Top-k indices of a row (see `attentionRow`).
    public func topKIndices(head: Int, query: Int) -> [Int32]? {
        guard let indices, let hi = layout.heads?.firstIndex(of: head), let qi = layout.queries.firstIndex(of: query)
        else { return nil }
        let w = shape[2], base = (hi * shape[1] + qi) * w
        return Array(indices[base..<(base + w)])
    }

    /// For `[pos, ...]` tensors: the values at absolute position `pos` (all heads / features).
    public func position(_ pos: Int) -> [Float]? {
        guard !layout.point.kind.isAttention, let qi = layout.queries.firstIndex(of: pos) else { return nil }
        let w = shape.dropFirst().reduce(1, *)
        return Array(values[(qi * w)..<((qi + 1) * w)])
    }
}

/// Keeps every capture in memory (dense `[Float]` of its full shape, allocated up front). The
/// default sink of `InferenceSession.trace`; for long runs stream to a file instead.
public final class CaptureStore: CaptureSink {
    public private(set) var tensors: [CapturedTensor] = []
    private var byName: [String: Int] = [:]
    public private(set) var positions = 0

    public init() {}

    public func prepare(_ plan: TracePlan) throws {
        tensors = plan.captures.map {
            CapturedTensor(
                layout: $0, values: [Float](repeating: 0, count: $0.count),
                indices: $0.form == .topk ? [Int32](repeating: -1, count: $0.count) : nil)
        }
        byName = Dictionary(uniqueKeysWithValues: plan.captures.enumerated().map { ($1.name, $0) })
    }

    public subscript(_ name: String) -> CapturedTensor? { byName[name].map { tensors[$0] } }
    public subscript(_ point: HookPoint) -> CapturedTensor? { self[point.name] }
    public var names: [String] { tensors.map(\.layout.name) }

    public func write(_ capture: Int, _ block: CaptureBlock) throws {
        let shape = tensors[capture].layout.shape
        tensors[capture].values.withUnsafeMutableBufferPointer { v in
            Self.forEachRow(shape: shape, start: block.start, count: block.count) { i, off in
                let d = v.baseAddress! + off
                d.update(from: block.row(i), count: block.valid)
                if block.valid < block.width {
                    (d + block.valid).update(repeating: 0, count: block.width - block.valid)
                }
            }
        }
    }

    public func writeIndices(_ capture: Int, start: [Int], count: [Int], _ values: UnsafeBufferPointer<Int32>) throws {
        let shape = tensors[capture].layout.shape
        let w = count.last ?? 1
        tensors[capture].indices!.withUnsafeMutableBufferPointer { v in
            Self.forEachRow(shape: shape, start: start, count: count) { i, off in
                (v.baseAddress! + off).update(from: values.baseAddress! + i * w, count: w)
            }
        }
    }

    public func finish(positions: Int) throws { self.positions = positions }

    /// Calls body(rowIndex, flatOffset) for each last-axis row of the block.
    static func forEachRow(shape: [Int], start: [Int], count: [Int], _ body: (Int, Int) -> Void) {
        let r = shape.count
        var idx = [Int](repeating: 0, count: max(r - 1, 0))
        let rows = count.dropLast().reduce(1, *)
        for i in 0..<rows {
            var off = 0
            for a in 0..<(r - 1) { off = off * shape[a] + start[a] + idx[a] }
            off = off * shape[r - 1] + start[r - 1]
            body(i, off)
            var a = r - 2
            while a >= 0 {
                idx[a] += 1
                if idx[a] < count[a] { break }
                idx[a] = 0
                a -= 1
            }
        }
    }
}
