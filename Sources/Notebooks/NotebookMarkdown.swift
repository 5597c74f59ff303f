// A small, safe Markdown-to-HTML renderer for notebook prose.
//
// Why not a full CommonMark library: Markdown passes raw HTML through by design, and notebook
// prose is untrusted text that must never become markup. Here every character of the input
// goes through `HTML.escape`; the only markup in the output is the tags this file writes,
// always balanced (so the page stays well-formed XML, like the rest of ReportDocument).
//
// Supported (CommonMark/GFM subset):
//   blocks  ATX (`#`) and setext headings, paragraphs, hard breaks (two trailing spaces or a
//           trailing backslash), fenced code blocks, `>` block quotes, bullet (`-`, `*`, `+`)
//           and ordered (`1.`, `1)`) lists, nested by indentation, thematic breaks, GFM pipe
//           tables, HTML comments on their own lines (dropped).
//   inline  code spans, `*em*`/`_em_`, `**strong**`/`__strong__`, `~~strike~~`, backslash
//           escapes, `[text](url "title")`, `<https://autolinks>`; images `![alt](url)` become
//           links (the report's Content-Security-Policy would block remote images anyway).
// Links keep only http, https, mailto and relative URLs (whitespace and control characters
// are removed first, as browsers do); any other scheme (javascript:, data:, ...) drops the link
// and keeps its text. Raw HTML, entities and everything else are shown literally.
import Foundation
import Reports

/// One top-level piece of rendered prose: headings stay structured (level-1/2 headings become
/// report sections), everything else is HTML.
enum MarkdownPiece: Equatable {
    case heading(level: Int, text: String)
    case html(String)
}

enum Markdown {
    /// Renders `text` into top-level pieces; headings of level <= `splitLevel` are returned as
    /// `.heading` (plain text), deeper ones are rendered inline as `<hN>`.
    static func pieces(_ text: String, splitLevel: Int = 2) -> [MarkdownPiece] {
        var r = BlockRenderer(lines: text.replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "\n"))
        r.splitLevel = splitLevel
        r.run()
        return r.pieces
    }

    /// All of `text` as one HTML fragment (headings included as `<hN>`).
    static func html(_ text: String) -> String {
        pieces(text, splitLevel: 0).map {
            if case .html(let h) = $0 { return h }
            return ""
        }.joined()
    }

    /// Inline Markdown of one line or paragraph as HTML.
    static func inline(_ text: String) -> String {
        var p = InlineRenderer(Array(text), plain: false)
        return p.render(0, p.chars.count, inLink: false)
    }

    /// The visible text of inline Markdown (markup removed, not escaped).
    static func plain(_ text: String) -> String {
        var p = InlineRenderer(Array(text), plain: true)
        return p.render(0, p.chars.count, inLink: false)
    }

    /// `url` if it is safe to put in an href (http, https, mailto, or relative), else nil.
    static func safeURL(_ url: String) -> String? {
        let cleaned = String(
            String.UnicodeScalarView(
                url.unicodeScalars.filter {
                    !($0.properties.isWhitespace || $0.value < 0x20 || ($0.value >= 0x7F && $0.value <= 0x9F))
                }))
        if cleaned.isEmpty { return nil }
        // A scheme is letters/digits/+-. before the first ':' that precedes any / ? #.
        if let colon = cleaned.firstIndex(of: ":") {
            let head = cleaned[..<colon]
            if !head.contains(where: { $0 == "/" || $0 == "?" || $0 == "#" }) {
                let scheme = head.lowercased()
                return ["http", "https", "mailto"].contains(scheme) ? cleaned : nil
            }
        }
        return cleaned
    }
}

// MARK: - Blocks

private struct BlockRenderer {
    let lines: [String]
    var i = 0
    var pieces: [MarkdownPiece] = []
    var splitLevel = 2
    /// In a tight list item: paragraphs are written without <p>.
    var tight = false

    init(lines: [String]) { self.lines = lines }

    mutating func emit(_ html: String) {
        if case .html(let prev)? = pieces.last {
            pieces[pieces.count - 1] = .html(prev + html)
        } else {
            pieces.append(.html(html))
        }
    }

    static func isBlank(_ s: String) -> Bool { s.allSatisfy { $0 == " " || $0 == "\t" } }
    static func indent(_ s: String) -> Int {
        var n = 0
        for c in s { if c == " " { n += 1 } else if c == "\t" { n += 4 - n % 4 } else { break } }
        return n
    }
    /// `s` with `n` columns of leading indentation removed (tabs count to the next multiple of 4).
    static func dedent(_ s: String, _ n: Int) -> String {
        var col = 0
        var idx = s.startIndex
        while idx < s.endIndex && col < n {
            let c = s[idx]
            if c == " " { col += 1 } else if c == "\t" { col += 4 - col % 4 } else { break }
            idx = s.index(after: idx)
        }
        return String(s[idx...])
    }

    /// `s` without its first `n` columns, whatever they hold (a list item's marker line).
    static func dropColumns(_ s: String, _ n: Int) -> String {
        var col = 0
        var idx = s.startIndex
        while idx < s.endIndex && col < n {
            col += s[idx] == "\t" ? 4 - col % 4 : 1
            idx = s.index(after: idx)
        }
        return String(repeating: " ", count: max(0, col - n)) + String(s[idx...])
    }

    static func atxHeading(_ s: String) -> (Int, String)? {
        guard indent(s) <= 3 else { return nil }
        let t = s.drop { $0 == " " }
        let n = t.prefix { $0 == "#" }.count
        guard n >= 1 && n <= 6 else { return nil }
        let rest = t.dropFirst(n)
        guard rest.isEmpty || rest.first == " " || rest.first == "\t" else { return nil }
        var text = rest.trimmingCharacters(in: .whitespaces)
        // Optional closing sequence: spaces then #s.
        if let r = text.range(of: "[ \t]+#+$", options: .regularExpression) {
            text = String(text[..<r.lowerBound])
        } else if text.allSatisfy({ $0 == "#" }) {
            text = ""
        }
        return (n, text)
    }

    static func isThematicBreak(_ s: String) -> Bool {
        guard indent(s) <= 3 else { return false }
        let t = s.filter { $0 != " " && $0 != "\t" }
        guard let c = t.first, c == "-" || c == "*" || c == "_" else { return false }
        return t.count >= 3 && t.allSatisfy { $0 == c }
    }

    struct ListMarker {
        var ordered: Bool
        var start: Int
        var delimiter: Character
        var contentIndent: Int
        var indent: Int
    }

    static func listMarker(_ s: String) -> ListMarker? {
        let ind = indent(s)
        let t = Array(dedent(s, ind))
        guard let c = t.first else { return nil }
        var markerLen = 0
        var ordered = false
        var start = 1
        var delim: Character = c
        if c == "-" || c == "*" || c == "+" {
            markerLen = 1
        } else if c.isASCII && c.isNumber {
            var k = 0
            while k < t.count && k < 9 && t[k].isASCII && t[k].isNumber { k += 1 }
            guard k < t.count, t[k] == "." || t[k] == ")" else { return nil }
            ordered = true
            start = Int(String(t[0..<k])) ?? 1
            delim = t[k]
            markerLen = k + 1
        } else {
            return nil
        }
        if markerLen == t.count {
            return ListMarker(
                ordered: ordered, start: start, delimiter: delim, contentIndent: ind + markerLen + 1, indent: ind)
        }
        guard t[markerLen] == " " || t[markerLen] == "\t" else { return nil }
        var spaces = 0
        while markerLen + spaces < t.count && t[markerLen + spaces] == " " { spaces += 1 }
        if spaces > 4 || markerLen + spaces == t.count { spaces = 1 }
        return ListMarker(
            ordered: ordered, start: start, delimiter: delim, contentIndent: ind + markerLen + max(spaces, 1),
            indent: ind)
    }

    static func isBlockQuote(_ s: String) -> Bool { indent(s) <= 3 && s.drop { $0 == " " }.first == ">" }
    static func isCommentStart(_ s: String) -> Bool { indent(s) <= 3 && s.drop { $0 == " " }.hasPrefix("<!--") }

    static func isDelimiterRow(_ s: String) -> Bool {
        let t = s.trimmingCharacters(in: .whitespaces)
        guard t.contains("-") else { return false }
        let cells = splitRow(t)
        return !cells.isEmpty && cells.allSatisfy { $0.range(of: "^:?-+:?$", options: .regularExpression) != nil }
    }

    /// Splits a table row on unescaped `|` outside code spans; outer pipes are optional.
    static func splitRow(_ line: String) -> [String] {
        var t = line.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix("|") { t.removeFirst() }
        if t.hasSuffix("|") && !t.hasSuffix("\\|") { t.removeLast() }
        var cells: [String] = []
        var cur = ""
        var codeRun = 0 // length of the backtick run that opened the current code span
        var prev: Character = " "
        let chars = Array(t)
        var k = 0
        while k < chars.count {
            let c = chars[k]
            if c == "`" {
                var n = 0
                while k + n < chars.count && chars[k + n] == "`" { n += 1 }
                if codeRun == 0 { codeRun = n } else if n == codeRun { codeRun = 0 }
                cur += String(repeating: "`", count: n)
                k += n
                prev = "`"
                continue
            }
            if c == "|" && prev != "\\" && codeRun == 0 {
                cells.append(cur.trimmingCharacters(in: .whitespaces))
                cur = ""
            } else {
                cur.append(c)
            }
            prev = c
            k += 1
        }
        cells.append(cur.trimmingCharacters(in: .whitespaces))
        return cells.map { $0.replacingOccurrences(of: "\\|", with: "|") }
    }

    /// True if `s` starts a block that interrupts a paragraph.
    func interruptsParagraph(_ s: String) -> Bool {
        if BlockRenderer.atxHeading(s) != nil || BlockRenderer.isThematicBreak(s) || Fence.opening(s) != nil
            || BlockRenderer.isBlockQuote(s) || BlockRenderer.isCommentStart(s)
        {
            return true
        }
        if let m = BlockRenderer.listMarker(s), BlockRenderer.indent(s) <= 3 {
            let nonEmpty = !BlockRenderer.dropColumns(s, m.contentIndent).trimmingCharacters(in: .whitespaces).isEmpty
            return nonEmpty && (!m.ordered || m.start == 1)
        }
        return false
    }

    mutating func run() {
        while i < lines.count {
            let line = lines[i]
            if BlockRenderer.isBlank(line) {
                i += 1
                continue
            }
            if BlockRenderer.isCommentStart(line) {
                while i < lines.count && !lines[i].contains("-->") { i += 1 }
                i += 1
                continue
            }
            if let fence = Fence.opening(line) {
                var j = i + 1
                while j < lines.count && !fence.isClosed(by: lines[j]) { j += 1 }
                let body = lines[(i + 1)..<min(j, lines.count)].map(fence.strip).joined(separator: "\n")
                let cls =
                    fence.language.isEmpty
                    ? "" : " class=\"language-\(HTML.escape(HTML.safeFileStem(fence.language)))\""
                emit("<pre><code\(cls)>\(HTML.escape(body))</code></pre>\n")
                i = j + 1
                continue
            }
            if let (level, text) = BlockRenderer.atxHeading(line) {
                heading(level, text)
                i += 1
                continue
            }
            if BlockRenderer.isThematicBreak(line) {
                emit("<hr/>\n")
                i += 1
                continue
            }
            if BlockRenderer.isBlockQuote(line) {
                var inner: [String] = []
                while i < lines.count && BlockRenderer.isBlockQuote(lines[i]) {
                    var t = Substring(lines[i].drop { $0 == " " }.dropFirst())
                    if t.first == " " { t = t.dropFirst() }
                    inner.append(String(t))
                    i += 1
                }
                emit("<blockquote>\n\(BlockRenderer.renderAll(inner, tight: false))</blockquote>\n")
                continue
            }
            if BlockRenderer.indent(line) <= 3, let m = BlockRenderer.listMarker(line) {
                list(m)
                continue
            }
            if line.contains("|"), i + 1 < lines.count, BlockRenderer.isDelimiterRow(lines[i + 1]),
                BlockRenderer.splitRow(line).count == BlockRenderer.splitRow(lines[i + 1]).count
            {
                table()
                continue
            }
            paragraph()
        }
    }

    static func renderAll(_ lines: [String], tight: Bool) -> String {
        var r = BlockRenderer(lines: lines)
        r.splitLevel = 0
        r.tight = tight
        r.run()
        return r.pieces.map {
            if case .html(let h) = $0 { return h }
            return ""
        }.joined()
    }

    mutating func heading(_ level: Int, _ text: String) {
        if level <= splitLevel {
            pieces.append(.heading(level: level, text: Markdown.plain(text)))
        } else {
            // Sections are <h2>; deeper headings keep their level, at least <h3>.
            let h = min(max(level, 3), 6)
            emit("<h\(h)>\(Markdown.inline(text))</h\(h)>\n")
        }
    }

    mutating func paragraph() {
        var para: [String] = []
        while i < lines.count {
            let line = lines[i]
            if BlockRenderer.isBlank(line) { break }
            if !para.isEmpty {
                let t = line.trimmingCharacters(in: .whitespaces)
                if BlockRenderer.indent(line) <= 3 && !t.isEmpty
                    && (t.allSatisfy { $0 == "=" } || t.allSatisfy { $0 == "-" })
                {
                    // Setext heading underline.
                    heading(t.first == "=" ? 1 : 2, para.joined(separator: " "))
                    i += 1
                    return
                }
                if interruptsParagraph(line) { break }
            }
            para.append(line.drop { $0 == " " || $0 == "\t" }.description)
            i += 1
        }
        // Hard line breaks: a trailing backslash or two trailing spaces (not on the last line).
        var parts: [String] = []
        for (k, l) in para.enumerated() {
            var s = l
            if k < para.count - 1 {
                if s.hasSuffix("\\") {
                    s.removeLast()
                    s.append(InlineRenderer.hardBreak)
                } else if s.hasSuffix("  ") {
                    s = s.trimmingCharacters(in: .whitespaces)
                    s.append(InlineRenderer.hardBreak)
                }
            }
            parts.append(k == para.count - 1 ? s.trimmingCharacters(in: .whitespaces) : s)
        }
        let html = Markdown.inline(parts.joined(separator: "\n"))
        emit(tight ? html + "\n" : "<p>\(html)</p>\n")
    }

    mutating func list(_ first: ListMarker) {
        var items: [[String]] = []
        var loose = false
        var current: [String] = []
        var marker = first
        var sawBlank = false
        let tag = first.ordered ? "ol" : "ul"

        func sameKind(_ m: ListMarker) -> Bool {
            m.ordered == first.ordered && (m.ordered ? m.delimiter == first.delimiter : m.delimiter == first.delimiter)
        }

        current.append(BlockRenderer.dropColumns(lines[i], marker.contentIndent))
        i += 1
        while i < lines.count {
            let line = lines[i]
            if BlockRenderer.isBlank(line) {
                sawBlank = true
                current.append("")
                i += 1
                continue
            }
            let ind = BlockRenderer.indent(line)
            if ind >= marker.contentIndent {
                if sawBlank { loose = loose || current.dropLast().contains { !BlockRenderer.isBlank($0) } }
                current.append(BlockRenderer.dedent(line, marker.contentIndent))
                sawBlank = false
                i += 1
                continue
            }
            if ind <= 3, let m = BlockRenderer.listMarker(line), sameKind(m), !BlockRenderer.isThematicBreak(line) {
                if sawBlank { loose = true }
                items.append(current)
                current = [BlockRenderer.dropColumns(line, m.contentIndent)]
                marker = m
                sawBlank = false
                i += 1
                continue
            }
            // Lazy continuation of the item's last paragraph.
            if !sawBlank && !interruptsParagraph(line) && !(BlockRenderer.listMarker(line) != nil && ind <= 3) {
                current.append(line.drop { $0 == " " }.description)
                i += 1
                continue
            }
            break
        }
        items.append(current)
        // Trailing blank lines belong to nobody.
        var h = first.ordered && first.start != 1 ? "<\(tag) start=\"\(first.start)\">\n" : "<\(tag)>\n"
        for var item in items {
            while let l = item.last, BlockRenderer.isBlank(l) { item.removeLast() }
            let inner = BlockRenderer.renderAll(item, tight: !loose)
            var body = inner
            while body.hasSuffix("\n") { body.removeLast() }
            h += "<li>\(body)</li>\n"
        }
        h += "</\(tag)>\n"
        emit(h)
    }

    mutating func table() {
        let header = BlockRenderer.splitRow(lines[i])
        let aligns = BlockRenderer.splitRow(lines[i + 1]).map { $0.hasSuffix(":") && !$0.hasPrefix(":") }
        i += 2
        var rows: [[String]] = []
        while i < lines.count && !BlockRenderer.isBlank(lines[i]) && lines[i].contains("|") {
            rows.append(BlockRenderer.splitRow(lines[i]))
            i += 1
        }
        func cls(_ c: Int) -> String { c < aligns.count && aligns[c] ? " class=\"num\"" : "" }
        var h = "<div class=\"table-wrap\"><table>\n<thead><tr>"
        for (c, cell) in header.enumerated() { h += "<th\(cls(c)) scope=\"col\">\(Markdown.inline(cell))</th>" }
        h += "</tr></thead>\n<tbody>\n"
        for row in rows {
            h += "<tr>"
            for c in 0..<header.count { h += "<td\(cls(c))>\(c < row.count ? Markdown.inline(row[c]) : "")</td>" }
            h += "</tr>\n"
        }
        h += "</tbody></table></div>\n"
        emit(h)
    }
}

// MARK: - Inline

private struct InlineRenderer {
    /// Marks a hard line break inside paragraph text (a private-use character).
    static let hardBreak: Character = "\u{E001}"

    let chars: [Character]
    let plain: Bool

    init(_ chars: [Character], plain: Bool) {
        self.chars = chars
        self.plain = plain
    }

    /// Renders chars[from..<to].
    mutating func render(_ from: Int, _ to: Int, inLink: Bool) -> String {
        var out = ""
        var buf = ""
        func flush() {
            out += plain ? buf : HTML.escape(buf)
            buf = ""
        }
        func tag(_ t: String) { if !plain { out += t } }
        var i = from
        while i < to {
            let c = chars[i]
            switch c {
            case "\\":
                if i + 1 < to, chars[i + 1].isASCII, chars[i + 1].isPunctuation || chars[i + 1].isSymbol {
                    buf.append(chars[i + 1])
                    i += 2
                } else {
                    buf.append(c)
                    i += 1
                }
            case "`":
                let n = run(at: i, of: "`", to: to)
                if let j = findBacktickClose(from: i + n, count: n, to: to) {
                    flush()
                    var code = String(chars[(i + n)..<j]).replacingOccurrences(of: "\n", with: " ")
                    if code.count >= 2, code.hasPrefix(" "), code.hasSuffix(" "), !code.allSatisfy({ $0 == " " }) {
                        code = String(code.dropFirst().dropLast())
                    }
                    tag("<code>")
                    out += plain ? code : HTML.escape(code)
                    tag("</code>")
                    i = j + n
                } else {
                    buf += String(repeating: "`", count: n)
                    i += n
                }
            case "<":
                if let (url, end) = autolink(at: i, to: to), !inLink {
                    flush()
                    if plain { out += url } else { out += "<a href=\"\(HTML.escape(url))\">\(HTML.escape(url))</a>" }
                    i = end
                } else {
                    buf.append(c)
                    i += 1
                }
            case "[", "!":
                if let link = parseLink(at: i, to: to) {
                    flush()
                    let text = render(link.textStart, link.textEnd, inLink: true)
                    if !inLink, !plain, let url = Markdown.safeURL(link.url) {
                        let title = link.title.map { " title=\"\(HTML.escape($0))\"" } ?? ""
                        out += "<a href=\"\(HTML.escape(url))\"\(title)>\(text.isEmpty ? HTML.escape(url) : text)</a>"
                    } else {
                        out += text
                    }
                    i = link.end
                } else {
                    buf.append(c)
                    i += 1
                }
            case "*", "_", "~":
                let n = run(at: i, of: c, to: to)
                if let close = emphasisClose(at: i, count: n, char: c, to: to) {
                    flush()
                    let (open, shut): (String, String)
                    if c == "~" {
                        (open, shut) = ("<del>", "</del>")
                    } else if n == 1 {
                        (open, shut) = ("<em>", "</em>")
                    } else if n == 2 {
                        (open, shut) = ("<strong>", "</strong>")
                    } else {
                        (open, shut) = ("<strong><em>", "</em></strong>")
                    }
                    tag(open)
                    out += render(i + n, close, inLink: inLink)
                    tag(shut)
                    i = close + n
                } else {
                    buf += String(repeating: String(c), count: n)
                    i += n
                }
            case InlineRenderer.hardBreak:
                flush()
                if plain { out += " " } else { out += "<br/>" }
                i += 1
            default:
                buf.append(c)
                i += 1
            }
        }
        flush()
        return out
    }

    func run(at i: Int, of c: Character, to: Int) -> Int {
        var n = 0
        while i + n < to && chars[i + n] == c { n += 1 }
        return n
    }

    func findBacktickClose(from: Int, count: Int, to: Int) -> Int? {
        var j = from
        while j < to {
            if chars[j] == "`" {
                let m = run(at: j, of: "`", to: to)
                if m == count { return j }
                j += m
            } else {
                j += 1
            }
        }
        return nil
    }

    /// `<scheme:...>` autolinks for http, https and mailto.
    func autolink(at i: Int, to: Int) -> (String, Int)? {
        var j = i + 1
        while j < to && chars[j] != ">" {
            if chars[j] == "<" || chars[j].isWhitespace { return nil }
            j += 1
        }
        guard j < to else { return nil }
        let s = String(chars[(i + 1)..<j])
        let lower = s.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://") || lower.hasPrefix("mailto:") else {
            return nil
        }
        guard let url = Markdown.safeURL(s) else { return nil }
        return (url, j + 1)
    }

    /// The index after a backslash escape or a code span starting at `j` (an unclosed backtick run
    /// is passed over as text), or nil when neither starts at `j`; delimiters inside them don't count.
    func skipEscapeOrCode(at j: Int, to: Int) -> Int? {
        if chars[j] == "\\" { return j + 2 }
        guard chars[j] == "`" else { return nil }
        let m = run(at: j, of: "`", to: to)
        if let close = findBacktickClose(from: j + m, count: m, to: to) { return close + m }
        return j + m
    }

    /// The start of the closing delimiter run for an emphasis opener at `i`, if any.
    func emphasisClose(at i: Int, count n: Int, char c: Character, to: Int) -> Int? {
        if c == "~" && n != 2 { return nil }
        if n > 3 { return nil }
        // Opener must be left-flanking: followed by non-whitespace.
        guard i + n < to, !chars[i + n].isWhitespace else { return nil }
        if c == "_", i > 0, chars[i - 1].isLetter || chars[i - 1].isNumber { return nil }
        var j = i + n
        while j < to {
            if let next = skipEscapeOrCode(at: j, to: to) {
                j = next
                continue
            }
            let d = chars[j]
            if d == c {
                let m = run(at: j, of: c, to: to)
                let rightFlanking = !chars[j - 1].isWhitespace
                let afterOK = c != "_" || j + m >= to || !(chars[j + m].isLetter || chars[j + m].isNumber)
                if m == n && rightFlanking && afterOK && j > i + n { return j }
                j += m
                continue
            }
            j += 1
        }
        return nil
    }

    struct Link {
        var textStart: Int
        var textEnd: Int
        var url: String
        var title: String?
        var end: Int
    }

    /// `[text](url "title")` or `![alt](url)` at `i`.
    func parseLink(at i: Int, to: Int) -> Link? {
        var s = i
        if chars[s] == "!" {
            guard s + 1 < to, chars[s + 1] == "[" else { return nil }
            s += 1
        }
        guard chars[s] == "[" else { return nil }
        var depth = 0
        var j = s
        var close: Int?
        while j < to {
            if let next = skipEscapeOrCode(at: j, to: to) {
                j = next
                continue
            }
            let d = chars[j]
            if d == "[" { depth += 1 }
            if d == "]" {
                depth -= 1
                if depth == 0 {
                    close = j
                    break
                }
            }
            j += 1
        }
        guard let textEnd = close, textEnd + 1 < to, chars[textEnd + 1] == "(" else { return nil }
        var k = textEnd + 2
        while k < to && (chars[k] == " " || chars[k] == "\n") { k += 1 }
        var url = ""
        if k < to && chars[k] == "<" {
            k += 1
            while k < to && chars[k] != ">" && chars[k] != "\n" {
                url.append(chars[k])
                k += 1
            }
            guard k < to && chars[k] == ">" else { return nil }
            k += 1
        } else {
            var parens = 0
            while k < to {
                let d = chars[k]
                if d.isWhitespace { break }
                if d == "(" { parens += 1 }
                if d == ")" {
                    if parens == 0 { break }
                    parens -= 1
                }
                if d == "\\" && k + 1 < to {
                    url.append(chars[k + 1])
                    k += 2
                    continue
                }
                url.append(d)
                k += 1
            }
        }
        while k < to && (chars[k] == " " || chars[k] == "\n") { k += 1 }
        var title: String?
        if k < to, chars[k] == "\"" || chars[k] == "'" {
            let q = chars[k]
            var t = ""
            k += 1
            while k < to && chars[k] != q {
                t.append(chars[k])
                k += 1
            }
            guard k < to else { return nil }
            title = t
            k += 1
            while k < to && (chars[k] == " " || chars[k] == "\n") { k += 1 }
        }
        guard k < to, chars[k] == ")" else { return nil }
        return Link(textStart: s + 1, textEnd: textEnd, url: url, title: title, end: k + 1)
    }
}
