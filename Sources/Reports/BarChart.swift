import Foundation

/// Grouped bar chart with optional 95% confidence-interval error bars.
/// Groups go along x (e.g. conditions), series are the bars inside a group (e.g. models).
public struct GroupedBarChart: Sendable {
    public struct Bar: Sendable {
        public var value: Double
        /// CI bounds (absolute values, not offsets); nil = no error bar.
        public var lower: Double?
        public var upper: Double?
        public var note: String?
        public init(_ value: Double, lower: Double? = nil, upper: Double? = nil, note: String? = nil) {
            self.value = value
            self.lower = lower
            self.upper = upper
            self.note = note
        }
    }

    public var title: String
    public var subtitle: String?
    public var groups: [String]
    public var series: [String]
    /// [group][series]; missing entries or NaN values are drawn as "n/a".
    public var bars: [[Bar]]
    public var xTitle: String
    public var yTitle: String
    public var unit: String?
    /// Fixed y domain; default 0 … max(value, upper), including negatives when present.
    public var yDomain: ClosedRange<Double>?
    /// Label for the error bars in the legend (set nil to hide).
    public var intervalLabel: String?
    public var id: String?

    public init(
        title: String, groups: [String], series: [String], bars: [[Bar]],
        xTitle: String = "", yTitle: String = "", unit: String? = nil, yDomain: ClosedRange<Double>? = nil
    ) {
        self.title = title
        self.groups = groups
        self.series = series
        self.bars = bars
        self.xTitle = xTitle
        self.yTitle = yTitle
        self.unit = unit
        self.yDomain = yDomain
        self.intervalLabel = "95% CI"
    }

    public func svg() -> String {
        let nG = max(groups.count, bars.count)
        let nS = max(series.count, bars.map(\.count).max() ?? 0)
        func bar(_ g: Int, _ s: Int) -> Bar? { g < bars.count && s < bars[g].count ? bars[g][s] : nil }
        func groupName(_ g: Int) -> String { g < groups.count ? groups[g] : "Group \(g + 1)" }
        func seriesName(_ s: Int) -> String { s < series.count ? series[s] : "Series \(s + 1)" }
        var all: [Double] = []
        var anyCI = false
        for g in 0..<nG {
            for s in 0..<nS {
                guard let b = bar(g, s), b.value.isFinite else { continue }
                all.append(b.value)
                for e in [b.lower, b.upper].compactMap({ $0 }) where e.isFinite {
                    all.append(e)
                    anyCI = true
                }
            }
        }
        guard nG > 0, nS > 0, !all.isEmpty else {
            return ChartParts.empty(kind: "bars", id: id, title: title)
        }
        let ticks: Ticks =
            yDomain.map { Ticks.within($0.lowerBound, $0.upperBound, target: 6) }
            ?? Ticks.nice(min(0, all.min()!), max(0, all.max()!), target: 6)

        let groupLabels = (0..<nG).map { TextMetrics.truncate(groupName($0), maxWidth: 160, size: 11) }
        let slot = max(14, min(34, 520 / Double(nG * nS)))
        let groupW = slot * Double(nS) + 18
        let plotW = max(260, groupW * Double(nG))
        let maxGroupLabel = groupLabels.map { TextMetrics.width($0, size: 11) }.max() ?? 0
        // Group labels: one line if they fit, else wrapped onto up to 3 lines, else (narrow groups) rotated.
        let span = plotW / Double(nG)
        let rotate = maxGroupLabel > span - 6 && span < 56
        let wrapped = (0..<nG).map { TextMetrics.wrap(groupName($0), maxWidth: span - 6, size: 11, maxLines: 3) }
        let maxLines = wrapped.map(\.count).max() ?? 1
        let xLabelH = rotate ? maxGroupLabel * 0.71 + 12 : Double(maxLines) * 13 + 10
        let tickW = ticks.values.map { TextMetrics.width(ticks.label($0), size: 11) }.max() ?? 20
        let left = 16 + (yTitle.isEmpty ? 0 : 22) + tickW + 10
        let width = left + plotW + 20

        var w = SVGWriter()
        let chartID = ChartID.make(id, kind: "bars", fingerprint: "\(title)|\(groups)|\(series)|\(all)")
        let hatchID = chartID + "-hatch"
        var y0 = ChartParts.header(&w, title: title, subtitle: subtitle, width: width)
        var legend = (0..<nS).map {
            ChartParts.LegendItem(label: seriesName($0), swatch: ChartParts.fillSwatch(series: $0))
        }
        if anyCI, let intervalLabel {
            legend.append(
                .init(
                    label: intervalLabel,
                    swatch: { x, y in
                        "<path d=\"M\(Num.c(x + 7)) \(Num.c(y - 1))V\(Num.c(y + 11))M\(Num.c(x + 3)) "
                            + "\(Num.c(y - 1))H\(Num.c(x + 11))M\(Num.c(x + 3)) \(Num.c(y + 11))H\(Num.c(x + 11))\" "
                            + "class=\"hl-err\"/>"
                    }))
        }
        y0 += ChartParts.legendRow(&w, legend, x: left, y: y0 + 2, maxX: width - 12) + 8
        let plotY = y0, plotH = 300.0
        let yScale = LinearScale(domain: (ticks.lower, ticks.upper), range: (plotY + plotH, plotY))
        ChartParts.yAxis(
            &w, ticks: ticks, scale: yScale, plotX: left, plotW: plotW,
            title: ChartParts.axisTitle(yTitle, unit: unit), titleX: 16 + 8)
        let zeroY = yScale.clamped(min(max(0, ticks.lower), ticks.upper))
        var needHatch = false
        let groupSpan = plotW / Double(nG)
        for g in 0..<nG {
            let gx = left + Double(g) * groupSpan + (groupSpan - slot * Double(nS)) / 2
            w.open("g", "class=\"hl-group\"")
            for s in 0..<nS {
                let x = gx + Double(s) * slot + 1.5, bw = slot - 3
                let b = bar(g, s)
                guard let b, b.value.isFinite else {
                    needHatch = true
                    w.rect(
                        x, zeroY - 6, bw, 6, fill: "url(#\(hatchID))",
                        title: "\(groupName(g)) · \(seriesName(s)): missing")
                    w.text(x + bw / 2, zeroY - 10, "n/a", cls: "hl-tick hl-small", anchor: "middle")
                    continue
                }
                let yv = yScale.clamped(b.value)
                var tip = "\(groupName(g)) · \(seriesName(s)): \(Num.value(b.value))\(unit.map { " " + $0 } ?? "")"
                if let lo = b.lower, let hi = b.upper, lo.isFinite, hi.isFinite {
                    tip += " [\(intervalLabel ?? "CI") \(Num.value(lo)) – \(Num.value(hi))]"
                }
                if let note = b.note, !note.isEmpty { tip += "\n" + note }
                w.rect(x, min(yv, zeroY), bw, abs(zeroY - yv), cls: "hl-f\(s % ChartStyle.seriesCount)", title: tip)
                let lo = b.lower.flatMap { $0.isFinite ? $0 : nil }, hi = b.upper.flatMap { $0.isFinite ? $0 : nil }
                if lo != nil || hi != nil {
                    let ylo = yScale.clamped(lo ?? b.value), yhi = yScale.clamped(hi ?? b.value)
                    let cx = x + bw / 2, cap = min(5, bw / 3)
                    var d = "M\(Num.c(cx)) \(Num.c(ylo))V\(Num.c(yhi))"
                    if hi != nil { d += "M\(Num.c(cx - cap)) \(Num.c(yhi))H\(Num.c(cx + cap))" }
                    if lo != nil { d += "M\(Num.c(cx - cap)) \(Num.c(ylo))H\(Num.c(cx + cap))" }
                    w.path(d, cls: "hl-err")
                }
            }
            w.close("g")
            let lx = left + (Double(g) + 0.5) * groupSpan
            if rotate {
                w.text(
                    lx, plotY + plotH + 10, groupLabels[g], cls: "hl-tick", anchor: "end", baseline: "central",
                    rotate: -45, title: groupLabels[g] == groupName(g) ? nil : groupName(g))
            } else {
                let full = groupName(g)
                w.textLines(
                    lx, plotY + plotH + 16, wrapped[g], cls: "hl-tick", lineHeight: 13,
                    title: wrapped[g].joined(separator: " ") == full ? nil : full)
            }
        }
        if needHatch { w.defineHatch(id: hatchID) }
        w.line(left, zeroY, left + plotW, zeroY, cls: "hl-axis")
        var height = plotY + plotH + xLabelH + 10
        if !xTitle.isEmpty {
            w.text(left + plotW / 2, height + 6, xTitle, cls: "hl-axis-title", anchor: "middle")
            height += 20
        }
        let desc =
            "Grouped bar chart: \(nG) groups × \(nS) series"
            + (anyCI ? " with \(intervalLabel ?? "interval") error bars" : "")
        return w.document(width: width, height: height, id: chartID, title: title, description: desc)
    }
}
