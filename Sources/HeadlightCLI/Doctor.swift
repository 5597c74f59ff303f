import ArgumentParser
import Foundation
import Inference
import Reports
import RunRecording
import TraceStore
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `headlight doctor`: what Headlight runs on, whether the BLAS kernel is fast and correct, and
/// whether the default model is in place. Exits 1 when BLAS verification fails or the default
/// model's checksum is wrong.
public struct Doctor: ParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "Check the toolchain, libraries, OpenBLAS kernel and default model.",
        discussion: """
            The OpenBLAS kernel is chosen at process start: HEADLIGHT_BLAS_CORETYPE (a kernel name, or \
            "auto") takes precedence over OPENBLAS_CORETYPE, which is respected when set by the user; \
            otherwise Headlight picks the best kernel for the CPU and verifies it.
            """)

    @Flag(help: "Print one JSON object instead of key: value lines.")
    var json = false

    @Flag(help: "Faster: 512^3 sgemm timed 3 times, and no SHA-256 of the model.")
    var quick = false

    public init() {}

    public func run() throws {
        let report = DoctorReport.collect(quick: quick)
        print(json ? report.json() : report.text())
        if !report.problems.isEmpty {
            let failed = !report.verification.passed
            throw CLIError(
                "doctor found problems: " + report.problems.joined(separator: "; "),
                hint: failed
                    ? "the OpenBLAS kernel \(report.blas.kernel) computes wrong results; unset OPENBLAS_CORETYPE and "
                        + "HEADLIGHT_BLAS_CORETYPE (or set HEADLIGHT_BLAS_CORETYPE=auto) so Headlight picks a verified "
                        + "kernel"
                    : "re-download the model with scripts/fetch-model.sh")
        }
    }
}

/// Everything `doctor` reports; encoded as JSON with snake_case keys.
struct DoctorReport: Codable {
    struct Swift: Codable {
        var compiler: String
        var languageMode: String
    }
    struct OS: Codable {
        var name: String
        var kernel: String
        var machine: String
    }
    struct CPU: Codable {
        var model: String
        var vendor: String
        var family: Int
        var modelNumber: Int
        var cores: Int
        var features: [String]
    }
    struct BLAS: Codable {
        var version: String
        var config: String
        var kernel: String
        var origin: String
        var reason: String
        var openblasCoretype: String?
        var headlightCoretype: String?
        var recommended: String?
        var belowCapability: Bool
        var libraryDefault: String?
        var failedKernels: [String]
        var threads: Int
    }
    struct Verification: Codable {
        var passed: Bool
        var maxRelativeError: Double
        var worstRatio: Double
        var tolerance: String
        var cases: Int
        var failedCases: [String]
        var note: String?
    }
    struct Model: Codable {
        var path: String
        var present: Bool
        var size: Int?
        var sha256: String?
        var expectedSha256: String
        var sha256Check: String
    }

    var headlight: String
    var swift: Swift
    var os: OS
    var cpu: CPU
    var blas: BLAS
    var sgemm: SGEMMBenchmark
    var verification: Verification
    var hdf5: String
    var graphviz: String
    var model: Model
    var ok: Bool
    var problems: [String]
    var warnings: [String]

    static func collect(quick: Bool) -> DoctorReport {
        var problems: [String] = [], warnings: [String] = []
        let status = BLASRuntime.status
        let verified = BLASRuntime.verify()
        let bench = quick ? BLASRuntime.measureSGEMM(n: 512, repeats: 3) : BLASRuntime.measureSGEMM(n: 1024, repeats: 5)
        if !verified.passed {
            problems.append("BLAS verification failed for \(verified.corename) (\(verified.summary))")
        }
        if status.belowCapability {
            let how =
                status.origin == .user
                ? "unset OPENBLAS_CORETYPE or set HEADLIGHT_BLAS_CORETYPE=auto"
                : status.origin == .headlightOverride
                    ? "unset HEADLIGHT_BLAS_CORETYPE"
                    : "Headlight could not use a better one (see 'chosen by')"
            warnings.append(
                "kernel \(status.corename) is below what this CPU supports (\(status.recommended ?? "?")); \(how)")
        }
        if let pending = status.pendingReexec {
            warnings.append("BLASRuntime.prepareProcess() did not run; it would switch to \(pending)")
        }
        warnings += status.notes

        let f = status.features
        let tolerance = String(
            format: "2*(k+2)*2^-24 (%.1e..%.1e)",
            VerificationResult.tolerance(k: verified.cases.map(\.k).min() ?? 0),
            VerificationResult.tolerance(k: verified.cases.map(\.k).max() ?? 0))
        let model = checkModel(quick: quick, problems: &problems, warnings: &warnings)
        return DoctorReport(
            headlight: Headlight.version,
            swift: Swift(compiler: compilerVersion, languageMode: languageMode),
            os: osInfo(),
            cpu: CPU(
                model: cpuModelName(), vendor: f.vendor, family: f.family, modelNumber: f.model,
                cores: ProcessInfo.processInfo.activeProcessorCount, features: f.names),
            blas: BLAS(
                version: status.version, config: status.config, kernel: status.corename,
                origin: status.origin.rawValue, reason: status.reason,
                openblasCoretype: status.requested, headlightCoretype: status.override,
                recommended: status.recommended, belowCapability: status.belowCapability,
                libraryDefault: status.libraryDefault, failedKernels: status.failedKernels,
                threads: bench.threads),
            sgemm: bench,
            verification: Verification(
                passed: verified.passed, maxRelativeError: verified.maxRelativeError,
                worstRatio: verified.worstRatio, tolerance: tolerance,
                cases: verified.cases.count,
                failedCases: verified.cases.filter { !$0.passed }.map(\.label),
                note: verified.note),
            hdf5: hdf5Version(), graphviz: graphvizVersion(), model: model,
            ok: problems.isEmpty, problems: problems, warnings: warnings)
    }

    // MARK: - Output

    func json() -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        guard let data = try? encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    func text() -> String {
        var origin = "\(blas.origin): \(blas.reason)"
        if let lib = blas.libraryDefault, lib.lowercased() != blas.kernel.lowercased(), !blas.reason.contains(lib) {
            origin += "; OpenBLAS alone chose \(lib)"
        }
        if !blas.failedKernels.isEmpty {
            origin += "; failed verification: \(blas.failedKernels.joined(separator: ", "))"
        }
        let sgemmLine = String(
            format: "%.1f GFLOP/s (%d^3, median of %d, best %.1f)",
            sgemm.gflops, sgemm.n, sgemm.repeats, sgemm.best)
        let verificationLine =
            (verification.passed ? "passed" : "FAILED")
            + String(
                format: ", max rel error %.2e (%d cases, NN/NT/TN; tolerance ", verification.maxRelativeError,
                verification.cases)
            + verification.tolerance + String(format: ", worst %.0f%% of it)", verification.worstRatio * 100)
            + (verification.failedCases.isEmpty ? "" : "; failed: " + verification.failedCases.joined(separator: ", "))
            + (verification.note.map { "; \($0)" } ?? "")
        var rows: [(String, String)] = [
            ("headlight", headlight),
            ("swift", "compiler \(swift.compiler), language mode \(swift.languageMode)"),
            ("os", "\(os.name); \(os.kernel) \(os.machine)"),
            ("cpu", "\(cpu.model) (\(cpu.vendor) family \(cpu.family) model \(cpu.modelNumber)), \(cpu.cores) cores"),
            ("cpu features", cpu.features.isEmpty ? "none detected" : cpu.features.joined(separator: " ")),
            ("native kernels", KernelConfig.summary),
            ("openblas", blas.config),
            ("blas kernel", blas.kernel + (blas.recommended.map { " (best for this CPU: \($0))" } ?? "")),
            ("chosen by", origin),
            ("blas threads", String(blas.threads)),
            ("sgemm", sgemmLine),
            ("verification", verificationLine),
            ("hdf5", hdf5),
            ("graphviz", graphviz),
            ("model", model.path),
            ("model present", model.present ? "yes" : "no (run scripts/fetch-model.sh)")
        ]
        if let size = model.size {
            rows.append(("model size", String(format: "%d bytes (%.1f MiB)", size, Double(size) / 1_048_576)))
        }
        rows.append(("model sha256", model.sha256Check))
        for w in warnings { rows.append(("warning", w)) }
        let width = (rows.map(\.0.count).max() ?? 0) + 1
        var lines = rows.map { key, value in
            (key + ":").padding(toLength: width, withPad: " ", startingAt: 0) + " " + value
        }
        lines.append(problems.isEmpty ? "ok" : "problems: " + problems.joined(separator: "; "))
        return lines.joined(separator: "\n")
    }

    // MARK: - Probes

    static var compilerVersion: String {
        #if compiler(>=7.0)
            return ">= 7.0"
        #elseif compiler(>=6.4)
            return ">= 6.4"
        #elseif compiler(>=6.3)
            return ">= 6.3"
        #elseif compiler(>=6.2)
            return ">= 6.2"
        #elseif compiler(>=6.1)
            return ">= 6.1"
        #elseif compiler(>=6.0)
            return ">= 6.0"
        #else
            return "< 6.0"
        #endif
    }

    static var languageMode: String {
        #if swift(>=6.0)
            return "6"
        #else
            return "5"
        #endif
    }

    static func osInfo() -> OS {
        var name = "unknown"
        if let release = try? String(contentsOfFile: "/etc/os-release", encoding: .utf8) {
            for line in release.split(separator: "\n") where line.hasPrefix("PRETTY_NAME=") {
                name = line.dropFirst("PRETTY_NAME=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
            }
        }
        var u = utsname()
        guard uname(&u) == 0 else { return OS(name: name, kernel: "unknown", machine: "unknown") }
        func field<T>(_ value: inout T) -> String {
            withUnsafePointer(to: &value) {
                $0.withMemoryRebound(to: CChar.self, capacity: MemoryLayout<T>.size) { String(cString: $0) }
            }
        }
        return OS(name: name, kernel: "\(field(&u.sysname)) \(field(&u.release))", machine: field(&u.machine))
    }

    static func cpuModelName() -> String {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        for line in info.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return "unknown"
    }

    static func hdf5Version() -> String {
        let v = H5File.libraryVersion
        return v.isEmpty ? "unknown" : v
    }

    static func graphvizVersion() -> String {
        let v = Graphviz.version
        return v.isEmpty ? "unknown" : v
    }

    static func checkModel(quick: Bool, problems: inout [String], warnings: inout [String]) -> Model {
        let url = ModelLocator.defaultModelPath
        let expected = ModelLocator.defaultModelSHA256
        var model = Model(
            path: url.path, present: false, size: nil, sha256: nil,
            expectedSha256: expected, sha256Check: "missing")
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
            (attributes[.type] as? FileAttributeType) != .typeDirectory
        else {
            warnings.append("default model missing: \(url.path) (run scripts/fetch-model.sh)")
            return model
        }
        model.present = true
        model.size = (attributes[.size] as? UInt64).map(Int.init) ?? (attributes[.size] as? Int)
        if quick {
            model.sha256Check = "skipped (--quick)"
            return model
        }
        do {
            let digest = try SHA256.hashFile(at: url)
            model.sha256 = digest
            if digest == expected {
                model.sha256Check = "ok"
            } else {
                model.sha256Check = "MISMATCH: \(digest), expected \(expected)"
                problems.append("default model checksum mismatch")
            }
        } catch {
            model.sha256Check = "unreadable: \(error.localizedDescription)"
            problems.append("default model unreadable")
        }
        return model
    }
}
