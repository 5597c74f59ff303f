import Foundation
#if canImport(FoundationXML)
    import FoundationXML
#endif
import XCTest

/// Parses XML with Foundation's XMLParser and records what the tests need.
final class XMLCheck: NSObject, XMLParserDelegate {
    struct Element {
        var name: String
        var attributes: [String: String]
    }
    private(set) var elements: [Element] = []
    private(set) var error: String?
    /// Concatenated character data per element name.
    private(set) var texts: [String: [String]] = [:]
    private var stack: [String] = []
    private var current = ""

    static func parse(_ text: String) -> XMLCheck {
        let c = XMLCheck()
        let p = XMLParser(data: Data(text.utf8))
        p.delegate = c
        p.shouldResolveExternalEntities = false
        if !p.parse() {
            c.error = "line \(p.lineNumber) col \(p.columnNumber): \(p.parserError.map { "\($0)" } ?? "unknown error")"
        }
        return c
    }

    var ok: Bool { error == nil }

    func parser(
        _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        elements.append(Element(name: name, attributes: attributes))
        stack.append(name)
        current = ""
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { current += string }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        texts[name, default: []].append(current)
        current = ""
        _ = stack.popLast()
    }

    func elements(named n: String) -> [Element] { elements.filter { $0.name == n } }

    /// Elements whose class attribute contains the token `cls`.
    func elements(withClass cls: String) -> [Element] {
        elements.filter { ($0.attributes["class"] ?? "").split(separator: " ").contains(Substring(cls)) }
    }
}

/// Stack-based tag balance check for HTML (void elements and self-closing tags allowed;
/// <style>, comments and the DOCTYPE skipped). Returns nil when balanced.
func unbalancedTags(_ html: String) -> String? {
    let voids: Set<String> = ["meta", "br", "hr", "img", "link", "input", "area", "base", "col", "source", "wbr"]
    var stack: [String] = []
    var i = html.startIndex
    while let lt = html[i...].firstIndex(of: "<") {
        let rest = html[lt...]
        if rest.hasPrefix("<!--") {
            guard let end = rest.range(of: "-->") else { return "unterminated comment" }
            i = end.upperBound
            continue
        }
        if rest.hasPrefix("<!") || rest.hasPrefix("<?") {
            guard let end = rest.firstIndex(of: ">") else { return "unterminated declaration" }
            i = html.index(after: end)
            continue
        }
        guard let gt = rest.firstIndex(of: ">") else { return "unterminated tag" }
        let tag = html[html.index(after: lt)..<gt]
        i = html.index(after: gt)
        if tag.hasPrefix("/") {
            let name = tag.dropFirst().trimmingCharacters(in: .whitespaces).lowercased()
            guard let top = stack.popLast() else { return "close </\(name)> with empty stack" }
            if top != name { return "close </\(name)> but open <\(top)>" }
            continue
        }
        let name = String(tag.prefix { !$0.isWhitespace && $0 != "/" }).lowercased()
        if tag.hasSuffix("/") || voids.contains(name) { continue }
        if name == "style" || name == "script" {
            guard let end = html[i...].range(of: "</\(name)>") else { return "unterminated <\(name)>" }
            i = end.upperBound
            continue
        }
        stack.append(name)
    }
    return stack.isEmpty ? nil : "unclosed: \(stack)"
}

/// Hostile strings fed through every renderer.
enum Hostile {
    static let script = "<script>alert(1)</script>"
    static let dotBreakout = "\"]; a -> b [label=\""
    static let controls = String(String.UnicodeScalarView((0...0x1F).map { Unicode.Scalar($0)! })) + "\u{7F}"
    static let strings: [String] = [
        script,
        "\"quoted\" and 'single' & ampersand &amp; &lt;b&gt; &foo;",
        dotBreakout,
        "back\\slash \\N \\G \\n \\",
        controls,
        "emoji 🧠🔦👩‍🔬 flags 🇩🇪",
        "RTL: مرحبا بالعالم עברית \u{202E}override\u{202C} done",
        "]]> <![CDATA[ x ]]> <!-- c --> </svg></style>",
        "line1\nline2\r\nline3\rtab\there",
        ""
    ]

    /// True if `text` contains a literal `<script` (case-insensitive), i.e. escaping failed.
    static func hasRawScript(_ text: String) -> Bool { text.lowercased().contains("<script") }
}
