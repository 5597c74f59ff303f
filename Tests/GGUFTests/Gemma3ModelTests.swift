import Foundation
import GGUF
import XCTest

/// Gemma 3 270M Q4_K_M (`scripts/fetch-model.sh gemma3-270m`) read by Headlight and compared with
/// what gguf-py reads from it (Tests/Fixtures/gguf/gemma3_reference.json, make_fixtures.py): the
/// structure, the Gemma 3 hyperparameters, and dequantized values of one tensor of each type the
/// file holds — Q8_0, Q5_0, Q4_K, Q6_K and F32 — at fixed indices, bit for bit. Skipped (with the
/// reason printed) when the model is not cached.
final class Gemma3ModelTests: XCTestCase {
    static var modelURL: URL {
        let env = ProcessInfo.processInfo.environment
        let cache: URL
        if let c = env["HEADLIGHT_CACHE"], !c.isEmpty {
            cache = URL(fileURLWithPath: c)
        } else if let x = env["XDG_CACHE_HOME"], !x.isEmpty {
            cache = URL(fileURLWithPath: x).appendingPathComponent("headlight")
        } else {
            cache = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/headlight")
        }
        return cache.appendingPathComponent("models/gemma-3-270m-q4_k_m.gguf")
    }

    nonisolated(unsafe) private static var cached: GGUFFile?

    func model() throws -> (GGUFFile, [String: Any]) {
        let ref = try Fixture.json("gemma3_reference.json")
        if let f = Self.cached { return (f, ref) }
        let url = Self.modelURL
        guard FileManager.default.fileExists(atPath: url.path) else {
            print("skipping: Gemma 3 270M not cached at \(url.path) (run scripts/fetch-model.sh gemma3-270m)")
            throw XCTSkip("Gemma 3 270M not found at \(url.path) (scripts/fetch-model.sh gemma3-270m)")
        }
        let f = try GGUFFile(url: url)
        guard f.fileSize == ref["file_size"] as? Int else {
            throw XCTSkip("\(url.path) is not the fixture's Gemma 3 270M (size \(f.fileSize))")
        }
        Self.cached = f
        return (f, ref)
    }

    func testStructureMatchesGGUFPy() throws {
        let (f, ref) = try model()
        XCTAssertEqual(f.dataOffset, ref["data_offset"] as? Int)
        XCTAssertEqual(f.metadata.count, ref["metadata_count"] as? Int)
        XCTAssertEqual(f.tensors.count, ref["tensor_count"] as? Int)
        let counts = Dictionary(grouping: f.tensors, by: \.type.name).mapValues(\.count)
        XCTAssertEqual(counts, ref["type_counts"] as? [String: Int])
        XCTAssertEqual(Set(counts.keys), ["F32", "Q8_0", "Q5_0", "Q4_K", "Q6_K"])
        XCTAssertEqual(try f.architecture(), "gemma3")
        for (k, v) in ref["integers"] as! [String: Int] { XCTAssertEqual(try f.int(k), v, k) }
        for (k, v) in ref["floats"] as! [String: Double] { XCTAssertEqual(Float(try f.double(k)), Float(v), k) }
        for (k, v) in ref["bools"] as! [String: Bool] { XCTAssertEqual(try f.bool(k), v, k) }
        XCTAssertEqual(try f.int("gemma3.attention.key_length"), 256)
        XCTAssertEqual(try f.int("gemma3.attention.sliding_window"), 512)
        XCTAssertEqual(try f.string("tokenizer.ggml.model"), "llama")
        let tokens = try f.stringArray("tokenizer.ggml.tokens")
        XCTAssertEqual(tokens.count, ref["vocab_size"] as? Int)
        for (i, s) in ref["tokens_sample"] as! [String: String] { XCTAssertEqual(tokens[Int(i)!], s, i) }
        // No separate output.weight: the LM head is the (Q8_0) token embedding.
        XCTAssertNil(f.tensors.first { $0.name == "output.weight" })
    }

    func testDequantizedValuesMatchGGUFPy() throws {
        let (f, ref) = try model()
        let tensors = ref["tensors"] as! [String: [String: Any]]
        XCTAssertEqual(
            Set(tensors.values.compactMap { $0["type"] as? String }),
            ["Q8_0", "Q5_0", "Q4_K", "Q6_K", "F32"])
        for (name, r) in tensors.sorted(by: { $0.key < $1.key }) {
            let t = try f.requireTensor(name)
            XCTAssertEqual(t.type.name, r["type"] as? String, name)
            XCTAssertEqual(t.dims, r["dims"] as? [Int], name)
            XCTAssertEqual(f.dataOffset + t.offset, r["absolute_offset"] as? Int, name)
            XCTAssertEqual(t.byteCount, r["bytes"] as? Int, name)
            let values = try f.dequantize(name)
            XCTAssertEqual(values.count, t.elementCount, name)
            for (i, expected) in r["samples"] as! [String: Double] {
                XCTAssertEqual(values[Int(i)!], Float(expected), "\(name)[\(i)]")
            }
            var sum = 0.0, sumAbs = 0.0
            for v in values {
                sum += Double(v)
                sumAbs += Double(abs(v))
            }
            let refSum = r["sum"] as! Double, refAbs = r["sum_abs"] as! Double
            XCTAssertEqual(sumAbs, refAbs, accuracy: refAbs * 1e-9, "\(name) sum |x|")
            XCTAssertEqual(sum, refSum, accuracy: refAbs * 1e-9, "\(name) sum")
        }
    }
}
