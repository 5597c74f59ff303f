import Foundation
import GGUF
import XCTest

/// The default model, SmolLM2-135M-Instruct.Q4_1.gguf, read by Headlight and compared with
/// what gguf-py reads from it (Tests/Fixtures/gguf/smollm2_reference.json, made by
/// make_fixtures.py). Uses $HEADLIGHT_MODEL, else the cache path scripts/fetch-model.sh
/// fills. Without the model the tests are skipped, except under CI (the `CI` environment
/// variable set), where the test command fetches the model first and a missing model fails.
final class RealModelTests: XCTestCase {
    static let defaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf"

    /// $HEADLIGHT_MODEL, else ${HEADLIGHT_CACHE:-${XDG_CACHE_HOME:-~/.cache}/headlight}/models/<default>.
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
        return cache.appendingPathComponent("models").appendingPathComponent(defaultModelFile)
    }

    /// Opened once for all tests of the class (parsing the 98k-string vocabulary takes a moment).
    nonisolated(unsafe) private static var cached: GGUFFile?

    func model() throws -> (GGUFFile, [String: Any]) {
        let ref = try Fixture.json("smollm2_reference.json")
        if let f = Self.cached { return (f, ref) }
        let url = Self.modelURL
        guard FileManager.default.fileExists(atPath: url.path) else {
            if ProcessInfo.processInfo.environment["CI"] != nil {
                XCTFail(
                    "CI: the default model is missing at \(url.path); the test command must fetch it first "
                        + "(scripts/fetch-model.sh)")
                throw CocoaError(.fileNoSuchFile)
            }
            throw XCTSkip("default model not found at \(url.path) (run scripts/fetch-model.sh or set HEADLIGHT_MODEL)")
        }
        let f = try GGUFFile(url: url)
        if f.fileSize != ref["file_size"] as? Int {
            throw XCTSkip("\(url.path) is not the default model (size \(f.fileSize)); these tests check that model")
        }
        Self.cached = f
        return (f, ref)
    }

    func testStructureMatchesGGUFPy() throws {
        let (f, ref) = try model()
        XCTAssertEqual(f.version, 3)
        XCTAssertEqual(f.alignment, 32)
        XCTAssertEqual(f.dataOffset, ref["data_offset"] as? Int)
        XCTAssertEqual(f.metadata.count, ref["metadata_count"] as? Int)
        XCTAssertEqual(f.tensors.count, 272)
        XCTAssertEqual(Set(f.tensors.map(\.type.name)), ["Q4_1", "Q8_0", "F32"])
        let counts = Dictionary(grouping: f.tensors, by: \.type.name).mapValues(\.count)
        XCTAssertEqual(counts, ref["type_counts"] as? [String: Int])

        XCTAssertEqual(try f.architecture(), "llama")
        XCTAssertEqual(try f.int("llama.block_count"), 30)
        XCTAssertEqual(try f.int("llama.attention.head_count"), 9)
        XCTAssertEqual(try f.int("llama.attention.head_count_kv"), 3)
        XCTAssertEqual(try f.int("llama.embedding_length"), 576)
        let hp = ref["hyperparameters"] as! [String: Int]
        for (k, v) in hp { XCTAssertEqual(try f.int(k), v, k) }
        XCTAssertEqual(try f.double("llama.attention.layer_norm_rms_epsilon"), ref["rms_epsilon"] as? Double)
        XCTAssertEqual(try f.double("llama.rope.freq_base"), ref["rope_freq_base"] as? Double)
        XCTAssertEqual(try f.string("tokenizer.ggml.model"), "gpt2")

        let tokens = try f.stringArray("tokenizer.ggml.tokens")
        XCTAssertEqual(tokens.count, 49152)
        XCTAssertEqual(tokens.count, ref["vocab_size"] as? Int)
        for (i, s) in ref["tokens_sample"] as! [String: String] { XCTAssertEqual(tokens[Int(i)!], s, i) }
        XCTAssertEqual(try f.stringArray("tokenizer.ggml.merges").count, ref["merges"] as? Int)
        XCTAssertEqual(try f.int("tokenizer.ggml.bos_token_id"), 1)
        XCTAssertEqual(try f.int("tokenizer.ggml.eos_token_id"), 2)

        // 30 blocks of 9 tensors, the embedding and the final norm; all inside the file and disjoint.
        for layer in 0..<30 {
            for part in [
                "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate",
                "ffn_up", "ffn_down"
            ] {
                XCTAssertNotNil(f.tensor(named: "blk.\(layer).\(part).weight"), "blk.\(layer).\(part)")
            }
        }
        let embd = try f.requireTensor("token_embd.weight")
        XCTAssertEqual(embd.dims, [576, 49152])
        XCTAssertEqual(embd.shape, [49152, 576])
        XCTAssertEqual(embd.type, .q8_0)
        XCTAssertEqual(try f.requireTensor("blk.0.attn_k.weight").dims, [576, 192])
        XCTAssertEqual(try f.requireTensor("blk.0.ffn_down.weight").dims, [1536, 576])
        XCTAssertNotNil(f.tensor(named: "output_norm.weight"))
        var end = 0
        for t in f.tensors.sorted(by: { $0.offset < $1.offset }) {
            XCTAssertGreaterThanOrEqual(t.offset, end, t.name)
            end = t.offset + t.byteCount
        }
        XCTAssertLessThanOrEqual(f.dataOffset + end, f.fileSize)
    }

    /// Dequantized values equal gguf-py's (gguf.quants.dequantize) at fixed indices, and whole-tensor sums agree.
    func testDequantizedValuesMatchGGUFPy() throws {
        let (f, ref) = try model()
        let tensors = ref["tensors"] as! [String: [String: Any]]
        XCTAssertTrue(tensors.values.contains { $0["type"] as? String == "Q4_1" })
        XCTAssertTrue(tensors.values.contains { $0["type"] as? String == "Q8_0" })
        for (name, r) in tensors.sorted(by: { $0.key < $1.key }) {
            let t = try f.requireTensor(name)
            XCTAssertEqual(t.type.name, r["type"] as? String, name)
            XCTAssertEqual(t.dims, r["dims"] as? [Int], name)
            XCTAssertEqual(f.dataOffset + t.offset, r["absolute_offset"] as? Int, name)
            XCTAssertEqual(t.byteCount, r["bytes"] as? Int, name)
            let values = try f.dequantize(name)
            XCTAssertEqual(values.count, t.elementCount, name)
            for (i, expected) in r["samples"] as! [String: Double] {
                // Bit-exact: gguf-py computes in float32 in ggml's order. (The JSON holds the float32 value
                // printed as a double; Foundation's parser may miss its last bit, which rounding to Float undoes.)
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
