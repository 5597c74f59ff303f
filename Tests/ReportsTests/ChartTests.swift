import XCTest
@testable import Reports

final class ChartTests: XCTestCase {
    private func assertWellFormedChart(
        _ svg: String, _ name: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        let x = XMLCheck.parse(svg)
        XCTAssertTrue(x.ok, "\(name): \(x.error ?? "")", file: file, line: line)
        guard let root = x.elements.first else { return XCTFail("\(name): no root", file: file, line: line) }
        XCTAssertEqual(root.name, "svg", file: file, line: line)
        XCTAssertEqual(root.attributes["xmlns"], "http://www.w3.org/2000/svg", file: file, line: line)
        let w = Double(root.attributes["width"] ?? "") ?? 0, h = Double(root.attributes["height"] ?? "") ?? 0
        XCTAssertGreaterThan(w, 100, "\(name) width", file: file, line: line)
        XCTAssertGreaterThan(h, 100, "\(name) height", file: file, line: line)
        XCTAssertLessThanOrEqual(w, 1400, "\(name) too wide for a laptop", file: file, line: line)
        XCTAssertEqual(
            root.attributes["viewBox"], "0 0 \(root.attributes["width"]!) \(root.attributes["height"]!)", file: file,
            line: line)
        XCTAssertFalse(Hostile.hasRawScript(svg), "\(name) contains raw <script", file: file, line: line)
        XCTAssertFalse(svg.contains("NaN") && !svg.contains("missing"), "\(name) printed NaN", file: file, line: line)
        XCTAssertFalse(x.elements(named: "title").isEmpty, file: file, line: line)
        // No coordinate came out as nan/inf.
        for e in x.elements {
            for (k, v) in e.attributes
            where ["x", "y", "width", "height", "x1", "x2", "y1", "y2", "d", "points"].contains(k) {
                XCTAssertFalse(
                    v.lowercased().contains("nan") || v.lowercased().contains("inf"), "\(name) \(e.name) \(k)=\(v)",
                    file: file, line: line)
            }
        }
    }

    func testTicks() {
        let a = Ticks.nice(0, 0.93)
        XCTAssertEqual(a.values, [0, 0.2, 0.4, 0.6, 0.8, 1.0])
        XCTAssertEqual(a.values.map(a.label), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        let b = Ticks.within(0, 100, target: 6)
        XCTAssertEqual(b.values, [0, 20, 40, 60, 80, 100])
        XCTAssertEqual(b.lower, 0)
        XCTAssertEqual(b.upper, 100)
        let c = Ticks.nice(-3.2, 7.9)
        XCTAssertEqual(c.step, 2)
        XCTAssertEqual(c.values.first, -4)
        XCTAssertEqual(c.values.last, 8)
        XCTAssertEqual(Ticks.nice(0, 0.003).step, 0.001, accuracy: 1e-15)
        XCTAssertEqual(Ticks.nice(0, 4500).step, 1000)
        XCTAssertEqual(Ticks.nice(0, 12, target: 6).step, 2)
        // 1-2-5 steps only.
        for (lo, hi) in [(0.0, 1.0), (0, 7.3), (-1e-3, 2e-3), (12, 9871), (0.3, 0.31)] {
            let t = Ticks.nice(lo, hi)
            let m = t.step / pow(10, floor(log10(t.step)))
            XCTAssertTrue([1, 2, 5].contains { abs($0 - m) < 1e-9 }, "\(t.step)")
            XCTAssertLessThanOrEqual(t.lower, lo)
            XCTAssertGreaterThanOrEqual(t.upper, hi)
        }
        // Degenerate input never crashes and yields a usable range.
        for (lo, hi) in [(5.0, 5.0), (0, 0), (.nan, .nan), (.infinity, 1), (3, -3)] {
            let t = Ticks.nice(lo, hi)
            XCTAssertLessThan(t.lower, t.upper)
            XCTAssertFalse(t.values.isEmpty)
        }
    }

    func testAllChartsWellFormed() {
        for (name, svg) in SampleCharts.all() { assertWellFormedChart(svg, name) }
    }

    func testHostileTextThroughEveryChart() {
        for h in Hostile.strings {
            for (name, svg) in SampleCharts.all(h) {
                assertWellFormedChart(svg, "\(name) with \(h.debugDescription)")
            }
        }
        // The visible form of the hostile text is there, escaped (not dropped).
        let svg = SampleCharts.heatmap(Hostile.script).svg()
        XCTAssertTrue(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
    }

    func testEmptyDataIsSafe() {
        let empties: [(String, String)] = [
            ("heatmap", Heatmap(title: "empty", values: []).svg()),
            ("heatmap-empty-rows", Heatmap(title: "empty", values: [[], []]).svg()),
            ("needle", NeedleGrid(title: "n", contextLengths: [], depths: [], scores: []).svg()),
            ("bars", GroupedBarChart(title: "b", groups: [], series: [], bars: []).svg()),
            ("bars-all-nan", GroupedBarChart(title: "b", groups: ["a"], series: ["s"], bars: [[.init(.nan)]]).svg()),
            ("line", LineChart(title: "l", series: []).svg()),
            ("line-nan", LineChart(title: "l", series: [.init(name: "s", x: [.nan], y: [1])]).svg()),
            ("roc-empty", LineChart.roc(title: "r", curves: []).svg()),
            ("attn", AttentionStrip(title: "a", tokens: [], heads: []).svg()),
            ("attn-no-heads", AttentionStrip(title: "a", tokens: ["x"], heads: []).svg()),
            ("hist", Histogram(title: "h", groups: [], xTitle: "x").svg()),
            (
                "hist-nan",
                Histogram(title: "h", groups: [.init(name: "g", values: [.nan, .infinity])], xTitle: "x").svg()
            )
        ]
        for (name, svg) in empties { assertWellFormedChart(svg, name) }
        XCTAssertTrue(empties[0].1.contains("No data"))
    }

    func testAllNaNAndSingleValueData() {
        assertWellFormedChart(Heatmap(title: "all nan", values: [[.nan, .nan], [.nan, .nan]]).svg(), "heatmap all nan")
        assertWellFormedChart(Heatmap(title: "const", values: [[1, 1], [1, 1]]).svg(), "heatmap const")
        assertWellFormedChart(Heatmap(title: "ragged", values: [[1, 2, 3], [4]]).svg(), "heatmap ragged")
        assertWellFormedChart(
            Histogram(title: "one", groups: [.init(name: "g", values: [3])], xTitle: "x").svg(), "hist one")
        assertWellFormedChart(
            AttentionStrip(title: "nan", tokens: ["a", "b"], heads: [.init(label: "h", weights: [.nan, .nan])]).svg(),
            "attn nan")
        assertWellFormedChart(
            LineChart(title: "pt", series: [.init(name: "s", x: [1], y: [1])]).svg(), "line single point")
        assertWellFormedChart(
            GroupedBarChart(
                title: "neg", groups: ["a", "b"], series: ["s"],
                bars: [[.init(-2, lower: -3, upper: -1)], [.init(1.5)]]
            ).svg(), "bars negative")
    }

    func testOutOfRangeIndicesAreIgnored() {
        for r in [50..<60, -5..<2, 3..<3, -10..<(-2)] {
            let a = AttentionStrip(
                title: "r", tokens: ["a", "b", "c"], heads: [.init(label: "h", weights: [0.2, 0.3, 0.5])],
                highlight: r, queryIndex: 99)
            assertWellFormedChart(a.svg(), "attention highlight \(r)")
        }
        var h = Heatmap(title: "m", values: [[1, 2], [3, 4]])
        h.marked = [.init(row: 5, col: 0), .init(row: -1, col: 1), .init(row: 1, col: 1)]
        XCTAssertEqual(XMLCheck.parse(h.svg()).elements(withClass: "hl-mark").count, 2) // 1 cell + legend swatch
    }

    func testHeatmapMarksMissingAndTooltips() {
        let h = SampleCharts.heatmap()
        let x = XMLCheck.parse(h.svg())
        XCTAssertEqual(x.elements(withClass: "hl-mark").count, h.marked.count + 1) // + legend swatch
        XCTAssertEqual(h.marked.count, 3)
        XCTAssertEqual(x.elements(named: "pattern").count, 1) // hatch for the NaN cell
        XCTAssertTrue((x.texts["title"] ?? []).contains { $0.contains("Layer L4, Head H2: missing") })
        XCTAssertTrue((x.texts["title"] ?? []).contains { $0.contains("layer 14 head 3") })
    }

    func testNeedleGridShowsValues() {
        let svg = SampleCharts.needle().svg()
        let x = XMLCheck.parse(svg)
        let cellTexts = x.elements(withClass: "hl-cell-text").count
        XCTAssertEqual(cellTexts, 11 * 6 - 1) // one missing cell
        XCTAssertTrue(svg.contains("32K"))
    }

    func testLineBreaksAtNaN() {
        let svg = LineChart(title: "gap", series: [.init(name: "s", x: [0, 1, 2, 3, 4], y: [0, 1, .nan, 3, 4])]).svg()
        let x = XMLCheck.parse(svg)
        let d = x.elements(withClass: "hl-line").compactMap { $0.attributes["d"] }.first ?? ""
        XCTAssertEqual(d.filter { $0 == "M" }.count, 2, d)
    }

    func testROCHasDiagonalAndAUCLegend() {
        let svg = SampleCharts.roc().svg()
        XCTAssertTrue(svg.contains("(AUC 0.872)"))
        XCTAssertTrue(svg.contains("chance (AUC 0.5)"))
        XCTAssertGreaterThanOrEqual(XMLCheck.parse(svg).elements(withClass: "hl-ref").count, 2)
    }

    func testAttentionStripThinsLabelsButKeepsSpan() {
        let n = 2000
        let tokens = (0..<n).map { " tok\($0)" }
        let weights = (0..<n).map { i in i >= 1200 && i < 1206 ? 0.1 : 0.4 / Double(n) }
        var a = AttentionStrip(
            title: "long", tokens: tokens, heads: [.init(label: "L1H1", weights: weights)],
            highlight: 1200..<1206, highlightLabel: "needle")
        a.queryIndex = n - 1
        let svg = a.svg()
        assertWellFormedChart(svg, "long attention")
        let x = XMLCheck.parse(svg)
        let labels = x.elements(withClass: "hl-token")
        XCTAssertLessThan(labels.count, 120)
        XCTAssertGreaterThan(labels.count, 20)
        // Labels never closer than the minimum spacing.
        let xs = labels.compactMap { Double($0.attributes["x"] ?? "") }.sorted()
        for (a, b) in zip(xs, xs.dropFirst()) { XCTAssertGreaterThanOrEqual(b - a, 12.9) }
        XCTAssertGreaterThanOrEqual(x.elements(withClass: "hl-token-hl").count, 1)
        XCTAssertEqual(AttentionStrip.displayToken(" the"), "·the")
        XCTAssertEqual(AttentionStrip.displayToken("\n\n"), "↵↵")
        XCTAssertEqual(AttentionStrip.displayToken(""), "∅")
        XCTAssertEqual(AttentionStrip.displayToken("\u{1B}"), "\u{241B}")
    }

    func testBigHeatmapStaysLaptopSized() {
        let values = (0..<200).map { r in (0..<200).map { c in Double(r * c) } }
        let svg = Heatmap(title: "big", values: values).svg()
        assertWellFormedChart(svg, "big heatmap")
        let root = XMLCheck.parse(svg).elements.first!
        XCTAssertLessThanOrEqual(Double(root.attributes["height"]!)!, 900)
    }

    func testDeterministicOutput() {
        XCTAssertEqual(SampleCharts.heatmap().svg(), SampleCharts.heatmap().svg())
        XCTAssertNotEqual(SampleCharts.heatmap("a").svg(), SampleCharts.heatmap("b").svg())
    }
}
