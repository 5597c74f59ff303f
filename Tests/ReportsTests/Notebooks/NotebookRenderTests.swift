import XCTest
@testable import Notebooks
@testable import Reports
import TraceStore

/// Records the run files it is asked about and returns one figure per file.
final class RecordingProvider: NotebookFigureProvider {
    var asked: [String] = []
    func blocks(forRunFile url: URL, cell: NotebookCell) throws -> [ReportDocument.Block] {
        asked.append(url.lastPathComponent)
        if url.lastPathComponent == "broken.h5" { throw ReportError.invalidInput("cannot draw <this>") }
        let svg = SampleCharts.bars("cell \(cell.number)").svg()
        return [
            .figure(
                ReportDocument.Figure(
                    name: "cell\(cell.number)-\(url.lastPathComponent)", svg: svg,
                    caption: "Figure for \(url.lastPathComponent)"))
        ]
    }
}

final class RenderNotebookTests: XCTestCase {
    func testReportShowsCommandsOutputsEscapedAndIsWellFormed() throws {
        let f = try NotebookFixture(self)
        f.launcher.stdoutFor = { args in
            args.first == "inspect" ? "<script>alert('x')</script> & \u{1B}[31mred\u{1B}[0m\n" : "done \(args[0])\n"
        }
        let provider = RecordingProvider()
        let html = try f.run(provider: provider).html
        XCTAssertFalse(Hostile.hasRawScript(html))
        XCTAssertTrue(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; ␛[31mred␛[0m"), html)
        XCTAssertNil(unbalancedTags(html))
        let x = XMLCheck.parse(html)
        XCTAssertTrue(x.ok, x.error ?? "")
        // Title from the first H1, sections from the H2s, plus reproducibility.
        XCTAssertEqual(x.texts["h1"], ["Test notebook"])
        XCTAssertEqual(x.texts["h2"], ["Overview", "Step two", "Reproducibility"])
        // Commands as code blocks, the optional prefix shown.
        let codes = x.texts["code"] ?? []
        XCTAssertTrue(codes.contains("headlight inspect --json"))
        XCTAssertTrue(codes.contains("headlight analyze --probes probes.json -o runs/a.h5"))
        XCTAssertTrue(codes.contains("done analyze\n"))
        XCTAssertTrue(html.contains("class=\"language-headlight\""))
        XCTAssertTrue(html.contains("<p class=\"cell-meta\">Cell 2 · line 14 · "))
        XCTAssertFalse(html.contains(">cached</span>"))
        XCTAssertTrue(
            html.contains(
                "<details class=\"stderr\"><summary>stderr (1 line)</summary><pre><code>progress "
                    + "1/1</code></pre></details>"
            ))
        XCTAssertTrue(html.contains("<p>Output files: runs/a.h5</p>"))
        XCTAssertTrue(html.contains("<p>Analyse the probes.</p>"))
        // The provider is asked about .h5 outputs only; its figure lands in the report and figures/.
        XCTAssertEqual(provider.asked, ["a.h5"])
        XCTAssertEqual(x.elements(named: "figure").count, 1)
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: f.outputDir.appendingPathComponent("figures/cell2-a.h5.svg").path))
        // Reproducibility: version, notebook path and hash, machine, each command.
        let dd = x.texts["code"] ?? [] // <dd><code>value</code></dd>
        XCTAssertTrue(dd.contains("0.1.0-test"))
        XCTAssertTrue(dd.contains("notebooks-cli/nb.md"))
        XCTAssertTrue(dd.contains { $0.hasPrefix("fnv1a128:") && $0.count == 9 + 32 })
        XCTAssertTrue(dd.contains("headlight report runs/a.h5 -o runs/b.txt"))
        XCTAssertTrue(dd.contains(NotebookRenderInfo.machineDescription()))
        XCTAssertTrue((x.texts["dt"] ?? []).contains("cell 3 (line 18)"))
        // No placeholder survives.
        XCTAssertFalse(html.contains("hl-notebook-fragment-"))
        // Second run: every cell marked cached.
        let again = try f.run(provider: provider).html
        XCTAssertEqual(again.components(separatedBy: "<span class=\"cached\">cached</span>").count, 4)
        XCTAssertTrue(again.contains("3 cells, 0 run, 3 cached"))
    }

    func testHugeOutputIsClippedWithANote() throws {
        let f = try NotebookFixture(self, text: "```headlight\nbig\n```\n")
        f.launcher.stdoutFor = { _ in (0..<20_000).map { "row \($0) <x>" }.joined(separator: "\n") + "\n" }
        let html = try f.run().html
        XCTAssertTrue(html.contains("Output clipped: the command printed"))
        XCTAssertTrue(html.contains("bytes omitted"))
        XCTAssertTrue(html.contains("row 0 &lt;x&gt;"))
        XCTAssertTrue(html.contains("row 19999 &lt;x&gt;"))
        XCTAssertFalse(html.contains("row 10000 &lt;x&gt;"))
        XCTAssertLessThan(html.utf8.count, 150_000)
        XCTAssertTrue(XMLCheck.parse(html).ok)
    }

    func testTextCellsTitleFallbackAndProviderErrors() throws {
        let text = """
            No heading here, so the title is the file name.

            ```text
            preformatted <b>text</b>
            ```

            ```headlight
            make -o broken.h5
            ```
            """
        let f = try NotebookFixture(self, text: text)
        let html = try f.run(provider: RecordingProvider()).html
        let x = XMLCheck.parse(html)
        XCTAssertTrue(x.ok, x.error ?? "")
        XCTAssertEqual(x.texts["h1"], ["nb"])
        XCTAssertTrue((x.texts["code"] ?? []).contains("preformatted <b>text</b>"))
        XCTAssertTrue(
            html.contains("<p class=\"note\">broken.h5: Invalid report input: cannot draw &lt;this&gt;</p>"), html)
    }

    func testDefaultProviderListsRunFileAttributesAndSurvivesGarbage() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hl-nbh5-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("run.h5").path
        let w = try RunFileWriter(path: path)
        try RunFileHeader(
            headlightVersion: "0.1.0", command: "retrieval-heads", commandLine: ["headlight", "retrieval-heads", "<x>"],
            dimensions: ["n_layers": 30]
        ).write(to: w.file)
        try w.file.setAttribute("long", Array(0..<40))
        _ = try w.file.createGroup("results")
        try w.finalize()
        let cell = NotebookCell(number: 1, fenceLine: 1, line: 2, source: "", arguments: [])
        let blocks = try RunFileSummaryProvider().blocks(forRunFile: URL(fileURLWithPath: path), cell: cell)
        guard case .table(let t)? = blocks.first else { return XCTFail("\(blocks)") }
        let rows = Dictionary(uniqueKeysWithValues: t.rows.map { ($0[0], $0[1]) })
        XCTAssertEqual(rows["format"], "headlight-run")
        XCTAssertEqual(rows["command"], "retrieval-heads")
        XCTAssertEqual(rows["n_layers"], "30")
        XCTAssertEqual(rows["command_line"], "[\"headlight\", \"retrieval-heads\", \"<x>\"]")
        XCTAssertEqual(rows["long"], "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, … (40 items)]")
        guard case .paragraph(let p)? = blocks.last else { return XCTFail() }
        XCTAssertTrue(p.contains("results"))

        let garbage = dir.appendingPathComponent("garbage.h5")
        try Data("not hdf5".utf8).write(to: garbage)
        let g = try RunFileSummaryProvider().blocks(forRunFile: garbage, cell: cell)
        guard case .note(let n)? = g.first, g.count == 1 else { return XCTFail("\(g)") }
        XCTAssertTrue(n.hasPrefix("garbage.h5: not a readable Headlight run file"), n)
        let missing = try RunFileSummaryProvider().blocks(
            forRunFile: dir.appendingPathComponent("missing.h5"), cell: cell)
        XCTAssertEqual(missing.count, 1)
    }

    func testCellsWithoutResultsRenderAsNotRun() throws {
        let nb = try Notebook.parse("# T\n\n```headlight\ninspect\n```\n", path: "t.md")
        let info = NotebookRenderInfo(headlightVersion: "v", notebookHash: "h", workingDirectory: "/tmp")
        let html = NotebookRenderer(
            notebook: nb, results: [], info: info, workingDirectory: URL(fileURLWithPath: "/tmp")
        ).render().html()
        XCTAssertTrue(html.contains("Cell 1 · line 4 · not run"))
        XCTAssertTrue(XMLCheck.parse(html).ok)
    }
}
