import Foundation

/// A matrix heat map (e.g. layers × heads) with a sequential colour scale, a colour bar,
/// optional outlined cells (e.g. retrieval score > 0.1), cell tooltips and cell values.
/// NaN or infinite values are "missing": drawn hatched and listed in the legend.
public struct Heatmap: Sendable {
    /// A cell position.
    public struct Cell: Hashable, Sendable {
        public var row: Int, col: Int
        public init(row: Int, col: Int) {
            self.row = row
            self.col = col
        }
    }

    public var title: String
    public var subtitle: String?
    /// [rows][cols]; ragged rows are padded with missing cells.
    public var values: [[Double]]
    /// Row / column labels; missing entries default to the index.
    public var rowLabels: [String]
    public var colLabels: [String]
    /// Axis titles, e.g. "Layer" and "Head".
    public var rowTitle: String
    public var colTitle: String
    /// Colour-bar title and unit, e.g. "Retrieval score", unit nil.
    public var valueTitle: String
    public var unit: String?
    /// Colour-scale domain; nil = data min…max widened to nice ticks.
    public var domain: ClosedRange<Double>?
    public var colorScale: ColorScale
    /// Cells outlined in the mark colour, and the legend text explaining them.
    public var marked: Set<Cell>
    public var markLabel: String?
    /// Print the value inside each cell when the cells are large enough.
    public var showValues: Bool
    /// Formats cell values (cell text and tooltips).
    public var format: @Sendable (Double) -> String
    /// Extra tooltip text per cell (row, col) appended to "row, col: value".
    public var tooltip: (@Sendable (Int, Int) -> String?)?
    /// Preferred cell size; shrunk to keep the chart within `maxPlotSize`.
    public var cellSize: (width: Double, height: Double)
    public var maxPlotSize: (width: Double, height: Double)
    /// Explicit element-ID prefix; default derived from the content.
    public var id: String?

    public init(
        title: String, values: [[Double]], rowLabels: [String] = [], colLabels: [String] = [],
        rowTitle: String = "", colTitle: String = "", valueTitle: String = "Value", unit: String? = nil,
        domain: ClosedRange<Double>? = nil, colorScale: ColorScale = .viridis
    ) {
        self.title = title
        self.values = values
        self.rowLabels = rowLabels
        self.colLabels = colLabels
        self.rowTitle = rowTitle
        self.colTitle = colTitle
        self.valueTitle = valueTitle
        self.unit = unit
        self.domain = domain
        self.colorScale = colorScale
        self.marked = []
        self.markLabel = nil
        self.showValues = false
        self.format = { Num.value($0) }
        self.tooltip = nil
        self.cellSize = (28, 18)
        self.maxPlotSize = (760, 560)
        self.id = nil
    }

    /// Outlines every finite cell for which `predicate(value)` holds, e.g. `{ $0 > 0.1 }`.
    public mutating func mark(label: String, where predicate: (Double) -> Bool) {
        for (r, row) in values.enumerated() {
            for (c, v) in row.enumerated() where v.isFinite && predicate(v) {
                marked.insert(Cell(row: r, col: c))
            }
        }
        markLabel = label
    }

    public func svg() -> String {
        let nRows = values.count
        let nCols = values.map(\.count).max() ?? 0
        guard nRows > 0, nCols > 0 else {
            return ChartParts.empty(kind: "heatmap", id: id, title: title)
        }
        func value(_ r: Int, _ c: Int) -> Double { c < values[r].count ? values[r][c] : .nan }
        func rowLabel(_ r: Int) -> String { r < rowLabels.count ? rowLabels[r] : String(r) }
        func colLabel(_ c: Int) -> String { c < colLabels.count ? colLabels[c] : String(c) }

        let finite = values.joined().filter(\.isFinite)
        let hasMissing = finite.count < nRows * nCols
        let ticks: Ticks
        if let domain {
            ticks = Ticks.within(domain.lowerBound, domain.upperBound, target: 6)
        } else if let lo = finite.min(), let hi = finite.max() {
            ticks = Ticks.nice(lo, hi, target: 6)
        } else {
            ticks = Ticks.nice(0, 1, target: 6)
        }
        let cscale = LinearScale(domain: (ticks.lower, ticks.upper), range: (0, 1))

        // Geometry.
        let cellW = max(4, min(cellSize.width, (maxPlotSize.width / Double(nCols)).rounded(.down)))
        let cellH = max(4, min(cellSize.height, (maxPlotSize.height / Double(nRows)).rounded(.down)))
        let plotW = cellW * Double(nCols), plotH = cellH * Double(nRows)

        // Row labels: thin out when rows are shorter than the text.
        let rowStep = max(1, Int(ceil(13 / cellH)))
        let rowLabelTexts = (0..<nRows).map { TextMetrics.truncate(rowLabel($0), maxWidth: 140, size: 11) }
        let rowLabelW =
            rowLabelTexts.enumerated().filter { $0.offset % rowStep == 0 }
            .map { TextMetrics.width($0.element, size: 11) }.max() ?? 0
        // Column labels: horizontal if they fit the cell, else rotated -60° and thinned.
        let colTexts = (0..<nCols).map { TextMetrics.truncate(colLabel($0), maxWidth: 110, size: 11) }
        let maxColW = colTexts.map { TextMetrics.width($0, size: 11) }.max() ?? 0
        let rotateCols = maxColW > cellW - 2
        let colStep = rotateCols ? max(1, Int(ceil(13 / cellW))) : 1
        let colLabelH = rotateCols ? maxColW * 0.87 + 10 : 18

        let left = 16 + (rowTitle.isEmpty ? 0 : 20) + rowLabelW + 8
        var w = SVGWriter()
        let chartID = ChartID.make(
            id, kind: "heatmap", fingerprint: "\(title)|\(values)|\(rowLabels)|\(colLabels)|\(marked.count)")
        let hatchID = chartID + "-hatch", gradID = chartID + "-grad"

        // Right side: colour bar + legend.
        let barX0 = left + plotW + 24
        let barW = 14.0
        let tickLabelW = ticks.values.map { TextMetrics.width(ticks.label($0), size: 11) }.max() ?? 20
        var legendItems: [ChartParts.LegendItem] = []
        if !marked.isEmpty || markLabel != nil {
            legendItems.append(
                .init(
                    label: markLabel ?? "marked",
                    swatch: { x, y in
                        "<rect x=\"\(Num.c(x + 1))\" y=\"\(Num.c(y))\" width=\"12\" height=\"10\" class=\"hl-mark\"/>"
                    }))
        }
        if hasMissing {
            legendItems.append(
                .init(
                    label: "missing",
                    swatch: { x, y in
                        "<rect x=\"\(Num.c(x + 1))\" y=\"\(Num.c(y))\" width=\"12\" height=\"10\" "
                            + "fill=\"url(#\(hatchID))\"/>"
                    }))
        }
        let valueTitleText = ChartParts.axisTitle(valueTitle, unit: unit)
        let titleLines = TextMetrics.wrap(valueTitleText, maxWidth: 170, size: 12, maxLines: 2)
        let titleW = titleLines.map { TextMetrics.width($0, size: 12) }.max() ?? 0
        let rightW = max(
            barW + 8 + tickLabelW + 26, titleW + 8,
            legendItems.isEmpty ? 0 : ChartParts.legendWidth(legendItems, maxLabel: 180))
        let width = max(barX0 + rightW + 12, 360)

        let top = ChartParts.header(&w, title: title, subtitle: subtitle, width: width) + 10
        let plotX = left, plotY = top
        let height = plotY + plotH + colLabelH + (colTitle.isEmpty ? 8 : 28)

        if hasMissing { w.defineHatch(id: hatchID) }

        // Cells.
        let drawValues = showValues && cellW >= 26 && cellH >= 14
        w.open("g", "class=\"hl-cells\"")
        for r in 0..<nRows {
            for c in 0..<nCols {
                let v = value(r, c)
                let x = plotX + Double(c) * cellW, y = plotY + Double(r) * cellH
                var tip =
                    "\(rowTitle.isEmpty ? "row" : rowTitle) \(rowLabel(r)), \(colTitle.isEmpty ? "col" : colTitle) "
                    + "\(colLabel(c)): "
                tip += v.isFinite ? format(v) + (unit.map { " " + $0 } ?? "") : "missing"
                if let extra = tooltip?(r, c), !extra.isEmpty { tip += "\n" + extra }
                if v.isFinite {
                    let color = colorScale.color(cscale(v))
                    w.rect(x, y, cellW, cellH, fill: color.hex, title: tip)
                    if drawValues {
                        let txt = TextMetrics.truncate(format(v), maxWidth: cellW - 2, size: 10)
                        w.text(
                            x + cellW / 2, y + cellH / 2, txt, cls: "hl-cell-text", anchor: "middle",
                            baseline: "central", fill: color.contrastingText.hex)
                    }
                } else {
                    w.rect(x, y, cellW, cellH, fill: "url(#\(hatchID))", title: tip)
                }
            }
        }
        w.close("g")
        // Marked cells on top (inset so neighbouring outlines stay distinct).
        if !marked.isEmpty {
            w.open("g", "class=\"hl-marks\"")
            for cell in marked.sorted(by: { ($0.row, $0.col) < ($1.row, $1.col) })
            where cell.row >= 0 && cell.row < nRows && cell.col >= 0 && cell.col < nCols {
                let x = plotX + Double(cell.col) * cellW, y = plotY + Double(cell.row) * cellH
                w.rect(x + 1, y + 1, cellW - 2, cellH - 2, cls: "hl-mark")
            }
            w.close("g")
        }
        w.rect(plotX, plotY, plotW, plotH, cls: "hl-frame")

        // Row labels and title.
        for r in stride(from: 0, to: nRows, by: rowStep) {
            let y = plotY + (Double(r) + 0.5) * cellH
            w.text(
                plotX - 6, y, rowLabelTexts[r], cls: "hl-tick", anchor: "end", baseline: "central",
                title: rowLabelTexts[r] == rowLabel(r) ? nil : rowLabel(r))
        }
        if !rowTitle.isEmpty {
            w.text(16 + 8, plotY + plotH / 2, rowTitle, cls: "hl-axis-title", anchor: "middle", rotate: -90)
        }
        // Column labels and title.
        let base = plotY + plotH
        for c in stride(from: 0, to: nCols, by: colStep) {
            let x = plotX + (Double(c) + 0.5) * cellW
            let full = colLabel(c)
            if rotateCols {
                w.text(
                    x, base + 8, colTexts[c], cls: "hl-tick", anchor: "end", baseline: "central", rotate: -60,
                    title: colTexts[c] == full ? nil : full)
            } else {
                w.text(
                    x, base + 14, colTexts[c], cls: "hl-tick", anchor: "middle", title: colTexts[c] == full ? nil : full
                )
            }
        }
        if !colTitle.isEmpty {
            w.text(plotX + plotW / 2, base + colLabelH + 16, colTitle, cls: "hl-axis-title", anchor: "middle")
        }

        // Colour bar (gradient from the scale, top = high).
        let barY = plotY + 8 + 15 * Double(titleLines.count)
        let barH = max(60, min(plotH - (barY - plotY), 220))
        for (i, line) in titleLines.enumerated() {
            w.text(
                barX0, plotY + 4 + 15 * Double(i), line, cls: "hl-axis-title", baseline: "central",
                title: titleLines.joined(separator: " ") == valueTitleText ? nil : valueTitleText)
        }
        var grad = "<linearGradient id=\"\(gradID)\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">"
        for i in 0...16 {
            let t = Double(i) / 16
            grad += "<stop offset=\"\(Num.c(t))\" stop-color=\"\(colorScale.color(t).hex)\"/>"
        }
        grad += "</linearGradient>"
        w.defs += grad
        w.rect(barX0, barY, barW, barH, fill: "url(#\(gradID))")
        w.rect(barX0, barY, barW, barH, cls: "hl-frame")
        let barScale = LinearScale(domain: (ticks.lower, ticks.upper), range: (barY + barH, barY))
        for v in ticks.values {
            let y = barScale(v)
            w.line(barX0 + barW, y, barX0 + barW + 4, y, cls: "hl-axis")
            w.text(barX0 + barW + 7, y, ticks.label(v), cls: "hl-tick", baseline: "central")
        }
        if !legendItems.isEmpty {
            ChartParts.legend(&w, legendItems, x: barX0 - 8, y: barY + barH + 14, background: false, maxLabel: 180)
        }
        let finalH = max(height, barY + barH + 14 + Double(legendItems.count) * 18 + 12)
        var desc =
            "Heat map, \(nRows) rows × \(nCols) columns; \(valueTitleText) from \(ticks.label(ticks.lower)) to "
            + "\(ticks.label(ticks.upper))"
        if !marked.isEmpty { desc += "; \(marked.count) cells marked (\(markLabel ?? "marked"))" }
        if hasMissing { desc += "; \(nRows * nCols - finite.count) missing" }
        return w.document(width: width, height: finalH, id: chartID, title: title, description: desc)
    }
}

/// The classic needle-in-a-haystack plot: context length (x) × needle depth (y),
/// retrieval score 0–100 on a red → yellow → green scale, each cell labelled with its score.
public struct NeedleGrid: Sendable {
    public var title: String
    public var subtitle: String?
    /// Context lengths in tokens (columns) and needle depths in percent (rows, 0 = start).
    public var contextLengths: [Int]
    public var depths: [Double]
    /// [depth][contextLength], 0…100; NaN = not run.
    public var scores: [[Double]]
    public var id: String?

    public init(title: String, contextLengths: [Int], depths: [Double], scores: [[Double]], subtitle: String? = nil) {
        self.title = title
        self.contextLengths = contextLengths
        self.depths = depths
        self.scores = scores
        self.subtitle = subtitle
    }

    /// Mean of the finite scores (nil if none).
    public var meanScore: Double? {
        let f = scores.joined().filter(\.isFinite)
        return f.isEmpty ? nil : f.reduce(0, +) / Double(f.count)
    }

    public func heatmap() -> Heatmap {
        var h = Heatmap(
            title: title, values: scores,
            rowLabels: depths.map { Num.value($0) + "%" },
            colLabels: contextLengths.map { Num.count($0) },
            rowTitle: "Needle depth (% of context)", colTitle: "Context length (tokens)",
            valueTitle: "Score", unit: "0–100", domain: 0...100, colorScale: .needle)
        h.subtitle =
            subtitle
            ?? meanScore.map { "Mean score \(Num.fixed($0, 1)) over \(scores.joined().filter(\.isFinite).count) runs" }
        h.showValues = true
        h.format = { Num.fixed($0, 0) }
        h.cellSize = (44, 26)
        h.maxPlotSize = (800, 600)
        let lengths = contextLengths, ds = depths
        h.tooltip = { r, c in
            guard r < ds.count, c < lengths.count else { return nil }
            return "\(lengths[c]) tokens, needle at \(Num.value(ds[r]))% depth"
        }
        h.id = id
        return h
    }

    public func svg() -> String { heatmap().svg() }
}
