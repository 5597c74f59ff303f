import Foundation
import TraceStore

/// A float64 dataset of a condition sweep's summary, flattened row-major.
public struct SweepMatrix: Sendable {
    public var shape: [Int]
    public var values: [Double]

    public init(shape: [Int], values: [Double]) {
        self.shape = shape
        self.values = values
    }
}

/// The score summary fields of a sweep group's reader (`AblationRunFile.Contents`,
/// `KVPolicyRunFile.Contents`), filled by `ConditionSweepDatasets.Reader.readScores`.
protocol SweepScoreContents {
    var mean: SweepMatrix? { get set }
    var ciLower: SweepMatrix? { get set }
    var ciUpper: SweepMatrix? { get set }
    var cells: SweepMatrix? { get set }
    var lengths: [Int] { get set }
    var depths: [Double] { get set }
}

extension AblationRunFile.Contents: SweepScoreContents {}
extension KVPolicyRunFile.Contents: SweepScoreContents {}

/// What the `/ablation` and `/kv_policy` groups share, written and read in one place: the score
/// summary of a condition sweep (`trial_scores` [condition, trial, metric]; `mean`, `ci_lower`,
/// `ci_upper` [condition, metric]; `cells` [condition, metric, length, depth] with @lengths,
/// @depths) and the per-condition attributes.
enum ConditionSweepDatasets {
    /// The score datasets (replacing any there). `trials`: the suite's grid size; `trialNote`: the
    /// note attribute of `trial_scores` (none when nil).
    static func writeScores(
        into root: H5Group, records: [AblationRecord], trials T: Int, means: [[ConfidenceInterval]],
        cells: [[[Double]]], lengths: [Int], depths: [Double], trialNote: String?
    ) throws {
        let C = means.count, M = AblationMetric.allCases.count
        for n in ["trial_scores", "mean", "ci_lower", "ci_upper", "cells"] where try root.exists(n) {
            try root.remove(n)
        }
        var ts = [Double](repeating: .nan, count: C * T * M) // [C, T, M]
        for rec in records { for m in 0..<M { ts[(rec.condition * T + rec.trialIndex) * M + m] = rec.metrics[m] } }
        let d = try root.createDataset("trial_scores", data: ts, shape: [C, T, M])
        try d.setAttribute("axes", ["condition", "trial", "metric"])
        if let trialNote { try d.setAttribute("note", trialNote) }
        func put(_ name: String, _ values: [Double]) throws {
            try root.createDataset(name, data: values, shape: [C, M]).setAttribute("axes", ["condition", "metric"])
        }
        try put("mean", means.flatMap { $0.map(\.estimate) })
        try put("ci_lower", means.flatMap { $0.map(\.lower) })
        try put("ci_upper", means.flatMap { $0.map(\.upper) })
        let x = try root.createDataset(
            "cells", data: cells.flatMap { $0.flatMap { $0 } }, shape: [C, M, lengths.count, depths.count])
        try x.setAttribute("axes", ["condition", "metric", "length", "depth"])
        try x.setAttribute("lengths", lengths)
        try x.setAttribute("depths", depths)
    }

    /// Reads a sweep group's shared parts; errors name the file and the object.
    struct Reader {
        let file: H5File
        let group: H5Group
        /// @condition_names
        let names: [String]

        init(_ f: H5File, _ g: H5Group) throws {
            file = f
            group = g
            names = try g.stringsAttribute("condition_names")
        }

        private func count(_ name: String, _ n: Int) throws {
            guard n == names.count else {
                throw TraceStoreError.shapeMismatch(
                    file: file.path, object: "\(group.name) @\(name)",
                    detail: "\(n) values for \(names.count) conditions")
            }
        }

        /// A str[] attribute with one value per condition.
        func strings(_ name: String) throws -> [String] {
            let v = try group.stringsAttribute(name)
            try count(name, v.count)
            return v
        }

        /// An int64[] attribute with one value per condition.
        func ints(_ name: String) throws -> [Int] {
            let v = try group.intsAttribute(name)
            try count(name, v.count)
            return v
        }

        /// A float64 dataset of `shape`; nil when absent and not `required`.
        func matrix(_ name: String, _ shape: [Int], required: Bool = true) throws -> SweepMatrix? {
            if !required, try group.kind(of: name) == nil { return nil }
            let ds = try group.dataset(name)
            try ds.requireShape(shape)
            return SweepMatrix(shape: shape, values: shape.contains(0) ? [] : try ds.read(Double.self))
        }

        /// Fills `c` with mean, ci_lower, ci_upper [C, M] and cells [C, M, L, D] with the grid's lengths
        /// and depths.
        func readScores<Contents: SweepScoreContents>(into c: inout Contents, metrics M: Int) throws {
            let C = names.count
            let cells = try group.dataset("cells")
            c.lengths = try cells.intsAttribute("lengths")
            c.depths = try cells.doublesAttribute("depths")
            c.mean = try matrix("mean", [C, M])
            c.ciLower = try matrix("ci_lower", [C, M])
            c.ciUpper = try matrix("ci_upper", [C, M])
            c.cells = try matrix("cells", [C, M, c.lengths.count, c.depths.count])
        }
    }
}
