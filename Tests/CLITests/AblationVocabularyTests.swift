import ArgumentParser
import Foundation
import XCTest
@testable import HeadlightCLI
import Inference

/// One vocabulary for ablation in `trace` and `ablate` (--ablate-method, --ablate-phase, same
/// values and defaults; old spellings warn), and --patch-positions with its length check.
final class AblationVocabularyTests: XCTestCase {
    func choice(_ args: [String]) throws -> (AblationMethod, InterventionPhase, [String]) {
        let a = try Ablate.parse(["--scores", "x.h5", "--top", "3"] + args)
        var warnings: [String] = []
        let (m, p) = try a.ablationChoice(warn: { warnings.append($0) })
        return (m, p, warnings)
    }

    func testAblateAndTraceShareNamesValuesAndDefaults() throws {
        let (m, p, w) = try choice([])
        XCTAssertEqual(m, .uniform)
        XCTAssertEqual(p, .both)
        XCTAssertEqual(w, [])
        let t = try Trace.parse(["--prompt", "x", "--ablate", "1.1", "-o", "t.h5"])
        let r = try t.ablation.resolve(warn: { XCTFail($0) })
        XCTAssertEqual(r.method, m)
        XCTAssertEqual(r.phase, p)
        for (args, method, phase) in [
            (["--ablate-method", "zero", "--ablate-phase", "decode"], AblationMethod.zero, InterventionPhase.decode),
            (["--ablate-method", "scale=0.5"], .scale(0.5), .both)
        ] {
            let (am, ap, aw) = try choice(args)
            XCTAssertEqual(am, method)
            XCTAssertEqual(ap, phase)
            XCTAssertEqual(aw, [])
            let tr = try Trace.parse(["--prompt", "x", "--ablate", "1.1", "-o", "t.h5"] + args).ablation.resolve()
            XCTAssertEqual(tr.method, method)
            XCTAssertEqual(tr.phase, phase)
        }
    }

    func testOldSpellingsStillWorkWithAWarning() throws {
        let (m, p, w) = try choice(["--method", "zero", "--phase", "all"])
        XCTAssertEqual(m, .zero)
        XCTAssertEqual(p, .both)
        XCTAssertEqual(w.count, 3, "\(w)")
        XCTAssertTrue(w[0].contains("--method is deprecated; use --ablate-method"), w[0])
        XCTAssertTrue(w[1].contains("--phase is deprecated; use --ablate-phase"), w[1])
        XCTAssertTrue(w[2].contains("all is deprecated"), w[2])
        let (_, dp, dw) = try choice(["--phase", "decode"])
        XCTAssertEqual(dp, .decode)
        XCTAssertEqual(dw.count, 1)
    }

    func testConflictsAndPrefillAreRefused() {
        XCTAssertThrowsError(try choice(["--method", "zero", "--ablate-method", "mean"])) { e in
            XCTAssertTrue("\(e)".contains("disagree"), "\(e)")
        }
        XCTAssertThrowsError(try choice(["--ablate-phase", "prefill"])) { e in
            XCTAssertTrue("\(e)".contains("does not support --ablate-phase prefill"), "\(e)")
        }
        XCTAssertThrowsError(try Ablate.parse(["--scores", "x.h5", "--top", "3", "--ablate-method", "nope"]))
        XCTAssertThrowsError(
            try Trace.parse(["--prompt", "x", "--ablate", "1.1", "--ablate-phase", "never", "-o", "t"]))
        XCTAssertThrowsError(try Trace.parse(["--prompt", "x", "--hooks", "z", "--patch-positions", "-1", "-o", "t"]))
    }

    func testPatchPositionPairs() throws {
        XCTAssertEqual(try Trace.patchPositionPairs(nil, source: 3, target: 3).map(\.target), [0, 1, 2])
        XCTAssertThrowsError(try Trace.patchPositionPairs(nil, source: 2, target: 14)) { e in
            let m = (e as? LocalizedError)?.errorDescription ?? "\(e)"
            XCTAssertTrue(m.contains("--patch-source has 2 tokens but the prompt has 14"), m)
        }
        let last = try Trace.patchPositionPairs("-1", source: 2, target: 14)
        XCTAssertEqual(last.map(\.source), [1])
        XCTAssertEqual(last.map(\.target), [13])
        let both = try Trace.patchPositionPairs("0,-2:", source: 5, target: 9)
        XCTAssertEqual(both.map(\.source), [0, 3, 4])
        XCTAssertEqual(both.map(\.target), [0, 7, 8])
        XCTAssertThrowsError(try Trace.patchPositionPairs("4", source: 2, target: 14)) // outside the source
        XCTAssertThrowsError(try Trace.patchPositionPairs("0:5", source: 2, target: 14)) // 2 vs 5 positions
    }

    /// End to end on the default model: a short source is refused without positions, patched at the
    /// last token with --patch-positions -1, and the run file records the pairs.
    func testPatchLengthCheckOnTheModel() throws {
        guard FileManager.default.fileExists(atPath: InspectTests.modelURL.path) else {
            throw XCTSkip("default model not found")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hl-patch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("p.h5").path
        let base = [
            "trace", "--prompt", "When Mary and John went to the store, John gave a drink to", "--hooks",
            "blocks.5.hook_resid_post", "--patch", "blocks.3.hook_resid_post", "--patch-source", "Hello there", "-o",
            out
        ]
        let bad = try HeadlightProcess.run(base)
        XCTAssertEqual(bad.status, 1, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("--patch-source has"), bad.stderr)
        XCTAssertTrue(bad.stderr.contains("--patch-positions"), bad.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        let good = try HeadlightProcess.run(
            base + ["--patch-positions", "-1", "--ablate", "2.1", "--ablate-phase", "all"])
        XCTAssertEqual(good.status, 0, good.stderr)
        XCTAssertTrue(good.stderr.contains("--ablate-phase all is deprecated"), good.stderr)
        guard let h5dump = TraceTests.tool("h5dump") else { return }
        let (_, attrs) = try TraceTests.run(h5dump, ["-A", "-g", "/captures", out])
        XCTAssertTrue(attrs.contains("at positions 1->13"), attrs)
        XCTAssertTrue(attrs.contains("2.1:uniform@both"), attrs)
    }
}
