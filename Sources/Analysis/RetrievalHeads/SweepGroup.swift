import Foundation
import TraceStore

/// The analysis group of a resumable sweep (`/ablation`, `/kv_policy`, ...).
enum SweepGroup {
    /// Opens group `name` of `file` when it exists (a `.partial` being resumed): every attribute in
    /// `attributes` must equal what is stored, else `partialMismatch` names the first that differs.
    /// Otherwise creates it with `analysis`, `analysis_version` and `attributes`. `created` says which.
    static func openOrCreate(
        _ file: H5File, _ name: String, analysis: String, version: Int, attributes: [String: H5AttributeValue]
    ) throws -> (group: H5Group, created: Bool) {
        guard try file.exists(name) else {
            let g = try file.createGroup(name)
            try g.setAttribute("analysis", analysis)
            try g.setAttribute("analysis_version", version)
            for (k, v) in attributes { try g.setAttribute(k, v) }
            return (g, true)
        }
        let g = try file.group(name)
        for (k, want) in attributes.sorted(by: { $0.key < $1.key }) {
            let have = try g.attributeIfPresent(k)
            if have != want {
                throw RetrievalHeadsError.partialMismatch(
                    file: file.path,
                    detail: "its \(k) (\(have.map { "\($0)" } ?? "none")) differs from this run's (\(want)); "
                        + "delete it to start over, or rerun with the same options")
            }
        }
        return (g, false)
    }
}
