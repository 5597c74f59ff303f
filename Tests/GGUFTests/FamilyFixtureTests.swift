import Foundation
import GGUF
import XCTest

/// The tiny family GGUFs and references in Tests/Fixtures/families (make_families.py) are what
/// their README promises: Headlight's reader opens each GGUF, finds the architecture, the
/// hyperparameters and the llama.cpp tensor names the spec lists, the reference files have the
/// sizes the manifests give, and `rope_freqs.weight` holds the Llama 3 factors of the README's
/// formula. (The forward passes themselves are checked against these files by the family tests.)
final class FamilyFixtureTests: XCTestCase {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/families")

    struct Manifest: Decodable {
        struct Prompt: Decodable {
            let tokens: [Int]
            let greedy: [Int]
            let top1: [Int]
        }
        let family: String
        let gguf: String
        let architecture: String
        let vocab_size: Int
        let n_layers: Int
        let n_heads: Int
        let n_kv_heads: Int
        let head_dim: Int
        let prompts: [Prompt]
        let logits_file: String
        let attention_file: String
        let attention_layers: [Int]
        let greedy_steps: Int
    }

    static let families = ["qwen3", "mistral", "phi3", "llama3rope", "gemma2", "gemma3"]

    /// Tensor names of block 0 each family must have (README.md), and ones it must not.
    static let blockTensors: [String: (has: [String], hasNot: [String])] = [
        "qwen3": (
            [
                "attn_q", "attn_k", "attn_v", "attn_q_norm", "attn_k_norm", "attn_output", "ffn_norm",
                "ffn_gate", "ffn_up", "ffn_down"
            ], ["attn_q.bias", "attn_qkv"]
        ),
        "mistral": (
            ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"],
            ["attn_q_norm"]
        ),
        "phi3": (["attn_qkv", "attn_output", "ffn_norm", "ffn_up", "ffn_down"], ["attn_q", "ffn_gate"]),
        "llama3rope": (["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"], []),
        "gemma2": (
            [
                "attn_q", "attn_k", "attn_v", "attn_output", "post_attention_norm", "ffn_norm",
                "post_ffw_norm", "ffn_gate", "ffn_up", "ffn_down"
            ], ["attn_q_norm"]
        ),
        "gemma3": (
            [
                "attn_q", "attn_k", "attn_v", "attn_q_norm", "attn_k_norm", "attn_output",
                "post_attention_norm", "ffn_norm", "post_ffw_norm", "ffn_gate", "ffn_up", "ffn_down"
            ], []
        )
    ]

    func manifest(_ family: String) throws -> Manifest {
        let url = Self.dir.appendingPathComponent("tiny-\(family).json")
        return try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: url))
    }

    func testEveryFamilyFixtureMatchesItsManifest() throws {
        for family in Self.families {
            let m = try manifest(family)
            XCTAssertEqual(m.family, family)
            let f = try GGUFFile(url: Self.dir.appendingPathComponent(m.gguf))
            let arch = try f.architecture()
            XCTAssertEqual(arch, m.architecture, family)
            XCTAssertEqual(try f.int("\(arch).block_count"), m.n_layers, family)
            XCTAssertEqual(try f.int("\(arch).attention.head_count"), m.n_heads, family)
            XCTAssertEqual(try f.int("\(arch).attention.head_count_kv"), m.n_kv_heads, family)
            let dModel = try f.int("\(arch).embedding_length")
            let keyLength = f.metadata["\(arch).attention.key_length"]?.intValue ?? dModel / m.n_heads
            XCTAssertEqual(keyLength, m.head_dim, "\(family) head size")

            let names = Set(f.tensors.map(\.name))
            let (has, hasNot) = Self.blockTensors[family]!
            for t in has { XCTAssertTrue(names.contains("blk.0.\(t).weight"), "\(family): blk.0.\(t).weight") }
            for t in hasNot {
                let name = t.contains(".") ? "blk.0.\(t)" : "blk.0.\(t).weight"
                XCTAssertFalse(names.contains(name), "\(family): unexpected \(name)")
            }
            XCTAssertEqual(try f.requireTensor("blk.0.attn_output.weight").dims, [m.n_heads * m.head_dim, dModel])
            if family == "phi3" {
                XCTAssertEqual(
                    try f.requireTensor("blk.0.attn_qkv.weight").dims,
                    [dModel, (m.n_heads + 2 * m.n_kv_heads) * m.head_dim], "fused QKV rows")
                let ff = try f.int("phi3.feed_forward_length")
                XCTAssertEqual(try f.requireTensor("blk.0.ffn_up.weight").dims, [dModel, 2 * ff], "fused gate/up rows")
            } else {
                XCTAssertEqual(try f.requireTensor("blk.0.attn_q.weight").dims, [dModel, m.n_heads * m.head_dim])
            }
            if family.hasPrefix("gemma") {
                // Stored as 1 + w, with w drawn around 0: the mean is near 1.
                let w = try f.dequantize("blk.0.post_ffw_norm.weight")
                XCTAssertEqual(w.reduce(0, +) / Float(w.count), 1, accuracy: 0.15, "\(family): norms stored as 1 + w")
                XCTAssertNotNil(f.metadata["\(arch).attention.sliding_window"], family)
            }

            let tokens = m.prompts.map(\.tokens.count)
            let logits = try Data(contentsOf: Self.dir.appendingPathComponent(m.logits_file))
            XCTAssertEqual(logits.count, tokens.reduce(0, +) * m.vocab_size * 4, "\(family) logits size")
            let attn = try Data(contentsOf: Self.dir.appendingPathComponent(m.attention_file))
            XCTAssertEqual(
                attn.count, tokens.map { m.attention_layers.count * m.n_heads * $0 * $0 * 4 }.reduce(0, +),
                "\(family) attention size")
            for p in m.prompts {
                XCTAssertEqual(p.greedy.count, m.greedy_steps)
                XCTAssertEqual(p.top1.count, p.tokens.count)
                XCTAssertTrue(p.tokens.allSatisfy { $0 >= 0 && $0 < m.vocab_size })
            }
        }
    }

    /// `rope_freqs.weight` = the Llama 3 factors (README: 1 below orig/high, factor above orig/low,
    /// 1 / ((1 - s)/factor + s) between), for base 10000, head size 8, factor 8, low 1, high 4, orig 64.
    func testLlama3RopeFactorsFollowTheFormula() throws {
        let f = try GGUFFile(url: Self.dir.appendingPathComponent("tiny-llama3rope.gguf"))
        let got = try f.dequantize("rope_freqs.weight")
        let d = 8, base = 10000.0, factor = 8.0, low = 1.0, high = 4.0, orig = 64.0
        XCTAssertEqual(got.count, d / 2)
        for i in 0..<(d / 2) {
            let freq = 1 / pow(base, Double(2 * i) / Double(d))
            let wavelen = 2 * Double.pi / freq
            let want: Double
            if wavelen < orig / high {
                want = 1
            } else if wavelen > orig / low {
                want = factor
            } else {
                let s = (orig / wavelen - low) / (high - low)
                want = 1 / ((1 - s) / factor + s)
            }
            XCTAssertEqual(Double(got[i]), want, accuracy: 1e-5, "factor \(i)")
        }
        XCTAssertEqual(got[0], 1)
        XCTAssertEqual(got[3], 8)
    }

    /// The mistral fixture's window is 8: the last query of the 40-token prompt attends to 8 keys.
    func testMistralWindowShowsInTheReference() throws {
        let m = try manifest("mistral")
        let f = try GGUFFile(url: Self.dir.appendingPathComponent(m.gguf))
        XCTAssertEqual(try f.int("llama.attention.sliding_window"), 8)
        let data = try Data(contentsOf: Self.dir.appendingPathComponent(m.attention_file))
        let t = m.prompts[0].tokens.count
        data.withUnsafeBytes { raw in
            let a = raw.bindMemory(to: Float.self) // [H, T, T] first
            for h in 0..<m.n_heads {
                let row = (h * t + (t - 1)) * t
                let visible = (0..<t).filter { a[row + $0] != 0 }
                XCTAssertEqual(visible, Array((t - 8)..<t), "head \(h)")
            }
        }
    }
}
