import Foundation
import XCTest
import TraceStore

/// `headlight retrieval-heads` and `headlight ablate` as subprocesses on a tiny grid of the
/// default model: a sweep stopped after 2 trials (hidden --stop-after) and resumed writes the
/// same results as an uninterrupted one; ablate runs its conditions on those scores; argument
/// errors exit 2. Skipped without the binary or the model (failed under CI).
final class RetrievalCLITests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let smoke = root.appendingPathComponent("probes/niah/smoke.json").path
    /// 1 needle x 2 lengths x 2 depths, 10 new tokens.
    static let grid = ["--probes", smoke, "--lengths", "300,420", "--depths", "0,100", "--max-new-tokens", "10"]

    typealias Run = HeadlightRun

    func unavailable(_ what: String) throws -> Never {
        if ProcessInfo.processInfo.environment["CI"] != nil {
            XCTFail("CI: \(what)")
            throw CocoaError(.fileNoSuchFile)
        }
        throw XCTSkip(what)
    }

    func requireModel() throws {
        guard FileManager.default.fileExists(atPath: InspectTests.modelURL.path) else {
            try unavailable("default model not found at \(InspectTests.modelURL.path)")
        }
    }

    func tempDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("rh-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: d) }
        return d
    }

    func headlight(_ args: [String]) throws -> Run { try HeadlightProcess.run(args) }

    func json(_ r: Run) throws -> [String: Any] {
        try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout + r.stderr)
    }

    /// Everything in /retrieval_heads that must not depend on interruption (timing and prefix
    /// reuse excluded), by trial index.
    func results(_ path: String) throws -> [String: [String]] {
        let f = try RunFile.open(path)
        defer { try? f.close() }
        let g = try f.group("retrieval_heads"), t = try g.group("trials")
        let idx = try t.dataset("trial_index").read(Int64.self)
        let order = idx.indices.sorted { idx[$0] < idx[$1] }
        var out: [String: [String]] = [:]
        out["scores"] = try g.dataset("scores").read(Double.self).map { "\($0.bitPattern)" }
        out["threshold_heads"] = try g.stringsAttribute("threshold_heads")
        for name in ["response", "stop", "needle_id"] {
            let v = try t.dataset(name).readStrings()
            out[name] = order.map { v[$0] }
        }
        for name in ["rouge1_recall", "depth"] {
            let v = try t.dataset(name).read(Double.self)
            out[name] = order.map { "\(v[$0])" }
        }
        let hs = try t.dataset("head_scores").read(Double.self)
        let per = hs.count / max(idx.count, 1)
        out["head_scores"] = order.map { i in
            hs[(i * per)..<((i + 1) * per)].map { "\($0.bitPattern)" }.joined(separator: ",")
        }
        return out
    }

    func testSweepResumesAfterStopAndAblateRuns() throws {
        try requireModel()
        let dir = try tempDir()
        let full = dir.appendingPathComponent("full.h5").path
        let a = try headlight(["retrieval-heads"] + Self.grid + ["-o", full, "--json", "--top", "5"])
        XCTAssertEqual(a.status, 0, a.stderr)
        let ja = try json(a)
        XCTAssertEqual(ja["finished"] as? Bool, true)
        XCTAssertEqual(ja["trials"] as? Int, 4)
        XCTAssertEqual((ja["top"] as? [[String: Any]])?.count, 5)

        let resumed = dir.appendingPathComponent("resumed.h5").path
        let b = try headlight(["retrieval-heads"] + Self.grid + ["-o", resumed, "--stop-after", "2", "--no-progress"])
        XCTAssertEqual(b.status, 0, b.stderr)
        XCTAssertTrue(b.stderr.contains("stopped after 2 trial(s)"), b.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: resumed))
        XCTAssertTrue(FileManager.default.fileExists(atPath: resumed + ".partial"))
        let c = try headlight(["retrieval-heads"] + Self.grid + ["-o", resumed, "--json", "--top", "5"])
        XCTAssertEqual(c.status, 0, c.stderr)
        let jc = try json(c)
        XCTAssertEqual(jc["resumed_trials"] as? Int, 2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: resumed + ".partial"))
        XCTAssertEqual(try results(full), try results(resumed))
        XCTAssertEqual(
            (jc["top"] as? [[String: Any]])?.map { $0["head"] as? String },
            (ja["top"] as? [[String: Any]])?.map { $0["head"] as? String })

        // Text output lists the top heads.
        let text = try headlight(
            ["retrieval-heads"] + Self.grid + [
                "-o", dir.appendingPathComponent("t.h5").path,
                "--top", "3", "--no-share-prefix"
            ])
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("top 3 heads:"), text.stdout)
        XCTAssertEqual(try results(full), try results(dir.appendingPathComponent("t.h5").path))

        // Ablation on those scores.
        let abl = dir.appendingPathComponent("ablate.h5").path
        let d = try headlight(
            [
                "ablate", "--scores", full, "--top", "4", "--controls", "2", "--seed", "7",
                "--ppl-tokens", "48", "--bootstrap", "200", "-o", abl, "--json"
            ] + Self.grid)
        XCTAssertEqual(d.status, 0, d.stderr)
        let jd = try json(d)
        let conds = try XCTUnwrap(jd["conditions"] as? [[String: Any]])
        XCTAssertEqual(conds.map { $0["name"] as? String }, ["baseline", "top_4", "control_1", "control_2"])
        let top4 = Set((conds[1]["heads"] as? [String]) ?? [])
        XCTAssertEqual(top4.count, 4)
        for ctrl in conds[2...] {
            let hs = Set((ctrl["heads"] as? [String]) ?? [])
            XCTAssertEqual(hs.count, 4)
            XCTAssertTrue(hs.isDisjoint(with: top4))
        }
        XCTAssertNotNil(jd["target_minus_controls"] as? [String: Any])
        let f = try RunFile.open(abl)
        let g = try f.group("ablation")
        XCTAssertEqual(try g.dataset("trial_scores").shape, [4, 4, 3])
        XCTAssertEqual(try g.dataset("cells").shape, [4, 3, 2, 2])
        XCTAssertEqual(try g.dataset("perplexity").shape, [4])
        try f.close()
        // Baseline decoding equals detection decoding (same greedy rule, nothing ablated).
        let base = try XCTUnwrap(conds[0]["metrics"] as? [String: Any])
        XCTAssertNotNil(base["rouge1_recall_x100"])
    }

    /// `ablate --causal N`: baseline + each top head alone; the baseline's target scores equal the
    /// detection scores (same greedy decode, same counted trials), a head ablated alone (uniform
    /// attention: the top-1 key is position 0, outside the needle) copies nothing, and the
    /// /ablation/causal group has the shapes the report reads.
    func testCausalGraphRun() throws {
        try requireModel()
        let dir = try tempDir()
        let grid = ["--probes", Self.smoke, "--lengths", "300,420", "--depths", "0,100", "--max-new-tokens", "32"]
        let det = dir.appendingPathComponent("det.h5").path
        let a = try headlight(["retrieval-heads"] + grid + ["-o", det, "--no-progress"])
        XCTAssertEqual(a.status, 0, a.stderr)
        let out = dir.appendingPathComponent("causal.h5").path
        let r = try headlight(
            [
                "ablate", "--scores", det, "--causal", "3", "--ppl-tokens", "0", "--bootstrap", "100",
                "-o", out, "--json", "--no-progress"
            ] + grid)
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try json(r)
        let conds = try XCTUnwrap(j["conditions"] as? [[String: Any]])
        XCTAssertEqual(conds.count, 4)
        XCTAssertEqual(conds[0]["name"] as? String, "baseline")
        XCTAssertEqual(Set(conds.dropFirst().map { $0["kind"] as? String }), ["single"])

        let fd = try RunFile.open(det)
        let detScores = try fd.group("retrieval_heads").dataset("scores").read(Double.self)
        let counted = try fd.group("retrieval_heads").group("trials").dataset("counted").read(Int8.self)
        try fd.close()
        XCTAssertGreaterThan(counted.filter { $0 != 0 }.count, 0, "no trial counted: the test grid needs answers")

        let f = try RunFile.open(out)
        defer { try? f.close() }
        let g = try f.group("ablation").group("causal")
        let sources = try g.dataset("sources").readStrings(), targets = try g.dataset("targets").readStrings()
        XCTAssertEqual(sources, targets)
        XCTAssertEqual(sources.count, 3)
        XCTAssertEqual(conds.dropFirst().map { ($0["heads"] as? [String])?.first }, sources)
        let base = try g.dataset("baseline_scores").read(Double.self)
        let m = try g.dataset("scores").read(Double.self)
        XCTAssertEqual(try g.dataset("scores").shape, [3, 3])
        for (t, name) in targets.enumerated() {
            let parts = name.split(separator: ".").compactMap { Int($0) }
            XCTAssertEqual(base[t], detScores[parts[0] * 9 + parts[1]], accuracy: 1e-12, "baseline of \(name)")
            XCTAssertEqual(m[t * 3 + t], 0, "\(name) ablated alone still copies")
        }
        // The best head scores above 0 without ablation, so the graph has something to show.
        XCTAssertGreaterThan(base.max() ?? 0, 0)
    }

    func testArgumentErrorsExitWithTwo() throws {
        let r = try headlight(["ablate", "--scores", "x.h5"])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("--top"), r.stderr)
        let s = try headlight(["ablate", "--scores", "x.h5", "--top", "3", "--method", "nope"])
        XCTAssertEqual(s.status, 2, s.stderr)
        let t = try headlight(["retrieval-heads", "--lengths", "10,x"])
        XCTAssertEqual(t.status, 2, t.stderr)
        let u = try headlight(["ablate", "--scores", "x.h5", "--causal", "3", "--controls", "2"])
        XCTAssertEqual(u.status, 2, u.stderr)
        XCTAssertTrue(u.stderr.contains("--controls is not used with --causal"), u.stderr)
        let v = try headlight(["ablate", "--scores", "x.h5", "--causal", "1"])
        XCTAssertEqual(v.status, 2, v.stderr)
    }

    func testMissingScoresFileExitsWithOne() throws {
        try requireModel()
        let r = try headlight(["ablate", "--scores", "/nonexistent/rh.h5", "--top", "3"] + Self.grid)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("error: "), r.stderr)
    }
}
