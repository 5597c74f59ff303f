import Foundation
import XCTest

/// `--model NAME` (and the MODEL argument of `inspect`): a known model name resolves to its file in
/// the cache (`$HEADLIGHT_CACHE/models/`), a missing one fails with the fetch command, and the
/// Gemma 3 270M file `scripts/fetch-model.sh gemma3-270m` stores is read by `headlight inspect`.
final class ModelNameTests: XCTestCase {
    private func emptyCache() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("headlight-cache-\(UUID().uuidString)")
        try FileManager.default.createDirectory(
            at: dir.appendingPathComponent("models"),
            withIntermediateDirectories: true)
        return dir
    }

    func testMissingNamedModelNamesTheFetchCommand() throws {
        let cache = try emptyCache()
        defer { try? FileManager.default.removeItem(at: cache) }
        for name in ["gemma3-270m", "smollm2-135m"] {
            let run = try HeadlightProcess.run(
                ["inspect", name], currentDirectory: cache,
                environment: ["HEADLIGHT_CACHE": cache.path, "HEADLIGHT_MODEL": ""])
            XCTAssertEqual(run.status, 1, run.stderr)
            XCTAssertTrue(run.stderr.hasPrefix("error: "), run.stderr)
            XCTAssertTrue(run.stderr.contains("scripts/fetch-model.sh \(name)"), run.stderr)
            XCTAssertTrue(run.stderr.contains(cache.appendingPathComponent("models").path), run.stderr)
            XCTAssertEqual(run.stdout, "")
        }
        // An unknown name is a path: the hint lists the names.
        let unknown = try HeadlightProcess.run(
            ["inspect", "no-such-model"], currentDirectory: cache,
            environment: ["HEADLIGHT_CACHE": cache.path])
        XCTAssertEqual(unknown.status, 1, unknown.stderr)
        XCTAssertTrue(
            unknown.stderr.contains("gemma3-270m") && unknown.stderr.contains("smollm2-135m"),
            unknown.stderr)
    }

    func testNamedModelResolvesToTheCachedFile() throws {
        let model = InspectTests.modelURL
        guard FileManager.default.fileExists(atPath: model.path) else {
            throw XCTSkip("default model not found at \(model.path) (run scripts/fetch-model.sh)")
        }
        let cache = try emptyCache()
        defer { try? FileManager.default.removeItem(at: cache) }
        let link = cache.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: model)
        let run = try HeadlightProcess.run(
            ["inspect", "--json", "--no-tensors", "smollm2-135m"],
            currentDirectory: cache, environment: ["HEADLIGHT_CACHE": cache.path])
        XCTAssertEqual(run.status, 0, run.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(json["file"] as? String, link.path)
        XCTAssertEqual(json["architecture"] as? String, "llama")

        // HEADLIGHT_MODEL takes names too.
        let env = try HeadlightProcess.run(
            ["inspect", "--json", "--no-tensors"], currentDirectory: cache,
            environment: [
                "HEADLIGHT_CACHE": cache.path,
                "HEADLIGHT_MODEL": "smollm2-135m"
            ])
        XCTAssertEqual(env.status, 0, env.stderr)
        XCTAssertEqual(
            (try JSONSerialization.jsonObject(with: Data(env.stdout.utf8)) as? [String: Any])?["file"]
                as? String, link.path)

        // A file named like a model wins over the name.
        let local = cache.appendingPathComponent("gemma3-270m")
        try FileManager.default.createSymbolicLink(at: local, withDestinationURL: model)
        let path = try HeadlightProcess.run(
            ["inspect", "--json", "--no-tensors", "gemma3-270m"],
            currentDirectory: cache, environment: ["HEADLIGHT_CACHE": cache.path])
        XCTAssertEqual(path.status, 0, path.stderr)
        XCTAssertEqual(
            (try JSONSerialization.jsonObject(with: Data(path.stdout.utf8)) as? [String: Any])?["file"]
                as? String, local.path)
    }

    /// The real Gemma 3 270M (Q4_K_M: Q4_K, Q6_K, Q5_0, Q8_0 and F32 tensors) is read and summarized.
    func testInspectGemma3() throws {
        let env = ProcessInfo.processInfo.environment
        let cache: URL
        if let c = env["HEADLIGHT_CACHE"], !c.isEmpty {
            cache = URL(fileURLWithPath: c)
        } else if let x = env["XDG_CACHE_HOME"], !x.isEmpty {
            cache = URL(fileURLWithPath: x).appendingPathComponent("headlight")
        } else {
            cache = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/headlight")
        }
        let file = cache.appendingPathComponent("models/gemma-3-270m-q4_k_m.gguf")
        guard FileManager.default.fileExists(atPath: file.path) else {
            print("skipping: Gemma 3 270M not cached at \(file.path) (run scripts/fetch-model.sh gemma3-270m)")
            throw XCTSkip("Gemma 3 270M not cached (scripts/fetch-model.sh gemma3-270m)")
        }
        let run = try HeadlightProcess.run(
            ["inspect", "--json", "gemma3-270m"],
            environment: ["HEADLIGHT_CACHE": cache.path])
        XCTAssertEqual(run.status, 0, run.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(json["architecture"] as? String, "gemma3")
        XCTAssertEqual(json["file"] as? String, file.path)
        let hp = try XCTUnwrap(json["hyperparameters"] as? [String: Any])
        XCTAssertEqual(hp["block_count"] as? Int, GemmaFacts.layers)
        XCTAssertEqual(hp["embedding_length"] as? Int, GemmaFacts.dModel)
        XCTAssertEqual(hp["attention.head_count"] as? Int, GemmaFacts.heads)
        XCTAssertEqual(hp["attention.head_count_kv"] as? Int, GemmaFacts.kvHeads)
        let types = try XCTUnwrap(json["types"] as? [String: [String: Int]])
        XCTAssertEqual(Set(types.keys), GemmaFacts.tensorTypes)
        let tensors = try XCTUnwrap(json["tensors"] as? [[String: Any]])
        XCTAssertEqual(tensors.count, GemmaFacts.tensorCount)
        let tokenizer = try XCTUnwrap(json["tokenizer"] as? [String: String])
        XCTAssertEqual(tokenizer["tokens"], "262144")
    }
}

/// What `gemma-3-270m-q4_k_m.gguf` holds (gguf-py's reading: Tests/Fixtures/gguf/gemma3_reference.json).
enum GemmaFacts {
    static let layers = 18
    static let dModel = 640
    static let heads = 4
    static let kvHeads = 1
    static let tensorCount = 236
    static let tensorTypes: Set<String> = ["F32", "Q8_0", "Q5_0", "Q4_K", "Q6_K"]
}
