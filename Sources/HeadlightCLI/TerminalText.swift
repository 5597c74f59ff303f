import Foundation

/// Untrusted text (suite names, needle ids, document names, model names, file contents) made
/// safe to print on a terminal: control characters (C0 except newline where allowed, DEL, C1 —
/// ESC sequences could move the cursor, retitle the window or hide text) and invisible
/// formatting characters (bidi overrides and isolates such as U+202E, zero-width characters,
/// BOM) are shown as `\u{XXXX}` escapes; a backslash that could start such an escape is
/// doubled, so the output cannot be mistaken for escaped text. Everything else is unchanged.
/// One helper for every command (docs/security.md).
enum TerminalText {
    /// `text` with unsafe characters escaped; `allowNewlines` keeps "\n" (multi-line output).
    static func escape(_ text: String, allowNewlines: Bool = false) -> String {
        guard text.unicodeScalars.contains(where: { needsEscape($0, allowNewlines: allowNewlines) || $0 == "\\" })
        else { return text }
        var out = ""
        out.unicodeScalars.reserveCapacity(text.unicodeScalars.count + 8)
        for u in text.unicodeScalars {
            if u == "\\" {
                out += "\\\\"
            } else if needsEscape(u, allowNewlines: allowNewlines) {
                out += String(format: "\\u{%X}", u.value)
            } else {
                out.unicodeScalars.append(u)
            }
        }
        return out
    }

    /// True for characters that must not reach a terminal raw.
    static func needsEscape(_ u: Unicode.Scalar, allowNewlines: Bool = false) -> Bool {
        let v = u.value
        if v == 0x0A { return !allowNewlines }
        if v < 0x20 || v == 0x7F || (0x80...0x9F).contains(v) { return true } // C0, DEL, C1 (incl. CSI 0x9B)
        if v == 0x061C || v == 0x180E || v == 0xFEFF { return true } // Arabic letter mark, Mongolian vs, BOM
        if (0x200B...0x200F).contains(v) { return true } // zero-width space/joiners, LRM, RLM
        if (0x2028...0x202E).contains(v) { return true } // line/paragraph separators, LRE..RLO (U+202E)
        if (0x2060...0x206F).contains(v) { return true } // word joiner, invisible operators, LRI..PDI
        if (0xFFF9...0xFFFB).contains(v) { return true } // interlinear annotation
        return false
    }
}
