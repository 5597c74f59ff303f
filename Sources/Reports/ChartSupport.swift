import Foundation

// Shared pieces of the SVG charts: number formatting, nice ticks, linear scales,
// colour scales, rough text metrics, the chart style sheet and a tiny SVG writer.
//
// Every chart is a standalone `<svg>` (with xmlns, width/height in px and a viewBox)
// that reads in light and dark mode: chrome (text, axes, grid, background) uses CSS
// classes whose colours come from CSS variables with a `prefers-color-scheme: dark`
// override; only data colours (heat-map cells) are literal fills. The same string is
// inlined into the HTML report and saved as a .svg file.

// MARK: - Numbers

enum Num {
    /// Compact coordinate formatting: at most 2 decimals, no trailing zeros, never "-0".
    static func c(_ x: Double) -> String {
        guard x.isFinite else { return "0" }
        let r = (x * 100).rounded() / 100
        if r == r.rounded(), abs(r) < 1e15 { return String(Int(r)) }
        var s = String(format: "%.2f", r)
        while s.hasSuffix("0") { s.removeLast() }
        if s == "-0" { s = "0" }
        return s
    }

    /// Formats `x` with `decimals` digits after the point ("-0" avoided).
    static func fixed(_ x: Double, _ decimals: Int) -> String {
        guard x.isFinite else { return x.isNaN ? "NaN" : (x > 0 ? "∞" : "-∞") }
        var s = String(format: "%.\(max(0, min(decimals, 10)))f", x)
        if s.hasPrefix("-"), s.dropFirst().allSatisfy({ $0 == "0" || $0 == "." }) { s.removeFirst() }
        return s
    }

    /// A readable value for tooltips and cell labels: 3 significant digits, exponent for extremes.
    static func value(_ x: Double) -> String {
        guard x.isFinite else { return x.isNaN ? "missing" : (x > 0 ? "∞" : "-∞") }
        let a = abs(x)
        if a == 0 { return "0" }
        if a >= 1e6 || a < 1e-3 { return String(format: "%.2e", x) }
        let decimals = max(0, 2 - Int(floor(log10(a))))
        var s = fixed(x, decimals)
        if s.contains(".") {
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
        }
        return s
    }

    /// Token-count style labels: 1000 -> "1K", 32768 -> "32.8K", 1_000_000 -> "1M".
    static func count(_ n: Int) -> String {
        let a = abs(n)
        if a >= 1_000_000 { return trim(Double(n) / 1e6) + "M" }
        if a >= 1_000 { return trim(Double(n) / 1e3) + "K" }
        return String(n)
    }

    private static func trim(_ x: Double) -> String {
        var s = String(format: "%.1f", x)
        if s.hasSuffix(".0") { s.removeLast(2) }
        return s
    }
}

// MARK: - Ticks

/// "Nice" axis ticks with 1-2-5 steps (Heckbert, Graphics Gems 1990).
public struct Ticks: Equatable, Sendable {
    public var lower: Double
    public var upper: Double
    public var step: Double
    public var values: [Double]
    /// Decimals needed to print every tick distinctly.
    public var decimals: Int

    /// Ticks covering `[lo, hi]`; the bounds are widened to multiples of the step.
    /// Non-finite or reversed input is repaired; a zero-width range is widened.
    public static func nice(_ lo: Double, _ hi: Double, target: Int = 5) -> Ticks {
        var (a, b) = normalized(lo, hi)
        let step = niceStep((b - a) / Double(max(1, target - 1)))
        a = (a / step).rounded(.down) * step
        b = (b / step).rounded(.up) * step
        return make(a, b, step)
    }

    /// Ticks inside a fixed domain `[lo, hi]` (the domain itself is kept, e.g. 0–1 or 0–100).
    public static func within(_ lo: Double, _ hi: Double, target: Int = 5) -> Ticks {
        let (a, b) = normalized(lo, hi)
        let step = niceStep((b - a) / Double(max(1, target - 1)))
        var t = make((a / step).rounded(.up) * step, (b / step).rounded(.down) * step, step)
        t.lower = a
        t.upper = b
        return t
    }

    static func normalized(_ lo: Double, _ hi: Double) -> (Double, Double) {
        var a = lo.isFinite ? lo : 0
        var b = hi.isFinite ? hi : (a + 1)
        if a > b { swap(&a, &b) }
        if b - a < 1e-12 * max(1, abs(a)) {
            let pad = a == 0 ? 1 : abs(a) * 0.1
            a -= pad
            b += pad
        }
        return (a, b)
    }

    static func niceStep(_ raw: Double) -> Double {
        guard raw.isFinite, raw > 0 else { return 1 }
        let e = floor(log10(raw))
        let f = raw / pow(10, e)
        let nf: Double = f < 1.5 ? 1 : (f < 3 ? 2 : (f < 7 ? 5 : 10))
        return nf * pow(10, e)
    }

    static func make(_ a: Double, _ b: Double, _ step: Double) -> Ticks {
        var values: [Double] = []
        let n = Int(((b - a) / step).rounded()) + 1
        let decimals = step >= 1 ? 0 : min(10, Int(ceil(-log10(step) - 1e-9)))
        let scale = pow(10, Double(decimals))
        if n > 0 && n < 1000 {
            let first = (a / step).rounded()
            for i in 0..<n {
                var v = (first + Double(i)) * step
                if decimals > 0 { v = (v * scale).rounded() / scale } // 0.6000000000000001 -> 0.6
                if abs(v) < step * 1e-9 { v = 0 }
                values.append(v)
            }
        }
        return Ticks(lower: a, upper: b, step: step, values: values, decimals: decimals)
    }

    /// Label for one tick value.
    public func label(_ v: Double) -> String {
        let a = max(abs(lower), abs(upper))
        if a >= 1e6 || (a > 0 && a < 1e-4) { return String(format: "%.1e", v) }
        return Num.fixed(v, decimals)
    }
}

// MARK: - Scales

/// Linear map from a data domain to pixel range (range may be reversed for y).
struct LinearScale {
    var d0: Double, d1: Double, r0: Double, r1: Double
    init(domain: (Double, Double), range: (Double, Double)) {
        d0 = domain.0
        d1 = domain.1
        r0 = range.0
        r1 = range.1
        if d1 == d0 { d1 = d0 + 1 }
    }
    func callAsFunction(_ x: Double) -> Double { r0 + (x - d0) / (d1 - d0) * (r1 - r0) }
    /// Like callAsFunction but clamped to the range.
    func clamped(_ x: Double) -> Double {
        let v = self(x)
        return min(max(v, min(r0, r1)), max(r0, r1))
    }
}

// MARK: - Colours

/// An sRGB colour.
public struct RGB: Hashable, Sendable {
    public var r: Double, g: Double, b: Double // 0...1
    public init(_ r: Double, _ g: Double, _ b: Double) {
        self.r = r
        self.g = g
        self.b = b
    }
    /// Parses "#rrggbb" or "rrggbb"; nil for anything else.
    public init?(hex: String) {
        var s = Substring(hex)
        if s.hasPrefix("#") { s = s.dropFirst() }
        guard s.count == 6, let v = UInt32(s, radix: 16) else { return nil }
        self.init(Double((v >> 16) & 0xFF) / 255, Double((v >> 8) & 0xFF) / 255, Double(v & 0xFF) / 255)
    }
    /// "#rrggbb".
    public var hex: String {
        func h(_ x: Double) -> Int { Int((min(max(x, 0), 1) * 255).rounded()) }
        return String(format: "#%02x%02x%02x", h(r), h(g), h(b))
    }
    /// WCAG relative luminance.
    public var luminance: Double {
        func lin(_ c: Double) -> Double { c <= 0.03928 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4) }
        return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
    }
    /// Black or white, whichever contrasts more with this colour as a background.
    public var contrastingText: RGB {
        let l = luminance
        return (l + 0.05) / 0.05 > 1.05 / (l + 0.05) ? RGB(0.07, 0.07, 0.07) : RGB(1, 1, 1)
    }
    func mix(_ o: RGB, _ t: Double) -> RGB { RGB(r + (o.r - r) * t, g + (o.g - g) * t, b + (o.b - b) * t) }
}

/// A sequential colour scale on [0, 1] (piecewise linear in sRGB between stops).
public struct ColorScale: Sendable {
    public var name: String
    public var stops: [RGB]

    public init(name: String, stops: [RGB]) {
        self.name = name
        self.stops = stops.isEmpty ? [RGB(0, 0, 0), RGB(1, 1, 1)] : stops
    }

    public func color(_ t: Double) -> RGB {
        guard stops.count > 1 else { return stops[0] }
        let u = t.isFinite ? min(max(t, 0), 1) : 0
        let x = u * Double(stops.count - 1)
        let i = min(Int(x), stops.count - 2)
        return stops[i].mix(stops[i + 1], x - Double(i))
    }

    /// Perceptually uniform, colour-blind safe; dark end still distinct from a dark page.
    public static let viridis = ColorScale(
        name: "viridis",
        stops: [
            "#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c",
            "#22a884", "#44bf70", "#7ad151", "#bddf26", "#fde725"
        ].compactMap(RGB.init(hex:)))

    /// The red → yellow → green map of the classic needle-in-a-haystack plot (Kamradt 2023).
    public static let needle = ColorScale(
        name: "needle",
        stops: [
            "#F0496E", "#EBB839", "#0CD79F"
        ].compactMap(RGB.init(hex:)))

    /// Blue → white-ish → red for signed values centred on 0 (map with domain -m...m).
    public static let diverging = ColorScale(
        name: "diverging",
        stops: [
            "#2166ac", "#67a9cf", "#d1e5f0", "#f7f7f7", "#fddbc7", "#ef8a62", "#b2182b"
        ].compactMap(RGB.init(hex:)))
}

// MARK: - Text metrics

enum TextMetrics {
    /// Advance widths (em) of printable ASCII U+0020–U+007E in DejaVu Sans, the widest of the
    /// common UI sans fonts (and Linux's usual fallback), so estimates err on the roomy side.
    private static let ascii: [Double] = [
        0.318, 0.401, 0.460, 0.838, 0.636, 0.950, 0.780, 0.275, 0.390, 0.390, 0.500, 0.838, 0.318, 0.361, 0.318, 0.337,
        0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.337, 0.337, 0.838, 0.838, 0.838, 0.531,
        1.000, 0.684, 0.686, 0.698, 0.770, 0.632, 0.575, 0.775, 0.752, 0.295, 0.295, 0.656, 0.557, 0.863, 0.748, 0.787,
        0.603, 0.787, 0.695, 0.635, 0.611, 0.732, 0.684, 0.989, 0.685, 0.611, 0.685, 0.390, 0.337, 0.390, 0.838, 0.500,
        0.500, 0.613, 0.635, 0.550, 0.635, 0.615, 0.352, 0.635, 0.634, 0.278, 0.278, 0.579, 0.278, 0.974, 0.634, 0.612,
        0.635, 0.635, 0.411, 0.521, 0.392, 0.634, 0.592, 0.818, 0.592, 0.592, 0.525, 0.636, 0.337, 0.636, 0.838
    ]

    /// Rough advance width of `s` at `size` px (no font access on a server). Exact for
    /// DejaVu Sans ASCII; conservative for Helvetica/SF/Segoe; 1 em for CJK and emoji.
    static func width(_ s: String, size: Double) -> Double {
        var w = 0.0
        for ch in s {
            guard let u = ch.unicodeScalars.first else { continue }
            let v = u.value
            let em: Double
            switch v {
            case 0x20...0x7E: em = ascii[Int(v - 0x20)]
            case 0x1100...0x11FF, 0x2E80...0xA4CF, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F,
                0xFF00...0xFF60, 0x1F000...0x1FAFF, 0x20000...0x3FFFD:
                em = 1.0
            case 0x2400...0x243F: em = 0.8 // control pictures
            default: em = 0.64
            }
            w += em * size
        }
        return w
    }

    /// Greedy word wrap into at most `maxLines` lines of `maxWidth`; the last line (and any
    /// single over-long word) is truncated with "…".
    static func wrap(_ s: String, maxWidth: Double, size: Double, maxLines: Int) -> [String] {
        var lines: [String] = []
        var current = ""
        let words = s.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        var i = 0
        while i < words.count {
            let candidate = current.isEmpty ? words[i] : current + " " + words[i]
            if width(candidate, size: size) <= maxWidth || current.isEmpty {
                current = candidate
                i += 1
            } else {
                lines.append(current)
                current = ""
                if lines.count == maxLines - 1 { break }
            }
        }
        if i < words.count { current = (current.isEmpty ? "" : current + " ") + words[i...].joined(separator: " ") }
        if !current.isEmpty || lines.isEmpty { lines.append(current) }
        return lines.map { truncate($0, maxWidth: maxWidth, size: size) }
    }

    /// `s` shortened with "…" so that it fits `maxWidth`.
    static func truncate(_ s: String, maxWidth: Double, size: Double) -> String {
        if width(s, size: size) <= maxWidth { return s }
        var out = ""
        let ell = width("…", size: size)
        for ch in s {
            if width(out + String(ch), size: size) + ell > maxWidth { break }
            out.append(ch)
        }
        return out + "…"
    }
}

// MARK: - Style sheet

enum ChartStyle {
    /// Categorical series colours: light-mode and dark-mode variants (Tableau 10 based).
    static let light = ["#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f"]
    static let dark = ["#8cb4e0", "#ffab5e", "#ff8a8c", "#8fd07f", "#d4a6cb", "#9fd9d3", "#f5da6e", "#cfa58a"]
    static var seriesCount: Int { light.count }

    /// The CSS shared by all charts (identical in every chart, so repeated copies in one
    /// HTML page are harmless). Contains no `<` or `&`, so it is valid XML text.
    static let css: String = {
        var s = """
            .hl-chart{--hl-fg:#1f2328;--hl-muted:#59636e;--hl-grid:#e1e4e8;--hl-axis:#8c959f;--hl-bg:#ffffff;\
            --hl-mark:#d1242f;--hl-span:rgba(255,176,0,0.20);--hl-span-edge:#d29922;--hl-missing:#d0d7de;\
            --hl-hatch:#8c959f;--hl-ref:#8c959f;
            """
        for (i, c) in light.enumerated() { s += "--hl-s\(i):\(c);" }
        s += "font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:var(--hl-fg)}"
        s += "@media (prefers-color-scheme:dark){.hl-chart{--hl-fg:#e6edf3;--hl-muted:#9198a1;--hl-grid:#30363d;"
        s += "--hl-axis:#6e7681;--hl-bg:#0d1117;--hl-mark:#ff6b6b;--hl-span:rgba(210,153,34,0.22);"
        s += "--hl-span-edge:#e3b341;--hl-missing:#30363d;--hl-hatch:#6e7681;--hl-ref:#6e7681;"
        for (i, c) in dark.enumerated() { s += "--hl-s\(i):\(c);" }
        s += "}}"
        s += """
            .hl-chart .hl-bg{fill:var(--hl-bg)}\
            .hl-chart text{fill:var(--hl-fg);font-size:12px}\
            .hl-chart .hl-title{font-size:15px;font-weight:600}\
            .hl-chart .hl-subtitle{font-size:12px;fill:var(--hl-muted)}\
            .hl-chart .hl-axis-title{font-size:12px;font-weight:500}\
            .hl-chart .hl-tick{font-size:11px;fill:var(--hl-muted)}\
            .hl-chart .hl-small{font-size:10px}\
            .hl-chart .hl-muted{fill:var(--hl-muted)}\
            .hl-chart .hl-axis{stroke:var(--hl-axis);stroke-width:1;fill:none}\
            .hl-chart .hl-grid{stroke:var(--hl-grid);stroke-width:1;fill:none}\
            .hl-chart .hl-ref{stroke:var(--hl-ref);stroke-width:1;stroke-dasharray:4 4;fill:none}\
            .hl-chart .hl-mark{stroke:var(--hl-mark);stroke-width:2;fill:none}\
            .hl-chart .hl-span{fill:var(--hl-span)}\
            .hl-chart .hl-span-edge{stroke:var(--hl-span-edge);stroke-width:1;fill:none}\
            .hl-chart .hl-span-label{fill:var(--hl-span-edge);font-weight:600}\
            .hl-chart .hl-missing{fill:var(--hl-missing)}\
            .hl-chart .hl-hatch{stroke:var(--hl-hatch);stroke-width:1.2}\
            .hl-chart .hl-frame{stroke:var(--hl-axis);stroke-width:1;fill:none}\
            .hl-chart .hl-legend-bg{fill:var(--hl-bg);fill-opacity:0.85;stroke:var(--hl-grid)}\
            .hl-chart .hl-err{stroke:var(--hl-fg);stroke-width:1.3;fill:none}\
            .hl-chart .hl-line{fill:none;stroke-width:2;stroke-linejoin:round;stroke-linecap:round}\
            .hl-chart .hl-dash{stroke-dasharray:6 4}\
            .hl-chart .hl-area{fill-opacity:0.28;stroke:none}\
            .hl-chart .hl-cell-text{font-size:10px;font-variant-numeric:tabular-nums}\
            .hl-chart .hl-token{font-size:11px;font-family:ui-monospace,'SF Mono',Menlo,Consolas,monospace}\
            .hl-chart .hl-token-hl{fill:var(--hl-span-edge);font-weight:700}\
            .hl-chart .hl-nodata{font-size:13px;fill:var(--hl-muted)}
            """
        for i in 0..<light.count {
            s += ".hl-chart .hl-f\(i){fill:var(--hl-s\(i))}.hl-chart .hl-k\(i){stroke:var(--hl-s\(i))}"
        }
        return s
    }()
}

// MARK: - SVG writer

/// Accumulates SVG elements. All text and attribute values pass through `SVG.escape`;
/// numbers through `Num.c`.
struct SVGWriter {
    private(set) var body = ""
    var defs = ""

    mutating func raw(_ s: String) { body += s }

    mutating func rect(
        _ x: Double, _ y: Double, _ w: Double, _ h: Double, cls: String? = nil,
        fill: String? = nil, extra: String = "", title: String? = nil
    ) {
        body += "<rect x=\"\(Num.c(x))\" y=\"\(Num.c(y))\" width=\"\(Num.c(max(0, w)))\" height=\"\(Num.c(max(0, h)))\""
        if let cls { body += " class=\"\(cls)\"" }
        if let fill { body += " fill=\"\(SVG.escape(fill))\"" }
        body += extra
        if let title {
            body += "><title>\(SVG.escape(title))</title></rect>"
        } else {
            body += "/>"
        }
    }

    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, cls: String, extra: String = "") {
        body +=
            "<line x1=\"\(Num.c(x1))\" y1=\"\(Num.c(y1))\" x2=\"\(Num.c(x2))\" y2=\"\(Num.c(y2))\" "
            + "class=\"\(cls)\"\(extra)/>"
    }

    mutating func path(_ d: String, cls: String, title: String? = nil) {
        if let title {
            body += "<path d=\"\(d)\" class=\"\(cls)\"><title>\(SVG.escape(title))</title></path>"
        } else {
            body += "<path d=\"\(d)\" class=\"\(cls)\"/>"
        }
    }

    /// Text element. `rotate` is in degrees around (x, y).
    mutating func text(
        _ x: Double, _ y: Double, _ s: String, cls: String? = nil, anchor: String = "start",
        baseline: String? = nil, rotate: Double? = nil, fill: String? = nil, title: String? = nil
    ) {
        body += "<text x=\"\(Num.c(x))\" y=\"\(Num.c(y))\""
        if anchor != "start" { body += " text-anchor=\"\(anchor)\"" }
        if let baseline { body += " dominant-baseline=\"\(baseline)\"" }
        if let rotate { body += " transform=\"rotate(\(Num.c(rotate)) \(Num.c(x)) \(Num.c(y)))\"" }
        if let cls { body += " class=\"\(cls)\"" }
        if let fill { body += " style=\"fill:\(SVG.escape(fill))\"" }
        body += ">"
        if let title { body += "<title>\(SVG.escape(title))</title>" }
        body += SVG.escape(s) + "</text>"
    }

    /// Several lines centred on x, the first baseline at y, `lineHeight` apart.
    mutating func textLines(
        _ x: Double, _ y: Double, _ lines: [String], cls: String, lineHeight: Double,
        title: String? = nil
    ) {
        body += "<text x=\"\(Num.c(x))\" y=\"\(Num.c(y))\" text-anchor=\"middle\" class=\"\(cls)\">"
        if let title { body += "<title>\(SVG.escape(title))</title>" }
        for (i, l) in lines.enumerated() {
            body += "<tspan x=\"\(Num.c(x))\" dy=\"\(i == 0 ? "0" : Num.c(lineHeight))\">\(SVG.escape(l))</tspan>"
        }
        body += "</text>"
    }

    mutating func open(_ tag: String, _ attrs: String = "") { body += "<\(tag)\(attrs.isEmpty ? "" : " " + attrs)>" }
    mutating func close(_ tag: String) { body += "</\(tag)>" }

    /// Defines a 45° hatch pattern `id` (for missing values).
    mutating func defineHatch(id: String) {
        defs +=
            "<pattern id=\"\(id)\" patternUnits=\"userSpaceOnUse\" width=\"6\" height=\"6\" "
            + "patternTransform=\"rotate(45)\">"
        defs +=
            "<rect width=\"6\" height=\"6\" class=\"hl-missing\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" "
            + "class=\"hl-hatch\"/></pattern>"
    }

    /// Wraps the body into a standalone SVG document string.
    func document(width: Double, height: Double, id: String, title: String, description: String?) -> String {
        let w = Num.c(max(1, width.rounded(.up))), h = Num.c(max(1, height.rounded(.up)))
        var s =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"hl-chart\" id=\"\(id)\" width=\"\(w)\" height=\"\(h)\" "
        s += "viewBox=\"0 0 \(w) \(h)\" role=\"img\" aria-labelledby=\"\(id)-title\">"
        s += "<title id=\"\(id)-title\">\(SVG.escape(title.isEmpty ? "Chart" : title))</title>"
        if let description, !description.isEmpty { s += "<desc>\(SVG.escape(description))</desc>" }
        s += "<style>\(ChartStyle.css)</style>"
        if !defs.isEmpty { s += "<defs>\(defs)</defs>" }
        s += "<rect class=\"hl-bg\" x=\"0\" y=\"0\" width=\"\(w)\" height=\"\(h)\"/>"
        s += body
        s += "</svg>"
        return s
    }
}

// MARK: - Shared chart pieces

enum ChartID {
    /// A deterministic element-ID prefix: "hl" + 64-bit FNV-1a of a fingerprint of the
    /// chart's content. Equal charts get equal IDs (and equal defs), so ID collisions
    /// between charts inlined into one page are harmless.
    static func make(_ explicit: String?, kind: String, fingerprint: String) -> String {
        if let explicit, !explicit.isEmpty {
            let safe = HTML.safeFileStem(explicit).replacingOccurrences(of: ".", with: "-")
            return safe.first!.isLetter ? safe : "hl-" + safe
        }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in (kind + "\u{1}" + fingerprint).utf8 {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
        return "hl-\(kind)-" + String(h, radix: 16)
    }
}

enum ChartParts {
    /// Title (and optional subtitle) at the top left. Returns the y below them.
    static func header(_ w: inout SVGWriter, title: String, subtitle: String?, width: Double, x: Double = 16) -> Double
    {
        let t = TextMetrics.truncate(title, maxWidth: width - 2 * x, size: 15)
        w.text(x, 24, t, cls: "hl-title", title: t == title ? nil : title)
        if let subtitle, !subtitle.isEmpty {
            let s = TextMetrics.truncate(subtitle, maxWidth: width - 2 * x, size: 12)
            w.text(x, 42, s, cls: "hl-subtitle", title: s == subtitle ? nil : subtitle)
            return 54
        }
        return 36
    }

    /// "label (unit)" or just the label.
    static func axisTitle(_ label: String, unit: String?) -> String {
        guard let unit, !unit.isEmpty else { return label }
        return label.isEmpty ? unit : "\(label) (\(unit))"
    }

    /// Left y axis with grid lines across the plot, tick labels and a rotated title.
    static func yAxis(
        _ w: inout SVGWriter, ticks: Ticks, scale: LinearScale, plotX: Double, plotW: Double,
        title: String, titleX: Double, grid: Bool = true
    ) {
        for v in ticks.values {
            let y = scale(v)
            if grid { w.line(plotX, y, plotX + plotW, y, cls: "hl-grid") }
            w.line(plotX - 4, y, plotX, y, cls: "hl-axis")
            w.text(plotX - 7, y, ticks.label(v), cls: "hl-tick", anchor: "end", baseline: "central")
        }
        w.line(plotX, min(scale.r0, scale.r1), plotX, max(scale.r0, scale.r1), cls: "hl-axis")
        if !title.isEmpty {
            let midY = (scale.r0 + scale.r1) / 2
            let t = TextMetrics.truncate(title, maxWidth: abs(scale.r0 - scale.r1) + 40, size: 12)
            w.text(titleX, midY, t, cls: "hl-axis-title", anchor: "middle", rotate: -90)
        }
    }

    /// Bottom x axis with optional vertical grid lines, tick labels and a title.
    static func xAxis(
        _ w: inout SVGWriter, ticks: Ticks, scale: LinearScale, plotY: Double, plotH: Double,
        title: String, titleY: Double, grid: Bool = false
    ) {
        let base = plotY + plotH
        for v in ticks.values {
            let x = scale(v)
            if grid { w.line(x, plotY, x, base, cls: "hl-grid") }
            w.line(x, base, x, base + 4, cls: "hl-axis")
            w.text(x, base + 16, ticks.label(v), cls: "hl-tick", anchor: "middle")
        }
        w.line(min(scale.r0, scale.r1), base, max(scale.r0, scale.r1), base, cls: "hl-axis")
        if !title.isEmpty {
            let t = TextMetrics.truncate(title, maxWidth: abs(scale.r1 - scale.r0) + 60, size: 12)
            w.text((scale.r0 + scale.r1) / 2, titleY, t, cls: "hl-axis-title", anchor: "middle")
        }
    }

    /// One legend entry: a swatch (`swatch` is raw SVG drawn at (x, y) with 14x10 box) and label.
    struct LegendItem {
        var label: String
        var swatch: (Double, Double) -> String
        var tooltip: String? = nil
    }

    static func fillSwatch(series i: Int) -> (Double, Double) -> String {
        { x, y in
            "<rect x=\"\(Num.c(x))\" y=\"\(Num.c(y))\" width=\"14\" height=\"10\" "
                + "class=\"hl-f\(i % ChartStyle.seriesCount)\"/>"
        }
    }

    static func lineSwatch(series i: Int, dashed: Bool = false) -> (Double, Double) -> String {
        { x, y in
            "<line x1=\"\(Num.c(x))\" y1=\"\(Num.c(y + 5))\" x2=\"\(Num.c(x + 14))\" y2=\"\(Num.c(y + 5))\" "
                + "class=\"hl-line hl-k\(i % ChartStyle.seriesCount)\(dashed ? " hl-dash" : "")\"/>"
        }
    }

    /// Width a vertical legend needs.
    static func legendWidth(_ items: [LegendItem], maxLabel: Double = 260) -> Double {
        let lw = items.map { min(maxLabel, TextMetrics.width($0.label, size: 12)) }.max() ?? 0
        return 14 + 6 + lw + 18
    }

    /// Vertical legend box at (x, y). Returns its height.
    @discardableResult
    static func legend(
        _ w: inout SVGWriter, _ items: [LegendItem], x: Double, y: Double, background: Bool,
        maxLabel: Double = 260
    ) -> Double {
        guard !items.isEmpty else { return 0 }
        let h = Double(items.count) * 18 + 8
        if background {
            w.rect(x, y, legendWidth(items, maxLabel: maxLabel), h, cls: "hl-legend-bg", extra: " rx=\"3\"")
        }
        for (i, item) in items.enumerated() {
            let iy = y + 6 + Double(i) * 18
            w.open("g")
            if let t = item.tooltip { w.raw("<title>\(SVG.escape(t))</title>") }
            w.raw(item.swatch(x + 8, iy + 1))
            let label = TextMetrics.truncate(item.label, maxWidth: maxLabel, size: 12)
            w.text(x + 28, iy + 6, label, anchor: "start", baseline: "central")
            w.close("g")
        }
        return h
    }

    /// Horizontal legend starting at (x, y) wrapping at `maxX`. Returns the height used.
    @discardableResult
    static func legendRow(_ w: inout SVGWriter, _ items: [LegendItem], x: Double, y: Double, maxX: Double) -> Double {
        guard !items.isEmpty else { return 0 }
        var cx = x, cy = y
        for item in items {
            let label = TextMetrics.truncate(item.label, maxWidth: min(360, maxX - x - 30), size: 12)
            let iw = 20 + TextMetrics.width(label, size: 12) + 18
            if cx + iw > maxX && cx > x {
                cx = x
                cy += 18
            }
            w.open("g")
            if let t = item.tooltip { w.raw("<title>\(SVG.escape(t))</title>") }
            w.raw(item.swatch(cx, cy))
            w.text(cx + 20, cy + 5, label, baseline: "central")
            w.close("g")
            cx += iw
        }
        return cy - y + 18
    }

    /// A "No data" placeholder chart.
    static func empty(kind: String, id: String?, title: String, message: String = "No data") -> String {
        var w = SVGWriter()
        let width = 480.0, height = 200.0
        _ = header(&w, title: title, subtitle: nil, width: width)
        w.rect(16, 48, width - 32, height - 64, cls: "hl-frame", extra: " stroke-dasharray=\"4 4\"")
        w.text(width / 2, 48 + (height - 64) / 2, message, cls: "hl-nodata", anchor: "middle", baseline: "central")
        return w.document(
            width: width, height: height, id: ChartID.make(id, kind: kind, fingerprint: title + message),
            title: title, description: message)
    }
}
