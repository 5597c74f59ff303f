import Foundation
import Inference
import RunRecording
import TraceStore
import XCTest

/// Streaming a traced run into a run file from Swift, without the CLI: every capture dataset holds
/// the values of the same capture made in memory, bit for bit, and the header describes the model.
final class RunFileCaptureSinkTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/reference")

    func testStreamedCapturesEqualTheInMemoryCaptures() throws {
        let url = Self.fixtures.appendingPathComponent("tiny-llama.gguf")
        let model = try Model(path: url.path)
        let ids: [Int32] = [34, 32, 204, 127, 151, 153, 182, 7]
        let steps = 3
        let requests = [
            CaptureRequest(hooks: ["blocks.*.attn.hook_pattern", "blocks.1.hook_resid_post", "logits"]),
            CaptureRequest(hooks: ["blocks.1.attn.hook_attn_scores"], heads: IndexSelection([0, 2]), form: .topK(3))
        ]
        let (store, memory) = try model.makeSession(maxContext: 16).trace(
            prompt: ids, requests: requests, generate: steps)

        let path = FileManager.default.temporaryDirectory.appendingPathComponent("run-recording-\(getpid()).h5").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try RunFileWriter(path: path)
        let sha = try SHA256.hashFile(at: url)
        try RunFileHeader(
            model: model, file: url, modelSHA256: sha, command: "test", headlightVersion: "0.0.0",
            commandLine: ["test"]
        ).write(to: writer.file)
        let sink = RunFileCaptureSink(writer: try CaptureWriter(file: writer.file))
        let plan = try TracePlan(config: model.config, requests: requests, promptLength: ids.count, decodeSteps: steps)
        let streamed = try model.makeSession(maxContext: 16).trace(prompt: ids, plan: plan, into: sink)
        try writer.finalize()
        XCTAssertEqual(streamed.tokens, memory.tokens)

        let f = try RunFile.open(path)
        defer { try? f.close() }
        let header = try RunFileHeader.read(from: f)
        let c = model.config
        XCTAssertEqual(header.modelSHA256, sha)
        XCTAssertEqual(header.modelFile, "tiny-llama.gguf")
        XCTAssertEqual(header.command, "test")
        XCTAssertEqual(
            header.dimensions,
            [
                "n_layers": c.nLayers, "n_heads": c.nHeads, "n_key_value_heads": c.nKVHeads,
                "d_model": c.dModel, "d_head": c.dHead, "d_mlp": c.dFF,
                "d_vocab": c.vocabSize, "n_ctx": c.contextLength
            ])
        XCTAssertEqual(store.tensors.count, c.nLayers + 3)
        for t in store.tensors {
            let ds = try f.dataset(RunFile.captures + "/" + t.layout.name)
            XCTAssertEqual(try ds.attributeIfPresent("hook")?.stringValue, t.layout.name)
            let values: [Float] = try ds.read()
            XCTAssertEqual(values.count, t.values.count, t.layout.name)
            XCTAssertTrue(zip(values, t.values).allSatisfy { $0.bitPattern == $1.bitPattern }, t.layout.name)
            if let want = t.indices, let name = t.layout.indicesName {
                let got: [Int32] = try f.dataset(RunFile.captures + "/" + name).read()
                XCTAssertEqual(got, want, name)
            }
        }
    }
}
