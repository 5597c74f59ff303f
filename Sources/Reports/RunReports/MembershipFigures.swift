import Analysis
import Foundation
import TraceStore

/// What reports use from a `/membership` group (written and read by `MembershipRunFile`).
public struct MembershipRunData: Sendable {
    public struct Method: Sendable {
        public var name: String
        public var label: String
        public var kind: String
        public var auc: Double
        public var lower: Double
        public var upper: Double
        public var level: Double
        public var fpr: [Double]
        public var tpr: [Double]
    }

    public var methods: [Method]
    /// Per document: 1 member, 0 non-member, -1 unlabeled.
    public var labels: [Int]
    public var names: [String]
    /// Per-document features (name -> values), e.g. perplexity, zlib_ratio, min_k_prob.
    public var features: [(name: String, values: [Double])]
    public var caveat: String?
    public var setName: String?
    public var warnings: [String]
    public var members: Int
    public var nonmembers: Int

}

extension MembershipRunData {
    /// The report's view of a `/membership` group (read by `MembershipRunFile.read`); nil when it
    /// holds neither methods nor documents.
    public init?(_ c: MembershipRunFile.Contents) {
        if c.methods.isEmpty && c.labels.isEmpty { return nil }
        let methods = c.methods.map {
            Method(
                name: $0.name, label: $0.label, kind: $0.kind, auc: $0.auc, lower: $0.ciLower, upper: $0.ciUpper,
                level: $0.ciLevel, fpr: $0.fpr, tpr: $0.tpr)
        }
        let features = ["perplexity", "mean_nll", "zlib_ratio", "min_k_prob"]
            .map { (name: $0, values: c.documents.doubles($0)) }
        self.init(
            methods: methods, labels: c.labels, names: c.names, features: features, caveat: c.caveat,
            setName: c.setName, warnings: c.warnings, members: c.members, nonmembers: c.nonmembers)
    }
}

enum MembershipFigures {
    static let featureTitles: [String: (String, String?)] = [
        "perplexity": ("Perplexity", nil), "mean_nll": ("Mean negative log-likelihood", "nats/token"),
        "zlib_ratio": ("Log-likelihood / zlib entropy", nil), "min_k_prob": ("Min-k% log-probability", "nats")
    ]

    static func blocks(_ d: MembershipRunData, source: String) -> [ReportDocument.Block] {
        var out: [ReportDocument.Block] = []
        out.append(
            .paragraph(
                "Membership inference on \(d.setName.map { "'\($0)'" } ?? "a document set") (\(source)): \(d.members) "
                    + "member and \(d.nonmembers) non-member documents. Each method gives every document a score "
                    + "(higher = more likely seen in training); the ROC curve and its AUC say how well the score "
                    + "separates the two groups. AUC 0.5 is chance, 1.0 perfect."))
        if let c = d.caveat, !c.isEmpty { out.append(.note(c)) }
        for w in d.warnings.prefix(5) { out.append(.note(w)) }

        let withCurves = d.methods.filter { !$0.fpr.isEmpty && $0.fpr.count == $0.tpr.count }
        if !withCurves.isEmpty {
            // Several ROC plots of at most 4 curves each keep the legend readable.
            let chunks = stride(from: 0, to: withCurves.count, by: 4).map {
                Array(withCurves[$0..<min($0 + 4, withCurves.count)])
            }
            for (i, chunk) in chunks.enumerated() {
                var chart = LineChart.roc(
                    title: chunks.count == 1 ? "ROC curves" : "ROC curves (\(i + 1) of \(chunks.count))",
                    curves: chunk.map { m in
                        (
                            name: "\(m.label) [\(Num.fixed(m.lower, 2))–\(Num.fixed(m.upper, 2))]",
                            fpr: m.fpr, tpr: m.tpr, auc: m.auc.isFinite ? m.auc : nil
                        )
                    },
                    subtitle:
                        "\(d.members) members vs \(d.nonmembers) non-members; legend: AUC and "
                        + "\(Int((chunk[0].level * 100).rounded()))% bootstrap CI"
                )
                chart.id = "membership-roc-\(i + 1)"
                out.append(
                    .figure(
                        .init(
                            name: "membership-roc-\(i + 1)", svg: chart.svg(),
                            caption:
                                "ROC curves: for every threshold on a method's score, the fraction of members flagged "
                                + "(true positive rate) against the fraction of non-members wrongly flagged (false "
                                + "positive rate). A curve hugging the top-left corner separates well; the dashed "
                                + "diagonal is guessing. Brackets: the AUC's bootstrap confidence interval."
                        )))
            }
        }
        if !d.methods.isEmpty {
            var bars = GroupedBarChart(
                title: "AUC per method", groups: d.methods.map(\.label), series: ["AUC"],
                bars: d.methods.map {
                    [
                        GroupedBarChart.Bar(
                            $0.auc, lower: $0.lower.isFinite ? $0.lower : nil,
                            upper: $0.upper.isFinite ? $0.upper : nil, note: $0.kind)
                    ]
                },
                xTitle: "Method", yTitle: "ROC AUC", yDomain: 0...1)
            bars.subtitle = "Error bars: bootstrap confidence interval; 0.5 = chance"
            bars.id = "membership-auc"
            out.append(
                .figure(
                    .init(
                        name: "membership-auc", svg: bars.svg(),
                        caption:
                            "Area under the ROC curve of each method, with its confidence interval. Intervals that "
                            + "include 0.5 mean the method cannot be told apart from guessing on this set.")))
            out.append(
                .table(
                    .init(
                        headers: ["method", "kind", "AUC", "CI lower", "CI upper"],
                        rows: d.methods.map {
                            [$0.label, $0.kind, Num.fixed($0.auc, 3), Num.fixed($0.lower, 3), Num.fixed($0.upper, 3)]
                        },
                        caption: "AUC per method", alignNumbers: true)))
        }
        for (name, values) in d.features {
            let members = zip(values, d.labels).filter { $0.1 == 1 }.map(\.0)
            let non = zip(values, d.labels).filter { $0.1 == 0 }.map(\.0)
            guard !(members.isEmpty && non.isEmpty) else { continue }
            let (title, unit) = featureTitles[name] ?? (name, nil)
            var h = Histogram(
                title: "\(title): members vs non-members",
                groups: [.init(name: "members", values: members), .init(name: "non-members", values: non)],
                xTitle: title, unit: unit)
            h.id = "membership-feature-\(name)"
            out.append(
                .figure(
                    .init(
                        name: "membership-feature-\(name)", svg: h.svg(),
                        caption:
                            "Distribution of the documents' \(title.lowercased()) for members and non-members "
                            + "(density, with a smoothed curve). Overlapping distributions mean this feature alone "
                            + "says little about membership.")))
        }
        return out
    }
}
