import XCTest
@testable import Reports

final class EscapingTests: XCTestCase {
    func testHTMLEscapesMarkupCharacters() {
        XCTAssertEqual(HTML.escape("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;")
        XCTAssertEqual(HTML.escape(#"a & b "c" 'd'"#), "a &amp; b &quot;c&quot; &#39;d&#39;")
        XCTAssertEqual(HTML.escape("&amp;"), "&amp;amp;")
        XCTAssertEqual(HTML.escape(""), "")
    }

    func testHTMLKeepsNewlineTabAndUnicode() {
        XCTAssertEqual(HTML.escape("a\nb\tc"), "a\nb\tc")
        XCTAssertEqual(HTML.escape("🧠 مرحبا 中文"), "🧠 مرحبا 中文")
        XCTAssertEqual(HTML.escape("👩‍🔬"), "👩‍🔬")
    }

    func testControlCharactersBecomeVisiblePictures() {
        XCTAssertEqual(HTML.escape("a\u{0}b"), "a\u{2400}b")
        XCTAssertEqual(HTML.escape("\u{1B}[31m"), "\u{241B}[31m")
        XCTAssertEqual(HTML.escape("\u{7F}"), "\u{2421}")
        XCTAssertEqual(HTML.escape("\u{85}\u{9F}"), "\u{FFFD}\u{FFFD}")
        XCTAssertEqual(HTML.escape("\u{FFFE}\u{FFFF}"), "\u{FFFD}\u{FFFD}")
        // CR LF is a line ending; a lone CR is shown.
        XCTAssertEqual(HTML.escape("a\r\nb\rc\r"), "a\nb\u{240D}c\u{240D}")
        // No C0 control other than \t \n survives.
        let out = HTML.escape(Hostile.controls)
        for s in out.unicodeScalars {
            XCTAssertFalse(s.value < 0x20 && s != "\n" && s != "\t", "raw control \(s.value)")
        }
        XCTAssertEqual(out.unicodeScalars.count, 33)
    }

    func testSVGEscapeIsXMLSafe() {
        for h in Hostile.strings {
            let doc =
                "<svg xmlns=\"http://www.w3.org/2000/svg\"><text a=\"\(SVG.escape(h))\" "
                + "b='\(SVG.escape(h))'>\(SVG.escape(h))</text></svg>"
            let x = XMLCheck.parse(doc)
            XCTAssertTrue(x.ok, "\(h.debugDescription): \(x.error ?? "")")
            XCTAssertFalse(Hostile.hasRawScript(doc))
            // Round trip: what the XML parser reads back is the visible form of the input.
            XCTAssertEqual(
                x.elements(named: "text").first?.attributes["a"].map {
                    $0.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\t", with: " ")
                },
                TextSanitizer.visible(h).replacingOccurrences(of: "\n", with: " ").replacingOccurrences(
                    of: "\t", with: " "))
            XCTAssertEqual(x.texts["text"]?.first, TextSanitizer.visible(h))
        }
    }

    func testDOTQuote() {
        XCTAssertEqual(DOT.quote("plain"), "\"plain\"")
        XCTAssertEqual(DOT.quote(#"say "hi""#), #""say \"hi\"""#)
        XCTAssertEqual(DOT.quote(#"a\b"#), #""a\\b""#)
        XCTAssertEqual(DOT.quote(#"ends\"#), #""ends\\""#)
        XCTAssertEqual(DOT.quote("a\nb\r\nc"), #""a\nb\nc""#)
        XCTAssertEqual(DOT.quote("a\tb"), "\"a b\"")
        XCTAssertEqual(DOT.quote("&lt;"), "\"&amp;lt;\"")
        XCTAssertEqual(DOT.quote("x\u{0}y"), "\"x\u{2400}y\"")
        XCTAssertEqual(DOT.quote(Hostile.dotBreakout), #""\"]; a -> b [label=\"""#)
        XCTAssertEqual(DOT.quote(""), "\"\"")
    }

    /// Every quoted string is one DOT token: scanning it with the DOT lexer rules ends
    /// exactly at the final quote.
    func testDOTQuoteIsOneToken() {
        for h in Hostile.strings + [#"\"#, #"\\"#, #"\""#, "\"", "\\\n"] {
            let q = Array(DOT.quote(h).unicodeScalars)
            XCTAssertEqual(q.first, "\"")
            var i = 1
            var closedAt: Int?
            while i < q.count {
                if q[i] == "\\" {
                    i += 2
                    continue
                }
                if q[i] == "\"" {
                    closedAt = i
                    break
                }
                XCTAssertFalse(q[i] == "\n" || q[i].value == 0, "raw newline/NUL in \(h.debugDescription)")
                i += 1
            }
            XCTAssertEqual(closedAt, q.count - 1, "string ended early for \(h.debugDescription)")
        }
    }

    func testSafeFileStem() {
        XCTAssertEqual(HTML.safeFileStem("../../etc/passwd"), "etc-passwd")
        XCTAssertEqual(HTML.safeFileStem("Retrieval heads (L12)"), "Retrieval-heads-L12")
        XCTAssertEqual(HTML.safeFileStem("<script>"), "script")
        XCTAssertEqual(HTML.safeFileStem("🧠"), "figure")
        XCTAssertEqual(HTML.safeFileStem(".hidden"), "hidden")
    }
}
