import Analysis
import Foundation
@testable import Notebooks
@testable import Reports
import TraceStore
import XCTest

/// Synthetic run files with every analysis group, in the layouts the writers use (RetrievalRunFile,
/// AblationRunFile, CitationRunFile, MembershipRunFile, CompositionRunFile, `report attention`),
/// with a caller-chosen string in every text field.
enum SyntheticRuns {
    static let layers = 6, heads = 4

    static func scores() -> [Double] {
        var s = [Double](repeating: 0.01, count: layers * heads)
        s[3 * heads + 1] = 0.8; s[4 * heads + 2] = 0.55; s[2 * heads + 0] = 0.3; s[5 * heads + 3] = 0.12; s[1 * heads + 1] = .nan
        return s
    }

    static func header(_ text: String, command: String) -> RunFileHeader {
        RunFileHeader(headlightVersion: "0.1.0", command: command, commandLine: ["/x/headlight", command, text, "-o", "out.h5"],
                      modelFile: "model-\(text).gguf", modelSize: 1, modelSHA256: String(repeating: "ab", count: 32),
                      modelName: "Tiny \(text)", architecture: "llama",
                      dimensions: ["n_layers": layers, "n_heads": heads, "n_key_value_heads": 2])
    }

    /// Writes a run file with the given groups ("retrieval", "ablation", "causal", "composition",
    /// "attention", "citation", "membership"); `text` goes into every string field.
    static func write(_ url: URL, text raw: String, groups: Set<String>, complete: Bool = true) throws {
        // HDF5 strings are C strings: NUL cannot be stored (the real writers drop it too).
        let text = raw.replacingOccurrences(of: "\0", with: "")
        let w = try RunFileWriter(path: url.path)
        let f = w.file
        try header(text, command: groups.sorted().joined(separator: "+")).write(to: f)
        try f.setAttribute("machine", "Linux \(text)")
        try f.setAttribute("blas_core", "Cooperlake")
        let L = layers, H = heads
        if groups.contains("retrieval") {
            let g = try f.createGroup("retrieval_heads")
            try g.setAttribute("n_layers", L); try g.setAttribute("n_heads", H)
            try g.setAttribute("threshold", 0.1); try g.setAttribute("suite_name", text)
            if complete { try g.setAttribute("counted_trials", 5) }
            if complete { try g.createDataset("scores", data: scores(), shape: [L, H]) }
            let t = try g.createGroup("trials")
            let lengths = [500, 1000, 2000], depths = [0.0, 50, 100]
            var idx: [Int64] = [], len: [Int64] = [], dep: [Double] = [], rouge: [Double] = [], succ: [Int8] = []
            var ids: [String] = [], resp: [String] = [], hs: [Double] = []
            var k = 0
            for l in lengths { for d in depths {
                idx.append(Int64(k)); len.append(Int64(l)); dep.append(d)
                let r = k == 4 ? Double.nan : Double((k * 37) % 101)
                rouge.append(r); succ.append(r > 50 ? 1 : 0); ids.append(text); resp.append("answer \(k) \(text)")
                hs += scores().map { $0.isNaN ? 0 : $0 * Double(k % 3) }
                k += 1
            } }
            try t.createDataset("trial_index", data: idx)
            try t.createDataset("length", data: len)
            try t.createDataset("depth", data: dep)
            try t.createDataset("rouge1_recall", data: rouge)
            try t.createDataset("success", data: succ)
            try t.createDataset("counted", data: succ)
            try t.createDataset("needle_id", strings: ids)
            try t.createDataset("response", strings: resp)
            try t.createDataset("span_start", data: idx.map { _ in Int64(10) })
            try t.createDataset("span_end", data: idx.map { _ in Int64(20) })
            try t.createDataset("prompt_tokens", data: len)
            try t.createDataset("head_scores", data: hs, shape: [k, L, H])
        }
        if groups.contains("ablation") {
            let g = try f.createGroup("ablation")
            let names = ["baseline", "top4 \(text)", "control_1", "control_2"]
            let C = names.count, M = 3
            try g.setAttribute("condition_names", names)
            try g.setAttribute("condition_heads", ["", "3.1,4.2,2.0,5.3", "0.0,0.1,1.2,2.3", "1.0,1.3,2.2,4.0"])
            try g.setAttribute("method", "uniform \(text)")
            try g.setAttribute("phase", "decode")
            try g.setAttribute("metrics", ["rouge1_recall_x100", "needlebench_v1", "exact_recovery_x100"])
            try g.setAttribute("level", 0.95)
            let mean = [90.0, 20, 85, 88], lo = [80.0, 10, 75, 79], hi = [97.0, 31, 93, 95]
            func cm(_ v: [Double]) -> [Double] { v.flatMap { [$0, $0 / 2, .nan] } }
            try g.createDataset("mean", data: cm(mean), shape: [C, M])
            try g.createDataset("ci_lower", data: cm(lo), shape: [C, M])
            try g.createDataset("ci_upper", data: cm(hi), shape: [C, M])
            var cells: [Double] = []
            for c in 0..<C { for m in 0..<M { for l in 0..<3 { for d in 0..<3 {
                cells.append(m == 0 ? (c == 1 ? Double(l * 10 + d) : 90 - Double(l + d)) : .nan)
            } } } }
            let ds = try g.createDataset("cells", data: cells, shape: [C, M, 3, 3])
            try ds.setAttribute("lengths", [500, 1000, 2000]); try ds.setAttribute("depths", [0.0, 50, 100])
            try g.createDataset("perplexity", data: [12.0, 12.4, 12.1, .infinity])
            try g.createDataset("perplexity_delta", data: [0.0, 0.4, 0.1, .nan])
            try g.createDataset("difference_target_vs_controls", data: [-66.0, -75, -55, 0.001, 1, 2, 3, 4, 5, 6, 7, 8], shape: [3, 4])
        }
        if groups.contains("causal") {
            let g = try f.createGroup("ablation/causal")
            try g.setAttribute("method", "zero \(text)")
            try g.createDataset("sources", strings: ["2.0", "3.1", "4.2"])
            try g.createDataset("targets", strings: ["3.1", "4.2", "5.3"])
            try g.createDataset("baseline_scores", data: [0.8, 0.55, 0.12])
            try g.createDataset("scores", data: [0.5, 0.54, 0.13, 0.8, 0.2, 0.05, 0.81, 0.55, 0.3], shape: [3, 3])
        }
        if groups.contains("composition") {
            let hs = [HeadIndex(layer: 2, head: 0), HeadIndex(layer: 3, head: 1), HeadIndex(layer: 4, head: 2), HeadIndex(layer: 5, head: 3)]
            let n = hs.count
            var q = [[Double]](repeating: [Double](repeating: .nan, count: n), count: n)
            var k = q, v = q
            for i in 0..<n { for j in 0..<n where hs[i].layer < hs[j].layer {
                q[i][j] = 0.05 + 0.02 * Double(i + j); k[i][j] = 0.04 + 0.01 * Double(j); v[i][j] = 0.2 - 0.03 * Double(i)
            } }
            let s = CompositionScores(heads: hs, q: q, k: k, v: v, baseline: [.q: 0.04, .k: 0.04, .v: 0.04], foldedNormGains: true)
            try CompositionRunFile.write(s, to: f, selection: "top 4 \(text)", headsSource: text, headScores: [0.3, 0.8, 0.55, 0.12],
                                         baselineDraws: 4)
        }
        if groups.contains("attention") {
            let n = 60
            let toks = (0..<n).map { i in i % 7 == 0 ? text : (i % 5 == 0 ? " tok\(i)\n" : "t\(i)") }
            try f.createDataset("tokens", data: (0..<n).map { Int32($0) })
            try f.createDataset("token_strings", strings: toks)
            let g = try f.createGroup("needle_attention")
            try g.setAttribute("heads", ["3.1", "4.2"])
            try g.setAttribute("span_start", 30); try g.setAttribute("span_end", 38)
            try g.setAttribute("query_positions", [50, 51, 52])
            try g.setAttribute("chosen_step", 1)
            try g.setAttribute("needle_id", text); try g.setAttribute("response", text)
            var w = [Float](repeating: 0.001, count: 2 * 3 * n)
            w[(0 * 3 + 1) * n + 33] = 0.9; w[(1 * 3 + 1) * n + 34] = 0.7; w[(1 * 3 + 1) * n + 5] = .nan
            try g.createDataset("weights", data: w, shape: [2, 3, n])
        }
        if groups.contains("citation") {
            let g = try f.createGroup("citation")
            try g.setAttribute("n_layers", L); try g.setAttribute("n_heads", H)
            try g.setAttribute("n_items", 2); try g.setAttribute("n_statements", 3); try g.setAttribute("n_wrong_citations", 1)
            try g.setAttribute("chance_agreement", 0.25)
            for (key, base) in [("all_heads", 0.6), ("retrieval_heads", 0.7), ("best_head", 0.9)] {
                for m in CitationRunData.metricNames {
                    try g.setAttribute("\(m)_\(key)", base - 0.1)
                    try g.setAttribute("\(m)_\(key)_ci", [base - 0.3, base + 0.05])
                }
            }
            try g.setAttribute("citation_f1", 0.5)
            try g.setAttribute("best_head", text)
            let items = try g.createGroup("items")
            try items.createDataset("id", strings: ["item \(text)", "b"])
            try items.createDataset("source", data: [Int64(2), 0])
            let st = try g.createGroup("statements")
            try st.createDataset("item", data: [Int64(0), 0, 1])
            try st.createDataset("text", strings: [text, "ok", text + " wrong"])
            try st.createDataset("citations", strings: ["1", "2", text])
            try st.createDataset("wrong", data: [Int8(1), 0, 0])
            try st.createDataset("argmax_all_heads", data: [Int64(2), 1, 0])
            var agr = [Double](repeating: 0.2, count: L * H)
            agr[7] = 0.9; agr[8] = .nan
            try g.createDataset("head_agreement", data: agr, shape: [L, H])
            try g.createDataset("head_mean_spearman", data: agr.map { $0 - 0.1 }, shape: [L, H])
            try g.createDataset("head_ranking", data: [Int64(1), 3, 2, 0], shape: [2, 2])
            try g.createDataset("retrieval_heads", data: [Int64(3), 1], shape: [1, 2])
        }
        if groups.contains("membership") {
            let g = try f.createGroup("membership")
            try g.setAttribute("caveat", "caveat \(text)")
            try g.setAttribute("set_name", text)
            try g.setAttribute("warnings", [text])
            try g.setAttribute("method_names", ["perplexity", "forest"])
            let d = try g.createGroup("documents")
            let labels: [Int64] = [1, 1, 1, 0, 0, 0, -1]
            try d.createDataset("label", data: labels)
            try d.createDataset("name", strings: labels.map { "doc \($0) \(text)" })
            try d.createDataset("perplexity", data: [10.0, 12, 11, 20, 22, .nan, 15])
            try d.createDataset("zlib_ratio", data: [1.0, 1.1, 1.2, 1.4, 1.5, 1.6, 1.3])
            let m = try g.createGroup("methods")
            for (name, auc) in [("perplexity", 0.83), ("forest", 0.61)] {
                let mg = try m.createGroup(name)
                try mg.setAttribute("label", "\(name) \(text)")
                try mg.setAttribute("kind", text)
                try mg.setAttribute("auc", auc); try mg.setAttribute("ci_lower", auc - 0.2); try mg.setAttribute("ci_upper", min(1, auc + 0.1))
                try mg.setAttribute("ci_level", 0.95)
                try mg.createDataset("fpr", data: [0.0, 0, 0.33, 0.66, 1])
                try mg.createDataset("tpr", data: [0.0, 0.33, 0.66, 1, 1])
            }
        }
        if complete {
            try w.finalize()
        } else {
            try w.checkpoint()
            try FileManager.default.copyItem(atPath: w.temporaryPath, toPath: url.path)
            try w.abandon()
        }
    }

    static let allGroups: Set<String> = ["retrieval", "ablation", "causal", "composition", "attention", "citation", "membership"]
}

final class RunReportCommandTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("hl-runreport-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func load(_ name: String, text: String = "plain", groups: Set<String> = SyntheticRuns.allGroups) throws -> RunFileContents {
        let url = dir.appendingPathComponent(name)
        try SyntheticRuns.write(url, text: text, groups: groups)
        return try RunFileContents.load(url)
    }

    static let expectedFigures: Set<String> = [
        "retrieval-heatmap", "needle-plain", "needle-attention", "ablation-needle-grids", "ablation-scores",
        "ablation-perplexity", "composition-graph", "causal-graph", "citation-agreement", "citation-correlation",
        "citation-head-agreement", "citation-wrong", "membership-roc-1", "membership-auc", "membership-feature-perplexity",
        "membership-feature-zlib_ratio",
    ]

    func figureNames(_ doc: ReportDocument) -> Set<String> {
        Set(doc.figureFiles().map { ($0.path as NSString).lastPathComponent.replacingOccurrences(of: ".svg", with: "") })
    }

    /// Every figure kind is drawn from a file holding every group, and the report is well formed.
    /// Also writes the report to $HL_RUNREPORT_DIR (default /tmp/hl-runreport) for
    /// scripts/screenshot-report.sh when no demo report exists.
    func testEveryFigureFromAFullRunFile() throws {
        let f = try load("all.h5")
        let doc = try RunReport.document([f], headlightVersion: "9.9", reportCommand: "headlight report all.h5 -o x")
        XCTAssertEqual(figureNames(doc), Self.expectedFigures)
        let html = doc.html()
        XCTAssertNil(unbalancedTags(html))
        for (path, fig) in doc.figureFiles() {
            let check = XMLCheck.parse(ReportDocument.inlineSVG(fig.svg))
            XCTAssertTrue(check.ok, "\(path): \(check.error ?? "")")
            XCTAssertFalse(check.elements(named: "title").isEmpty, "\(path) has no title")
        }
        XCTAssertGreaterThanOrEqual(html.components(separatedBy: "<table>").count - 1, 6)
        XCTAssertTrue(html.contains("Reproducibility"))
        let out = URL(fileURLWithPath: ProcessInfo.processInfo.environment["HL_RUNREPORT_DIR"] ?? "/tmp/hl-runreport")
        let index = try doc.write(to: out)
        print("synthetic run report: \(index.path)")
    }

    /// Hostile text in every string field of every group: escaped in HTML and SVG, never able to
    /// add nodes or edges to a Graphviz graph, control characters shown as control pictures.
    func testHostileTextIsEscapedEverywhere() throws {
        for (i, text) in Hostile.strings.enumerated() {
            let f = try load("h\(i).h5", text: text)
            let doc = try RunReport.document([f], headlightVersion: "9.9", reportCommand: "headlight report \(text)")
            XCTAssertEqual(figureNames(doc), Self.expectedFigures, "input #\(i)")
            let html = doc.html()
            XCTAssertFalse(Hostile.hasRawScript(html), "raw <script> for input #\(i)")
            XCTAssertNil(unbalancedTags(html), "input #\(i)")
            let check = XMLCheck.parse(html.replacingOccurrences(of: "<!DOCTYPE html>", with: ""))
            XCTAssertTrue(check.ok, "index.html is not XML for input #\(i): \(check.error ?? "")")
            for s in html.unicodeScalars where s.value < 0x20 && s != "\n" && s != "\t" {
                XCTFail("raw control character U+\(String(s.value, radix: 16)) for input #\(i)")
                break
            }
            for (path, fig) in doc.figureFiles() {
                let c = XMLCheck.parse(ReportDocument.inlineSVG(fig.svg))
                XCTAssertTrue(c.ok, "\(path) for input #\(i): \(c.error ?? "")")
                if path.contains("causal-graph") || path.contains("composition-graph") {
                    // Graphviz: 4 head nodes + 4 layer captions, whatever the strings say.
                    XCTAssertEqual(c.elements(withClass: "node").count, 8, "\(path) nodes for input #\(i)")
                }
            }
            if text == Hostile.dotBreakout {
                let causal = doc.figureFiles().first { $0.path.contains("causal") }!.figure.svg
                XCTAssertTrue(causal.contains("zero &quot;]; a -&gt; b [label=&quot;"), "graph title kept literally")
            }
        }
    }

    /// Figures are drawn only when their data is there.
    func testFiguresNeedTheirData() throws {
        let retrieval = try load("r.h5", groups: ["retrieval"])
        XCTAssertEqual(figureNames(try RunReport.document([retrieval], headlightVersion: "1")), ["retrieval-heatmap", "needle-plain"])

        let membership = try load("m.h5", groups: ["membership"])
        let m = figureNames(try RunReport.document([membership], headlightVersion: "1"))
        XCTAssertFalse(m.isEmpty)
        XCTAssertTrue(m.allSatisfy { $0.hasPrefix("membership-") })

        let ablation = try load("a.h5", groups: ["ablation"])
        XCTAssertEqual(figureNames(try RunReport.document([ablation], headlightVersion: "1")),
                       ["ablation-needle-grids", "ablation-scores", "ablation-perplexity"])

        let plain = try load("p.h5", groups: [])
        let doc = try RunReport.document([plain], headlightVersion: "1")
        XCTAssertTrue(doc.figureFiles().isEmpty)
        XCTAssertTrue(doc.html().contains("Other run files"))

        // A retrieval group with neither trials nor scores is skipped, not a crash.
        let url = dir.appendingPathComponent("empty-group.h5")
        let w = try RunFileWriter(path: url.path)
        let g = try w.file.createGroup("retrieval_heads")
        try g.setAttribute("n_layers", 2)
        try w.finalize()
        let e = try RunFileContents.load(url)
        XCTAssertNil(e.retrieval)
        XCTAssertTrue(try RunReport.document([e], headlightVersion: "1").figureFiles().isEmpty)
    }

    /// An unfinished detection run: scores averaged from the stored trial records, with a note.
    func testIncompleteRunUsesTrialRecords() throws {
        let url = dir.appendingPathComponent("partial.h5")
        try SyntheticRuns.write(url, text: "x", groups: ["retrieval"], complete: false)
        XCTAssertThrowsError(try RunFileContents.load(url, allowIncomplete: false))
        let f = try RunFileContents.load(url)
        XCTAssertFalse(f.complete)
        XCTAssertEqual(f.retrieval?.fromTrials, true)
        let html = try RunReport.document([f], headlightVersion: "1").html()
        XCTAssertTrue(html.contains("INCOMPLETE"))
        XCTAssertTrue(html.contains("did not finish"))
    }

    /// The reproducibility block names the version, model and hash, commands, date and BLAS kernel.
    func testReproducibilityBlock() throws {
        let a = try load("one.h5", groups: ["retrieval"])
        let b = try load("two.h5", groups: ["membership"])
        let pairs = RunReport.reproducibility([a, b], headlightVersion: "9.9", reportCommand: "headlight report one.h5 two.h5 -o r",
                                              date: Date(timeIntervalSince1970: 0), machine: "Linux test, OpenBLAS kernel Cooperlake")
        let text = pairs.map { "\($0.key)=\($0.value)" }.joined(separator: "\n")
        XCTAssertTrue(text.contains("headlight (report)=9.9"), text)
        XCTAssertTrue(text.contains("model=model-plain.gguf, sha256 " + String(repeating: "ab", count: 32)), text)
        XCTAssertTrue(text.contains("run file one.h5=headlight retrieval plain -o out.h5"), text)
        XCTAssertTrue(text.contains("run file two.h5=headlight membership"), text)
        XCTAssertTrue(text.contains("BLAS Cooperlake"), text)
        XCTAssertTrue(text.contains("date=1970-01-01T00:00:00Z"), text)
        XCTAssertTrue(text.contains("report command=headlight report one.h5 two.h5 -o r"), text)
    }

    /// The notebook provider draws the same figures per run file.
    func testNotebookFigureProvider() throws {
        let provider = RunReportFigureProvider()
        let cell = NotebookCell(number: 1, fenceLine: 1, line: 2, source: "x", arguments: ["x"])
        let r = dir.appendingPathComponent("r.h5")
        try SyntheticRuns.write(r, text: "x", groups: ["retrieval"])
        func names(_ b: [ReportDocument.Block]) -> [String] {
            b.compactMap { if case .figure(let f) = $0 { return f.name }; return nil }
        }
        XCTAssertEqual(names(try provider.blocks(forRunFile: r, cell: cell)), ["retrieval-heatmap", "needle-plain"])
        let c = dir.appendingPathComponent("c.h5")
        try SyntheticRuns.write(c, text: "x", groups: ["causal", "composition"])
        XCTAssertEqual(names(try provider.blocks(forRunFile: c, cell: cell)), ["composition-graph", "causal-graph"])
        let bad = dir.appendingPathComponent("bad.h5")
        try Data("not hdf5".utf8).write(to: bad)
        guard case .note = try provider.blocks(forRunFile: bad, cell: cell).first else {
            return XCTFail("expected a note for an unreadable file")
        }
    }

    /// Side-by-side panels: one SVG root, each panel translated, one title of its own.
    func testPanelsCombine() {
        let a = NeedleGrid(title: "A", contextLengths: [1000, 2000], depths: [0, 100], scores: [[100, 50], [0, .nan]]).svg()
        let b = NeedleGrid(title: "B", contextLengths: [1000], depths: [0], scores: [[10]]).svg()
        let svg = SVGPanels.combine([a, b, a, b], title: "Panels", subtitle: "sub", columns: 3)
        let c = XMLCheck.parse(svg)
        XCTAssertTrue(c.ok, c.error ?? "")
        XCTAssertEqual(c.elements(named: "svg").count, 1)
        XCTAssertEqual(svg.components(separatedBy: "translate(").count - 1, 4)
        XCTAssertEqual(c.texts["title"]?.first, "Panels")
    }
}

/// Composition scores against a brute-force computation with the full D × D matrices.
final class CompositionReportCommandTests: XCTestCase {
    func matmul(_ a: [Double], _ b: [Double], _ n: Int, _ k: Int, _ m: Int) -> [Double] {
        var c = [Double](repeating: 0, count: n * m)
        for i in 0..<n { for t in 0..<k { for j in 0..<m { c[i * m + j] += a[i * k + t] * b[t * m + j] } } }
        return c
    }

    func transpose(_ a: [Double], _ r: Int, _ c: Int) -> [Double] {
        var t = [Double](repeating: 0, count: r * c)
        for i in 0..<r { for j in 0..<c { t[j * r + i] = a[i * c + j] } }
        return t
    }

    func fro(_ a: [Double]) -> Double { a.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    func testMatchesBruteForce() {
        let dh = 3, D = 7
        var seed: UInt64 = 42
        func r() -> [Double] {
            (0..<(dh * D)).map { _ in
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                return Double(Int64(bitPattern: seed >> 11) % 2000) / 1000 - 1
            }
        }
        let a = (q: r(), k: r(), v: r(), ot: r()), b = (q: r(), k: r(), v: r(), ot: r())
        let s = Composition.scores(writer: a, reader: b, dh: dh, D: D)
        // Full matrices: W_QK = Qᵀ K, W_OV = Vᵀ Oᵀ (each D × D).
        let qkB = matmul(transpose(b.q, dh, D), b.k, D, dh, D)
        let ovA = matmul(transpose(a.v, dh, D), a.ot, D, dh, D)
        let ovB = matmul(transpose(b.v, dh, D), b.ot, D, dh, D)
        let q = fro(matmul(ovA, qkB, D, D, D)) / (fro(ovA) * fro(qkB))
        let k = fro(matmul(qkB, transpose(ovA, D, D), D, D, D)) / (fro(qkB) * fro(ovA))
        let v = fro(matmul(ovA, ovB, D, D, D)) / (fro(ovA) * fro(ovB))
        print("composition: q \(s.q) vs \(q), k \(s.k) vs \(k), v \(s.v) vs \(v)")
        XCTAssertEqual(s.q, q, accuracy: 1e-9)
        XCTAssertEqual(s.k, k, accuracy: 1e-9)
        XCTAssertEqual(s.v, v, accuracy: 1e-9)
        XCTAssertTrue((0...1).contains(s.q) && (0...1).contains(s.k) && (0...1).contains(s.v))
    }

    func testRunFileRoundTrip() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("hl-comp-\(UUID().uuidString).h5")
        defer { try? FileManager.default.removeItem(at: url) }
        let hs = [HeadIndex(layer: 1, head: 0), HeadIndex(layer: 2, head: 3)]
        let s = CompositionScores(heads: hs, q: [[.nan, 0.3], [.nan, .nan]], k: [[.nan, 0.2], [.nan, .nan]],
                                  v: [[.nan, 0.1], [.nan, .nan]], baseline: [.q: 0.05, .k: 0.06, .v: 0.07], foldedNormGains: true)
        let w = try RunFileWriter(path: url.path)
        try CompositionRunFile.write(s, to: w.file, selection: "test", headsSource: nil, headScores: [0.5, 0.4], baselineDraws: 2)
        try w.finalize()
        let f = try RunFile.open(url.path)
        let back = try XCTUnwrap(try CompositionRunFile.read(f))
        try f.close()
        XCTAssertEqual(back.scores.heads, hs)
        XCTAssertEqual(back.scores.q[0][1], 0.3)
        XCTAssertTrue(back.scores.q[1][0].isNaN)
        XCTAssertEqual(back.scores.baseline[.v], 0.07)
        XCTAssertEqual(back.headScores, [0.5, 0.4])
        XCTAssertEqual(back.scores.pairs().first?.kind, .q)
    }
}
