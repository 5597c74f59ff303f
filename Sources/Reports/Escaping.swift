// Escaping for every piece of untrusted text (prompts, model output, token strings,
// probe-file names) that reaches HTML, SVG or Graphviz DOT.
//
// Policy, shared by all three outputs:
// - `&`, `<`, `>`, `"`, `'` become character references (HTML/SVG) or are quoted (DOT).
// - `\n` and `\t` are kept (in DOT: `\n` becomes a label line break, `\t` a space).
// - CR LF counts as one line ending and becomes `\n`; a lone CR is shown as ␍.
// - Every other C0 control U+0000–U+001F and DEL U+007F is rendered *visibly* as its
//   Unicode "control picture" (U+2400 + code, DEL -> U+2421): ␀ ␁ … ␛ … ␟ ␡.
//   Dropping them would hide what a model actually emitted; keeping them raw would
//   produce XML that does not parse (XML 1.0 forbids them) and SVG that browsers reject.
// - C1 controls U+0080–U+009F and the non-characters U+FFFE/U+FFFF become U+FFFD (�).
// - Everything else (emoji, CJK, RTL scripts, bidi marks) passes through unchanged.
//   Bidi overrides in untrusted text cannot reorder report chrome: the report CSS
//   isolates table cells, code blocks, and captions (`unicode-bidi: isolate`).

/// Shared scalar-level normalisation used by HTML, SVG and DOT escaping.
enum TextSanitizer {
    /// What to do with one Unicode scalar, after CR LF folding.
    enum Action {
        case keep
        case replace(Unicode.Scalar)
    }

    @inline(__always)
    static func action(for s: Unicode.Scalar) -> Action {
        let v = s.value
        switch v {
        case 0x09, 0x0A: return .keep
        case 0x00...0x1F: return .replace(Unicode.Scalar(0x2400 + v)!)
        case 0x7F: return .replace("\u{2421}")
        case 0x80...0x9F, 0xFFFE, 0xFFFF: return .replace("\u{FFFD}")
        default: return .keep
        }
    }

    /// Calls `emit` with each scalar after CR LF folding and control replacement.
    @inline(__always)
    static func forEachScalar(_ text: String, _ emit: (Unicode.Scalar) -> Void) {
        var pendingCR = false
        for s in text.unicodeScalars {
            if pendingCR {
                pendingCR = false
                if s == "\n" {
                    emit("\n")
                    continue
                }
                emit("\u{240D}")
            }
            if s == "\r" {
                pendingCR = true
                continue
            }
            switch action(for: s) {
            case .keep: emit(s)
            case .replace(let r): emit(r)
            }
        }
        if pendingCR { emit("\u{240D}") }
    }

    /// The visible, control-free form of `text` (no markup escaping).
    static func visible(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        forEachScalar(text) { out.append($0) }
        return String(out)
    }
}

/// HTML escaping for text content *and* quoted attribute values.
public enum HTML {
    /// Escapes `text` for use between tags or inside a double- or single-quoted
    /// attribute value. See the policy at the top of Escaping.swift: the five markup
    /// characters become `&amp; &lt; &gt; &quot; &#39;`, control characters other than
    /// `\n` and `\t` are shown as visible control pictures (␀ … ␟, ␡), CR LF becomes `\n`.
    /// The result is also valid XML character data, so it can go into SVG unchanged.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count + 16)
        TextSanitizer.forEachScalar(text) { s in
            switch s {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(s)
            }
        }
        return out
    }

    /// A string safe as a file name or URL path segment: ASCII letters, digits, `-`, `_`, `.`,
    /// never starting with a dot, never empty, at most 80 characters.
    public static func safeFileStem(_ name: String) -> String {
        var out = ""
        var lastDash = false
        for s in name.unicodeScalars {
            let ok = (s >= "a" && s <= "z") || (s >= "A" && s <= "Z") || (s >= "0" && s <= "9") || s == "_" || s == "."
            if ok {
                out.unicodeScalars.append(s)
                lastDash = false
            } else if !lastDash {
                out += "-"
                lastDash = true
            }
        }
        while let f = out.first, f == "." || f == "-" { out.removeFirst() }
        while let l = out.last, l == "-" || l == "." { out.removeLast() }
        if out.count > 80 { out = String(out.prefix(80)) }
        return out.isEmpty ? "figure" : out
    }
}

/// SVG (XML) escaping. Identical rules to `HTML.escape`; a separate name keeps call
/// sites honest about which language they are writing.
public enum SVG {
    /// Escapes text for an SVG `<text>`, `<title>` or `<desc>` element or a quoted attribute.
    public static func escape(_ text: String) -> String { HTML.escape(text) }
}

/// Graphviz DOT quoting.
public enum DOT {
    /// Returns `text` as one double-quoted DOT string (including the quotes) that
    /// Graphviz shows *literally* as a label, xlabel or tooltip.
    ///
    /// - `\` -> `\\` (so `\N`, `\G`, `\l` and friends stay literal) and `"` -> `\"`:
    ///   the string can never end early, so input such as `"]; a -> b [label="`
    ///   stays inside the label and cannot add nodes, edges or attributes.
    /// - newline (and CR LF) -> `\n`, a centred line break in the label; tab -> space.
    /// - `&` -> `&amp;`: Graphviz decodes HTML entities in labels and tooltips, so
    ///   without this `&lt;` would print as `<`; with it every character prints as typed.
    /// - other control characters follow the shared policy (visible control pictures),
    ///   so no NUL can truncate the C string and no raw control byte reaches the SVG.
    /// Meant for label-like attribute values; `DirectedGraph` never uses caller text as a
    /// node ID (it generates `n0`, `n1`, …), so IDs need no entity handling.
    public static func quote(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 8)
        TextSanitizer.forEachScalar(text) { s in
            switch s {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\t": out += " "
            case "&": out += "&amp;"
            default: out.unicodeScalars.append(s)
            }
        }
        out += "\""
        return out
    }
}
