import Foundation
import XCTest

/// `headlight inspect` run as a subprocess: the JSON summary of the default model, and the
/// exit code and message for a missing and a truncated file.
///
/// The binary is the one next to this test bundle (the same products directory, so
/// `swift test` has just built it), else the newest `.build*/{release,debug}/headlight`
/// of the package, or `$HEADLIGHT_BIN`. Without a binary or the default model the tests
/// are skipped, except under CI (`CI` set), where they fail.
final class InspectTests: XCTestCase {
    static var binary: URL? {
        let fm = FileManager.default
        func executable(_ dir: URL) -> URL? {
            let u = dir.appendingPathComponent("headlight")
            var isDir: ObjCBool = false
            return fm.fileExists(atPath: u.path, isDirectory: &isDir) && !isDir.boolValue
                && fm.isExecutableFile(atPath: u.path) ? u : nil
        }
        if let b = ProcessInfo.processInfo.environment["HEADLIGHT_BIN"], !b.isEmpty { return URL(fileURLWithPath: b) }
        // The products directory of this test run.
        var dirs: [URL] = []
        if let exe = Bundle.main.executableURL { dirs.append(exe.deletingLastPathComponent()) }
        dirs.append(Bundle.main.bundleURL)
        dirs.append(Bundle.main.bundleURL.deletingLastPathComponent())
        for b in Bundle.allBundles { dirs.append(b.bundleURL.deletingLastPathComponent()) }
        if let arg0 = CommandLine.arguments.first {
            dirs.append(URL(fileURLWithPath: arg0).deletingLastPathComponent())
        }
        for d in dirs { if let u = executable(d) { return u } }
        // Else the newest build of the package this file belongs to.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        var found: [(URL, Date)] = []
        for entry in (try? fm.contentsOfDirectory(atPath: root.path)) ?? [] where entry.hasPrefix(".build") {
            let build = root.appendingPathComponent(entry)
            var candidates = [build.appendingPathComponent("release"), build.appendingPathComponent("debug")]
            for sub in (try? fm.contentsOfDirectory(atPath: build.path)) ?? [] where sub.contains("-") {
                candidates += [
                    build.appendingPathComponent(sub).appendingPathComponent("release"),
                    build.appendingPathComponent(sub).appendingPathComponent("debug")
                ]
            }
            for c in candidates {
                if let u = executable(c),
                    let date = try? fm.attributesOfItem(atPath: u.path)[.modificationDate] as? Date
                {
                    found.append((u, date))
                }
            }
        }
        return found.max { $0.1 < $1.1 }?.0
    }

    static var modelURL: URL {
        let env = ProcessInfo.processInfo.environment
        if let m = env["HEADLIGHT_MODEL"], !m.isEmpty { return URL(fileURLWithPath: m) }
        let cache: URL
        if let c = env["HEADLIGHT_CACHE"], !c.isEmpty {
            cache = URL(fileURLWithPath: c)
        } else if let x = env["XDG_CACHE_HOME"], !x.isEmpty {
            cache = URL(fileURLWithPath: x).appendingPathComponent("headlight")
        } else {
            cache = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/headlight")
        }
        return cache.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf")
    }

    /// Skips, or fails under CI.
    func unavailable(_ what: String) throws -> Never {
        if ProcessInfo.processInfo.environment["CI"] != nil {
            XCTFail("CI: \(what)")
            throw CocoaError(.fileNoSuchFile)
        }
        throw XCTSkip(what)
    }

    typealias Run = HeadlightRun

    func headlight(_ args: [String]) throws -> Run { try HeadlightProcess.run(args) }

    func testInspectJSONOnDefaultModel() throws {
        let model = Self.modelURL
        guard FileManager.default.fileExists(atPath: model.path) else {
            try unavailable("default model not found at \(model.path) (run scripts/fetch-model.sh)")
        }
        let run = try headlight(["inspect", "--json", model.path])
        XCTAssertEqual(run.status, 0, run.stderr)
        let json = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any],
            run.stdout)
        XCTAssertEqual(json["architecture"] as? String, "llama")
        XCTAssertEqual(json["gguf_version"] as? Int, 3)
        XCTAssertEqual(json["file"] as? String, model.path)
        XCTAssertEqual(json["tensor_count"] as? Int, 272)
        let hp = try XCTUnwrap(json["hyperparameters"] as? [String: Any])
        XCTAssertEqual(hp["block_count"] as? Int, 30)
        XCTAssertEqual(hp["attention.head_count"] as? Int, 9)
        XCTAssertEqual(hp["attention.head_count_kv"] as? Int, 3)
        XCTAssertEqual(hp["embedding_length"] as? Int, 576)
        XCTAssertEqual(hp["vocab_size"] as? Int, 49152)
        let types = try XCTUnwrap(json["types"] as? [String: [String: Int]])
        XCTAssertEqual(Set(types.keys), ["Q4_1", "Q8_0", "F32"])
        XCTAssertEqual(types["Q4_1"]?["count"], 210)
        XCTAssertEqual(types["Q8_0"]?["count"], 1)
        XCTAssertEqual(types["F32"]?["count"], 61)
        let tensors = try XCTUnwrap(json["tensors"] as? [[String: Any]])
        XCTAssertEqual(tensors.count, 272)
        let embd = try XCTUnwrap(tensors.first { $0["name"] as? String == "token_embd.weight" })
        XCTAssertEqual(embd["shape"] as? [Int], [49152, 576])
        XCTAssertEqual(embd["type"] as? String, "Q8_0")
        let tokenizer = try XCTUnwrap(json["tokenizer"] as? [String: String])
        XCTAssertEqual(tokenizer["tokens"], "49152")
    }

    func testInspectMissingFileExitsWithOne() throws {
        let run = try headlight(["inspect", "/nonexistent.gguf"])
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssertTrue(run.stderr.hasPrefix("error: "), run.stderr)
        XCTAssertTrue(run.stderr.contains("/nonexistent.gguf"), run.stderr)
        XCTAssertEqual(run.stdout, "")
    }

    func testInspectTruncatedFileExitsWithOne() throws {
        // A GGUF v3 header with no tensors and one key, cut off inside the key's string value.
        var bytes: [UInt8] = Array("GGUF".utf8) + [3, 0, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 0] + [1, 0, 0, 0, 0, 0, 0, 0]
        bytes += [20, 0, 0, 0, 0, 0, 0, 0] + Array("general.architecture".utf8) + [8, 0, 0, 0] + [5, 0, 0]
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "headlight-truncated-\(UUID().uuidString).gguf")
        try Data(bytes).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let run = try headlight(["inspect", url.path])
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssertTrue(run.stderr.hasPrefix("error: "), run.stderr)
        XCTAssertTrue(run.stderr.contains(url.path), run.stderr)
        XCTAssertTrue(run.stderr.contains("truncated") && run.stderr.contains("general.architecture"), run.stderr)
        XCTAssertEqual(run.stdout, "")

        // The default model cut in half: the header is intact, the tensor data is not.
        let model = Self.modelURL
        guard FileManager.default.fileExists(atPath: model.path) else { return }
        let half = FileManager.default.temporaryDirectory.appendingPathComponent(
            "headlight-half-\(UUID().uuidString).gguf")
        let src = try FileHandle(forReadingFrom: model)
        let head = try src.read(upToCount: 4 << 20) ?? Data()
        try src.close()
        try head.write(to: half)
        defer { try? FileManager.default.removeItem(at: half) }
        let cut = try headlight(["inspect", "--json", half.path])
        XCTAssertEqual(cut.status, 1, cut.stderr)
        XCTAssertTrue(cut.stderr.contains(half.path), cut.stderr)
        XCTAssertTrue(cut.stderr.contains("outside the data section"), cut.stderr)
        XCTAssertEqual(cut.stdout, "")
    }
}
