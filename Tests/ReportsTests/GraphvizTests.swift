import XCTest
@testable import Reports

final class GraphvizTests: XCTestCase {
    func testVersion() {
        XCTAssertFalse(Graphviz.version.isEmpty)
        XCTAssertTrue(Graphviz.version.first!.isNumber, Graphviz.version)
    }

    func testRendersTenNodeGraph() throws {
        var dot = "digraph G {\n"
        for i in 0..<10 { dot += "  v\(i) [label=\"node \(i)\"];\n" }
        for i in 0..<9 { dot += "  v\(i) -> v\(i + 1);\n" }
        dot += "}\n"
        let svg = try Graphviz.renderSVG(dot: dot)
        let x = XMLCheck.parse(svg)
        XCTAssertTrue(x.ok, x.error ?? "")
        XCTAssertEqual(x.elements(withClass: "node").count, 10)
        XCTAssertEqual(x.elements(withClass: "edge").count, 9)
        XCTAssertEqual(x.elements(named: "svg").count, 1)
    }

    func testMalformedDOTGivesCleanError() {
        XCTAssertThrowsError(try Graphviz.renderSVG(dot: "digraph { a -> ; }")) { error in
            guard case let ReportError.graphviz(status, message) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(status, 3)
            XCTAssertTrue(message.contains("syntax error"), message)
            XCTAssertTrue(error.localizedDescription.contains("syntax error"))
        }
        XCTAssertThrowsError(try Graphviz.renderSVG(dot: "")) { error in
            guard case ReportError.graphviz = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try Graphviz.renderSVG(dot: "digraph { a\u{0} }"))
        // The parser recovers: a valid graph renders right after a failure.
        XCTAssertNoThrow(try Graphviz.renderSVG(dot: "digraph { a -> b }"))
    }

    func testWarningsAreCapturedNotFatal() throws {
        let r = try Graphviz.render(dot: "digraph { a [color=\"nosuchcolour\"]; a -> b }")
        XCTAssertTrue(r.warnings.contains { $0.contains("nosuchcolour") }, "\(r.warnings)")
        XCTAssertTrue(XMLCheck.parse(r.svg).ok)
    }

    func testConcurrentRendersAreSerialised() {
        let n = 8
        let results = UnsafeMutableBufferPointer<Int>.allocate(capacity: n)
        results.initialize(repeating: -1)
        defer { results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: n) { i in
            let dot = i % 2 == 0 ? "digraph { a -> b -> c }" : "digraph { a -> }"
            do {
                let svg = try Graphviz.renderSVG(dot: dot)
                results[i] = XMLCheck.parse(svg).elements(withClass: "edge").count
            } catch {
                results[i] = 100
            }
        }
        for i in 0..<n { XCTAssertEqual(results[i], i % 2 == 0 ? 2 : 100) }
    }

    // MARK: DirectedGraph

    func testGraphBuilderCountsAndRanks() throws {
        var g = DirectedGraph(title: "Circuit")
        for l in 0..<3 {
            for h in 0..<3 { g.addNode("L\(l)H\(h)", label: "L\(l)H\(h)", rank: l) }
        }
        g.addNode("out", label: "logits", fill: RGB(hex: "#ffd166"), shape: .ellipse, rank: 3)
        g.addEdge(from: "L0H1", to: "L1H2", weight: 0.8, label: "0.8")
        g.addEdge(from: "L1H2", to: "L2H0", weight: -0.3)
        g.addEdge(from: "L2H0", to: "out", weight: 1.2)
        g.rankLabels = [0: "Layer 0", 1: "Layer 1", 2: "Layer 2", 3: "Output"]
        let dot = g.dot()
        XCTAssertTrue(dot.contains("rank=same"))
        let svg = try g.svg()
        let x = XMLCheck.parse(svg)
        XCTAssertTrue(x.ok, x.error ?? "")
        XCTAssertEqual(x.elements(withClass: "hl-node").count, 10)
        XCTAssertEqual(x.elements(withClass: "hl-rank").count, 4)
        XCTAssertEqual(x.elements(withClass: "hl-edge").count, 3)
        XCTAssertEqual(x.elements(withClass: "hl-graph").count, 1)
        XCTAssertFalse(svg.hasPrefix("<?xml"))
    }

    /// Labelled edges both ways between heads of the same layer (what the causal graph draws)
    /// crashed Graphviz 2.43 in-process (flat-edge labels: a double free in gvFreeLayout, glibc
    /// aborts). Such edges get external labels now; rendering many times in one process is clean.
    func testLabelledFlatEdgesRenderRepeatedly() throws {
        var g = DirectedGraph(title: "Causal graph", direction: .topToBottom)
        for h in ["17.3", "18.6", "18.7", "20.6", "23.2"] {
            g.addNode(h, label: "\(h)\nscore 0.5", rank: Int(h.split(separator: ".")[0])!)
        }
        for (a, b, w) in [
            ("18.6", "18.7", -0.19), ("18.7", "18.6", -0.15), ("18.6", "20.6", -0.15),
            ("23.2", "18.6", -0.13), ("17.3", "20.6", 0.11), ("20.6", "17.3", -0.06)
        ] {
            g.addEdge(from: a, to: b, weight: w, label: String(format: "%+.2f", w))
        }
        g.rankLabels = [17: "layer 17", 18: "layer 18", 20: "layer 20", 23: "layer 23"]
        let dot = g.dot()
        XCTAssertEqual(dot.components(separatedBy: "xlabel=").count - 1, 2, "the two same-layer edges")
        for _ in 0..<5 {
            let svg = try g.svg()
            let x = XMLCheck.parse(svg)
            XCTAssertTrue(x.ok, x.error ?? "")
            XCTAssertEqual(x.elements(withClass: "hl-edge").count, 6)
            // Graphviz writes "-" as "&#45;": look for the digits.
            for label in ["0.19", "0.15", "0.11", "0.06"] { XCTAssertTrue(svg.contains("\(label)</text>"), label) }
        }
    }

    /// Hostile text in every string slot must not change the graph's structure.
    func testInjectionDoesNotCreateNodesOrEdges() throws {
        var g = DirectedGraph(title: Hostile.dotBreakout + Hostile.script)
        g.labelLineLength = nil // compare label text literally below
        for (i, h) in Hostile.strings.enumerated() {
            g.addNode("k\(i)" + h, label: h, tooltip: h, rank: i % 3)
        }
        for i in 0..<(Hostile.strings.count - 1) {
            g.addEdge(
                from: "k\(i)" + Hostile.strings[i], to: "k\(i + 1)" + Hostile.strings[i + 1],
                weight: Double(i), label: Hostile.strings[i], tooltip: Hostile.strings[i + 1])
        }
        g.rankLabels = [0: Hostile.dotBreakout, 1: Hostile.script, 2: Hostile.controls]
        let r = try Graphviz.render(dot: g.dot())
        XCTAssertTrue(r.warnings.isEmpty, "\(r.warnings)")
        let svg = GraphvizSVG.themed(r.svg, title: Hostile.script)
        XCTAssertFalse(Hostile.hasRawScript(svg))
        let x = XMLCheck.parse(svg)
        XCTAssertTrue(x.ok, x.error ?? "")
        XCTAssertEqual(x.elements(withClass: "hl-node").count, Hostile.strings.count)
        XCTAssertEqual(x.elements(withClass: "hl-edge").count, Hostile.strings.count - 1)
        XCTAssertEqual(x.elements(withClass: "node").count, Hostile.strings.count + 3)
        // invisible rank links are not drawn
        XCTAssertEqual(x.elements(withClass: "edge").count, Hostile.strings.count - 1)
        // Labels print literally: the breakout string and the entity text survive unchanged.
        let texts = x.texts["text"] ?? []
        XCTAssertTrue(texts.contains(Hostile.dotBreakout), "\(texts)")
        XCTAssertTrue(texts.contains(Hostile.script))
        XCTAssertTrue(texts.contains("\"quoted\" and 'single' & ampersand &amp; &lt;b&gt; &foo;"))
        XCTAssertTrue(texts.contains("back\\slash \\N \\G \\n \\"), "\(texts)")
    }

    func testRawDOTInjectionWouldHaveWorked() throws {
        // Control: without quoting, the same text does add an edge (so the test above is meaningful).
        let naive = "digraph { x [label=\"\(Hostile.dotBreakout)\"]; }"
        let x = XMLCheck.parse(try Graphviz.renderSVG(dot: naive))
        XCTAssertEqual(x.elements(withClass: "edge").count, 1)
    }

    func testLabelWrapping() throws {
        var g = DirectedGraph()
        g.labelLineLength = 10
        g.maxLabelLines = 3
        XCTAssertEqual(g.wrapLabel("short"), "short")
        XCTAssertEqual(g.wrapLabel("the quick brown fox"), "the quick\nbrown fox")
        XCTAssertEqual(g.wrapLabel("abcdefghijklmnopqrstuvwxyz"), "abcdefghij\nklmnopqrst\nuvwxyz")
        XCTAssertEqual(
            g.wrapLabel("a b c d e f g h i j k l m n o p q r s t u v w x y z"), "a b c d e\nf g h i j\nk l m n o …")
        g.addNode("x", label: "a long label that needs wrapping")
        let x = XMLCheck.parse(try g.svg())
        XCTAssertEqual(x.elements(withClass: "hl-node").count, 1)
        XCTAssertGreaterThanOrEqual(x.elements(named: "text").count, 3) // one <text> per line
    }
}
