import Foundation
import TraceStore

/// What reports use from a `/membership` group (layout: MembershipRunFile).
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

    public static func read(_ f: H5File) -> MembershipRunData? {
        guard let g = RR.group(f, "membership") else { return nil }
        var methods: [Method] = []
        let order = RR.stringList(g, "method_names") ?? []
        if let mg = RR.group(g, "methods") {
            var names = order.filter { RR.exists(mg, $0) }
            for c in RR.children(mg) where !names.contains(c) { names.append(c) }
            for n in names {
                guard let m = RR.group(mg, n) else { continue }
                methods.append(Method(name: n, label: RR.string(m, "label") ?? n, kind: RR.string(m, "kind") ?? "",
                                      auc: RR.double(m, "auc") ?? .nan, lower: RR.double(m, "ci_lower") ?? .nan,
                                      upper: RR.double(m, "ci_upper") ?? .nan, level: RR.double(m, "ci_level") ?? 0.95,
                                      fpr: RR.doubles(m, "fpr") ?? [], tpr: RR.doubles(m, "tpr") ?? []))
            }
        }
        var labels: [Int] = [], names: [String] = []
        var features: [(String, [Double])] = []
        if let d = RR.group(g, "documents") {
            labels = RR.ints(d, "label") ?? []
            names = RR.strings(d, "name") ?? []
            for k in ["perplexity", "mean_nll", "zlib_ratio", "min_k_prob"] {
                if let v = RR.doubles(d, k), v.count == labels.count { features.append((k, v)) }
            }
        }
        if methods.isEmpty && labels.isEmpty { return nil }
        return MembershipRunData(methods: methods, labels: labels, names: names, features: features,
                                 caveat: RR.string(g, "caveat"), setName: RR.string(g, "set_name"),
                                 warnings: RR.stringList(g, "warnings") ?? [],
                                 members: RR.int(g, "members") ?? labels.filter { $0 == 1 }.count,
                                 nonmembers: RR.int(g, "nonmembers") ?? labels.filter { $0 == 0 }.count)
    }
}

enum MembershipFigures {
    static let featureTitles: [String: (String, String?)] = [
        "perplexity": ("Perplexity", nil), "mean_nll": ("Mean negative log-likelihood", "nats/token"),
        "zlib_ratio": ("Log-likelihood / zlib entropy", nil), "min_k_prob": ("Min-k% log-probability", "nats"),
    ]

    static func blocks(_ d: MembershipRunData, source: String) -> [ReportDocument.Block] {
        var out: [ReportDocument.Block] = []
        out.append(.paragraph("Membership inference on \(d.setName.map { "'\($0)'" } ?? "a document set") (\(source)): "
            + "\(d.members) member and \(d.nonmembers) non-member documents. Each method gives every document a score "
            + "(higher = more likely seen in training); the ROC curve and its AUC say how well the score separates the two groups. "
            + "AUC 0.5 is chance, 1.0 perfect."))
        if let c = d.caveat, !c.isEmpty { out.append(.note(c)) }
        for w in d.warnings.prefix(5) { out.append(.note(w)) }

        let withCurves = d.methods.filter { !$0.fpr.isEmpty && $0.fpr.count == $0.tpr.count }
        if !withCurves.isEmpty {
            // Several ROC plots of at most 4 curves each keep the legend readable.
            let chunks = stride(from: 0, to: withCurves.count, by: 4).map { Array(withCurves[$0..<min($0 + 4, withCurves.count)]) }
            for (i, chunk) in chunks.enumerated() {
                var chart = LineChart.roc(title: chunks.count == 1 ? "ROC curves" : "ROC curves (\(i + 1) of \(chunks.count))",
                                          curves: chunk.map { m in
                                              (name: "\(m.label) [\(Num.fixed(m.lower, 2))–\(Num.fixed(m.upper, 2))]",
                                               fpr: m.fpr, tpr: m.tpr, auc: m.auc.isFinite ? m.auc : nil)
                                          },
                                          subtitle: "\(d.members) members vs \(d.nonmembers) non-members; legend: AUC and \(Int((chunk[0].level * 100).rounded()))% bootstrap CI")
                chart.id = "membership-roc-\(i + 1)"
                out.append(.figure(.init(name: "membership-roc-\(i + 1)", svg: chart.svg(), caption:
                    "ROC curves: for every threshold on a method's score, the fraction of members flagged (true positive rate) "
                    + "against the fraction of non-members wrongly flagged (false positive rate). A curve hugging the top-left "
                    + "corner separates well; the dashed diagonal is guessing. Brackets: the AUC's bootstrap confidence interval.")))
            }
        }
        if !d.methods.isEmpty {
            var bars = GroupedBarChart(title: "AUC per method", groups: d.methods.map(\.label), series: ["AUC"],
                                       bars: d.methods.map { [GroupedBarChart.Bar($0.auc, lower: $0.lower.isFinite ? $0.lower : nil,
                                                                                  upper: $0.upper.isFinite ? $0.upper : nil, note: $0.kind)] },
                                       xTitle: "Method", yTitle: "ROC AUC", yDomain: 0...1)
            bars.subtitle = "Error bars: bootstrap confidence interval; 0.5 = chance"
            bars.id = "membership-auc"
            out.append(.figure(.init(name: "membership-auc", svg: bars.svg(), caption:
                "Area under the ROC curve of each method, with its confidence interval. Intervals that include 0.5 mean the "
                + "method cannot be told apart from guessing on this set.")))
            out.append(.table(.init(headers: ["method", "kind", "AUC", "CI lower", "CI upper"],
                                    rows: d.methods.map { [$0.label, $0.kind, Num.fixed($0.auc, 3), Num.fixed($0.lower, 3), Num.fixed($0.upper, 3)] },
                                    caption: "AUC per method", alignNumbers: true)))
        }
        for (name, values) in d.features {
            let members = zip(values, d.labels).filter { $0.1 == 1 }.map(\.0)
            let non = zip(values, d.labels).filter { $0.1 == 0 }.map(\.0)
            guard !(members.isEmpty && non.isEmpty) else { continue }
            let (title, unit) = featureTitles[name] ?? (name, nil)
            var h = Histogram(title: "\(title): members vs non-members",
                              groups: [.init(name: "members", values: members), .init(name: "non-members", values: non)],
                              xTitle: title, unit: unit)
            h.id = "membership-feature-\(name)"
            out.append(.figure(.init(name: "membership-feature-\(name)", svg: h.svg(), caption:
                "Distribution of the documents' \(title.lowercased()) for members and non-members (density, with a smoothed curve). "
                + "Overlapping distributions mean this feature alone says little about membership.")))
        }
        return out
    }
}
