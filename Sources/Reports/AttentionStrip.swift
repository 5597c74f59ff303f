import Foundation

/// Attention weights of a few heads over the tokens of one prompt: one bar row per head,
/// tokens along a shared x axis (labels rotated -60°, thinned when crowded, always shown for
/// the highlighted span), a highlighted span (e.g. the needle or a cited passage) shaded
/// across all rows, and an optional marker at the query position.
public struct AttentionStrip: Sendable {
    public struct Head: Sendable {
        public var label: String
        /// One weight per token (key position); NaN = masked / not captured.
        public var weights: [Double]
        public init(label: String, weights: [Double]) {
            self.label = label
            self.weights = weights
        }
    }

    public var title: String
    public var subtitle: String?
    /// Token strings as decoded (leading spaces, newlines and control bytes are made visible).
    public var tokens: [String]
    public var heads: [Head]
    /// Token index range to highlight and its legend label.
    public var highlight: Range<Int>?
    public var highlightLabel: String
    /// Query position (the token whose attention row this is), if shown.
    public var queryIndex: Int?
    public var yTitle: String
    /// Maximum width of the token area in px.
    public var maxPlotWidth: Double
    public var id: String?

    public init(
        title: String, tokens: [String], heads: [Head], highlight: Range<Int>? = nil,
        highlightLabel: String = "highlighted span", queryIndex: Int? = nil
    ) {
        self.title = title
        self.tokens = tokens
        self.heads = heads
        self.highlight = highlight
        self.highlightLabel = highlightLabel
        self.queryIndex = queryIndex
        self.yTitle = "Attention weight"
        self.maxPlotWidth = 960
    }

    /// How a token is printed on the axis: spaces as "·", newline "↵", tab "⇥", other
    /// controls as control pictures, empty as "∅"; at most 14 characters.
    public static func displayToken(_ t: String) -> String {
        var s = ""
        for u in TextSanitizer.visible(t.replacingOccurrences(of: "\r\n", with: "\n")).unicodeScalars {
            switch u {
            case " ": s += "·"
            case "\n": s += "↵"
            case "\t": s += "⇥"
            default: s.unicodeScalars.append(u)
            }
        }
        if s.isEmpty { return "∅" }
        return s.count > 14 ? String(s.prefix(13)) + "…" : s
    }

    static func monoWidth(_ s: String, size: Double = 11) -> Double {
        s.reduce(0) { acc, ch in
            let v = ch.unicodeScalars.first?.value ?? 0
            let wide =
                (0x1100...0x11FF).contains(v) || (0x2E80...0xA4CF).contains(v) || (0xAC00...0xD7A3).contains(v)
                || (0xFF00...0xFF60).contains(v) || (0x1F000...0x1FAFF).contains(v)
            return acc + (wide ? 1.0 : 0.62) * size
        }
    }

    public func svg() -> String {
        let n = max(tokens.count, heads.map(\.weights.count).max() ?? 0)
        let finite = heads.flatMap(\.weights).filter(\.isFinite)
        guard n > 0, !heads.isEmpty else {
            return ChartParts.empty(kind: "attn", id: id, title: title)
        }
        let yt = Ticks.nice(0, max(finite.max() ?? 1, 1e-6), target: 3)
        let slot = min(22, maxPlotWidth / Double(n)) // may be < 1 px for very long prompts
        let plotW = max(slot * Double(n), 360)
        let slotW = plotW / Double(n)
        let labels = (0..<n).map { $0 < tokens.count ? AttentionStrip.displayToken(tokens[$0]) : "" }
        let span: Range<Int>? = highlight.flatMap { h in
            let lo = min(max(0, h.lowerBound), n), hi = min(max(lo, h.upperBound), n)
            return lo < hi ? lo..<hi : nil
        }

        // Which token labels to print: highlighted and query first, then every k-th that does not collide.
        let minGap = 13.0
        var shown: [Int] = []
        func collides(_ i: Int) -> Bool { shown.contains { abs(Double($0 - i)) * slotW < minGap } }
        var priority: [Int] = []
        if let span { priority += Array(span) }
        if let q = queryIndex, q >= 0, q < n { priority.append(q) }
        for i in priority where !collides(i) { shown.append(i) }
        let k = max(1, Int(ceil(minGap / slotW)))
        for i in stride(from: 0, to: n, by: k) where !collides(i) { shown.append(i) }
        shown.sort()
        let maxLabelW = shown.map { AttentionStrip.monoWidth(labels[$0]) }.max() ?? 0

        let headLabels = heads.map { TextMetrics.truncate($0.label, maxWidth: 110, size: 12) }
        let headW = headLabels.map { TextMetrics.width($0, size: 12) }.max() ?? 0
        let tickW = yt.values.map { TextMetrics.width(yt.label($0), size: 11) }.max() ?? 20
        let left = 16 + 22 + headW + 10 + tickW + 8
        let width = left + plotW + 20
        let rowH = 64.0, rowGap = 22.0

        var w = SVGWriter()
        let chartID = ChartID.make(
            id, kind: "attn",
            fingerprint:
                "\(title)|\(tokens)|\(heads.map { "\($0.label)\($0.weights)" })|\(String(describing: highlight))")
        var top = ChartParts.header(&w, title: title, subtitle: subtitle, width: width) + 4
        var legend: [ChartParts.LegendItem] = []
        if let span {
            legend.append(
                .init(
                    label: "\(highlightLabel) (tokens \(span.lowerBound)–\(span.upperBound - 1))",
                    swatch: { x, y in
                        "<rect x=\"\(Num.c(x))\" y=\"\(Num.c(y))\" width=\"14\" height=\"10\" class=\"hl-span\"/><rect "
                            + "x=\"\(Num.c(x))\" y=\"\(Num.c(y))\" width=\"14\" height=\"10\" class=\"hl-span-edge\"/>"
                    }))
        }
        if let q = queryIndex, q >= 0, q < n {
            legend.append(
                .init(
                    label: "query position (token \(q))",
                    swatch: { x, y in
                        "<line x1=\"\(Num.c(x + 7))\" y1=\"\(Num.c(y - 1))\" x2=\"\(Num.c(x + 7))\" "
                            + "y2=\"\(Num.c(y + 11))\" class=\"hl-ref\"/>"
                    }))
        }
        if !legend.isEmpty { top += ChartParts.legendRow(&w, legend, x: left, y: top + 2, maxX: width - 12) + 6 }
        top += 6
        let rowsH = Double(heads.count) * rowH + Double(heads.count - 1) * rowGap
        func x(_ i: Int) -> Double { left + Double(i) * slotW }

        if let span {
            w.rect(x(span.lowerBound), top - 4, Double(span.count) * slotW, rowsH + 8, cls: "hl-span")
            w.rect(x(span.lowerBound), top - 4, Double(span.count) * slotW, rowsH + 8, cls: "hl-span-edge")
        }
        let gap = slotW >= 6 ? 1.0 : 0
        for (h, head) in heads.enumerated() {
            let rowTop = top + Double(h) * (rowH + rowGap)
            let ys = LinearScale(domain: (yt.lower, yt.upper), range: (rowTop + rowH, rowTop))
            for v in yt.values {
                w.line(left, ys(v), left + plotW, ys(v), cls: v == 0 ? "hl-axis" : "hl-grid")
                w.text(left - 6, ys(v), yt.label(v), cls: "hl-tick", anchor: "end", baseline: "central")
            }
            w.text(
                left - tickW - 14, rowTop + rowH / 2, headLabels[h], cls: "hl-axis-title", anchor: "end",
                baseline: "central", title: headLabels[h] == head.label ? nil : head.label)
            w.open("g", "class=\"hl-series\"")
            let cls = "hl-f\(h % ChartStyle.seriesCount)"
            for i in 0..<n {
                let v = i < head.weights.count ? head.weights[i] : .nan
                let tokenText = i < tokens.count ? AttentionStrip.displayToken(tokens[i]) : "?"
                if v.isFinite {
                    let y = ys.clamped(v)
                    let hgt = max(rowTop + rowH - y, v > 0 ? 0.75 : 0)
                    w.rect(
                        x(i) + gap / 2, rowTop + rowH - hgt, slotW - gap, hgt, cls: cls,
                        title: "\(head.label) → #\(i) \(tokenText): \(Num.value(v))")
                } else {
                    w.rect(
                        x(i) + gap / 2, rowTop + rowH - 3, slotW - gap, 3, cls: "hl-missing",
                        title: "\(head.label) → #\(i) \(tokenText): missing")
                }
            }
            w.close("g")
        }
        if let q = queryIndex, q >= 0, q < n {
            let qx = x(q) + slotW / 2
            w.line(qx, top - 6, qx, top + rowsH + 2, cls: "hl-ref")
        }
        w.text(16 + 8, top + rowsH / 2, yTitle, cls: "hl-axis-title", anchor: "middle", rotate: -90)

        // Token labels.
        let base = top + rowsH + 6
        let spanSet = span.map { Set($0) } ?? []
        for i in shown {
            let cx = x(i) + slotW / 2
            w.line(cx, base - 4, cx, base, cls: "hl-axis")
            let full = i < tokens.count ? tokens[i] : ""
            w.text(
                cx, base + 6, labels[i], cls: spanSet.contains(i) ? "hl-token hl-token-hl" : "hl-token", anchor: "end",
                baseline: "central", rotate: -60, title: "#\(i) \(TextSanitizer.visible(full))")
        }
        let labelsH = maxLabelW * 0.87 + 14
        var height = base + labelsH
        let hidden = n - shown.count
        let xTitle =
            "Token position (key)"
            + (hidden > 0 ? " — \(hidden) of \(n) labels hidden to avoid overlap; hover bars for all" : "")
        w.text(
            left + plotW / 2, height + 8, TextMetrics.truncate(xTitle, maxWidth: plotW, size: 12), cls: "hl-axis-title",
            anchor: "middle")
        height += 22
        let desc =
            "Attention of \(heads.count) heads over \(n) tokens"
            + (span.map { "; \(highlightLabel) at tokens \($0.lowerBound)–\($0.upperBound - 1)" } ?? "")
        return w.document(width: width, height: height, id: chartID, title: title, description: desc)
    }
}
