import XCTest
@testable import Reports

final class DocumentTests: XCTestCase {
    private func tempDir() -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("hl-doc-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: u) }
        return u
    }

    /// A document with hostile text in every slot.
    private func hostileDocument() -> ReportDocument {
        var doc = ReportDocument(title: Hostile.script, subtitle: Hostile.dotBreakout)
        for (i, h) in Hostile.strings.enumerated() {
            doc.section("Section \(i) \(h)") { s in
                s.paragraph("Prompt was: \(h)\n\nSecond paragraph \(h)")
                s.subheading(h)
                s.note(h)
                s.figure(SampleCharts.bars(h).svg(), name: h, caption: h)
                s.table(headers: ["key", h], rows: [[h, "1.5"], ["x", h], [h]], caption: h)
                s.code(h, language: h)
                s.keyValues([(h, h)], title: h)
            }
        }
        doc.reproducibility = [
            ("command", "headlight report \(Hostile.script)"), (Hostile.dotBreakout, Hostile.controls)
        ]
        doc.footer = Hostile.script
        return doc
    }

    func testHTMLIsWellFormedAndEscaped() {
        let html = hostileDocument().html()
        XCTAssertFalse(Hostile.hasRawScript(html))
        XCTAssertNil(unbalancedTags(html))
        let x = XMLCheck.parse(html)
        XCTAssertTrue(x.ok, x.error ?? "")
        XCTAssertEqual(x.elements(named: "figure").count, Hostile.strings.count)
        XCTAssertEqual(x.elements(named: "table").count, Hostile.strings.count)
        XCTAssertEqual(x.elements(named: "section").count, Hostile.strings.count + 1) // + reproducibility
        // What a parser reads back is exactly the visible text we put in.
        XCTAssertEqual(x.texts["h1"]?.first, Hostile.script)
        XCTAssertTrue((x.texts["td"] ?? []).contains(TextSanitizer.visible(Hostile.dotBreakout)))
        XCTAssertTrue((x.texts["code"] ?? []).contains(TextSanitizer.visible(Hostile.controls)))
        // No network, no scripts.
        XCTAssertTrue(html.contains("Content-Security-Policy"))
        XCTAssertFalse(
            html.contains("http://") && html.range(of: "http://(?!www\\.w3\\.org)", options: .regularExpression) != nil)
        XCTAssertFalse(html.contains("https://"))
        XCTAssertTrue(html.contains("prefers-color-scheme:dark"))
    }

    func testBalancedTagCheckerCatchesProblems() {
        XCTAssertNil(unbalancedTags("<p>a<br/>b<meta charset=\"x\"></p>"))
        XCTAssertNotNil(unbalancedTags("<p><b>x</p></b>"))
        XCTAssertNotNil(unbalancedTags("<div><p>x</p>"))
    }

    func testFigureFileNamesAreSafeAndUnique() {
        var doc = ReportDocument(title: "t")
        doc.section("s") { s in
            s.figure("<svg xmlns=\"http://www.w3.org/2000/svg\"/>", name: "../x", caption: "")
            s.figure("<svg xmlns=\"http://www.w3.org/2000/svg\"/>", name: "x", caption: "")
            s.figure("<svg xmlns=\"http://www.w3.org/2000/svg\"/>", name: "X.svg", caption: "")
            s.figure("<svg xmlns=\"http://www.w3.org/2000/svg\"/>", name: "", caption: "")
        }
        XCTAssertEqual(
            doc.figureFiles().map(\.path), ["figures/x.svg", "figures/x-2.svg", "figures/X-3.svg", "figures/figure.svg"]
        )
    }

    func testWriteIsAtomicAndComplete() throws {
        let dir = tempDir()
        let doc = hostileDocument()
        let index = try doc.write(to: dir)
        XCTAssertEqual(index.lastPathComponent, "index.html")
        XCTAssertEqual(try String(contentsOf: index, encoding: .utf8), doc.html())
        let figs = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("figures").path)
        XCTAssertEqual(figs.count, Hostile.strings.count)
        for f in figs {
            XCTAssertTrue(f.hasSuffix(".svg"))
            let text = try String(contentsOf: dir.appendingPathComponent("figures/\(f)"), encoding: .utf8)
            XCTAssertTrue(XMLCheck.parse(text).ok, f)
        }
        // Every figure link in the HTML points at a written file.
        for (path, _) in doc.figureFiles() {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent(path).path), path)
        }
        // Rewriting replaces the file and leaves no temporaries behind.
        var doc2 = doc
        doc2.title = "second"
        try doc2.write(to: dir)
        XCTAssertTrue(try String(contentsOf: index, encoding: .utf8).contains("<h1>second</h1>"))
        let leftovers = try FileManager.default.subpathsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [])
    }

    func testWriteFailureIsAReportError() throws {
        let dir = tempDir()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // index.html exists as a directory: rename must fail, and the temp file must be cleaned up.
        try FileManager.default.createDirectory(
            at: dir.appendingPathComponent("index.html/sub"), withIntermediateDirectories: true)
        XCTAssertThrowsError(try ReportDocument(title: "x").write(to: dir)) { error in
            guard case ReportError.io = error else { return XCTFail("\(error)") }
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [])
        // A file where the directory should be.
        let file = dir.appendingPathComponent("plainfile")
        try Data("x".utf8).write(to: file)
        XCTAssertThrowsError(try ReportDocument(title: "x").write(to: file.appendingPathComponent("out")))
    }

    func testGraphFigureInlinesCleanly() throws {
        var doc = ReportDocument(title: "graph")
        let svg = try SampleCharts.graph(Hostile.script).svg()
        doc.section("g") { $0.figure(svg, name: "circuit", caption: "c") }
        let html = doc.html()
        XCTAssertFalse(html.contains("<?xml"))
        XCTAssertFalse(html.contains("<!DOCTYPE svg"))
        XCTAssertTrue(XMLCheck.parse(html).ok)
        XCTAssertFalse(Hostile.hasRawScript(html))
    }
}

/// Renders the sample report (all chart kinds + a graph, synthetic data) to
/// $HL_SAMPLE_DIR or /tmp/hl-sample for eyeballing and screenshots.
final class SampleReportTests: XCTestCase {
    func testWriteSampleReport() throws {
        let dir = URL(fileURLWithPath: ProcessInfo.processInfo.environment["HL_SAMPLE_DIR"] ?? "/tmp/hl-sample")
        var doc = ReportDocument(
            title: "Headlight sample report",
            subtitle: "Synthetic data exercising every chart kind — not a real experiment")
        doc.section("Retrieval heads") { s in
            s.paragraph(
                "Retrieval score of each attention head: the fraction of needle tokens a head copies when the model "
                    + "emits them (Wu et al. 2024). Heads scoring above 0.1 are outlined.\n\n"
                    + "One cell (L4, H2) was not captured and is drawn hatched."
            )
            s.figure(
                SampleCharts.heatmap().svg(), name: "retrieval-heads", caption: "Retrieval score per layer and head.")
            s.figure(
                SampleCharts.needle().svg(), name: "needle",
                caption: "Needle-in-a-haystack accuracy by context length and needle depth.")
            s.table(
                headers: ["Head", "Score", "95% CI", "Note"],
                rows: [
                    ["L14H3", "0.74", "[0.69, 0.79]", "strongest"], ["L17H6", "0.52", "[0.47, 0.58]", ""],
                    ["L20H1", "0.33", "[0.28, 0.38]", "prompt: <script>alert(1)</script>"]
                ],
                caption: "Top retrieval heads")
        }
        doc.section("Ablation") { s in
            s.figure(
                SampleCharts.bars().svg(), name: "ablation",
                caption: "Task scores after ablating heads; error bars are bootstrap 95% CIs.")
            s.figure(
                SampleCharts.lines().svg(), name: "logit-lens",
                caption: "A line chart with markers, a dashed series and a gap (NaN).")
        }
        try doc.section("Attention") { s in
            s.figure(
                SampleCharts.attention().svg(), name: "attention",
                caption: "Attention from the answer position to each prompt token.")
            s.figure(
                try SampleCharts.graph().svg(), name: "circuit",
                caption: "Retrieval circuit; edge width is |attribution|, dashed red edges are negative.")
        }
        doc.section("Membership") { s in
            s.figure(SampleCharts.roc().svg(), name: "roc", caption: "ROC of three membership-inference scores.")
            s.figure(
                SampleCharts.histogram().svg(), name: "mass-hist",
                caption: "Attention mass on the cited span for members and non-members.")
            s.note("Synthetic data: these numbers illustrate the layout only.")
            s.code(
                "headlight membership --model smollm2-135m.gguf \\\n  --probes probes/membership.jsonl --out runs/m.h5")
        }
        try doc.section("Untrusted text") { s in
            s.paragraph(
                "Prompts, model output and probe files are untrusted. Each string below went through every renderer; "
                    + "control characters show as control pictures (␀ ␛ …), "
                    + "nothing is interpreted as markup or DOT."
            )
            s.table(
                headers: ["#", "Input (escaped)"],
                rows: Hostile.strings.enumerated().map { [String($0.offset), $0.element] },
                caption: "Hostile inputs used by the tests")
            var g = DirectedGraph(title: "Graph with hostile labels")
            for (i, h) in Hostile.strings.prefix(8).enumerated() { g.addNode("k\(i)", label: h, rank: i) }
            for i in 0..<7 { g.addEdge(from: "k\(i)", to: "k\(i + 1)", label: Hostile.strings[i]) }
            try s.graph(
                g, name: "hostile-graph",
                caption: "8 nodes and 7 edges, whatever the labels say: \(Hostile.dotBreakout)")
            s.figure(
                SampleCharts.bars(Hostile.strings[6]).svg(), name: "hostile-bars",
                caption: "Right-to-left text in a chart.")
        }
        doc.reproducibility = [
            ("command", "swift test --filter SampleReportTests"), ("graphviz", Graphviz.version),
            ("model", "none (synthetic)"), ("seed", "1, 3, 7")
        ]
        let index = try doc.write(to: dir)
        let html = try String(contentsOf: index, encoding: .utf8)
        XCTAssertTrue(XMLCheck.parse(html).ok)
        XCTAssertNil(unbalancedTags(html))
        print("sample report: \(index.path)")
    }
}
