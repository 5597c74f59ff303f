import Foundation

/// Attention patterns (query × key) as small-multiple heat maps sharing one colour scale
/// (viridis, 0 to `domainMax`): one panel per head, optional token labels on both axes, one colour
/// bar. Used for a layer's heads with token labels and for the layers × heads overview grid.
///
/// Cells below 1/256 of the scale are not drawn: the plot area is filled with the scale's zero
/// colour instead, which keeps causal (mostly empty) patterns small. NaN cells ("not stored", e.g.
/// keys outside a top-k capture) are left blank on a hatched background and named in the legend.
public struct AttentionPatternChart: Sendable {
    public struct Panel: Sendable {
        public var label: String
        /// [row][col]; NaN: not stored.
        public var values: [[Double]]
        /// Tooltip of the whole panel (e.g. its layer and head).
        public var tooltip: String?

        public init(label: String, values: [[Double]], tooltip: String? = nil) {
            self.label = label
            self.values = values
            self.tooltip = tooltip
        }
    }

    public var title: String
    public var subtitle: String?
    /// Labels of the rows (queries) and columns (keys), shared by every panel.
    public var rowLabels: [String]
    public var colLabels: [String]
    public var panels: [Panel]
    /// Panels per row of the layout.
    public var columns: Int
    /// Side of one cell in px.
    public var cellSize: Double
    /// Draw the row and column labels next to every panel.
    public var showLabels: Bool
    /// A `<title>` tooltip on every drawn cell (query, key, value).
    public var cellTooltips: Bool
    /// Legend text for NaN cells; nil: the chart has none.
    public var missingLabel: String?
    public var domainMax: Double
    public var valueTitle: String
    public var id: String?

    public init(
        title: String, rowLabels: [String], colLabels: [String], panels: [Panel], columns: Int = 3,
        cellSize: Double = 10
    ) {
        self.title = title
        self.rowLabels = rowLabels
        self.colLabels = colLabels
        self.panels = panels
        self.columns = columns
        self.cellSize = cellSize
        self.showLabels = true
        self.cellTooltips = false
        self.missingLabel = nil
        self.domainMax = 1
        self.valueTitle = "Attention"
        self.id = nil
    }

    /// Cells drawn by `svg()` (finite and at least 1/256 of the scale): the size driver of the SVG.
    public var drawnCells: Int {
        panels.map { p in p.values.joined().filter { $0.isFinite && $0 >= domainMax / 256 }.count }.reduce(0, +)
    }

    public func svg() -> String {
        let nRows = rowLabels.count, nCols = colLabels.count
        guard !panels.isEmpty, nRows > 0, nCols > 0 else {
            return ChartParts.empty(kind: "attention", id: id, title: title)
        }
        let cell = max(1, cellSize)
        let labelSize = min(11, max(7, cell - 1))
        let rowStep = max(1, Int(ceil((labelSize + 2) / cell)))
        let rowTexts = rowLabels.map { TextMetrics.truncate($0, maxWidth: 90, size: labelSize) }
        let colTexts = colLabels.map { TextMetrics.truncate($0, maxWidth: 90, size: labelSize) }
        let rowLabelW =
            showLabels
            ? (stride(from: 0, to: nRows, by: rowStep).map { TextMetrics.width(rowTexts[$0], size: labelSize) }.max()
                ?? 0) + 6 : 0
        let colLabelH =
            showLabels
            ? (stride(from: 0, to: nCols, by: rowStep).map { TextMetrics.width(colTexts[$0], size: labelSize) }.max()
                ?? 0) * 0.87 + 10 : 0
        let plotW = cell * Double(nCols), plotH = cell * Double(nRows)
        let panelTitleH = 16.0
        let panelW = rowLabelW + plotW, panelH = panelTitleH + plotH + colLabelH
        let gap = showLabels ? 18.0 : 6.0
        let cols = max(1, min(columns, panels.count))
        let gridRows = (panels.count + cols - 1) / cols
        let left = 16.0
        let barW = 12.0
        let width = max(left + Double(cols) * panelW + Double(cols - 1) * gap + 24 + barW + 60, 360)

        var w = SVGWriter()
        let chartID = ChartID.make(
            id, kind: "attention",
            fingerprint: "\(title)|\(rowLabels)|\(colLabels)|\(panels.map(\.label))|"
                + "\(panels.map { $0.values.joined().filter(\.isFinite).reduce(0, +) })")
        let hatchID = chartID + "-hatch", gradID = chartID + "-grad"
        let top = ChartParts.header(&w, title: title, subtitle: subtitle, width: width) + 6
        let hasMissing = missingLabel != nil && panels.contains { $0.values.joined().contains { $0.isNaN } }
        if hasMissing { w.defineHatch(id: hatchID) }
        let zero = ColorScale.viridis.color(0).hex
        let threshold = domainMax / 256

        for (pi, p) in panels.enumerated() {
            let x0 = left + Double(pi % cols) * (panelW + gap)
            let y0 = top + Double(pi / cols) * (panelH + gap)
            let px = x0 + rowLabelW, py = y0 + panelTitleH
            w.open("g", "class=\"hl-attn-panel\"")
            w.text(
                px, y0 + 11, TextMetrics.truncate(p.label, maxWidth: max(plotW, 40), size: 11), cls: "hl-tick",
                title: p.tooltip)
            let sparse = p.values.joined().contains { $0.isNaN }
            w.rect(px, py, plotW, plotH, fill: sparse && hasMissing ? "url(#\(hatchID))" : zero)
            for r in 0..<nRows {
                let row = r < p.values.count ? p.values[r] : []
                for c in 0..<nCols {
                    let v = c < row.count ? row[c] : .nan
                    guard v.isFinite, v >= threshold || sparse else { continue }
                    let color = ColorScale.viridis.color(min(max(v / domainMax, 0), 1)).hex
                    let tip =
                        cellTooltips
                        ? "\(p.label): query \(rowLabels[r]) → key \(colLabels[c]): \(Num.value(v))" : nil
                    w.rect(px + Double(c) * cell, py + Double(r) * cell, cell, cell, fill: color, title: tip)
                }
            }
            w.rect(px, py, plotW, plotH, cls: "hl-frame")
            if showLabels {
                for r in stride(from: 0, to: nRows, by: rowStep) {
                    w.text(
                        px - 4, py + (Double(r) + 0.5) * cell, rowTexts[r], cls: "hl-tick", anchor: "end",
                        baseline: "central", title: rowTexts[r] == rowLabels[r] ? nil : rowLabels[r])
                }
                for c in stride(from: 0, to: nCols, by: rowStep) {
                    let x = px + (Double(c) + 0.5) * cell
                    w.text(
                        x, py + plotH + 6, colTexts[c], cls: "hl-tick", anchor: "end", baseline: "central",
                        rotate: -60, title: colTexts[c] == colLabels[c] ? nil : colLabels[c])
                }
            }
            w.close("g")
        }
        if showLabels {
            w.text(left, top + Double(gridRows) * (panelH + gap) + 4, "rows: query, columns: key", cls: "hl-subtitle")
        }

        // Colour bar.
        let barX = left + Double(cols) * panelW + Double(cols - 1) * gap + 24
        let barY = top + panelTitleH + 16
        let barH = max(80, min(Double(gridRows) * (panelH + gap) - 40, 200))
        w.text(barX, top + panelTitleH + 2, valueTitle, cls: "hl-axis-title", baseline: "central")
        var grad = "<linearGradient id=\"\(gradID)\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">"
        for i in 0...16 {
            let t = Double(i) / 16
            grad += "<stop offset=\"\(Num.c(t))\" stop-color=\"\(ColorScale.viridis.color(t).hex)\"/>"
        }
        w.defs += grad + "</linearGradient>"
        w.rect(barX, barY, barW, barH, fill: "url(#\(gradID))")
        w.rect(barX, barY, barW, barH, cls: "hl-frame")
        for t in [0, 0.25, 0.5, 0.75, 1.0] {
            let y = barY + barH * (1 - t)
            w.line(barX + barW, y, barX + barW + 4, y, cls: "hl-axis")
            w.text(barX + barW + 7, y, Num.value(t * domainMax), cls: "hl-tick", baseline: "central")
        }
        var legendY = barY + barH + 18
        if hasMissing, let m = missingLabel {
            w.rect(barX, legendY - 5, 12, 10, fill: "url(#\(hatchID))")
            for (i, line) in TextMetrics.wrap(m, maxWidth: 150, size: 11, maxLines: 4).enumerated() {
                w.text(barX + 16, legendY + Double(i) * 13, line, cls: "hl-tick", baseline: "central")
            }
            legendY += 56
        }
        let height = max(
            top + Double(gridRows) * (panelH + gap) + (showLabels ? 14 : 4), legendY + 4)
        let finalW = max(width, barX + barW + 60 + (hasMissing ? 110 : 0))
        let desc =
            "Attention patterns of \(panels.count) head\(panels.count == 1 ? "" : "s"), \(nRows) query rows × "
            + "\(nCols) key columns each; \(valueTitle) from 0 to \(Num.value(domainMax))"
        return w.document(width: finalW, height: height, id: chartID, title: title, description: desc)
    }
}
