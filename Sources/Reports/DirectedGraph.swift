import Foundation

/// Builds a Graphviz digraph (e.g. a circuit: heads and MLPs as nodes, weighted edges for
/// attribution) and renders it with the in-process Graphviz.
///
/// Safety: node keys given by the caller are never written into the DOT text; nodes get
/// generated IDs (`n0`, `n1`, …) and every caller string (label, tooltip, edge label, title,
/// rank label) goes through `DOT.quote`. Colours are typed (`RGB`), numbers are formatted
/// here, so no caller input can add a node, edge or attribute.
public struct DirectedGraph: Sendable {
    public enum Shape: String, Sendable { case box, ellipse, circle, diamond, plaintext, note, hexagon }
    public enum Direction: String, Sendable {
        case topToBottom = "TB", leftToRight = "LR", bottomToTop = "BT", rightToLeft = "RL"
    }

    public struct Node: Sendable {
        public var key: String
        public var label: String
        public var tooltip: String?
        public var fill: RGB?
        public var shape: Shape
        /// Nodes with the same rank are placed on one row (column for LR), e.g. the layer.
        public var rank: Int?
    }

    public struct Edge: Sendable {
        public var from: String
        public var to: String
        /// Weight; |weight| sets the pen width (relative to the largest |weight|).
        public var weight: Double?
        public var label: String?
        public var tooltip: String?
        public var color: RGB?
        public var dashed: Bool
    }

    public var title: String?
    public var direction: Direction
    /// Rank → caption (e.g. 3 → "Layer 3"), drawn as a column of plain-text nodes linked
    /// invisibly so the captions line up with the ranks. Empty = no captions.
    public var rankLabels: [Int: String]
    /// When an edge has no explicit colour: positive weights use `positiveColor`,
    /// negative weights `negativeColor` and a dashed line. nil = theme foreground.
    public var positiveColor: RGB?
    public var negativeColor: RGB?
    /// Pen-width range for weighted edges.
    public var penWidth: ClosedRange<Double>
    /// Node and edge labels longer than this many characters are wrapped at spaces (and
    /// hard-broken if a word is longer); at most `maxLabelLines` lines, the rest elided.
    /// Full text stays in the tooltip. nil = no wrapping.
    public var labelLineLength: Int?
    public var maxLabelLines: Int
    public var id: String?
    public private(set) var nodes: [Node] = []
    public private(set) var edges: [Edge] = []
    private var index: [String: Int] = [:]

    /// Default sign colours; edges drawn in them follow the theme (lighter in dark mode).
    public static let defaultPositive = RGB(59.0 / 255, 111.0 / 255, 212.0 / 255) // #3b6fd4
    public static let defaultNegative = RGB(209.0 / 255, 36.0 / 255, 47.0 / 255) // #d1242f

    public init(title: String? = nil, direction: Direction = .topToBottom) {
        self.title = title
        self.direction = direction
        self.rankLabels = [:]
        self.positiveColor = DirectedGraph.defaultPositive
        self.negativeColor = DirectedGraph.defaultNegative
        self.penWidth = 0.8...5
        self.labelLineLength = 28
        self.maxLabelLines = 4
    }

    /// Wraps `text` for a label (see `labelLineLength`). Existing newlines are kept.
    func wrapLabel(_ text: String) -> String {
        guard let n = labelLineLength, n > 0 else { return text }
        var lines: [String] = []
        for para in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var current = ""
            for word in para.split(separator: " ", omittingEmptySubsequences: false) {
                var w = Substring(word)
                while w.count > n { // hard-break long words
                    if !current.isEmpty {
                        lines.append(current)
                        current = ""
                    }
                    lines.append(String(w.prefix(n)))
                    w = w.dropFirst(n)
                }
                if current.isEmpty {
                    current = String(w)
                } else if current.count + 1 + w.count <= n {
                    current += " " + w
                } else {
                    lines.append(current)
                    current = String(w)
                }
            }
            lines.append(current)
        }
        if lines.count > maxLabelLines {
            lines = Array(lines.prefix(maxLabelLines))
            lines[lines.count - 1] += " …"
        }
        return lines.joined(separator: "\n")
    }

    /// Adds a node, or updates the node with the same key.
    public mutating func addNode(
        _ key: String, label: String? = nil, tooltip: String? = nil, fill: RGB? = nil,
        shape: Shape = .box, rank: Int? = nil
    ) {
        let node = Node(key: key, label: label ?? key, tooltip: tooltip, fill: fill, shape: shape, rank: rank)
        if let i = index[key] {
            nodes[i] = node
        } else {
            index[key] = nodes.count
            nodes.append(node)
        }
    }

    /// Adds an edge; unknown endpoints are created as plain nodes labelled with their key.
    public mutating func addEdge(
        from: String, to: String, weight: Double? = nil, label: String? = nil,
        tooltip: String? = nil, color: RGB? = nil, dashed: Bool = false
    ) {
        if index[from] == nil { addNode(from) }
        if index[to] == nil { addNode(to) }
        edges.append(
            Edge(from: from, to: to, weight: weight, label: label, tooltip: tooltip, color: color, dashed: dashed))
    }

    /// Graphviz ID of node `key` (`n<index>`), nil if unknown.
    public func nodeID(_ key: String) -> String? { index[key].map { "n\($0)" } }

    private var idPrefix: String {
        ChartID.make(
            id, kind: "graph",
            fingerprint:
                "\(title ?? "")|\(nodes.map { "\($0.key)\u{1}\($0.label)" })|\(edges.map { "\($0.from)>\($0.to)" })")
    }

    /// The DOT text.
    public func dot() -> String {
        let prefix = idPrefix
        var s = "digraph G {\n"
        s += "  graph [id=\(DOT.quote(prefix)), rankdir=\(direction.rawValue), bgcolor=\"transparent\", "
        s += "fontname=\"Helvetica\", fontsize=14, nodesep=0.3, ranksep=0.45, pad=0.2, forcelabels=true"
        if let title, !title.isEmpty { s += ", label=\(DOT.quote(title)), labelloc=t, labeljust=l" }
        s += "];\n"
        s +=
            "  node [fontname=\"Helvetica\", fontsize=11, style=\"rounded\", penwidth=1.2, margin=\"0.12,0.05\", "
            + "height=0.3];\n"
        s += "  edge [fontname=\"Helvetica\", fontsize=9, arrowsize=0.7];\n"
        for (i, n) in nodes.enumerated() {
            var attrs = [
                "id=\(DOT.quote("\(prefix)-n\(i)"))", "label=\(DOT.quote(wrapLabel(n.label)))",
                "tooltip=\(DOT.quote(n.tooltip ?? n.label))", "shape=\(n.shape.rawValue)"
            ]
            var classes = ["hl-node"]
            if let fill = n.fill {
                attrs.append("style=\"rounded,filled\"")
                attrs.append("fillcolor=\"\(fill.hex)\"")
                attrs.append("color=\"\(fill.mix(RGB(0, 0, 0), 0.35).hex)\"")
                attrs.append("fontcolor=\"\(fill.contrastingText.hex)\"")
                classes.append("hl-filled")
            }
            if n.shape == .plaintext { classes.append("hl-plain") }
            attrs.append("class=\"\(classes.joined(separator: " "))\"")
            s += "  n\(i) [\(attrs.joined(separator: ", "))];\n"
        }
        let maxW = edges.compactMap { $0.weight.map(abs) }.filter(\.isFinite).max() ?? 0
        for (i, e) in edges.enumerated() {
            guard let a = index[e.from], let b = index[e.to] else { continue }
            var attrs = ["id=\(DOT.quote("\(prefix)-e\(i)"))"]
            var tip = e.tooltip ?? "\(nodes[a].label) → \(nodes[b].label)"
            var color = e.color
            var dashed = e.dashed
            if let wgt = e.weight, wgt.isFinite {
                let t = maxW > 0 ? abs(wgt) / maxW : 1
                attrs.append(
                    "penwidth=\(Num.fixed(penWidth.lowerBound + (penWidth.upperBound - penWidth.lowerBound) * t, 2))")
                if e.tooltip == nil { tip += " (weight \(Num.value(wgt)))" }
                if color == nil { color = wgt < 0 ? negativeColor : positiveColor }
                if wgt < 0 && e.color == nil { dashed = true }
            }
            if let label = e.label, !label.isEmpty {
                // A labelled edge between two nodes of the same rank (a "flat" edge) makes Graphviz
                // 2.43's dot insert a label rank and free the old rank array twice (heap
                // corruption in gvFreeLayout); an external label (xlabel) takes no rank.
                let flat = nodes[a].rank != nil && nodes[a].rank == nodes[b].rank
                attrs.append("\(flat ? "xlabel" : "label")=\(DOT.quote(wrapLabel(label)))")
            }
            attrs.append("tooltip=\(DOT.quote(tip))")
            attrs.append("labeltooltip=\(DOT.quote(tip))")
            var classes = ["hl-edge"]
            if let color {
                attrs.append("color=\"\(color.hex)\"")
                attrs.append("fontcolor=\"\(color.hex)\"")
                classes.append("hl-colored")
                // The default sign colours (not caller-chosen ones) are re-themed for dark mode by CSS.
                if color == DirectedGraph.defaultPositive { classes.append("hl-pos") }
                if color == DirectedGraph.defaultNegative { classes.append("hl-neg") }
            }
            if dashed { attrs.append("style=dashed") }
            // An edge against the rank order (e.g. a later layer acting on an earlier one through
            // later tokens) must not pull ranks out of order: it is drawn but does not constrain.
            if let ra = nodes[a].rank, let rb = nodes[b].rank, ra > rb { attrs.append("constraint=false") }
            attrs.append("class=\"\(classes.joined(separator: " "))\"")
            s += "  n\(a) -> n\(b) [\(attrs.joined(separator: ", "))];\n"
        }
        // Ranks: one rank=same subgraph per rank value, plus optional caption column.
        var byRank: [Int: [Int]] = [:]
        for (i, n) in nodes.enumerated() { if let r = n.rank { byRank[r, default: []].append(i) } }
        let captions = rankLabels.filter { byRank[$0.key] != nil }
        for r in byRank.keys.sorted() {
            var members = byRank[r]!.map { "n\($0)" }
            if captions[r] != nil { members.insert("r\(r < 0 ? "m\(-r)" : "\(r)")", at: 0) }
            s += "  { rank=same; \(members.joined(separator: "; ")); }\n"
        }
        if !captions.isEmpty {
            let sorted = captions.keys.sorted()
            for r in sorted {
                let rid = "r\(r < 0 ? "m\(-r)" : "\(r)")"
                s +=
                    "  \(rid) [id=\(DOT.quote("\(prefix)-\(rid)")), label=\(DOT.quote(captions[r]!)), shape=plaintext, "
                s += "tooltip=\(DOT.quote(captions[r]!)), fontsize=10, class=\"hl-rank\"];\n"
            }
            if sorted.count > 1 {
                s +=
                    "  " + sorted.map { "r\($0 < 0 ? "m\(-$0)" : "\($0)")" }.joined(separator: " -> ")
                    + " [style=invis, weight=100];\n"
            }
        }
        s += "}\n"
        return s
    }

    /// Renders with Graphviz and returns a standalone SVG themed for light and dark mode
    /// (see `GraphvizSVG.themed`).
    public func svg() throws -> String {
        let raw = try Graphviz.renderSVG(dot: dot())
        return GraphvizSVG.themed(raw, title: title ?? "Graph")
    }
}

/// Post-processing of Graphviz SVG for reports.
public enum GraphvizSVG {
    /// CSS that re-themes Graphviz output: unfilled nodes, default edges, and text follow the
    /// page's foreground colour (light or dark); filled nodes keep their fill and the
    /// contrasting font colour chosen when the DOT was written.
    static let css: String = """
        .hl-graph{--hl-fg:#1f2328;--hl-muted:#59636e;--hl-bg:#ffffff;--hl-pos:#3b6fd4;--hl-neg:#d1242f;\
        color:var(--hl-fg);background-color:var(--hl-bg);font-family:Helvetica,Arial,sans-serif}\
        @media (prefers-color-scheme:dark){.hl-graph{--hl-fg:#e6edf3;--hl-muted:#9198a1;--hl-bg:#0d1117;\
        --hl-pos:#79a6ff;--hl-neg:#ff7b72}}\
        .hl-graph .hl-pos path{stroke:var(--hl-pos)}.hl-graph .hl-pos polygon{stroke:var(--hl-pos);fill:var(--hl-pos)}\
        .hl-graph .hl-pos text{fill:var(--hl-pos)}\
        .hl-graph .hl-neg path{stroke:var(--hl-neg)}.hl-graph .hl-neg polygon{stroke:var(--hl-neg);fill:var(--hl-neg)}\
        .hl-graph .hl-neg text{fill:var(--hl-neg)}\
        .hl-graph .graph > text{fill:var(--hl-fg);font-weight:600}\
        .hl-graph .hl-node:not(.hl-filled) text{fill:var(--hl-fg)}\
        .hl-graph .hl-node:not(.hl-filled) polygon,.hl-graph .hl-node:not(.hl-filled) path,\
        .hl-graph .hl-node:not(.hl-filled) ellipse,.hl-graph .hl-node:not(.hl-filled) polyline{stroke:var(--hl-fg)}\
        .hl-graph .hl-rank text{fill:var(--hl-muted)}\
        .hl-graph .hl-edge:not(.hl-colored) path{stroke:var(--hl-fg)}\
        .hl-graph .hl-edge:not(.hl-colored) polygon{stroke:var(--hl-fg);fill:var(--hl-fg)}\
        .hl-graph .hl-edge:not(.hl-colored) text{fill:var(--hl-fg)}
        """

    /// Strips the XML prolog, DOCTYPE and comments before the root element, adds
    /// `class="hl-graph"`, an accessible `<title>` and the theme style sheet.
    public static func themed(_ svg: String, title: String) -> String {
        guard let start = svg.range(of: "<svg") else { return svg }
        var s = String(svg[start.lowerBound...])
        s.replaceSubrange(
            s.startIndex..<s.index(s.startIndex, offsetBy: 4), with: "<svg class=\"hl-graph\" role=\"img\"")
        if let close = s.firstIndex(of: ">") {
            let insert = "<title>\(SVG.escape(title))</title><style>\(css)</style>"
            s.insert(contentsOf: insert, at: s.index(after: close))
        }
        return s
    }
}
