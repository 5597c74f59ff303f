import XCTest
@testable import Inference

final class BLASPolicyTests: XCTestCase {
    let avx512 = CPUFeatures.avx512 // Skylake-X class, no bf16
    let avx512bf16 = CPUFeatures.avx512bf16CPU // Cooper Lake / Zen 4-5 class
    let avx2 = CPUFeatures.avx2Only

    func testPrescottOnAVX512ReexecsSkylakeX() {
        let d = BLASPolicy.decide(corename: "Prescott", features: avx512, env: [:])
        XCTAssertEqual(d.action, .reexec(coretype: "SkylakeX"))
        XCTAssertEqual(d.origin, .auto)
        XCTAssertEqual(d.environment["OPENBLAS_CORETYPE"], "SkylakeX")
        XCTAssertEqual(d.environment["HEADLIGHT_BLAS_CHOSEN"], "SkylakeX")
        XCTAssertEqual(d.environment["HEADLIGHT_BLAS_LIBRARY_DEFAULT"], "Prescott")
        XCTAssertEqual(d.environment["HEADLIGHT_BLAS_EXECS"], "1")
    }

    func testPrescottOnBF16CPUReexecsCooperlake() {
        let d = BLASPolicy.decide(corename: "Prescott", features: avx512bf16, env: ["PATH": "/bin"])
        XCTAssertEqual(d.action, .reexec(coretype: "Cooperlake"))
    }

    func testOlderKernelsOnAVX512AreUpgraded() {
        for core in ["Core2", "Nehalem", "Sandybridge", "Haswell", "Zen", "Atom", "Katmai", "Dunnington", "Penryn"] {
            let d = BLASPolicy.decide(corename: core, features: avx512, env: [:])
            XCTAssertEqual(d.action, .reexec(coretype: "SkylakeX"), core)
        }
    }

    func testCooperlakeAlreadyChosenIsNoOp() {
        let env = [
            "OPENBLAS_CORETYPE": "Cooperlake", "HEADLIGHT_BLAS_CHOSEN": "Cooperlake",
            "HEADLIGHT_BLAS_REASON": "OpenBLAS chose Prescott at load; CPU supports Cooperlake"
        ]
        let d = BLASPolicy.decide(corename: "Cooperlake", features: avx512bf16, env: env)
        XCTAssertEqual(d.action, .keep)
        XCTAssertEqual(d.origin, .auto)
        XCTAssertTrue(d.environment.isEmpty)
        XCTAssertTrue(d.reason.contains("Prescott"), d.reason)
    }

    func testGoodLibraryDefaultIsNoOp() {
        for (core, cpu) in [
            ("Cooperlake", avx512bf16), ("SkylakeX", avx512bf16), ("SkylakeX", avx512), ("Haswell", avx2), ("Zen", avx2)
        ] {
            let d = BLASPolicy.decide(corename: core, features: cpu, env: [:])
            XCTAssertEqual(d.action, .keep, core)
            XCTAssertEqual(d.origin, .libraryDefault, core)
            XCTAssertFalse(BLASPolicy.isBelowCapability(corename: core, features: cpu), core)
        }
    }

    func testUserCoretypeIsRespected() {
        for core in ["Haswell", "Prescott"] {
            let d = BLASPolicy.decide(corename: core, features: avx512bf16, env: ["OPENBLAS_CORETYPE": core])
            XCTAssertEqual(d.action, .keep, core)
            XCTAssertEqual(d.origin, .user, core)
            XCTAssertTrue(d.reason.contains("set by user"), d.reason)
            XCTAssertTrue(d.reason.contains("below what this CPU supports"), d.reason)
            XCTAssertFalse(d.problem)
        }
        // A user value OpenBLAS does not know: still the user's, reported as such.
        let d = BLASPolicy.decide(corename: "Cooperlake", features: avx512bf16, env: ["OPENBLAS_CORETYPE": "Zen5"])
        XCTAssertEqual(d.action, .keep)
        XCTAssertEqual(d.origin, .user)
        XCTAssertTrue(d.reason.contains("did not load 'Zen5'"), d.reason)
    }

    func testHeadlightOverrideWinsOverUserAndLibrary() {
        let env = ["OPENBLAS_CORETYPE": "Haswell", "HEADLIGHT_BLAS_CORETYPE": "Prescott"]
        let d = BLASPolicy.decide(corename: "Haswell", features: avx512bf16, env: env)
        XCTAssertEqual(d.action, .reexec(coretype: "Prescott"))
        XCTAssertEqual(d.origin, .headlightOverride)
        XCTAssertEqual(d.environment["OPENBLAS_CORETYPE"], "Prescott")
        XCTAssertEqual(d.environment["HEADLIGHT_BLAS_CHOSEN"], "Prescott")
        XCTAssertNil(d.environment["HEADLIGHT_BLAS_LIBRARY_DEFAULT"] ?? nil)

        // After the re-exec: applied, no further action, even though Prescott is slow.
        let after = [
            "OPENBLAS_CORETYPE": "Prescott", "HEADLIGHT_BLAS_CHOSEN": "Prescott", "HEADLIGHT_BLAS_CORETYPE": "Prescott"
        ]
        let d2 = BLASPolicy.decide(corename: "Prescott", features: avx512bf16, env: after)
        XCTAssertEqual(d2.action, .keep)
        XCTAssertEqual(d2.origin, .headlightOverride)
        XCTAssertEqual(BLASPolicy.origin(env: after), .headlightOverride)

        // Override already satisfied by the loaded kernel: no re-exec, only bookkeeping.
        let d3 = BLASPolicy.decide(
            corename: "Cooperlake", features: avx512bf16, env: ["HEADLIGHT_BLAS_CORETYPE": "cooperlake"])
        XCTAssertEqual(d3.action, .keep)
        XCTAssertEqual(d3.origin, .headlightOverride)
        XCTAssertEqual(d3.environment["HEADLIGHT_BLAS_CHOSEN"], "cooperlake")
    }

    func testOverrideAutoIgnoresUserCoretype() {
        let env = ["OPENBLAS_CORETYPE": "Haswell", "HEADLIGHT_BLAS_CORETYPE": "auto"]
        let d = BLASPolicy.decide(corename: "Haswell", features: avx512bf16, env: env)
        XCTAssertEqual(d.action, .reexec(coretype: "Cooperlake"))
        XCTAssertEqual(d.origin, .auto)
        // User value already the best: nothing to do.
        let d2 = BLASPolicy.decide(
            corename: "SkylakeX", features: avx512bf16,
            env: ["OPENBLAS_CORETYPE": "SkylakeX", "HEADLIGHT_BLAS_CORETYPE": "AUTO"])
        XCTAssertEqual(d2.action, .keep)
    }

    func testGuardPreventsLoops() {
        // Headlight asked for SkylakeX but OpenBLAS still loaded Prescott: do not try again.
        let env = ["OPENBLAS_CORETYPE": "SkylakeX", "HEADLIGHT_BLAS_CHOSEN": "SkylakeX", "HEADLIGHT_BLAS_EXECS": "1"]
        let d = BLASPolicy.decide(corename: "Prescott", features: avx512, env: env)
        XCTAssertEqual(d.action, .keep)
        XCTAssertTrue(d.reason.contains("not retrying"), d.reason)
        // Same for an override OpenBLAS does not know.
        let o = ["OPENBLAS_CORETYPE": "Bogus", "HEADLIGHT_BLAS_CHOSEN": "Bogus", "HEADLIGHT_BLAS_CORETYPE": "Bogus"]
        XCTAssertEqual(BLASPolicy.decide(corename: "Cooperlake", features: avx512bf16, env: o).action, .keep)
        // Exec budget spent.
        let spent = ["HEADLIGHT_BLAS_EXECS": String(BLASPolicy.maxExecs)]
        XCTAssertEqual(BLASPolicy.decide(corename: "Prescott", features: avx512, env: spent).action, .keep)
        XCTAssertEqual(
            BLASPolicy.decide(corename: "SkylakeX", features: avx512, env: spent, verificationFailed: true).action,
            .keep)
    }

    func testAVX2OnlyPicksHaswell() {
        let d = BLASPolicy.decide(corename: "Prescott", features: avx2, env: [:])
        XCTAssertEqual(d.action, .reexec(coretype: "Haswell"))
        XCTAssertEqual(BLASPolicy.recommended(for: avx2), "Haswell")
        XCTAssertEqual(BLASPolicy.candidates(for: avx2), ["Haswell", "Prescott"])
        // AVX-512F without BW/VL/DQ (Knights Landing style) is not SkylakeX material.
        var knl = avx2
        knl.avx512f = true
        knl.avx512cd = true
        XCTAssertEqual(BLASPolicy.recommended(for: knl), "Haswell")
    }

    func testNoOpinionWithoutX86Features() {
        let d = BLASPolicy.decide(corename: "ARMV8", features: CPUFeatures(), env: [:])
        XCTAssertEqual(d.action, .keep)
        XCTAssertNil(BLASPolicy.recommended(for: CPUFeatures()))
        XCTAssertFalse(BLASPolicy.isBelowCapability(corename: "ARMV8", features: CPUFeatures()))
    }

    func testVerificationFailureWalksTheFallbackChain() {
        var env: [String: String] = [:]
        var core = "Cooperlake"
        var seen: [String] = []
        for _ in 0..<6 {
            let d = BLASPolicy.decide(
                corename: core, features: avx512bf16, env: env,
                verificationFailed: true, verificationDetail: "1.0e+00")
            guard case .reexec(let next) = d.action else {
                XCTAssertTrue(d.problem)
                XCTAssertTrue(d.reason.contains("no other kernel"), d.reason)
                break
            }
            seen.append(next)
            for (k, v) in d.environment { env[k] = v ?? nil }
            core = next
        }
        XCTAssertEqual(seen, ["SkylakeX", "Haswell", "Prescott"])
        XCTAssertEqual(BLASPolicy.failedKernels(env), ["Cooperlake", "SkylakeX", "Haswell"])
        XCTAssertEqual(env["HEADLIGHT_BLAS_FAILED"], "Cooperlake=1.0e+00,SkylakeX=1.0e+00,Haswell=1.0e+00")

        // Having fallen back, a passing Haswell is kept (no upgrade back to a failed kernel).
        let kept = BLASPolicy.decide(
            corename: "Haswell", features: avx512bf16,
            env: [
                "OPENBLAS_CORETYPE": "Haswell", "HEADLIGHT_BLAS_CHOSEN": "Haswell",
                "HEADLIGHT_BLAS_FAILED": "Cooperlake=1e0,SkylakeX=1e0"
            ])
        XCTAssertEqual(kept.action, .keep)
        XCTAssertEqual(kept.origin, .auto)
    }

    func testFailingUserKernelIsReportedNotReplaced() {
        let d = BLASPolicy.decide(
            corename: "Haswell", features: avx512bf16, env: ["OPENBLAS_CORETYPE": "Haswell"],
            verificationFailed: true)
        XCTAssertEqual(d.action, .keep)
        XCTAssertEqual(d.origin, .user)
        XCTAssertTrue(d.problem)
        let o = [
            "OPENBLAS_CORETYPE": "Prescott", "HEADLIGHT_BLAS_CHOSEN": "Prescott", "HEADLIGHT_BLAS_CORETYPE": "Prescott"
        ]
        let d2 = BLASPolicy.decide(corename: "Prescott", features: avx512bf16, env: o, verificationFailed: true)
        XCTAssertEqual(d2.action, .keep)
        XCTAssertTrue(d2.problem)
    }
}

final class BLASRuntimeTests: XCTestCase {
    func testVerificationPasses() {
        let result = BLASRuntime.verify()
        XCTAssertTrue(result.passed, result.summary)
        XCTAssertEqual(result.cases.count, BLASRuntime.verificationShapes.count * 3 + 2)
        XCTAssertTrue(result.cases.contains { $0.m == 67 && $0.n == 129 && $0.k == 33 && $0.transB })
        XCTAssertTrue(result.cases.contains { $0.transA && !$0.transB })
        XCTAssertLessThan(result.maxRelativeError, 1e-4)
        XCTAssertEqual(result.corename, BLASRuntime.corename)
    }

    func testToleranceMatchesDocumentedBound() {
        XCTAssertEqual(VerificationResult.tolerance(k: 33), 2 * 35 * pow(2, -24), accuracy: 1e-15)
    }

    func testMeasureSGEMM() {
        let bench = BLASRuntime.measureSGEMM(n: 192, repeats: 3)
        XCTAssertEqual(bench.samples.count, 3)
        XCTAssertGreaterThan(bench.gflops, 0)
        XCTAssertGreaterThanOrEqual(bench.best, bench.gflops)
        XCTAssertGreaterThanOrEqual(bench.threads, 1)
    }

    func testExecutableResolutionWithoutProc() {
        XCTAssertEqual(
            BLASRuntime.resolveExecutable(proc: "/nonexistent/exe", arg0: "sh", searchPath: "/nonexistent:/bin"),
            "/bin/sh")
        XCTAssertEqual(
            BLASRuntime.resolveExecutable(proc: "/nonexistent/exe", arg0: "/bin/sh", searchPath: nil), "/bin/sh")
        XCTAssertNil(
            BLASRuntime.resolveExecutable(proc: "/nonexistent/exe", arg0: "no-such-tool-xyz", searchPath: "/bin"))
        #if os(Linux)
            XCTAssertEqual(BLASRuntime.ownExecutable(), "/proc/self/exe")
        #endif
    }

    func testStatusInLibraryContext() {
        let status = BLASRuntime.status
        XCTAssertFalse(status.corename.isEmpty)
        XCTAssertTrue(status.config.hasPrefix("OpenBLAS"), status.config)
        XCTAssertFalse(status.prepared)
        XCTAssertNil(status.verification)
        XCTAssertFalse(status.reason.isEmpty)
        let env = ProcessInfo.processInfo.environment
        if env["OPENBLAS_CORETYPE"] != nil && env["HEADLIGHT_BLAS_CORETYPE"] == nil
            && env["HEADLIGHT_BLAS_CHOSEN"] == nil
        {
            XCTAssertEqual(status.origin, .user)
        }
        XCTAssertEqual(
            status.belowCapability,
            BLASPolicy.isBelowCapability(corename: status.corename, features: status.features))
        #if arch(x86_64)
            XCTAssertTrue(status.features.sse3)
        #endif
    }
}
