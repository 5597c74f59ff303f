import XCTest
@testable import Notebooks
@testable import Reports

final class ParserNotebookTests: XCTestCase {
    let sample = """
        # Retrieval heads

        Some *prose* with `code`.

        ```headlight
        headlight inspect --json
        ```

        ```text
        expected <output>
        ```

        ## Second part

        ```headlight
        retrieval-heads --probes "probes/niah/a b.json" \\
            --model 'my model.gguf' \\
            -o reports/x/rh.h5   # trailing comment
        ```

        ````markdown
        ```headlight
        not a cell
        ```
        ````

        ~~~headlight
        # only a comment line first
        doctor --quick
        ~~~
        """

    func testCellsLinesAndArguments() throws {
        let nb = try Notebook.parse(sample, path: "nb.md")
        let cells = nb.cells
        XCTAssertEqual(cells.count, 3)
        XCTAssertEqual(cells.map(\.number), [1, 2, 3])
        XCTAssertEqual(cells[0].arguments, ["inspect", "--json"])
        XCTAssertEqual(cells[0].fenceLine, 5)
        XCTAssertEqual(cells[0].line, 6)
        XCTAssertEqual(
            cells[1].arguments,
            ["retrieval-heads", "--probes", "probes/niah/a b.json", "--model", "my model.gguf", "-o", "reports/x/rh.h5"]
        )
        XCTAssertEqual(cells[1].line, 16)
        XCTAssertEqual(cells[2].arguments, ["doctor", "--quick"])
        XCTAssertEqual(cells[2].line, 29, "the first command line, not the comment")
        XCTAssertEqual(
            cells[1].commandLine,
            "headlight retrieval-heads --probes 'probes/niah/a b.json' --model 'my model.gguf' -o reports/x/rh.h5")
        XCTAssertEqual(cells[2].displaySource, "# only a comment line first\nheadlight doctor --quick")
        XCTAssertEqual(cells[0].displaySource, "headlight inspect --json")
        // Items in order: prose, cell, text, prose, cell, prose (with the 4-backtick block), cell.
        let kinds = nb.items.map { item -> String in
            switch item {
            case .prose: return "p"
            case .text: return "t"
            case .cell: return "c"
            }
        }
        XCTAssertEqual(kinds, ["p", "c", "t", "p", "c", "p", "c"])
        if case .text(let t, let line) = nb.items[2] {
            XCTAssertEqual(t, "expected <output>")
            XCTAssertEqual(line, 9)
        } else {
            XCTFail()
        }
        if case .prose(let p, let line) = nb.items[5] {
            XCTAssertTrue(p.contains("not a cell"))
            XCTAssertEqual(line, 20)
        } else {
            XCTFail()
        }
    }

    func testQuotingRules() throws {
        func args(_ body: String) throws -> [String] {
            try Notebook.parse("```headlight\n\(body)\n```\n").cells[0].arguments
        }
        XCTAssertEqual(
            try args(#"x 'a "b" \n' "c \"d\" \\ \$ e" f\ g '' """#), ["x", #"a "b" \n"#, #"c "d" \ $ e"#, "f g", "", ""]
        )
        XCTAssertEqual(try args("x --a=1 'multi\nline'"), ["x", "--a=1", "multi\nline"])
        XCTAssertEqual(try args("x \"con\\\ntinued\""), ["x", "continued"])
        XCTAssertEqual(try args("x a#b # comment"), ["x", "a#b"])
        XCTAssertEqual(try args("x '|' \";\" \\> '$HOME' *.json ~"), ["x", "|", ";", ">", "$HOME", "*.json", "~"])
        XCTAssertEqual(try args("headlight"), []) // prefix only: no arguments (runs `headlight`)
        XCTAssertEqual(try args("\n\n  x   y  \n\n"), ["x", "y"])
    }

    func testParseErrorsNameTheLine() {
        func error(_ text: String) -> NotebookError? {
            do {
                _ = try Notebook.parse(text, path: "n.md")
                return nil
            } catch { return error as? NotebookError }
        }
        XCTAssertEqual(
            error("intro\n```headlight\ninspect 'open\nstill open\n```\n"),
            .parse(path: "n.md", line: 3, message: "unterminated single quote"))
        guard case .parse(_, 4, let m)? = error("\n```headlight\ninspect\ndoctor\n```") else { return XCTFail() }
        XCTAssertTrue(m.contains("one command"), m)
        guard case .parse(_, 3, let m2)? = error("x\n```headlight\ninspect | head\n```") else { return XCTFail() }
        XCTAssertTrue(m2.contains("'|'"), m2)
        guard case .parse(_, 3, let m3)? = error("\n\n```headlight\n# nothing\n```") else { return XCTFail() }
        XCTAssertTrue(m3.contains("empty"), m3)
        guard case .parse(_, 2, let m4)? = error("a\n```headlight\ninspect\n") else { return XCTFail() }
        XCTAssertTrue(m4.contains("never closed"), m4)
        for bad in ["a $(b)", "a `b`", "a > f", "a; b", "a && b", "x $HOME"] {
            XCTAssertNotNil(error("```headlight\n\(bad)\n```"), bad)
        }
        let desc = error("```headlight\ninspect 'x\n```")?.errorDescription ?? ""
        XCTAssertEqual(desc, "n.md:2: unterminated single quote")
    }

    func testShortCommandAndQuoting() {
        let c = NotebookCell(
            number: 2, fenceLine: 1, line: 2, source: "",
            arguments: ["retrieval-heads"] + Array(repeating: "--long-option value", count: 8))
        XCTAssertTrue(c.shortCommand().hasPrefix("headlight retrieval-heads '--long-option value'"))
        XCTAssertTrue(c.shortCommand().hasSuffix(" ..."))
        XCTAssertLessThanOrEqual(c.shortCommand().count, 76)
        XCTAssertEqual(Shell.quote("it's"), #"'it'\''s'"#)
    }

    func testCRLFAndIndentedFences() throws {
        let nb = try Notebook.parse(
            "# T\r\n\r\n  ```headlight\r\n  inspect\r\n  ```\r\n  ```text\r\n  out\r\n  ```\r\n")
        XCTAssertEqual(nb.cells.map(\.arguments), [["inspect"]])
        XCTAssertEqual(nb.cells[0].line, 4)
        XCTAssertTrue(nb.items.contains(.text("out", line: 6)))
    }

    // MARK: Markdown prose

    func testProseMarkdownIsRenderedAndRawHTMLEscaped() {
        let md = """
            Intro with <script>alert(1)</script> and <b>bold</b> & more.
            Second line **strong** and *em* and `x < y` and snake_case_name and 2 * 3 * 4.

            <img src=x onerror=alert(1)>

            - item [link](https://example.org/a?b=1&c=2 "t")
            - [bad](javascript:alert(1)) and [bad2](java\tscript:alert(1)) and ![img](data:text/html,x)
              - nested <i>
            1. one
            2. two

            > quoted <tag>

            | a | b |
            |---|--:|
            | `|` | 1 |

            ```html
            <script>x</script>
            ```

            <!-- a hidden comment -->
            ---
            """
        let html = Markdown.html(md)
        XCTAssertFalse(Hostile.hasRawScript(html), html)
        XCTAssertFalse(html.contains("<b>"))
        XCTAssertFalse(html.contains("<img"))
        XCTAssertFalse(html.contains("<i>"))
        XCTAssertFalse(html.lowercased().contains("javascript"), html)
        XCTAssertFalse(html.contains("href=\"data:"), html)
        XCTAssertFalse(html.contains("hidden comment"))
        XCTAssertTrue(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        XCTAssertTrue(html.contains("<strong>strong</strong>"))
        XCTAssertTrue(html.contains("<em>em</em>"))
        XCTAssertTrue(html.contains("<code>x &lt; y</code>"))
        XCTAssertTrue(html.contains("snake_case_name"))
        XCTAssertTrue(html.contains("2 * 3 * 4"))
        XCTAssertTrue(html.contains("<a href=\"https://example.org/a?b=1&amp;c=2\" title=\"t\">link</a>"), html)
        XCTAssertTrue(html.contains("<ul>"))
        XCTAssertTrue(html.contains("<ol>"))
        XCTAssertTrue(html.contains("<blockquote>"))
        XCTAssertTrue(html.contains("<table>"))
        XCTAssertTrue(html.contains("<td><code>|</code></td><td class=\"num\">1</td>"), html)
        XCTAssertTrue(html.contains("<pre><code class=\"language-html\">&lt;script&gt;x&lt;/script&gt;</code></pre>"))
        XCTAssertTrue(html.contains("<hr/>"))
        XCTAssertNil(unbalancedTags(html), html)
        let x = XMLCheck.parse("<div>" + html + "</div>")
        XCTAssertTrue(x.ok, (x.error ?? "") + html)
    }

    func testHostileProseStaysText() {
        for h in Hostile.strings {
            let html = Markdown.html("para \(h)\n\n- \(h)\n\n> \(h)\n\n## \(h)\n\n[\(h)](\(h))")
            XCTAssertFalse(Hostile.hasRawScript(html))
            XCTAssertNil(unbalancedTags(html), html)
            XCTAssertTrue(XMLCheck.parse("<div>" + html + "</div>").ok, html)
        }
    }

    func testHeadingsSplitAndInlineEdgeCases() {
        let p = Markdown.pieces("# Title `x`\ntext\n\nSetext\n---\n### Deep *one*\n")
        XCTAssertEqual(p.first, .heading(level: 1, text: "Title x"))
        XCTAssertTrue(p.contains(.heading(level: 2, text: "Setext")))
        XCTAssertTrue(
            p.contains {
                if case .html(let h) = $0 { return h.contains("<h3>Deep <em>one</em></h3>") }
                return false
            })
        XCTAssertEqual(Markdown.inline("a **b *c* d** e"), "a <strong>b <em>c</em> d</strong> e")
        XCTAssertEqual(Markdown.inline("~~gone~~ \\*lit\\*"), "<del>gone</del> *lit*")
        XCTAssertEqual(Markdown.inline("<https://x.org/?a=<b>"), "&lt;https://x.org/?a=&lt;b&gt;")
        XCTAssertEqual(Markdown.inline("<https://x.org/p>"), "<a href=\"https://x.org/p\">https://x.org/p</a>")
        XCTAssertEqual(Markdown.inline("[a [b](u2)](u1)"), "<a href=\"u1\">a b</a>")
        XCTAssertEqual(Markdown.inline("``a`b``"), "<code>a`b</code>")
        XCTAssertEqual(Markdown.inline("unclosed *star and `tick"), "unclosed *star and `tick")
        XCTAssertEqual(Markdown.html("a  \nb\\\nc"), "<p>a<br/>\nb<br/>\nc</p>\n")
        XCTAssertNil(Markdown.safeURL(" JaVaScRiPt:alert(1)"))
        XCTAssertNil(Markdown.safeURL("vbscript:x"))
        XCTAssertEqual(Markdown.safeURL("../runs/a.h5#x"), "../runs/a.h5#x")
        XCTAssertEqual(Markdown.safeURL("mailto:a@b.c"), "mailto:a@b.c")
    }
}

extension ParserNotebookTests {
    func testTableCellsWithLongCodeSpans() {
        let html = Markdown.html("| fence | meaning |\n|---|---|\n| ```` ```headlight ```` | a `|` cell |\n")
        XCTAssertTrue(html.contains("<td><code>```headlight</code></td><td>a <code>|</code> cell</td>"), html)
    }
}
