// The bridge from Inference's hooks to TraceStore's run files. It lives in its own target so
// that TraceStore (HDF5 only) never depends on the model code and Inference never on HDF5; a
// Swift program streams a traced run into a run file with:
//
//     let writer = try RunFileWriter(path: "run.h5")
//     try RunFileHeader(model: model, file: url, modelSHA256: try SHA256.hashFile(at: url),
//                       command: "my-tool", headlightVersion: "0.1.0").write(to: writer.file)
//     let sink = RunFileCaptureSink(writer: try CaptureWriter(file: writer.file))
//     _ = try session.trace(prompt: ids, plan: plan, into: sink)
//     try writer.finalize()
import Foundation
import Inference
import TraceStore

/// Streams `HookSet` blocks into a run file through `CaptureWriter`: one dataset per capture under
/// `/captures`, named by its hook, with the attributes of docs/run-file.md.
public final class RunFileCaptureSink: CaptureSink {
    public let writer: CaptureWriter
    private var handles: [Int] = []
    private var indexHandles: [Int: Int] = [:]
    private var layouts: [CaptureLayout] = []

    public init(writer: CaptureWriter) { self.writer = writer }

    public func prepare(_ plan: TracePlan) throws {
        layouts = plan.captures
        for l in plan.captures {
            var attrs: [(String, H5AttributeValue)] = [
                ("hook", .string(l.name)), ("form", .string(l.form.rawValue)),
                ("axes", .strings(l.axes)), ("dtype_source", .string("float32"))
            ]
            if let layer = l.point.layer { attrs.append(("layer", .int(Int64(layer)))) }
            if let h = l.heads { attrs.append(("heads", .ints(h.map(Int64.init)))) }
            if l.point.kind.usesKVHeads, let qh = l.queryHeads {
                attrs.append(("query_heads", .ints(qh.map(Int64.init))))
            }
            if l.form != .full {
                if l.queries.count <= 4096 {
                    attrs.append(("queries", .ints(l.queries.map(Int64.init))))
                } else {
                    attrs.append(("queries_dataset", .string(l.name + ".queries")))
                }
            }
            if l.point.kind.isAttention { attrs.append(("key_length", .int(Int64(l.sequenceLength)))) }
            if let k = l.k { attrs.append(("k", .int(Int64(k)))) }
            if let spans = l.spans {
                attrs.append(("span_labels", .strings(spans.map(\.label))))
                attrs.append(("span_starts", .ints(spans.map { Int64($0.start) })))
                attrs.append(("span_ends", .ints(spans.map { Int64($0.end) })))
            }
            handles.append(try writer.createDataset(l.name, shape: l.shape, chunks: Self.chunks(l), attributes: attrs))
            if let iname = l.indicesName {
                indexHandles[handles.count - 1] = try writer.createDataset(
                    iname, floats: false, type: .int32, shape: l.shape, chunks: Self.chunks(l),
                    attributes: [
                        ("hook", .string(l.name)), ("axes", .strings(l.axes)), ("form", .string("topk_indices"))
                    ])
            }
            if l.form != .full && l.queries.count > 4096 {
                try writer.group.createDataset(l.name + ".queries", data: l.queries.map(Int64.init))
            }
        }
        // A consistent file on disk (complete = 0) before the long part starts.
        try writer.file.flush()
    }

    /// Chunk shapes: attention rows in [1, 64, 256] tiles ([1, 1, 4096] when decode steps are
    /// captured, since each step writes one row); position-major hooks in blocks of 64 positions.
    public static func chunks(_ l: CaptureLayout) -> [Int] {
        let nq = max(l.queries.count, 1)
        switch l.point.kind {
        case .pattern, .attnScores:
            if l.form == .full || l.form == .rows {
                return l.includesDecode
                    ? [1, 1, min(l.sequenceLength, 4096)]
                    : [1, min(HookSet.rowBlock, nq), min(l.sequenceLength, HookSet.keyBlock)]
            }
            return [1, min(nq, 1024), l.shape[2]]
        case .logits:
            return [1, l.shape[1]]
        case .result:
            return [min(nq, 8), l.shape[1], l.shape[2]]
        default:
            return [min(nq, 64)] + Array(l.shape.dropFirst())
        }
    }

    public func write(_ capture: Int, _ block: CaptureBlock) throws {
        try writer.write(
            handles[capture], start: block.start, count: block.count, rows: block.rows, width: block.width,
            valid: block.valid, row: block.row)
    }

    public func writeIndices(_ capture: Int, start: [Int], count: [Int], _ values: UnsafeBufferPointer<Int32>) throws {
        try writer.write(indexHandles[capture]!, start: start, count: count, values: values)
    }

    /// Generation stopped early: shrink the query/pos axis to the positions that ran and the key axis to them.
    public func finish(positions n: Int) throws {
        for (i, l) in layouts.enumerated() where n < l.sequenceLength {
            let kept = l.queries.filter { $0 < n }.count
            var shape = l.shape
            let posAxis = l.point.kind.isAttention ? 1 : 0
            shape[posAxis] = kept
            if l.point.kind.isAttention && (l.form == .full || l.form == .rows) { shape[2] = n }
            try writer.resize(handles[i], to: shape)
            if let ih = indexHandles[i] { try writer.resize(ih, to: shape) }
            let ds = writer.datasets[handles[i]]
            if l.form != .full && kept <= 4096 {
                try ds.setAttribute("queries", l.queries.prefix(kept).map(Int64.init))
            }
            if l.point.kind.isAttention { try ds.setAttribute("key_length", n) }
        }
    }
}
