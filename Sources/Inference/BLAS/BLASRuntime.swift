// OpenBLAS kernel selection, verification and measurement for the running process.
//
// Debian's OpenBLAS (0.3.21, DYNAMIC_ARCH) picks its kernel once, in a load-time constructor that
// reads OPENBLAS_CORETYPE. On CPUs it does not know it may fall back to the generic "Prescott"
// kernel (~5x slower sgemm). The kernel cannot be changed after load, so `prepareProcess()` —
// first thing in main — decides (BLASPolicy.decide), and when a different kernel is needed sets
// OPENBLAS_CORETYPE and re-executes the binary with the same argv. Then it verifies the loaded
// kernel against a double-precision reference; an automatically chosen kernel that fails is
// replaced by the next candidate (e.g. Cooperlake -> SkylakeX -> Haswell -> Prescott), a kernel
// chosen by the user (OPENBLAS_CORETYPE or HEADLIGHT_BLAS_CORETYPE) is reported, not replaced.
//
// In a library context (tests, other hosts) nothing re-executes: `status` describes the kernel and
// what Headlight would do, `verify()` and `measureSGEMM` work as usual.
//
// Test knobs (for exercising the re-exec paths on machines where OpenBLAS gets it right):
//   HEADLIGHT_BLAS_TEST_DEFAULT=Prescott   pretend OpenBLAS picked this kernel on its own (applied by
//                                           one extra re-exec; the automatic path then corrects it).
//   HEADLIGHT_BLAS_TEST_FAIL=SkylakeX,...   make verify() fail for these kernels.

import CNative
import Foundation
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Result of checking the loaded sgemm kernel against a double-precision reference.
public struct VerificationResult: Sendable, Codable, Equatable {
    public struct Case: Sendable, Codable, Equatable {
        public var m, n, k: Int
        public var transA, transB: Bool
        public var alpha, beta: Float
        /// max_ij |C - R| / (|alpha| (|op(A)||op(B)|)_ij + |beta| |C0_ij|)
        public var error: Double
        public var tolerance: Double
        public var passed: Bool { error >= 0 && error <= tolerance }
        public var label: String { "\(m)x\(n)x\(k) \(transA ? "T" : "N")\(transB ? "T" : "N")" }
    }
    public var corename: String
    public var cases: [Case]
    /// Largest normalized componentwise error over all cases (see `tolerance(k:)`).
    public var maxRelativeError: Double
    /// Largest error/tolerance ratio; <= 1 passes.
    public var worstRatio: Double
    public var passed: Bool
    /// Set when the failure was simulated (HEADLIGHT_BLAS_TEST_FAIL).
    public var note: String?

    /// Accepted normalized error for an inner dimension k: 2 * (k + 2) * 2^-24.
    /// Rounding analysis bounds the error of any float32 implementation of alpha*A*B + beta*C,
    /// whatever its summation order or FMA use, by gamma_(k+2) ~ (k+2) * 2^-24 relative to
    /// |alpha||A||B| + |beta||C0| (componentwise); the factor 2 is margin. A wrong kernel
    /// (bad edge handling, wrong transpose, corrupted registers) gives errors near 1.
    public static func tolerance(k: Int) -> Double { 2 * Double(k + 2) * 0x1p-24 }

    public var summary: String {
        let err = String(format: "%.2e", maxRelativeError)
        if passed {
            return
                "passed, max rel error \(err) (\(cases.count) cases, \(String(format: "%.0f%%", worstRatio * 100)) of "
                + "tolerance)"
        }
        let bad = cases.filter { !$0.passed }.map(\.label)
        if bad.isEmpty, let note { return "FAILED, max rel error \(err) (\(note))" }
        return
            "FAILED, max rel error \(err) (\(bad.count)/\(cases.count) cases failed: "
            + "\(bad.prefix(4).joined(separator: ", "))\(note.map { "; \($0)" } ?? ""))"
    }
}

/// Median sgemm throughput of the loaded kernel.
public struct SGEMMBenchmark: Sendable, Codable, Equatable {
    public var n: Int
    public var repeats: Int
    public var threads: Int
    /// Median over `repeats` timed calls (after one warm-up call), in GFLOP/s (2 n^3 flops per call).
    public var gflops: Double
    public var best: Double
    public var samples: [Double]
}

/// What the process runs with, and why.
public struct BLASStatus: Sendable {
    /// Kernel OpenBLAS loaded (openblas_get_corename).
    public var corename: String
    /// openblas_get_config(), e.g. "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Cooperlake MAX_THREADS=64".
    public var config: String
    /// "0.3.21", parsed from `config`.
    public var version: String
    public var origin: KernelOrigin
    public var reason: String
    /// OPENBLAS_CORETYPE as the library saw it (nil: unset).
    public var requested: String?
    /// HEADLIGHT_BLAS_CORETYPE (nil: unset).
    public var override: String?
    public var features: CPUFeatures
    /// Best kernel for this CPU (nil: no opinion, e.g. not x86-64).
    public var recommended: String?
    /// The loaded kernel is a lower tier than the CPU supports.
    public var belowCapability: Bool
    /// Kernel OpenBLAS picked on its own before Headlight re-executed (nil: no re-exec happened).
    public var libraryDefault: String?
    /// Kernels that failed verification in earlier execs ("Name=error").
    public var failedKernels: [String]
    public var threads: Int
    /// prepareProcess() ran in this process.
    public var prepared: Bool
    /// In a library context: the kernel prepareProcess() would switch to.
    public var pendingReexec: String?
    /// Verification done by prepareProcess(), if any.
    public var verification: VerificationResult?
    /// The kernel is known bad (failed verification and kept).
    public var problem: Bool
    /// Other remarks (e.g. a failed execv).
    public var notes: [String]
}

public enum BLASRuntime {
    public static let testDefaultVar = "HEADLIGHT_BLAS_TEST_DEFAULT"
    static let testDefaultAppliedVar = "HEADLIGHT_BLAS_TEST_DEFAULT_APPLIED"
    public static let testFailVar = "HEADLIGHT_BLAS_TEST_FAIL"

    // MARK: - Process start

    /// Decides the OpenBLAS kernel before any real work; may re-exec the process (same argv,
    /// changed environment) and so must be the first thing `main` does. Returns when the process
    /// runs with the kernel it should; a kernel that fails verification and is kept (user's choice,
    /// or nothing left to try) is reported on stderr.
    public static func prepareProcess() {
        var env = ProcessInfo.processInfo.environment
        if let simulated = nonEmpty(env[testDefaultVar]), env[testDefaultAppliedVar] == nil {
            let error = reexec([BLASPolicy.openblasVar: simulated, testDefaultAppliedVar: simulated])
            state.withLock { $0.notes.append("\(testDefaultVar): \(error)") }
        }
        env = effectiveEnvironment(env)
        let corename = self.corename, features = CPUFeatures.current

        var decision = apply(BLASPolicy.decide(corename: corename, features: features, env: env), env: env)
        let result = verify()
        if !result.passed {
            decision = apply(
                BLASPolicy.decide(
                    corename: corename, features: features, env: env, verificationFailed: true,
                    verificationDetail: result.note == nil
                        ? String(format: "%.1e", result.maxRelativeError) : "simulated"),
                env: env)
            let message =
                "warning: OpenBLAS kernel \(corename) failed verification: \(result.summary)\n"
                + "warning: \(decision.reason); BLAS results may be wrong (see `headlight doctor`)\n"
            FileHandle.standardError.write(Data(message.utf8))
        }
        state.withLock {
            $0.decision = decision
            $0.verification = result
        }
    }

    /// Applies a decision: re-exec (returns only if that failed) or record the environment changes.
    /// Returns the decision in effect: after a failed re-exec, keeping the loaded kernel.
    @discardableResult
    private static func apply(_ decision: BLASDecision, env: [String: String]) -> BLASDecision {
        switch decision.action {
        case .reexec(let kernel):
            let error = reexec(decision.environment)
            let note = "could not re-exec with OPENBLAS_CORETYPE=\(kernel): \(error)"
            state.withLock { $0.notes.append(note) }
            return BLASDecision(
                action: .keep, origin: BLASPolicy.origin(env: env),
                reason: note + " (wanted because: \(decision.reason))", problem: decision.problem)
        case .keep:
            for (key, value) in decision.environment { setEnv(key, value) }
            return decision
        }
    }

    /// Sets `changes` and replaces the process image with itself (same argv). Returns an error
    /// description only if that failed, with the environment restored.
    static func reexec(_ changes: [String: String?]) -> String {
        var saved: [String: String?] = [:]
        for (key, value) in changes {
            saved[key] = getenv(key).map { String(cString: $0) }
            setEnv(key, value)
        }
        guard let path = ownExecutable() else {
            for (key, value) in saved { setEnv(key, value) }
            return "cannot locate the running executable"
        }
        fflush(nil)
        execv(path, CommandLine.unsafeArgv)
        let error = String(cString: strerror(errno))
        for (key, value) in saved { setEnv(key, value) }
        return "execv(\(path)): \(error)"
    }

    /// /proc/self/exe, else argv[0] (with a slash: as is; without: searched on PATH).
    static func ownExecutable() -> String? {
        resolveExecutable(
            proc: "/proc/self/exe", arg0: CommandLine.arguments.first,
            searchPath: ProcessInfo.processInfo.environment["PATH"])
    }

    static func resolveExecutable(proc: String, arg0: String?, searchPath: String?) -> String? {
        if access(proc, X_OK) == 0 { return proc }
        guard let arg0, !arg0.isEmpty else { return nil }
        if arg0.contains("/") { return access(arg0, X_OK) == 0 ? arg0 : nil }
        for dir in (searchPath ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(dir)/\(arg0)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    private static func setEnv(_ key: String, _ value: String?) {
        if let value { setenv(key, value, 1) } else { unsetenv(key) }
    }

    private static func nonEmpty(_ s: String?) -> String? {
        guard let s = s?.trimmingCharacters(in: .whitespaces), !s.isEmpty else { return nil }
        return s
    }

    /// The environment as the policy should see it: with HEADLIGHT_BLAS_TEST_DEFAULT applied,
    /// OPENBLAS_CORETYPE=<simulated> counts as OpenBLAS's own choice, not the user's.
    static func effectiveEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> [String: String]
    {
        var env = env
        if let simulated = nonEmpty(env[testDefaultVar]), env[testDefaultAppliedVar] != nil,
            env[BLASPolicy.openblasVar]?.lowercased() == simulated.lowercased(),
            env[BLASPolicy.guardVar]?.lowercased() != simulated.lowercased()
        {
            env[BLASPolicy.openblasVar] = nil
        }
        return env
    }

    // MARK: - State

    private struct State {
        var decision: BLASDecision?
        var verification: VerificationResult?
        var notes: [String] = []
    }

    private final class Locked<Value>: @unchecked Sendable {
        private let lock = NSLock()
        private var value: Value
        init(_ value: Value) { self.value = value }
        func withLock<R>(_ body: (inout Value) -> R) -> R {
            lock.lock()
            defer { lock.unlock() }
            return body(&value)
        }
    }

    private static let state = Locked(State())

    // MARK: - Status

    public static var corename: String { hl_blas_corename().map { String(cString: $0) } ?? "unknown" }
    public static var config: String { hl_blas_config().map { String(cString: $0) } ?? "unknown" }
    public static var threads: Int { Int(hl_blas_num_threads()) }

    /// The running kernel, where it came from, and what Headlight thinks of it.
    public static var status: BLASStatus {
        let env = effectiveEnvironment()
        let corename = self.corename, features = CPUFeatures.current, config = self.config
        let stored = state.withLock { $0 }
        var decision = stored.decision ?? BLASPolicy.decide(corename: corename, features: features, env: env)
        var pending: String?
        if stored.decision == nil, let next = decision.reexecCoretype {
            pending = next
            decision.origin = BLASPolicy.origin(env: env)
            decision.reason = "prepareProcess() would re-exec with \(next): \(decision.reason)"
        }
        let words = config.split(separator: " ")
        let version = words.count > 1 && words[0] == "OpenBLAS" ? String(words[1]) : "unknown"
        return BLASStatus(
            corename: corename, config: config, version: version,
            origin: decision.origin, reason: decision.reason,
            requested: nonEmpty(getenv(BLASPolicy.openblasVar).map { String(cString: $0) }),
            override: nonEmpty(env[BLASPolicy.overrideVar]),
            features: features, recommended: BLASPolicy.recommended(for: features),
            belowCapability: BLASPolicy.isBelowCapability(corename: corename, features: features),
            libraryDefault: nonEmpty(env[BLASPolicy.libraryDefaultVar]),
            failedKernels: (env[BLASPolicy.failedVar] ?? "").split(separator: ",").map(String.init),
            threads: threads, prepared: stored.decision != nil, pendingReexec: pending,
            verification: stored.verification, problem: decision.problem, notes: stored.notes)
    }

    // MARK: - Verification

    /// Shapes (m, n, k): odd and tiny sizes hit the kernels' edge code, 1-row and 1-column ones the
    /// matrix-vector paths, 67x129x33 and 97x144x112 the multithreaded split.
    public static let verificationShapes: [(Int, Int, Int)] = [
        (67, 129, 33), (97, 144, 112), (1, 515, 96), (33, 1, 67), (16, 16, 16), (5, 7, 3)
    ]

    /// Checks the loaded sgemm kernel: each shape as NN, NT and TN (how a transformer uses them:
    /// x·W, x·Wᵀ, and gradients/attention with the first operand transposed), plus alpha/beta
    /// cases, against a double-precision reference. Takes a few milliseconds.
    public static func verify() -> VerificationResult {
        var cases: [VerificationResult.Case] = []
        var seed: UInt64 = 0x4845_4144_4c49_4748 // "HEADLIGH"
        func run(_ m: Int, _ n: Int, _ k: Int, _ ta: Bool, _ tb: Bool, _ alpha: Float, _ beta: Float) {
            seed &+= 1
            let e = hl_sgemm_check(Int32(m), Int32(n), Int32(k), ta ? 1 : 0, tb ? 1 : 0, alpha, beta, seed)
            cases.append(
                .init(
                    m: m, n: n, k: k, transA: ta, transB: tb, alpha: alpha, beta: beta,
                    error: e.isNaN ? .infinity : e, tolerance: VerificationResult.tolerance(k: k)))
        }
        for (m, n, k) in verificationShapes {
            for (ta, tb) in [(false, false), (false, true), (true, false)] { run(m, n, k, ta, tb, 1, 0) }
        }
        run(67, 129, 33, false, true, 1.5, -0.5)
        run(97, 144, 112, true, false, -0.75, 2)
        let corename = self.corename
        let maxError = cases.map { $0.error < 0 ? .infinity : $0.error }.max() ?? .infinity
        let ratio = cases.map { $0.error < 0 ? .infinity : $0.error / $0.tolerance }.max() ?? .infinity
        var result = VerificationResult(
            corename: corename, cases: cases, maxRelativeError: maxError,
            worstRatio: ratio, passed: cases.allSatisfy(\.passed), note: nil)
        let simulated = (ProcessInfo.processInfo.environment[testFailVar] ?? "").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if simulated.contains(corename.lowercased()) {
            result.passed = false
            result.note = "simulated failure (\(testFailVar))"
        }
        return result
    }

    // MARK: - Measurement

    /// sgemm throughput for n×n×n (row-major, no transposes): one warm-up call, then the median of
    /// `repeats` timed calls. `threads`: nil uses every core unless OPENBLAS_NUM_THREADS /
    /// GOTO_NUM_THREADS / OMP_NUM_THREADS is set (then OpenBLAS's own setting stands).
    public static func measureSGEMM(n: Int = 1024, repeats: Int = 5, threads: Int? = nil) -> SGEMMBenchmark {
        precondition(n > 0 && repeats > 0)
        if let threads {
            hl_blas_set_num_threads(Int32(threads))
        } else {
            let env = ProcessInfo.processInfo.environment
            if ["OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"].allSatisfy({ env[$0] == nil }) {
                hl_blas_set_num_threads(Int32(ProcessInfo.processInfo.activeProcessorCount))
            }
        }
        var seconds = [Double](repeating: 0, count: repeats)
        let rc = seconds.withUnsafeMutableBufferPointer { hl_sgemm_time(Int32(n), Int32(repeats), $0.baseAddress) }
        let flops = 2 * Double(n) * Double(n) * Double(n)
        let samples = rc == 0 ? seconds.map { $0 > 0 ? flops / $0 / 1e9 : 0 } : []
        let sorted = samples.sorted()
        let median =
            sorted.isEmpty
            ? 0
            : sorted.count % 2 == 1
                ? sorted[sorted.count / 2]
                : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        return SGEMMBenchmark(
            n: n, repeats: repeats, threads: self.threads, gflops: median,
            best: sorted.last ?? 0, samples: samples)
    }
}

extension CPUFeatures {
    /// Features of the CPU this process runs on.
    public static var current: CPUFeatures {
        let f = hl_cpu_probe()
        return CPUFeatures(
            sse3: f.sse3 != 0, avx: f.avx != 0, fma: f.fma != 0, avx2: f.avx2 != 0, f16c: f.f16c != 0,
            avx512f: f.avx512f != 0, avx512dq: f.avx512dq != 0, avx512cd: f.avx512cd != 0,
            avx512bw: f.avx512bw != 0, avx512vl: f.avx512vl != 0, avx512bf16: f.avx512_bf16 != 0,
            avx512vnni: f.avx512_vnni != 0,
            vendor: f.vendor_intel != 0 ? "GenuineIntel" : f.vendor_amd != 0 ? "AuthenticAMD" : "other",
            family: Int(f.family), model: Int(f.model))
    }
}
