import Foundation
@testable import Reports
import TraceStore
import XCTest

/// The attention viewer of `headlight report` on a plain trace run file: synthetic `/captures` in the
/// layout RunFileCaptureSink writes (docs/run-file.md), with hostile token text.
final class TraceFiguresTests: XCTestCase {
    static let hostile = "</script><script>alert(1)</script>&amp;\"'\u{1}\n"

    /// A causal pattern [heads, T, T] whose row q puts 0.5 on key 0 and 0.5 spread over keys 1...q.
    static func pattern(heads: Int, t: Int) -> [Float] {
        var v = [Float](repeating: 0, count: heads * t * t) // [head, query, key]
        for h in 0..<heads {
            for q in 0..<t {
                if q == 0 {
                    v[(h * t + q) * t] = 1
                    continue
                }
                v[(h * t + q) * t] = 0.5
                for k in 1...q { v[(h * t + q) * t + k] = 0.5 / Float(q) }
            }
        }
        return v
    }

    /// Writes a trace run file with `t` tokens: hook_pattern of layers 0 and 1 (heads 0, 2), and
    /// blocks.L.hook_resid_post; `extra` adds a top-k and a span-mass capture of layer 2.
    static func write(_ url: URL, t: Int, extra: Bool = false) throws {
        let w = try RunFileWriter(path: url.path)
        let f = w.file
        try f.setAttribute("command", "trace")
        try f.setAttribute("n_layers", 3)
        let toks = try f.createDataset(RunFile.tokens, data: (0..<t).map { Int32($0) })
        try toks.setAttribute("prompt_length", t)
        try f.createDataset(
            RunFile.tokenStrings,
            strings: (0..<t).map { $0 == 3 ? hostile.replacingOccurrences(of: "\0", with: "") : " w\($0)" })
        let g = try f.createGroup("captures")
        for l in 0..<2 {
            let ds = try g.createDataset(
                "blocks.\(l).attn.hook_pattern", data: pattern(heads: 2, t: t), shape: [2, t, t], as: .float16)
            try ds.setAttribute("hook", "blocks.\(l).attn.hook_pattern")
            try ds.setAttribute("layer", l)
            try ds.setAttribute("form", "rows")
            try ds.setAttribute("axes", ["head", "query", "key"])
            try ds.setAttribute("heads", [0, 2])
            try ds.setAttribute("queries", Array(0..<t))
            try ds.setAttribute("key_length", t)
            let r = try g.createDataset(
                "blocks.\(l).hook_resid_post", data: (0..<(t * 4)).map { Float($0 % 7) }, shape: [t, 4])
            try r.setAttribute("hook", "blocks.\(l).hook_resid_post")
            try r.setAttribute("layer", l)
            try r.setAttribute("form", "full")
            try r.setAttribute("axes", ["pos", "d_model"])
        }
        if extra {
            let q = [t - 2, t - 1], k = 2
            var vals = [Float](), idx = [Int32]() // [head=1, query=2, k=2]
            for qq in q {
                vals += [0.5, 0.3]
                idx += [0, Int32(qq)]
            }
            let ds = try g.createDataset("blocks.2.attn.hook_pattern", data: vals, shape: [1, 2, k])
            try ds.setAttribute("form", "topk")
            try ds.setAttribute("layer", 2)
            try ds.setAttribute("axes", ["head", "query", "k"])
            try ds.setAttribute("heads", [1])
            try ds.setAttribute("queries", q)
            try ds.setAttribute("key_length", t)
            try ds.setAttribute("k", k)
            let ids = try g.createDataset("blocks.2.attn.hook_pattern.topk_indices", data: idx, shape: [1, 2, k])
            try ids.setAttribute("form", "topk_indices")
            let sm = try g.createDataset(
                "blocks.1.attn.hook_pattern_spans", data: [Float](repeating: 0.25, count: 4), shape: [2, 1, 2])
            try sm.setAttribute("hook", "blocks.1.attn.hook_pattern")
            try sm.setAttribute("layer", 1)
            try sm.setAttribute("form", "span_mass")
            try sm.setAttribute("axes", ["head", "query", "span"])
            try sm.setAttribute("heads", [0, 2])
            try sm.setAttribute("queries", [t - 1])
            try sm.setAttribute("span_labels", [hostile, "b"])
            try sm.setAttribute("span_starts", [0, 2])
            try sm.setAttribute("span_ends", [2, 4])
        }
        try w.finalize()
    }

    func tmp(_ name: String) -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("hl-trace-fig-\(getpid())")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d.appendingPathComponent(name)
    }

    func testPlainTraceGivesViewerGridLayersAndNorms() throws {
        let url = tmp("short.h5")
        try Self.write(url, t: 10)
        let f = try RunFileContents.load(url)
        let t = try XCTUnwrap(f.trace)
        XCTAssertEqual(t.patterns.count, 4)
        XCTAssertEqual(t.norms.count, 2)
        // Rows still sum to 1 at full resolution.
        for p in t.patterns { for row in p.values { XCTAssertEqual(row.reduce(0, +), 1, accuracy: 2e-3) } }
        let doc = try RunReport.document([f], headlightVersion: "test")
        // Figures: the head grid, one per layer (0, 1), one norm figure.
        XCTAssertEqual(
            doc.figureFiles().map(\.path).sorted(),
            [
                "figures/attention-L0-short.svg", "figures/attention-L1-short.svg", "figures/attention-grid-short.svg",
                "figures/norm-hook_resid_post-short.svg"
            ])
        let html = doc.html()
        XCTAssertTrue(html.contains("full resolution: every stored query and key"))
        XCTAssertFalse(html.contains("downsampled"))
        try checkPage(html)
    }

    func testLongTraceIsDownsampledAndSaysSo() throws {
        let url = tmp("long.h5")
        try Self.write(url, t: 150, extra: true)
        let f = try RunFileContents.load(url)
        let t = try XCTUnwrap(f.trace)
        let p = try XCTUnwrap(t.patterns.first { $0.form == "rows" })
        XCTAssertEqual(p.rows.count, TraceFigures.maxBins)
        XCTAssertTrue(p.rows.isDownsampled)
        XCTAssertEqual(p.rows.ranges.map(\.count).reduce(0, +), 150)
        // Binning keeps rows summing to 1 (mass per key bin, averaged over the query bin), also when coarsened.
        for row in p.values + p.coarsened(maxBins: 10).values { XCTAssertEqual(row.reduce(0, +), 1, accuracy: 2e-3) }
        XCTAssertEqual(p.coarsened(maxBins: 10).rows.count, 10)
        // Top-k: two stored keys per row (key 0 and the query's own key), NaN elsewhere.
        let k = try XCTUnwrap(t.patterns.first { $0.form == "topk" })
        XCTAssertEqual(k.values.joined().filter(\.isFinite).count, 4)
        XCTAssertEqual(t.spanMass.count, 1)
        let doc = try RunReport.document([f], headlightVersion: "test")
        let names = doc.figureFiles().map(\.path)
        XCTAssertEqual(names.count, 6, "\(names)") // grid, L0, L1, top-k L2, span mass, norms
        XCTAssertTrue(names.contains("figures/attention-L2-long-topk.svg"))
        XCTAssertTrue(names.contains("figures/span-mass-long.svg"))
        let html = doc.html()
        XCTAssertTrue(
            html.contains("downsampled: 150 queries in 64 bins, 150 keys in 64 bins (up to 3 positions"), html)
        XCTAssertEqual(TraceFigures.label(t.tokens, p.rows.span(0)), "0–1 ·w0…")
        XCTAssertTrue(html.contains("Only the 2 largest keys of each query were stored"))
        try checkPage(html)
    }

    /// Escaping, the data block and the CSP hash of the viewer script.
    func checkPage(_ html: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertFalse(html.contains("<script>alert"), file: file, line: line)
        let x = XMLCheck.parse(html)
        XCTAssertTrue(x.ok, x.error ?? "", file: file, line: line)
        // The script: no markup characters, allowed by exactly its hash, present once.
        let script = AttentionViewer.script
        XCTAssertFalse(script.contains("<") || script.contains("&"), file: file, line: line)
        XCTAssertTrue(
            html.contains("script-src 'sha256-\(ReportDocument.sha256Base64(script))'\"/>"), file: file, line: line)
        XCTAssertEqual(html.components(separatedBy: "<script>").count, 2, file: file, line: line)
        // The data block parses as JSON and gives back the sanitized token text.
        let open = try XCTUnwrap(html.range(of: "<script type=\"application/json\" id=\"hl-viewer-"))
        let start = try XCTUnwrap(html[open.upperBound...].firstIndex(of: ">"))
        let end = try XCTUnwrap(html.range(of: "</script>", range: start..<html.endIndex))
        let text = String(html[html.index(after: start)..<end.lowerBound])
        XCTAssertFalse(text.contains("<") || text.contains("&"), file: file, line: line)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let tokens = try XCTUnwrap(obj["tokens"] as? [String])
        XCTAssertEqual(tokens[3], AttentionViewer.viewerText(Self.hostile), file: file, line: line)
        XCTAssertTrue(tokens[3].hasPrefix("</script>"), file: file, line: line)
        XCTAssertFalse((obj["views"] as? [Any] ?? []).isEmpty, file: file, line: line)
    }

    func testBinsCoverEveryPositionOnce() {
        for n in [1, 5, 64, 65, 127, 1000] {
            let b = PositionBins(positions: Array(0..<n), maxBins: 64)
            XCTAssertEqual(b.count, min(n, 64))
            XCTAssertEqual(b.ranges.first?.lowerBound, 0)
            XCTAssertEqual(b.ranges.last?.upperBound, n)
            for (a, c) in zip(b.ranges, b.ranges.dropFirst()) { XCTAssertEqual(a.upperBound, c.lowerBound) }
            XCTAssertEqual(b.isDownsampled, n > 64)
        }
    }

    func testMalformedCaptureNamesTheDataset() throws {
        let url = tmp("bad.h5")
        let w = try RunFileWriter(path: url.path)
        let g = try w.file.createGroup("captures")
        let ds = try g.createDataset(
            "blocks.0.attn.hook_pattern", data: [Float](repeating: 0, count: 8), shape: [2, 2, 2])
        try ds.setAttribute("layer", 0)
        try ds.setAttribute("form", "rows")
        try ds.setAttribute("axes", ["head", "query", "key"])
        try ds.setAttribute("queries", [0, 1, 2])
        try w.finalize()
        XCTAssertThrowsError(try RunFileContents.load(url)) { e in
            let m = (e as? LocalizedError)?.errorDescription ?? "\(e)"
            XCTAssertTrue(m.contains("blocks.0.attn.hook_pattern"), m)
            XCTAssertTrue(m.contains("3 query positions"), m)
        }
    }
}
