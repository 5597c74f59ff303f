// Which OpenBLAS kernel Headlight should run with, as a pure function of the kernel
// OpenBLAS picked at load (its "corename"), the CPU's features and the environment.
// BLASRuntime.prepareProcess() applies the decision (setenv + execv); tests call it directly.
//
// Environment protocol (all names are exported to the re-executed process):
//   HEADLIGHT_BLAS_CORETYPE   Headlight's own override: a kernel name, or "auto" to let Headlight
//                             decide even when OPENBLAS_CORETYPE is set.
//   OPENBLAS_CORETYPE         read by OpenBLAS at load; a value Headlight did not set is the user's.
//   HEADLIGHT_BLAS_CHOSEN     guard: the value Headlight put in OPENBLAS_CORETYPE. Equal values mean
//                             "Headlight's choice, already applied": never re-exec for it again.
//   HEADLIGHT_BLAS_FAILED     kernels that failed verification in an earlier exec ("Name=err,...").
//   HEADLIGHT_BLAS_REASON     why Headlight chose the kernel (for reports).
//   HEADLIGHT_BLAS_LIBRARY_DEFAULT  the kernel OpenBLAS picked on its own, before the first re-exec.
//   HEADLIGHT_BLAS_EXECS      number of re-execs so far (hard cap: BLASPolicy.maxExecs).

import Foundation

/// CPU features that matter for choosing a BLAS kernel (cpuid, with OS support checked via xgetbv).
public struct CPUFeatures: Sendable, Equatable {
    public var sse3, avx, fma, avx2, f16c: Bool
    public var avx512f, avx512dq, avx512cd, avx512bw, avx512vl, avx512bf16, avx512vnni: Bool
    public var vendor: String
    public var family, model: Int

    public init(
        sse3: Bool = false, avx: Bool = false, fma: Bool = false, avx2: Bool = false, f16c: Bool = false,
        avx512f: Bool = false, avx512dq: Bool = false, avx512cd: Bool = false, avx512bw: Bool = false,
        avx512vl: Bool = false, avx512bf16: Bool = false, avx512vnni: Bool = false,
        vendor: String = "", family: Int = 0, model: Int = 0
    ) {
        self.sse3 = sse3
        self.avx = avx
        self.fma = fma
        self.avx2 = avx2
        self.f16c = f16c
        self.avx512f = avx512f
        self.avx512dq = avx512dq
        self.avx512cd = avx512cd
        self.avx512bw = avx512bw
        self.avx512vl = avx512vl
        self.avx512bf16 = avx512bf16
        self.avx512vnni = avx512vnni
        self.vendor = vendor
        self.family = family
        self.model = model
    }

    /// An AVX2+FMA CPU (Haswell class).
    public static let avx2Only = CPUFeatures(sse3: true, avx: true, fma: true, avx2: true, f16c: true)
    /// An AVX-512 F/DQ/CD/BW/VL CPU without bf16 (Skylake-X class).
    public static let avx512 = CPUFeatures(
        sse3: true, avx: true, fma: true, avx2: true, f16c: true,
        avx512f: true, avx512dq: true, avx512cd: true, avx512bw: true,
        avx512vl: true, avx512vnni: true)
    /// AVX-512 with bf16 (Cooper Lake, Zen 4/5 class).
    public static let avx512bf16CPU: CPUFeatures = {
        var f = CPUFeatures.avx512
        f.avx512bf16 = true
        return f
    }()

    /// AVX-512 subsets OpenBLAS's SkylakeX kernels need.
    public var hasSkylakeXSet: Bool { avx512f && avx512bw && avx512vl && avx512dq }

    /// Names of the features that are present, in a fixed order.
    public var names: [String] {
        let all: [(String, Bool)] = [
            ("sse3", sse3), ("avx", avx), ("fma", fma), ("avx2", avx2), ("f16c", f16c),
            ("avx512f", avx512f), ("avx512dq", avx512dq), ("avx512cd", avx512cd), ("avx512bw", avx512bw),
            ("avx512vl", avx512vl), ("avx512_bf16", avx512bf16), ("avx512_vnni", avx512vnni)
        ]
        return all.filter { $0.1 }.map { $0.0 }
    }
}

/// Where the running kernel came from.
public enum KernelOrigin: String, Sendable, Codable {
    /// Headlight chose it (automatic decision, applied by re-exec).
    case auto
    /// The user's OPENBLAS_CORETYPE, respected as is.
    case user
    /// HEADLIGHT_BLAS_CORETYPE=<kernel>.
    case headlightOverride = "headlight-override"
    /// OpenBLAS picked it at load and Headlight found no reason to change it.
    case libraryDefault = "library-default"
}

/// What to do about the kernel.
public struct BLASDecision: Sendable, Equatable {
    public enum Action: Sendable, Equatable {
        /// Run with the kernel already loaded.
        case keep
        /// Set the environment changes below and re-exec; the library then loads `coretype`.
        case reexec(coretype: String)
    }
    public var action: Action
    /// Origin of the kernel the process will run with (after the re-exec, if any).
    public var origin: KernelOrigin
    /// Environment changes to make before re-exec (nil value: unset). Empty for `.keep`.
    public var environment: [String: String?]
    /// One line for humans: why this kernel.
    public var reason: String
    /// True when the kept kernel is known to be bad (failed verification, nothing left to try,
    /// or the user/override chose it): report loudly.
    public var problem: Bool

    public init(
        action: Action, origin: KernelOrigin, environment: [String: String?] = [:],
        reason: String, problem: Bool = false
    ) {
        self.action = action
        self.origin = origin
        self.environment = environment
        self.reason = reason
        self.problem = problem
    }

    public var reexecCoretype: String? {
        if case .reexec(let c) = action { return c }
        return nil
    }
}

public enum BLASPolicy {
    public static let overrideVar = "HEADLIGHT_BLAS_CORETYPE"
    public static let openblasVar = "OPENBLAS_CORETYPE"
    public static let guardVar = "HEADLIGHT_BLAS_CHOSEN"
    public static let failedVar = "HEADLIGHT_BLAS_FAILED"
    public static let reasonVar = "HEADLIGHT_BLAS_REASON"
    public static let libraryDefaultVar = "HEADLIGHT_BLAS_LIBRARY_DEFAULT"
    public static let execsVar = "HEADLIGHT_BLAS_EXECS"
    /// Never re-exec more often than this in one process chain.
    public static let maxExecs = 4

    /// Capability tier of an OpenBLAS x86-64 kernel name (0 generic SSE, 1 AVX, 2 AVX2, 3 AVX-512);
    /// nil for names this table does not know (other architectures, future kernels).
    public static func tier(of corename: String) -> Int? {
        switch corename.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": return 3
        case "haswell", "zen": return 2
        case "sandybridge", "bulldozer", "piledriver", "steamroller", "excavator": return 1
        case "prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "katmai", "coppermine",
            "northwood", "banias", "opteron", "opteron_sse3", "barcelona", "bobcat", "nano", "athlon",
            "unknown", "generic":
            return 0
        default: return nil
        }
    }

    /// Kernels worth trying on this CPU, best first; the fallback chain after a failed verification.
    /// Empty when the CPU has nothing better than what OpenBLAS does on its own (e.g. not x86-64).
    public static func candidates(for f: CPUFeatures) -> [String] {
        var list: [String] = []
        if f.hasSkylakeXSet && f.avx2 && f.fma {
            if f.avx512bf16 { list.append("Cooperlake") }
            list.append("SkylakeX")
        }
        if f.avx2 && f.fma { list.append("Haswell") }
        if f.avx && list.isEmpty { list.append("Sandybridge") }
        if !list.isEmpty || f.sse3 { list.append("Prescott") }
        return list
    }

    /// The best kernel for this CPU (nil when Headlight has no opinion).
    public static func recommended(for f: CPUFeatures) -> String? {
        let c = candidates(for: f)
        return c.first.flatMap { tier(of: $0) ?? 0 > 0 ? $0 : nil }
    }

    /// True when `corename` is a lower tier than the CPU supports.
    public static func isBelowCapability(corename: String, features: CPUFeatures) -> Bool {
        guard let best = recommended(for: features), let want = tier(of: best) else { return false }
        return (tier(of: corename) ?? want) < want
    }

    /// Kernel names from HEADLIGHT_BLAS_FAILED ("SkylakeX=3.1e-02,Haswell=nan" -> ["SkylakeX", "Haswell"]).
    public static func failedKernels(_ env: [String: String]) -> [String] {
        guard let v = env[failedVar], !v.isEmpty else { return [] }
        return v.split(separator: ",").map { String($0.split(separator: "=").first ?? $0) }.filter { !$0.isEmpty }
    }

    static func value(_ env: [String: String], _ key: String) -> String? {
        guard let v = env[key]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
        return v
    }

    static func same(_ a: String?, _ b: String?) -> Bool {
        guard let a, let b else { return false }
        return a.lowercased() == b.lowercased()
    }

    /// Origin of the kernel loaded in a process with this environment.
    public static func origin(env: [String: String]) -> KernelOrigin {
        let requested = value(env, openblasVar), chosen = value(env, guardVar), override = value(env, overrideVar)
        guard let requested else { return .libraryDefault }
        if same(requested, chosen) {
            if let override, !same(override, "auto"), same(override, requested) { return .headlightOverride }
            return .auto
        }
        if same(override, "auto") { return .auto }
        return .user
    }

    /// The decision. `verificationFailed`: the loaded kernel failed BLASRuntime.verify().
    /// `verificationDetail`: recorded next to the kernel in HEADLIGHT_BLAS_FAILED (e.g. the error).
    public static func decide(
        corename: String, features: CPUFeatures, env: [String: String],
        verificationFailed: Bool = false, verificationDetail: String? = nil
    ) -> BLASDecision {
        let requested = value(env, openblasVar), chosen = value(env, guardVar), override = value(env, overrideVar)
        let failed = failedKernels(env)
        let execs = Int(value(env, execsVar) ?? "") ?? 0
        let origin = origin(env: env)
        let unknownNote = { (asked: String) -> String in
            same(asked, corename) ? "" : " (OpenBLAS did not load '\(asked)'; it runs \(corename))"
        }
        let best = recommended(for: features)
        let perfNote =
            isBelowCapability(corename: corename, features: features)
            ? "; below what this CPU supports (\(best ?? "?"))" : ""

        func reexec(
            _ kernel: String, reason: String, origin: KernelOrigin,
            failedList: String? = nil
        ) -> BLASDecision {
            var changes: [String: String?] = [
                openblasVar: kernel, guardVar: kernel, reasonVar: reason, execsVar: String(execs + 1)
            ]
            if value(env, libraryDefaultVar) == nil && origin != .headlightOverride && requested == nil {
                changes[libraryDefaultVar] = corename
            }
            if let failedList { changes[failedVar] = failedList }
            return BLASDecision(action: .reexec(coretype: kernel), origin: origin, environment: changes, reason: reason)
        }

        // 1. HEADLIGHT_BLAS_CORETYPE=<kernel>: force it, never second-guess it. No re-exec when the
        //    library already runs it, or when Headlight already asked for it (guard).
        if let override, !same(override, "auto") {
            let reason = "HEADLIGHT_BLAS_CORETYPE=\(override)"
            if same(corename, override) || same(chosen, override) || execs >= maxExecs {
                let failNote = verificationFailed ? "; FAILED verification (not overridden)" : ""
                // Record the choice for reports and child processes (no effect on the loaded library).
                let changes: [String: String?] =
                    same(requested, override) && same(chosen, override)
                    ? [:]
                    : [openblasVar: override, guardVar: override, reasonVar: reason]
                return BLASDecision(
                    action: .keep, origin: .headlightOverride, environment: changes,
                    reason: reason + unknownNote(override) + perfNote + failNote,
                    problem: verificationFailed)
            }
            return reexec(override, reason: reason, origin: .headlightOverride)
        }

        // 2. The user's OPENBLAS_CORETYPE: respected (unless HEADLIGHT_BLAS_CORETYPE=auto).
        if let requested, origin == .user {
            let failNote = verificationFailed ? "; FAILED verification (set by user, not overridden)" : ""
            return BLASDecision(
                action: .keep, origin: .user,
                reason: "OPENBLAS_CORETYPE=\(requested) set by user" + unknownNote(requested) + perfNote + failNote,
                problem: verificationFailed)
        }

        // 3. Automatic.
        let cands = candidates(for: features)
        let current = tier(of: corename)
        let previousReason = value(env, reasonVar)
        if verificationFailed {
            let nowFailed = failed + [corename]
            let isFailed = { (k: String) in nowFailed.contains { same($0, k) } }
            let position = cands.firstIndex { same($0, corename) }
            let next = cands.enumerated().first { i, k in
                guard !isFailed(k) else { return false }
                if let position { return i > position }
                return (tier(of: k) ?? 0) < (current ?? Int.max)
            }?.element
            let entry = corename + (verificationDetail.map { "=" + $0 } ?? "")
            let failedList = ((value(env, failedVar).map { [$0] } ?? []) + [entry]).joined(separator: ",")
            if let next, execs < maxExecs {
                return reexec(
                    next, reason: "\(corename) failed verification; fell back to \(next)",
                    origin: .auto, failedList: failedList)
            }
            return BLASDecision(
                action: .keep, origin: origin,
                reason:
                    "\(corename) FAILED verification and no other kernel is left to try (tried: "
                    + "\(nowFailed.joined(separator: ", ")))",
                problem: true)
        }
        let target = cands.first { k in !failed.contains { same($0, k) } }
        if let target, let want = tier(of: target), (current ?? want) < want {
            // Loop guards: asked for it already (the library ignored it), or the exec budget is spent.
            if same(requested, target) || same(chosen, target) || execs >= maxExecs {
                let why =
                    execs >= maxExecs && !same(requested, target) && !same(chosen, target)
                    ? "re-exec budget (\(maxExecs)) spent; keeping \(corename)"
                    : "asked OpenBLAS for \(target) but it loaded \(corename); not retrying"
                return BLASDecision(action: .keep, origin: origin, reason: why + perfNote)
            }
            let why =
                same(override, "auto") && requested != nil
                ? "HEADLIGHT_BLAS_CORETYPE=auto: ignored OPENBLAS_CORETYPE=\(requested!) (\(corename)); CPU supports "
                    + "\(target)"
                : "OpenBLAS chose \(corename) at load; CPU supports \(target)"
            return reexec(target, reason: why, origin: .auto)
        }
        switch origin {
        case .auto:
            return BLASDecision(
                action: .keep, origin: .auto,
                reason: (previousReason ?? "chosen by Headlight") + unknownNote(requested ?? corename) + perfNote)
        default:
            let fit =
                best.map {
                    same($0, corename) || (tier(of: $0) ?? 0) <= (current ?? 0)
                        ? "matches this CPU" : "best available: \($0)"
                }
                ?? "no better kernel known for this CPU"
            return BLASDecision(
                action: .keep, origin: origin, reason: "OpenBLAS chose \(corename) at load; \(fit)" + perfNote)
        }
    }
}
