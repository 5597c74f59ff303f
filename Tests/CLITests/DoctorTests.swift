import Foundation
import XCTest
import HeadlightCLI
import RunRecording

/// `headlight doctor` run as a subprocess (the built binary, next to the test bundle), and the
/// SHA-256 implementation it uses for the model checksum.
final class DoctorTests: XCTestCase {
    /// The `headlight` executable of this build: next to the test bundle (same products
    /// directory), else in a .build*/debug directory of the package.
    static var headlightBinary: URL? {
        var dirs: [URL] = []
        if let exe = Bundle.main.executableURL { dirs.append(exe.deletingLastPathComponent()) }
        dirs.append(Bundle.main.bundleURL.deletingLastPathComponent())
        dirs.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: root.path) {
            for entry in entries.sorted() where entry.hasPrefix(".build") {
                dirs.append(root.appendingPathComponent(entry).appendingPathComponent("debug"))
            }
        }
        return dirs.map { $0.appendingPathComponent("headlight") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
        var json: [String: Any]?
    }

    func doctor(_ args: [String] = ["doctor", "--json", "--quick"], env changes: [String: String?] = [:]) throws -> Run
    {
        guard let binary = Self.headlightBinary else { throw XCTSkip("headlight binary not built") }
        let process = Process()
        process.executableURL = binary
        process.arguments = args
        var env = ProcessInfo.processInfo.environment
        for (key, value) in changes { env[key] = value }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let json = try? JSONSerialization.jsonObject(with: outData) as? [String: Any]
        return Run(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self), json: json)
    }

    func testDoctorJSON() throws {
        let run = try doctor()
        XCTAssertEqual(run.status, 0, run.stderr)
        let json = try XCTUnwrap(run.json, run.stdout)
        for key in [
            "headlight", "swift", "os", "cpu", "blas", "sgemm", "verification", "hdf5", "graphviz", "model",
            "ok", "problems", "warnings"
        ] {
            XCTAssertNotNil(json[key], "missing key \(key)")
        }
        let verification = try XCTUnwrap(json["verification"] as? [String: Any])
        XCTAssertEqual(verification["passed"] as? Bool, true)
        XCTAssertLessThan(try XCTUnwrap(verification["max_relative_error"] as? Double), 1e-4)
        let blas = try XCTUnwrap(json["blas"] as? [String: Any])
        for key in ["kernel", "origin", "reason", "version", "config", "threads", "below_capability"] {
            XCTAssertNotNil(blas[key], "missing blas.\(key)")
        }
        XCTAssertFalse((blas["kernel"] as? String ?? "").isEmpty)
        let sgemm = try XCTUnwrap(json["sgemm"] as? [String: Any])
        XCTAssertGreaterThan(sgemm["gflops"] as? Double ?? 0, 0)
        let model = try XCTUnwrap(json["model"] as? [String: Any])
        XCTAssertNotNil(model["present"] as? Bool)
        XCTAssertEqual(json["headlight"] as? String, Headlight.version)
    }

    func testDoctorText() throws {
        let run = try doctor(["doctor", "--quick"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let lines = run.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.last, "ok")
        for key in [
            "headlight:", "swift:", "os:", "cpu:", "openblas:", "blas kernel:", "chosen by:", "blas threads:",
            "sgemm:", "verification:", "hdf5:", "graphviz:", "model:", "model sha256:"
        ] {
            XCTAssertTrue(lines.contains { $0.hasPrefix(key) }, "missing \(key)")
        }
    }

    /// The automatic path end to end: pretend OpenBLAS fell back to Prescott; Headlight re-execs
    /// with the CPU's best kernel.
    func testAutoUpgradeFromSimulatedPrescott() throws {
        let run = try doctor(env: [
            "OPENBLAS_CORETYPE": nil, "HEADLIGHT_BLAS_CORETYPE": nil,
            "HEADLIGHT_BLAS_TEST_DEFAULT": "Prescott"
        ])
        XCTAssertEqual(run.status, 0, run.stderr)
        let blas = try XCTUnwrap(run.json?["blas"] as? [String: Any])
        guard let best = blas["recommended"] as? String else { throw XCTSkip("no recommended kernel on this CPU") }
        XCTAssertEqual(blas["kernel"] as? String, best)
        XCTAssertEqual(blas["origin"] as? String, "auto")
        XCTAssertEqual(blas["library_default"] as? String, "Prescott")
    }

    /// Verification failures: an automatic choice falls back; a user's choice is kept and fails doctor.
    func testVerificationFailurePaths() throws {
        let probe = try doctor(env: ["OPENBLAS_CORETYPE": nil, "HEADLIGHT_BLAS_CORETYPE": nil])
        let blas = try XCTUnwrap(probe.json?["blas"] as? [String: Any])
        guard let best = blas["recommended"] as? String, best != "Haswell", best != "Sandybridge" else {
            throw XCTSkip("needs an AVX-512 CPU")
        }
        let auto = try doctor(env: [
            "OPENBLAS_CORETYPE": nil, "HEADLIGHT_BLAS_CORETYPE": nil,
            "HEADLIGHT_BLAS_TEST_FAIL": "Cooperlake,SkylakeX"
        ])
        XCTAssertEqual(auto.status, 0, auto.stderr)
        let autoBLAS = try XCTUnwrap(auto.json?["blas"] as? [String: Any])
        XCTAssertEqual(autoBLAS["kernel"] as? String, "Haswell")
        XCTAssertEqual((autoBLAS["failed_kernels"] as? [String])?.count, best == "Cooperlake" ? 2 : 1)

        let user = try doctor(env: [
            "OPENBLAS_CORETYPE": "Haswell", "HEADLIGHT_BLAS_CORETYPE": nil,
            "HEADLIGHT_BLAS_TEST_FAIL": "Haswell"
        ])
        XCTAssertEqual(user.status, 1)
        XCTAssertTrue(user.stderr.contains("verification"), user.stderr)
        XCTAssertEqual((user.json?["blas"] as? [String: Any])?["origin"] as? String, "user")
        XCTAssertEqual((user.json?["verification"] as? [String: Any])?["passed"] as? Bool, false)
    }

    func testHeadlightOverride() throws {
        let run = try doctor(env: ["HEADLIGHT_BLAS_CORETYPE": "Prescott"])
        let blas = try XCTUnwrap(run.json?["blas"] as? [String: Any])
        #if arch(x86_64)
            XCTAssertEqual(blas["kernel"] as? String, "Prescott")
        #endif
        XCTAssertEqual(blas["origin"] as? String, "headlight-override")
    }

    // MARK: - SHA-256

    /// The kernel environment variables: HEADLIGHT_THREADS and HEADLIGHT_QDOT show in the kernel
    /// summary; a mistyped value of any of the three is a usage error naming the variable.
    func testKernelEnvironmentVariables() throws {
        let run = try doctor(["doctor", "--quick"], env: ["HEADLIGHT_THREADS": "1", "HEADLIGHT_QDOT": "int16"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let line = try XCTUnwrap(run.stdout.split(separator: "\n").first { $0.hasPrefix("native kernels:") })
        XCTAssertTrue(line.contains("int16 activations") && line.contains("1 threads"), String(line))
        for (key, value) in [("HEADLIGHT_THREADS", "0"), ("HEADLIGHT_QDOT", "int4"), ("HEADLIGHT_KERNELS", "avx9")] {
            let bad = try doctor(["doctor", "--quick"], env: [key: value])
            XCTAssertEqual(bad.status, 2, "\(key)=\(value)")
            XCTAssertTrue(bad.stderr.contains(key) && bad.stderr.contains(value), bad.stderr)
        }
    }

    func testSHA256Vectors() {
        XCTAssertEqual(SHA256.hash(Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(
            SHA256.hash(Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(
            SHA256.hash(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(
            SHA256.hash(Data(repeating: UInt8(ascii: "a"), count: 1_000_000)),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testSHA256MatchesSha256sumOnOneMegabyte() throws {
        var state: UInt64 = 0x1234_5678_9abc_def0
        var bytes = [UInt8](repeating: 0, count: 1 << 20)
        for i in bytes.indices {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            bytes[i] = UInt8(truncatingIfNeeded: state >> 33)
        }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("headlight-sha-\(getpid()).bin")
        try Data(bytes).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }

        // Streaming with awkward chunk sizes must agree with one-shot and file hashing.
        let oneShot = SHA256.hash(Data(bytes))
        let streamed = SHA256()
        var offset = 0, sizes = [1, 63, 64, 65, 127, 1000, 4096, 55, 56, 57]
        while offset < bytes.count {
            let n = min(sizes.first!, bytes.count - offset)
            sizes.append(sizes.removeFirst())
            streamed.update(Array(bytes[offset..<offset + n]))
            offset += n
        }
        XCTAssertEqual(streamed.finalizeHex(), oneShot)
        XCTAssertEqual(try SHA256.hashFile(at: url, chunkSize: 333_333), oneShot)

        guard let tool = ["/usr/bin/sha256sum", "/bin/sha256sum"].first(where: FileManager.default.isExecutableFile)
        else {
            throw XCTSkip("sha256sum not installed")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = [url.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertEqual(output.split(separator: " ").first.map(String.init), oneShot)
    }
}
