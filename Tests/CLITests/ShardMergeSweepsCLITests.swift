import Foundation
import TraceStore
import XCTest

/// Sharded `ablate` (random-head controls and `--causal`) and `cite` (issue 14): the default
/// suite on a small grid run as one process and as 3 shards merged gives the same run file —
/// every dataset and attribute of the analysis group bit for bit, including the bootstrap CIs,
/// cell means, paired differences, causal graph and citation readouts that merge recomputes —
/// except timing and prefix-reuse counts. A missing shard is refused by name.
final class ShardMergeSweepsCLITests: XCTestCase {
    private var dir: URL!

    /// The default suite's three needles at one length and two depths (6 trials).
    static let grid = [
        "--probes", RetrievalCLITests.root.appendingPathComponent("probes/niah/default.json").path,
        "--lengths", "300", "--depths", "0,100", "--max-new-tokens", "12", "--no-progress"
    ]

    override func setUpWithError() throws {
        guard FileManager.default.fileExists(atPath: InspectTests.modelURL.path) else {
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("CI: default model not found") }
            throw XCTSkip("default model not found at \(InspectTests.modelURL.path)")
        }
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("hl-shard-sweeps-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    private func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    private func run(_ args: [String]) throws {
        let r = try HeadlightProcess.run(args)
        XCTAssertEqual(r.status, 0, "\(args.joined(separator: " ")): \(r.stderr)")
    }

    /// Runs `args` whole into `name`.h5 and as 3 shards merged into `name`-merged.h5 (shards
    /// given out of order); returns both paths.
    private func singleAndMerged(_ name: String, _ args: [String]) throws -> (String, String) {
        let full = path("\(name).h5"), merged = path("\(name)-merged.h5")
        try run(args + ["-o", full])
        let shards = (0..<3).map { path("\(name)-s\($0).h5") }
        for k in 0..<3 { try run(args + ["--shard", "\(k)/3", "-o", shards[k]]) }
        try run(["merge", shards[1], shards[2], shards[0], "-o", merged])
        let missing = try HeadlightProcess.run(["merge", shards[0], shards[2], "-o", path("x.h5")])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("missing shard(s) 1 of 3"), missing.stderr)
        return (full, merged)
    }

    /// Record columns that depend on timing or on which trials ran before (prefix reuse).
    static let volatileColumns: Set = ["seconds", "prefilled_tokens"]

    /// Asserts that group `name` of the two files holds the same attributes (but `seconds`) and
    /// datasets, recursively, bit for bit; root attributes as in `ShardMergeCLITests`.
    static func assertSameGroup(_ single: String, _ merged: String, _ name: String) throws {
        let a = try RunFile.open(single), b = try RunFile.open(merged)
        defer {
            try? a.close()
            try? b.close()
        }
        let vol = ShardMergeCLITests.volatileRoot
        XCTAssertEqual(
            try a.attributes().filter { !vol.contains($0.key) },
            try b.attributes().filter { !vol.contains($0.key) && !$0.key.hasPrefix("merged_") }, "root attributes")
        func compare(_ ga: H5Group, _ gb: H5Group) throws {
            // As text: NaN summary values (no wrong citations) are equal here, unlike with ==.
            func text(_ g: H5Group) throws -> [String: String] {
                try g.attributes().filter { $0.key != "seconds" }.mapValues { "\($0)" }
            }
            XCTAssertEqual(try text(ga), try text(gb), "\(ga.name) attributes")
            XCTAssertEqual(try ga.children().sorted(), try gb.children().sorted(), ga.name)
            for c in try ga.children() where !volatileColumns.contains(c) {
                if try ga.kind(of: c) == .group {
                    try compare(try ga.group(c), try gb.group(c))
                    continue
                }
                let x = try ga.dataset(c), y = try gb.dataset(c)
                let label = "\(ga.name)/\(c)"
                XCTAssertEqual(try x.shape, try y.shape, label)
                XCTAssertEqual(try x.attributes(), try y.attributes(), label)
                if try x.shape.contains(0) { continue }
                switch x.elementType {
                case .string: XCTAssertEqual(try x.readStrings(), try y.readStrings(), label)
                case .float64:
                    XCTAssertEqual(
                        try x.read(Double.self).map(\.bitPattern), try y.read(Double.self).map(\.bitPattern), label)
                case .float32:
                    XCTAssertEqual(
                        try x.read(Float.self).map(\.bitPattern), try y.read(Float.self).map(\.bitPattern), label)
                case .int8: XCTAssertEqual(try x.read(Int8.self), try y.read(Int8.self), label)
                default: XCTAssertEqual(try x.read(Int64.self), try y.read(Int64.self), label)
                }
            }
        }
        try compare(try a.group(name), try b.group(name))
    }

    func testAblateWithControlsAndCausalAndCiteMergeIntoTheSingleRun() throws {
        let scores = path("rh.h5")
        try run(["retrieval-heads"] + Self.grid + ["-o", scores])
        let ablate = ["ablate"] + Self.grid + ["--scores", scores, "--ppl-tokens", "64", "--bootstrap", "200"]

        let (full, merged) = try singleAndMerged("controls", ablate + ["--top", "2", "--controls", "2"])
        try Self.assertSameGroup(full, merged, "ablation")
        let f = try RunFile.open(merged)
        XCTAssertEqual(try f.group("ablation").dataset("difference_target_vs_controls").shape, [3, 4])
        XCTAssertEqual(try f.stringsAttribute("merged_shards"), ["0/3", "1/3", "2/3"])
        try f.close()

        let (cf, cm) = try singleAndMerged("causal", ablate + ["--causal", "2", "--ablate-phase", "both"])
        try Self.assertSameGroup(cf, cm, "ablation")

        let cite = [
            "cite", "--probes", RetrievalCLITests.root.appendingPathComponent("probes/citation/default.jsonl").path,
            "--limit", "6", "--resamples", "200", "--max-new-tokens", "16", "--no-progress", "--retrieval-heads",
            scores,
            "--top", "4"
        ]
        let (tf, tm) = try singleAndMerged("cite", cite)
        try Self.assertSameGroup(tf, tm, "citation")
    }
}
