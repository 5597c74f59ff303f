import Foundation

/// Line chart with several series; `roc(...)` builds ROC plots (diagonal chance line,
/// AUC in the legend, square 0–1 axes). Non-finite points break a line into segments.
public struct LineChart: Sendable {
    public struct Series: Sendable {
        public var name: String
        public var x: [Double]
        public var y: [Double]
        public var dashed: Bool
        public var markers: Bool
        public init(name: String, x: [Double], y: [Double], dashed: Bool = false, markers: Bool = false) {
            self.name = name
            self.x = x
            self.y = y
            self.dashed = dashed
            self.markers = markers
        }
    }

    public enum LegendPlacement: Sendable { case top, insideBottomRight, insideTopLeft }

    public var title: String
    public var subtitle: String?
    public var series: [Series]
    public var xTitle: String
    public var yTitle: String
    public var xUnit: String?
    public var yUnit: String?
    public var xDomain: ClosedRange<Double>?
    public var yDomain: ClosedRange<Double>?
    /// Draw the y = x reference line (chance level of a ROC curve).
    public var diagonal: Bool
    public var diagonalLabel: String?
    public var legend: LegendPlacement
    /// Plot-area size in px.
    public var plotSize: (width: Double, height: Double)
    public var id: String?

    public init(
        title: String, series: [Series], xTitle: String = "", yTitle: String = "",
        xUnit: String? = nil, yUnit: String? = nil,
        xDomain: ClosedRange<Double>? = nil, yDomain: ClosedRange<Double>? = nil
    ) {
        self.title = title
        self.series = series
        self.xTitle = xTitle
        self.yTitle = yTitle
        self.xUnit = xUnit
        self.yUnit = yUnit
        self.xDomain = xDomain
        self.yDomain = yDomain
        self.diagonal = false
        self.diagonalLabel = nil
        self.legend = .top
        self.plotSize = (560, 320)
    }

    /// A ROC plot. Each curve's legend entry reads "name (AUC 0.873)" when `auc` is given.
    public static func roc(
        title: String, curves: [(name: String, fpr: [Double], tpr: [Double], auc: Double?)],
        subtitle: String? = nil
    ) -> LineChart {
        let series = curves.map { c in
            Series(name: c.auc.map { "\(c.name) (AUC \(Num.fixed($0, 3)))" } ?? c.name, x: c.fpr, y: c.tpr)
        }
        var chart = LineChart(
            title: title, series: series, xTitle: "False positive rate", yTitle: "True positive rate",
            xDomain: 0...1, yDomain: 0...1)
        chart.subtitle = subtitle
        chart.diagonal = true
        chart.diagonalLabel = "chance (AUC 0.5)"
        chart.legend = .insideBottomRight
        chart.plotSize = (360, 360)
        return chart
    }

    public func svg() -> String {
        let pts = series.flatMap { s in zip(s.x, s.y).filter { $0.0.isFinite && $0.1.isFinite } }
        guard !pts.isEmpty || (xDomain != nil && yDomain != nil && diagonal) else {
            return ChartParts.empty(kind: "line", id: id, title: title)
        }
        let xt: Ticks =
            xDomain.map { Ticks.within($0.lowerBound, $0.upperBound, target: 6) }
            ?? Ticks.nice(pts.map(\.0).min()!, pts.map(\.0).max()!, target: 7)
        let yt: Ticks =
            yDomain.map { Ticks.within($0.lowerBound, $0.upperBound, target: 6) }
            ?? Ticks.nice(pts.map(\.1).min()!, pts.map(\.1).max()!, target: 6)

        var items: [ChartParts.LegendItem] = series.enumerated().map {
            ChartParts.LegendItem(
                label: $0.element.name, swatch: ChartParts.lineSwatch(series: $0.offset, dashed: $0.element.dashed))
        }
        if diagonal, let diagonalLabel {
            items.append(
                .init(
                    label: diagonalLabel,
                    swatch: { x, y in
                        "<line x1=\"\(Num.c(x))\" y1=\"\(Num.c(y + 5))\" x2=\"\(Num.c(x + 14))\" "
                            + "y2=\"\(Num.c(y + 5))\" class=\"hl-ref\"/>"
                    }))
        }
        let tickW = yt.values.map { TextMetrics.width(yt.label($0), size: 11) }.max() ?? 20
        let left = 16 + (yTitle.isEmpty ? 0 : 22) + tickW + 10
        let plotW = plotSize.width, plotH = plotSize.height
        let width = max(left + plotW + 24, 300)

        var w = SVGWriter()
        let chartID = ChartID.make(
            id, kind: "line", fingerprint: "\(title)|\(series.map { "\($0.name)\($0.x)\($0.y)" })")
        let clipID = chartID + "-clip"
        var plotY = ChartParts.header(&w, title: title, subtitle: subtitle, width: width) + 6
        if legend == .top {
            plotY += ChartParts.legendRow(&w, items, x: left, y: plotY, maxX: width - 12) + 8
        } else {
            plotY += 6
        }
        let xs = LinearScale(domain: (xt.lower, xt.upper), range: (left, left + plotW))
        let ys = LinearScale(domain: (yt.lower, yt.upper), range: (plotY + plotH, plotY))
        ChartParts.yAxis(
            &w, ticks: yt, scale: ys, plotX: left, plotW: plotW,
            title: ChartParts.axisTitle(yTitle, unit: yUnit), titleX: 16 + 8)
        ChartParts.xAxis(
            &w, ticks: xt, scale: xs, plotY: plotY, plotH: plotH,
            title: ChartParts.axisTitle(xTitle, unit: xUnit), titleY: plotY + plotH + 38, grid: true)
        w.defs +=
            "<clipPath id=\"\(clipID)\"><rect x=\"\(Num.c(left))\" y=\"\(Num.c(plotY - 2))\" "
            + "width=\"\(Num.c(plotW + 2))\" height=\"\(Num.c(plotH + 4))\"/></clipPath>"
        w.open("g", "clip-path=\"url(#\(clipID))\"")
        if diagonal {
            let lo = max(xt.lower, yt.lower), hi = min(xt.upper, yt.upper)
            if hi > lo { w.line(xs(lo), ys(lo), xs(hi), ys(hi), cls: "hl-ref") }
        }
        for (i, s) in series.enumerated() {
            var d = ""
            var penDown = false
            let n = min(s.x.count, s.y.count)
            var markerPts: [(Double, Double)] = []
            for k in 0..<n {
                let x = s.x[k], y = s.y[k]
                guard x.isFinite, y.isFinite else {
                    penDown = false
                    continue
                }
                d += (penDown ? "L" : "M") + "\(Num.c(xs(x))) \(Num.c(ys(y)))"
                penDown = true
                if s.markers { markerPts.append((xs(x), ys(y))) }
            }
            let k = i % ChartStyle.seriesCount
            w.open("g", "class=\"hl-series\"")
            w.raw("<title>\(SVG.escape(s.name))</title>")
            if !d.isEmpty { w.path(d, cls: "hl-line hl-k\(k)\(s.dashed ? " hl-dash" : "")") }
            for (mx, my) in markerPts {
                w.raw("<circle cx=\"\(Num.c(mx))\" cy=\"\(Num.c(my))\" r=\"3\" class=\"hl-f\(k)\"/>")
            }
            w.close("g")
        }
        w.close("g")
        w.rect(left, plotY, plotW, plotH, cls: "hl-frame")
        switch legend {
        case .top: break
        case .insideBottomRight:
            let lw = ChartParts.legendWidth(items, maxLabel: plotW - 40)
            let lh = Double(items.count) * 18 + 8
            ChartParts.legend(
                &w, items, x: left + plotW - lw - 8, y: plotY + plotH - lh - 8, background: true, maxLabel: plotW - 40)
        case .insideTopLeft:
            ChartParts.legend(&w, items, x: left + 8, y: plotY + 8, background: true, maxLabel: plotW - 40)
        }
        let height = plotY + plotH + (xTitle.isEmpty ? 30 : 50)
        let desc = "Line chart with \(series.count) series" + (diagonal ? " and a diagonal reference line" : "")
        return w.document(width: width, height: height, id: chartID, title: title, description: desc)
    }
}
