import Foundation
@testable import Reports

/// Deterministic synthetic data for chart tests and the sample report.
struct LCG {
    var state: UInt64
    init(_ seed: UInt64) { state = seed &* 6364136223846793005 &+ 1442695040888963407 }
    mutating func next() -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Double(state >> 11) / Double(1 << 53)
    }
    /// Standard normal (Box–Muller).
    mutating func normal() -> Double {
        let u = max(next(), 1e-12), v = next()
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
    }
}

enum SampleCharts {
    /// `text` is woven into every title, label, legend and token so tests can feed hostile input.
    static func heatmap(_ text: String = "") -> Heatmap {
        var rng = LCG(1)
        let values: [[Double]] = (0..<30).map { l in
            (0..<9).map { h in
                if l == 4 && h == 2 { return .nan }
                let base = rng.next() * 0.08
                return (l, h) == (14, 3) || (l, h) == (17, 6) || (l, h) == (20, 1) ? 0.3 + rng.next() * 0.5 : base
            }
        }
        var h = Heatmap(
            title: "Retrieval score per head \(text)", values: values,
            rowLabels: (0..<30).map { "L\($0)" }, colLabels: (0..<9).map { "H\($0)\(text.isEmpty ? "" : text)" },
            rowTitle: "Layer", colTitle: "Head", valueTitle: "Retrieval score \(text)")
        h.subtitle = "SmolLM2-135M, 40 haystacks × 8 needles (synthetic) \(text)"
        h.mark(label: "score > 0.1 \(text)") { $0 > 0.1 }
        h.tooltip = { r, c in "layer \(r) head \(c) \(text)" }
        return h
    }

    static func needle(_ text: String = "") -> NeedleGrid {
        let lengths = [1000, 2000, 4000, 8000, 16000, 32000]
        let depths = stride(from: 0.0, through: 100, by: 10).map { $0 }
        let scores: [[Double]] = depths.map { d in
            lengths.map { n in
                if n == 32000 && d == 50 { return .nan }
                let drop = n >= 16000 ? (d > 20 && d < 80 ? 60.0 : 15) : (n >= 8000 && d == 50 ? 30 : 0)
                return max(0, min(100, 100 - drop - (d * 0.07)))
            }
        }
        return NeedleGrid(
            title: "Needle in a haystack \(text)", contextLengths: lengths, depths: depths, scores: scores)
    }

    static func bars(_ text: String = "") -> GroupedBarChart {
        let groups = ["baseline", "ablate top-5 retrieval heads", "ablate 5 random heads", "mean-ablate all \(text)"]
        let series = ["NIAH accuracy", "Citation accuracy \(text)", "QA F1"]
        let v: [[Double]] = [[0.92, 0.81, 0.64], [0.31, 0.44, 0.52], [0.90, 0.79, .nan], [0.05, 0.1, 0.21]]
        let bars = v.map { row in row.map { x in GroupedBarChart.Bar(x, lower: x - 0.06, upper: min(1, x + 0.05)) } }
        var c = GroupedBarChart(
            title: "Effect of head ablation \(text)", groups: groups, series: series, bars: bars,
            xTitle: "Intervention \(text)", yTitle: "Score", unit: "fraction", yDomain: 0...1)
        c.subtitle = "Mean over 200 prompts; error bars are bootstrap 95% CIs \(text)"
        return c
    }

    static func roc(_ text: String = "") -> LineChart {
        func curve(_ k: Double) -> ([Double], [Double]) {
            let x = stride(from: 0.0, through: 1.0, by: 0.02).map { $0 }
            return (x, x.map { pow($0, 1 / k) })
        }
        let a = curve(3.2), b = curve(1.6), c = curve(1.05)
        var yWithGap = c.1
        yWithGap[20] = .nan
        return LineChart.roc(
            title: "Membership inference ROC \(text)",
            curves: [
                ("Attention to span \(text)", a.0, a.1, 0.872),
                ("Loss", b.0, b.1, 0.701),
                ("Min-k% prob", c.0, yWithGap, 0.512)
            ], subtitle: "Members: 500, non-members: 500 (synthetic)")
    }

    static func lines(_ text: String = "") -> LineChart {
        let x = (0..<30).map(Double.init)
        var s = [
            LineChart.Series(
                name: "Accuracy \(text)", x: x, y: x.map { 0.5 + 0.4 * tanh(($0 - 12) / 5) }, markers: true),
            LineChart.Series(name: "Loss", x: x, y: x.map { 1.2 * exp(-$0 / 10) }, dashed: true)
        ]
        s[1].y[7] = .nan
        return LineChart(title: "Logit lens by layer \(text)", series: s, xTitle: "Layer \(text)", yTitle: "Value")
    }

    static func attention(_ text: String = "") -> AttentionStrip {
        var tokens = [
            "<|im_start|>", "The", " secret", " word", " is", " \"", "pine", "apple", "\".", "\n", "Many", " other",
            " facts", " follow", ":", " cats", " purr", ",", " dogs", " bark", ".", "\n\n", "Q", ":", " What",
            " is", " the", " secret", " word", "?", " A", ":"
        ]
        if !text.isEmpty {
            tokens[3] = text
            tokens[12] = text
        }
        var rng = LCG(7)
        func head(_ focus: Double) -> [Double] {
            var w = tokens.indices.map { i in
                (i >= 5 && i <= 8 ? focus : 0.02) * (0.6 + rng.next()) + (i == 0 ? 0.3 : 0)
            }
            let s = w.reduce(0, +)
            w = w.map { $0 / s }
            return w
        }
        var heads = [
            AttentionStrip.Head(label: "L14H3 \(text)", weights: head(0.9)),
            AttentionStrip.Head(label: "L17H6", weights: head(0.5)),
            AttentionStrip.Head(label: "L2H0 (control)", weights: head(0.03))
        ]
        heads[2].weights[31] = .nan
        var a = AttentionStrip(
            title: "Attention from the answer position \(text)", tokens: tokens, heads: heads,
            highlight: 5..<9, highlightLabel: "needle \(text)", queryIndex: 31)
        a.subtitle = "Query: last token; weights sum to 1 per head"
        return a
    }

    static func histogram(_ text: String = "") -> Histogram {
        var rng = LCG(3)
        let members = (0..<500).map { _ in 0.55 + 0.12 * rng.normal() }
        var nonMembers = (0..<500).map { _ in 0.42 + 0.14 * rng.normal() }
        nonMembers[0] = .nan
        nonMembers[1] = .infinity
        return Histogram(
            title: "Attention mass on the cited span \(text)",
            groups: [.init(name: "members \(text)", values: members), .init(name: "non-members", values: nonMembers)],
            xTitle: "Attention mass \(text)", unit: "fraction")
    }

    static func graph(_ text: String = "") -> DirectedGraph {
        var g = DirectedGraph(title: "Retrieval circuit (synthetic) \(text)", direction: .topToBottom)
        let heat = ColorScale.viridis
        let heads = [(2, 0), (2, 5), (8, 1), (11, 4), (14, 3), (17, 6), (20, 1), (20, 7)]
        for (l, h) in heads {
            let score = Double((l * 7 + h * 3) % 10) / 10
            g.addNode(
                "L\(l)H\(h)", label: "L\(l)H\(h)\(text.isEmpty ? "" : "\n" + text)",
                tooltip: "retrieval score \(score) \(text)",
                fill: heat.color(score), rank: l)
        }
        g.addNode("tok", label: "needle tokens \(text)", shape: .note, rank: 0)
        g.addNode("out", label: "answer logit", shape: .ellipse, rank: 24)
        g.addEdge(from: "tok", to: "L2H0", weight: 0.4)
        g.addEdge(from: "tok", to: "L2H5", weight: 0.2)
        g.addEdge(from: "L2H0", to: "L8H1", weight: 0.3, label: "K-comp")
        g.addEdge(from: "L2H5", to: "L11H4", weight: -0.15)
        g.addEdge(from: "L8H1", to: "L14H3", weight: 0.6, label: "Q-comp \(text)")
        g.addEdge(from: "L11H4", to: "L17H6", weight: 0.35)
        g.addEdge(from: "L14H3", to: "out", weight: 1.0, label: "copy")
        g.addEdge(from: "L17H6", to: "out", weight: 0.7)
        g.addEdge(from: "L20H1", to: "out", weight: -0.25)
        g.addEdge(from: "L14H3", to: "L20H7", weight: 0.1)
        g.rankLabels = [0: "embed", 2: "L2", 8: "L8", 11: "L11", 14: "L14", 17: "L17", 20: "L20", 24: "logits"]
        return g
    }

    /// Every chart kind, named.
    static func all(_ text: String = "") -> [(name: String, svg: String)] {
        [
            ("heatmap", heatmap(text).svg()), ("needle", needle(text).svg()), ("bars", bars(text).svg()),
            ("roc", roc(text).svg()), ("lines", lines(text).svg()), ("attention", attention(text).svg()),
            ("histogram", histogram(text).svg())
        ]
    }
}
