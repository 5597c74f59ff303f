import Analysis
import Foundation
import XCTest

@testable import Reports

/// Hostile text from run files through every figure drawn with Graphviz, end to end (issue 17
/// item 12): run files on disk (hostile file name, suite name, needle ids, responses, ablation
/// method, composition selection and source) are read back, the causal and composition graphs'
/// DOT is checked token by token (no node, edge, attribute or HTML-like label can be injected;
/// every string stays inside one quoted DOT string), and the report written to disk — the
/// figures' SVG files and index.html — is well-formed XML with no raw markup or control
/// characters and the same graph structure.
final class GraphEscapingEndToEndTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("hl-graph-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// The shared hostile strings plus what targets Graphviz in particular.
    static let inputs: [String] =
        Hostile.strings + [
            "<<b>bold</b><br/>>", "<<table><tr><td port=\"p\">x</td></tr></table>>", "]", "a]; n0 -> n1 [color=red",
            "\u{202E}evil\u{202C} RLO", "\\N \\G \\E \\T \\H \\L \\l \\r \\", "node [shape=box]; edge [style=invis]",
            "&#60;script&#62; &lt;b&gt; &amp;", "</text><script>alert(1)</script><text>", "} digraph x { a -> b",
            "label=<b>x</b>", "\u{1B}[31mred\u{1B}[0m", "x\u{0}y"
        ]

    /// A file name carrying `text` (no `/`, no NUL; at most 200 bytes).
    static func fileName(_ i: Int, _ text: String) -> String {
        var name = "run-\(i)-"
        for ch in text.replacingOccurrences(of: "/", with: "∕").replacingOccurrences(of: "\0", with: "") {
            if name.utf8.count + String(ch).utf8.count > 200 { break }
            name.append(ch)
        }
        return name + ".h5"
    }

    // MARK: DOT lexer

    enum DOTToken: Equatable {
        case word(String)
        case quoted(String)
        case punct(String)
    }

    /// Splits DOT text into words (IDs, keywords, numbers), punctuation and double-quoted strings
    /// (decoded: `\"` -> `"`, `\\` -> `\`, other escapes kept). Anything else outside a quoted
    /// string — `<` of an HTML-like label, a stray quote, a control character — fails.
    static func lex(_ dot: String) throws -> [DOTToken] {
        var out: [DOTToken] = []
        let s = Array(dot.unicodeScalars)
        var i = 0
        func isWord(_ c: Unicode.Scalar) -> Bool {
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "_" || c == "."
        }
        while i < s.count {
            let c = s[i]
            if c == " " || c == "\n" {
                i += 1
            } else if c == "\"" {
                var text = String.UnicodeScalarView()
                i += 1
                while true {
                    guard i < s.count else { throw DOTError("unterminated string") }
                    if s[i] == "\"" { break }
                    if s[i] == "\\", i + 1 < s.count, s[i + 1] == "\"" || s[i + 1] == "\\" {
                        text.append(s[i + 1])
                        i += 2
                        continue
                    }
                    if s[i].value < 0x20 { throw DOTError("raw control character U+\(String(s[i].value, radix: 16))") }
                    text.append(s[i])
                    i += 1
                }
                i += 1
                out.append(.quoted(String(text)))
            } else if c == "-" && i + 1 < s.count && s[i + 1] == ">" {
                out.append(.punct("->"))
                i += 2
            } else if "{}[]=,;".unicodeScalars.contains(c) {
                out.append(.punct(String(c)))
                i += 1
            } else if isWord(c) || c == "-" {
                var w = String(c)
                i += 1
                while i < s.count, isWord(s[i]) {
                    w.unicodeScalars.append(s[i])
                    i += 1
                }
                out.append(.word(w))
            } else {
                throw DOTError("unexpected \(String(c).debugDescription) outside a quoted string at scalar \(i)")
            }
        }
        return out
    }

    struct DOTError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    /// What a DirectedGraph's DOT may contain outside quoted strings.
    static let attributeNames: Set<String> = [
        "id", "rankdir", "bgcolor", "fontname", "fontsize", "nodesep", "ranksep", "pad", "forcelabels", "label",
        "labelloc", "labeljust", "style", "penwidth", "margin", "height", "arrowsize", "tooltip", "shape",
        "fillcolor", "color", "fontcolor", "class", "xlabel", "labeltooltip", "constraint", "weight"
    ]

    /// Structure of a DirectedGraph DOT: node statements, edges, and every attribute list's names
    /// (from `attributeNames`, each followed by `=` and one value).
    static func structure(_ tokens: [DOTToken]) throws -> (nodes: Set<String>, edges: Int, strings: [String]) {
        func digits(_ s: Substring) -> Bool { !s.isEmpty && s.allSatisfy { $0.isASCII && $0.isNumber } }
        func isNode(_ w: String) -> Bool { w.hasPrefix("n") && digits(w.dropFirst()) }
        func isCaption(_ w: String) -> Bool {
            w.hasPrefix("rm") ? digits(w.dropFirst(2)) : w.hasPrefix("r") && digits(w.dropFirst())
        }
        var nodes = Set<String>(), edges = 0, strings: [String] = []
        var i = 0
        guard tokens.prefix(3) == [.word("digraph"), .word("G"), .punct("{")], tokens.last == .punct("}") else {
            throw DOTError("not one digraph G { ... }")
        }
        i = 3
        while i < tokens.count - 1 {
            switch tokens[i] {
            case .word(let w) where ["graph", "node", "edge"].contains(w) || isNode(w) || isCaption(w):
                var j = i + 1
                if case .punct("->") = tokens[j] {
                    // n3 -> n5, or the invisible chain of rank captions r2 -> r3 -> r4
                    while tokens[j] == .punct("->") {
                        guard case .word(let to) = tokens[j + 1], isNode(w) ? isNode(to) : isCaption(to) else {
                            throw DOTError("bad edge target after \(w)")
                        }
                        j += 2
                    }
                    if isNode(w) { edges += 1 }
                } else if isNode(w) || isCaption(w) {
                    nodes.insert(w)
                }
                guard tokens[j] == .punct("[") else { throw DOTError("\(w): no attribute list") }
                j += 1
                while tokens[j] != .punct("]") {
                    guard case .word(let name) = tokens[j], attributeNames.contains(name), tokens[j + 1] == .punct("=")
                    else { throw DOTError("unexpected attribute token \(tokens[j]) in \(w)") }
                    switch tokens[j + 2] {
                    case .quoted(let v): strings.append(v)
                    case .word: break
                    default: throw DOTError("bad value for \(name) in \(w)")
                    }
                    j += 3
                    if tokens[j] == .punct(",") { j += 1 }
                }
                guard tokens[j + 1] == .punct(";") else { throw DOTError("\(w): statement not closed") }
                i = j + 2
            case .punct("{"):
                // { rank=same; n0; n1; }
                guard tokens[i + 1] == .word("rank"), tokens[i + 2] == .punct("="), tokens[i + 3] == .word("same")
                else { throw DOTError("unexpected subgraph") }
                var j = i + 5
                while tokens[j] != .punct("}") {
                    guard case .word(let w) = tokens[j], isNode(w) || isCaption(w), tokens[j + 1] == .punct(";") else {
                        throw DOTError("bad rank member \(tokens[j])")
                    }
                    j += 2
                }
                i = j + 1
            default:
                throw DOTError("unexpected token \(tokens[i])")
            }
        }
        return (nodes, edges, strings)
    }

    /// Checks one graph's DOT; returns its structure.
    func checkDOT(_ g: DirectedGraph, _ what: String) throws -> (nodes: Set<String>, edges: Int, strings: [String]) {
        let dot = g.dot()
        let st = try Self.structure(try Self.lex(dot))
        XCTAssertEqual(st.nodes.filter { $0.hasPrefix("n") }.count, g.nodes.count, "\(what): head nodes")
        XCTAssertEqual(st.nodes.filter { $0.hasPrefix("r") }.count, g.rankLabels.count, "\(what): rank captions")
        XCTAssertEqual(st.edges, g.edges.count, "\(what): edges")
        return st
    }

    /// Element names Graphviz SVG (themed) may contain; raw markup would add others.
    static let svgElements: Set<String> = [
        "svg", "g", "title", "style", "path", "polygon", "ellipse", "polyline", "text", "a"
    ]

    func checkSVG(_ svg: String, _ what: String, nodes: Int, edges: Int) {
        XCTAssertFalse(Hostile.hasRawScript(svg), what)
        for s in svg.unicodeScalars where s.value < 0x20 && s != "\n" && s != "\t" {
            XCTFail("\(what): raw control character U+\(String(s.value, radix: 16))")
            break
        }
        let x = XMLCheck.parse(svg)
        XCTAssertTrue(x.ok, "\(what): \(x.error ?? "")")
        XCTAssertEqual(Set(x.elements.map(\.name)).subtracting(Self.svgElements), [], what)
        XCTAssertEqual(x.elements(withClass: "node").count, nodes, "\(what): nodes")
        XCTAssertEqual(x.elements(withClass: "hl-edge").count, edges, "\(what): edges")
        for e in x.elements {
            for name in e.attributes.keys where name.lowercased().hasPrefix("on") {
                XCTFail("\(what): event attribute \(name) on <\(e.name)>")
            }
        }
    }

    func testHostileRunFileTextThroughEveryGraph() throws {
        for (i, text) in Self.inputs.enumerated() {
            let what = "input #\(i) \(text.debugDescription)"
            let url = dir.appendingPathComponent(Self.fileName(i, text))
            try SyntheticRuns.write(url, text: text, groups: ["retrieval", "causal", "composition"])
            let f = try RunFileContents.load(url)
            let stored = text.replacingOccurrences(of: "\0", with: "")

            // DOT of both graphs, from what was read back from disk.
            var scores: [HeadIndex: Double] = [:]
            for x in try XCTUnwrap(f.retrieval, what).ranked { scores[x.head] = x.score }
            let causal = HeadGraphFigures.causalGraph(try XCTUnwrap(f.causal, what), retrievalScores: scores)
            let c = try checkDOT(causal.graph, "causal graph, \(what)")
            XCTAssertEqual(c.nodes.filter { $0.hasPrefix("n") }.count, 4, what)
            let title = "Causal graph: ablating A changes B's retrieval score (zero \(stored))"
            XCTAssertTrue(causal.graph.dot().contains("label=\(DOT.quote(title))"), "\(what): title quoted once")
            let comp = try XCTUnwrap(f.composition, what)
            let composition = HeadGraphFigures.compositionGraph(comp.scores, headScores: comp.headScores)
            let k = try checkDOT(composition.graph, "composition graph, \(what)")
            XCTAssertEqual(k.nodes.filter { $0.hasPrefix("n") }.count, 4, what)

            // The report as `headlight report` writes it: figures/*.svg and index.html on disk.
            let out = dir.appendingPathComponent("report-\(i)", isDirectory: true)
            let doc = try RunReport.document(
                [f], headlightVersion: "9.9", reportCommand: "headlight report \(url.lastPathComponent) -o x")
            let index = try doc.write(to: out)
            for (name, g) in [("causal-graph", causal.graph), ("composition-graph", composition.graph)] {
                let svg = try String(
                    contentsOf: out.appendingPathComponent("figures/\(name).svg"), encoding: .utf8)
                checkSVG(svg, "\(name).svg, \(what)", nodes: g.nodes.count + g.rankLabels.count, edges: g.edges.count)
            }
            let causalSVG = XMLCheck.parse(
                try String(contentsOf: out.appendingPathComponent("figures/causal-graph.svg"), encoding: .utf8))
            if !stored.contains("\n") && !stored.contains("\r") {
                // Printed literally (control characters as control pictures): no escape was interpreted.
                let visible = TextSanitizer.visible(title)
                XCTAssertTrue(
                    (causalSVG.texts["text"] ?? []).contains(visible)
                        || (causalSVG.texts["title"] ?? []).contains(visible),
                    "\(what): title not printed literally: \(causalSVG.texts["text"] ?? [])")
            }
            let html = try String(contentsOf: index, encoding: .utf8)
            XCTAssertFalse(Hostile.hasRawScript(html), what)
            XCTAssertNil(unbalancedTags(html), what)
            let hx = XMLCheck.parse(html.replacingOccurrences(of: "<!DOCTYPE html>", with: ""))
            XCTAssertTrue(hx.ok, "\(what): index.html: \(hx.error ?? "")")
            for s in html.unicodeScalars where s.value < 0x20 && s != "\n" && s != "\t" {
                XCTFail("\(what): raw control character in index.html")
                break
            }
            // The inline copies of both graphs keep their structure too.
            XCTAssertEqual(hx.elements(withClass: "hl-graph").count, 2, what)
            XCTAssertEqual(
                hx.elements(withClass: "node").count,
                [causal.graph, composition.graph].map { $0.nodes.count + $0.rankLabels.count }.reduce(0, +), what)
            // Untrusted names appear escaped, never as markup.
            if !stored.isEmpty && !stored.contains("\n") && !stored.contains("\r") {
                XCTAssertTrue(html.contains(HTML.escape(stored)), "\(what): suite/needle text missing or unescaped")
            }
        }
    }

    /// Control: the lexer and structure check catch an injection when the text is not quoted.
    func testCheckerCatchesInjection() {
        let naive = "digraph G {\n  n0 [label=\"\(Hostile.dotBreakout)\"];\n}\n"
        XCTAssertThrowsError(try Self.structure(try Self.lex(naive)))
        XCTAssertThrowsError(try Self.lex("digraph G { n0 [label=<<b>x</b>>]; }"))
        XCTAssertNoThrow(try Self.structure(try Self.lex("digraph G {\n  n0 [label=\"a\\\"]; b\"];\n}\n")))
    }
}
