import Foundation

/// Histogram (density-normalised, shared bins) of one feature for two or more groups,
/// e.g. member vs non-member attention mass, with an optional Gaussian KDE curve per group.
/// Non-finite values are dropped and counted in the legend.
public struct Histogram: Sendable {
    public struct Group: Sendable {
        public var name: String
        public var values: [Double]
        public init(name: String, values: [Double]) {
            self.name = name
            self.values = values
        }
    }

    public var title: String
    public var subtitle: String?
    public var groups: [Group]
    public var xTitle: String
    public var unit: String?
    /// Number of bins; nil = Freedman–Diaconis on the pooled data, clamped to 8…60.
    public var bins: Int?
    /// Fixed x domain; default the data range widened to nice ticks. Values outside a fixed
    /// domain are not binned (the legend's n still counts them).
    public var xDomain: ClosedRange<Double>?
    /// Overlay a Gaussian kernel density estimate (Silverman bandwidth).
    public var showDensityCurve: Bool
    public var id: String?

    public init(
        title: String, groups: [Group], xTitle: String, unit: String? = nil, bins: Int? = nil,
        xDomain: ClosedRange<Double>? = nil
    ) {
        self.title = title
        self.groups = groups
        self.xTitle = xTitle
        self.unit = unit
        self.bins = bins
        self.xDomain = xDomain
        self.showDensityCurve = true
    }

    static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let p = q * Double(sorted.count - 1)
        let i = Int(p), f = p - Double(i)
        return i + 1 < sorted.count ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[i]
    }

    /// Silverman's rule-of-thumb bandwidth.
    static func bandwidth(_ sorted: [Double]) -> Double {
        let n = Double(sorted.count)
        guard n > 1 else { return 1 }
        let mean = sorted.reduce(0, +) / n
        let sd = (sorted.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)).squareRoot()
        let iqr = quantile(sorted, 0.75) - quantile(sorted, 0.25)
        var s = min(sd, iqr / 1.34)
        if !(s > 0) { s = sd > 0 ? sd : 1 }
        return 0.9 * s * pow(n, -0.2)
    }

    public func svg() -> String {
        let clean = groups.map { g in g.values.filter(\.isFinite).sorted() }
        let pooled = clean.flatMap { $0 }
        guard !groups.isEmpty, !pooled.isEmpty else {
            return ChartParts.empty(kind: "hist", id: id, title: title)
        }
        let xt: Ticks =
            xDomain.map { Ticks.within($0.lowerBound, $0.upperBound, target: 7) }
            ?? Ticks.nice(pooled.first!, pooled.last!, target: 7)
        let lo = xt.lower, hi = xt.upper
        let nb: Int = {
            if let bins { return max(1, min(bins, 400)) }
            let sortedPool = pooled.sorted()
            let iqr = Histogram.quantile(sortedPool, 0.75) - Histogram.quantile(sortedPool, 0.25)
            let h = 2 * iqr * pow(Double(sortedPool.count), -1.0 / 3)
            guard h > 0, h.isFinite else { return 20 }
            return max(8, min(60, Int(((hi - lo) / h).rounded(.up))))
        }()
        let bw = (hi - lo) / Double(nb)
        // density[g][b] = count / (n_g * bw)
        var density: [[Double]] = []
        for vals in clean {
            var counts = [Double](repeating: 0, count: nb)
            for v in vals where v >= lo && v <= hi {
                counts[min(nb - 1, max(0, Int((v - lo) / bw)))] += 1
            }
            let n = Double(max(vals.count, 1))
            density.append(counts.map { $0 / (n * bw) })
        }
        // KDE curves on a 160-point grid.
        var kde: [[Double]] = []
        let gridN = 160
        let grid = (0..<gridN).map { lo + (hi - lo) * Double($0) / Double(gridN - 1) }
        if showDensityCurve {
            for vals in clean {
                guard vals.count >= 2 else {
                    kde.append([])
                    continue
                }
                let h = Histogram.bandwidth(vals)
                let norm = 1 / (Double(vals.count) * h * (2 * Double.pi).squareRoot())
                kde.append(
                    grid.map { x in
                        var s = 0.0
                        for v in vals {
                            let z = (x - v) / h
                            if abs(z) < 6 { s += exp(-0.5 * z * z) }
                        }
                        return s * norm
                    })
            }
        }
        let yMax = max(density.joined().max() ?? 0, kde.joined().max() ?? 0)
        let yt = Ticks.nice(0, yMax > 0 ? yMax : 1, target: 5)

        let tickW = yt.values.map { TextMetrics.width(yt.label($0), size: 11) }.max() ?? 20
        let left = 16 + 22 + tickW + 10
        let plotW = 560.0, plotH = 280.0
        let width = left + plotW + 24
        var w = SVGWriter()
        let chartID = ChartID.make(id, kind: "hist", fingerprint: "\(title)|\(groups.map { "\($0.name)\($0.values)" })")
        var plotY = ChartParts.header(&w, title: title, subtitle: subtitle, width: width) + 6
        let items = groups.enumerated().map { i, g -> ChartParts.LegendItem in
            let dropped = g.values.count - clean[i].count
            var label = "\(g.name) (n = \(clean[i].count)"
            if dropped > 0 { label += ", \(dropped) non-finite dropped" }
            label += ")"
            let k = i % ChartStyle.seriesCount
            return .init(
                label: label,
                swatch: { x, y in
                    "<rect x=\"\(Num.c(x))\" y=\"\(Num.c(y))\" width=\"14\" height=\"10\" class=\"hl-area "
                        + "hl-f\(k)\"/><line x1=\"\(Num.c(x))\" y1=\"\(Num.c(y))\" x2=\"\(Num.c(x + 14))\" "
                        + "y2=\"\(Num.c(y))\" class=\"hl-line hl-k\(k)\"/>"
                })
        }
        plotY += ChartParts.legendRow(&w, items, x: left, y: plotY, maxX: width - 12) + 8
        let xs = LinearScale(domain: (lo, hi), range: (left, left + plotW))
        let ys = LinearScale(domain: (yt.lower, yt.upper), range: (plotY + plotH, plotY))
        ChartParts.yAxis(&w, ticks: yt, scale: ys, plotX: left, plotW: plotW, title: "Density", titleX: 16 + 8)
        ChartParts.xAxis(
            &w, ticks: xt, scale: xs, plotY: plotY, plotH: plotH,
            title: ChartParts.axisTitle(xTitle, unit: unit), titleY: plotY + plotH + 38)
        let base = ys(0)
        for (g, dens) in density.enumerated() {
            let k = g % ChartStyle.seriesCount
            // Step outline + translucent fill.
            var d = "M\(Num.c(xs(lo))) \(Num.c(base))"
            for (b, v) in dens.enumerated() {
                let y = ys.clamped(v)
                d += "V\(Num.c(y))H\(Num.c(xs(lo + Double(b + 1) * bw)))"
            }
            d += "V\(Num.c(base))Z"
            w.open("g", "class=\"hl-series\"")
            w.raw("<title>\(SVG.escape(groups[g].name))</title>")
            w.path(d, cls: "hl-area hl-f\(k)")
            var outline = "M\(Num.c(xs(lo))) \(Num.c(base))"
            for (b, v) in dens.enumerated() {
                outline += "V\(Num.c(ys.clamped(v)))H\(Num.c(xs(lo + Double(b + 1) * bw)))"
            }
            outline += "V\(Num.c(base))"
            w.path(outline, cls: "hl-line hl-k\(k)", title: nil)
            w.close("g")
        }
        for (g, curve) in kde.enumerated() where !curve.isEmpty {
            var d = ""
            for (i, v) in curve.enumerated() {
                d += (i == 0 ? "M" : "L") + "\(Num.c(xs(grid[i]))) \(Num.c(ys.clamped(v)))"
            }
            w.path(
                d, cls: "hl-line hl-dash hl-k\(g % ChartStyle.seriesCount)",
                title: "\(groups[g].name): kernel density estimate")
        }
        w.rect(left, plotY, plotW, plotH, cls: "hl-frame")
        let height = plotY + plotH + 50
        let desc =
            "Histogram of \(xTitle) for \(groups.count) groups, \(nb) bins of width \(Num.value(bw))"
            + (showDensityCurve ? ", dashed lines are kernel density estimates" : "")
        return w.document(width: width, height: height, id: chartID, title: title, description: desc)
    }
}
