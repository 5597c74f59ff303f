import Foundation

/// Lays several standalone chart SVGs out as panels of one SVG (side by side, wrapping after
/// `columns` panels), e.g. one needle grid per ablation condition. Each panel's content is
/// moved into a translated `<g>`; its own `<title>` and style sheet are dropped (the combined
/// chart has one title and one copy of the shared chart CSS). Panel element IDs are already
/// unique (content-hashed by ChartID), so defs do not collide.
enum SVGPanels {
    struct Panel {
        var width: Double
        var height: Double
        var content: String
    }

    /// Parses a chart produced by the Reports renderers (root `<svg ... width="W" height="H">`).
    static func panel(_ svg: String) -> Panel? {
        guard let start = svg.range(of: "<svg"), let openEnd = svg[start.upperBound...].firstIndex(of: ">"),
            let close = svg.range(of: "</svg>", options: .backwards)
        else { return nil }
        let openTag = String(svg[start.lowerBound...openEnd])
        func attr(_ name: String) -> Double? {
            guard let r = openTag.range(of: " \(name)=\"") else { return nil }
            let rest = openTag[r.upperBound...]
            guard let q = rest.firstIndex(of: "\"") else { return nil }
            return Double(rest[..<q].replacingOccurrences(of: "px", with: ""))
        }
        guard let w = attr("width"), let h = attr("height"), openEnd < close.lowerBound else { return nil }
        var content = String(svg[svg.index(after: openEnd)..<close.lowerBound])
        for (open, end) in [("<title", "</title>"), ("<style>", "</style>")] {
            if let a = content.range(of: open), let b = content.range(of: end, range: a.upperBound..<content.endIndex) {
                content.removeSubrange(a.lowerBound..<b.upperBound)
            }
        }
        return Panel(width: w, height: h, content: content)
    }

    /// One SVG holding `svgs` as panels, `columns` per row, with a title line on top.
    static func combine(
        _ svgs: [String], title: String, subtitle: String? = nil, columns: Int = 3,
        gap: Double = 12, id: String? = nil
    ) -> String {
        let panels = svgs.compactMap(panel)
        guard !panels.isEmpty else { return ChartParts.empty(kind: "panels", id: id, title: title) }
        if panels.count == 1 && subtitle == nil { return svgs[0] }
        let cols = max(1, min(columns, panels.count))
        var rows: [[Panel]] = []
        for (i, p) in panels.enumerated() {
            if i % cols == 0 { rows.append([]) }
            rows[rows.count - 1].append(p)
        }
        let rowWidths = rows.map { r in r.map(\.width).reduce(0, +) + gap * Double(max(0, r.count - 1)) }
        let width = max(rowWidths.max() ?? 0, 320)
        var w = SVGWriter()
        let chartID = ChartID.make(
            id, kind: "panels", fingerprint: "\(title)|\(panels.map(\.content.count))|\(panels.count)")
        var y = ChartParts.header(&w, title: title, subtitle: subtitle, width: width) + 4
        for r in rows {
            var x = 0.0
            let h = r.map(\.height).max() ?? 0
            for p in r {
                w.raw("<g transform=\"translate(\(Num.c(x)) \(Num.c(y)))\">\(p.content)</g>")
                x += p.width + gap
            }
            y += h + gap
        }
        return w.document(
            width: width, height: y, id: chartID, title: title,
            description: "\(panels.count) panels: " + title)
    }
}
