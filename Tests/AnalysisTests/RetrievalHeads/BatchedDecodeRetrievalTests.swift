import Foundation
import XCTest
import GGUF
import Inference
import TraceStore
@testable import Analysis

/// Batched decoding (`decodeBatch` > 1) on the default model (skipped without it): the sweep's
/// records (tokens, responses, stops, head scores bit for bit, prefilled tokens, file order) and
/// scores equal one-at-a-time decoding, also across a stop and resume; `runTrials` reproduces a
/// one-session run when a prompt extends its predecessor's (reuse of rows written by decoding).
final class BatchedDecodeRetrievalTests: XCTestCase {
    func tempDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("rhb-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: d) }
        return d
    }

    /// 1 needle x 2 lengths x 3 depths (6 trials), room for the whole answer.
    func probe() throws -> NIAHProbe {
        try NIAHProbe.load(
            contentsOf: RepoPaths.probes.appendingPathComponent("smoke.json"),
            overrides: .init(lengths: [300, 420], depths: [0, 50, 100], maxNewTokens: 24))
    }

    func sweep(_ env: RetrievalTestModel.Env, batch: Int, stopAfter: Int? = nil) throws -> RetrievalHeadSweep {
        var o = RetrievalSweepOptions()
        o.decodeBatch = batch
        o.stopAfter = stopAfter
        return try RetrievalHeadSweep(
            probe: try probe(), model: env.model, tokenizer: env.tokenizer, chatTemplate: env.chatWrapper, options: o)
    }

    func testBatchedSweepEqualsOneAtATime() throws {
        let env = try RetrievalTestModel.load()
        let dir = try tempDir()
        var results: [(Int, RetrievalSweepResult)] = []
        for batch in [1, 4, 6] { // 1: the reference; 4: batches of 4 + 2; 6: the whole grid at once
            let path = dir.appendingPathComponent("b\(batch).h5").path
            let w = try RunFileWriter(path: path, resumable: true)
            let r = try sweep(env, batch: batch).run(file: w.file)
            XCTAssertTrue(r.finished)
            try w.finalize()
            results.append((batch, r))
        }
        let ref = results[0].1
        XCTAssertGreaterThan(ref.scores.countedTrials, 0, "trials count: the comparison covers head scores")
        for (batch, r) in results.dropFirst() {
            XCTAssertEqual(r.scores, ref.scores, "batch \(batch)")
            XCTAssertEqual(r.records.count, ref.records.count)
            for (a, b) in zip(r.records, ref.records) {
                XCTAssertTrue(a.sameResult(as: b), "batch \(batch) trial \(a.trialIndex)")
                XCTAssertEqual(a.prefilledTokens, b.prefilledTokens, "batch \(batch) trial \(a.trialIndex)")
            }
        }
        // File (execution) order is the same.
        let orders = try [1, 4, 6].map { b -> [Int] in
            let f = try RunFile.open(dir.appendingPathComponent("b\(b).h5").path)
            defer { try? f.close() }
            return try RecordTable.read(
                group: try f.group("retrieval_heads/trials"), columns: [.init("trial_index", .int64)]
            ).ints("trial_index")
        }
        XCTAssertEqual(orders[1], orders[0])
        XCTAssertEqual(orders[2], orders[0])
        XCTAssertGreaterThan(
            ref.records.map { $0.promptTokens - 1 - $0.prefilledTokens }.reduce(0, +), 0,
            "prefix reuse happened (copied between slots when batched)")
    }

    func testBatchedStopAndResumeEqualsUninterrupted() throws {
        let env = try RetrievalTestModel.load()
        let dir = try tempDir()
        let fullPath = dir.appendingPathComponent("full.h5").path
        let wf = try RunFileWriter(path: fullPath, resumable: true)
        let full = try sweep(env, batch: 1).run(file: wf.file)
        try wf.finalize()
        let path = dir.appendingPathComponent("resumed.h5").path
        do {
            let w = try RunFileWriter(path: path, resumable: true)
            let r = try sweep(env, batch: 4, stopAfter: 3).run(file: w.file) // stops inside a batch of 4
            XCTAssertEqual(r.ranNow, 3)
            XCTAssertFalse(r.finished)
            try w.checkpoint()
        }
        let w = try RunFileWriter(path: path, resumable: true)
        let resumed = try sweep(env, batch: 2).run(file: w.file)
        XCTAssertTrue(resumed.finished)
        XCTAssertEqual(resumed.resumedTrials, 3)
        try w.finalize()
        XCTAssertEqual(resumed.scores, full.scores)
        for (a, b) in zip(resumed.records, full.records) { XCTAssertTrue(a.sameResult(as: b), "trial \(a.trialIndex)") }
    }

    /// Prompts where one extends its predecessor's `prompt[:-1]` (a one-session run reuses K/V rows
    /// its predecessor's decoding wrote): batched runs end the batch there and match exactly.
    func testRunTrialsMatchesOneSessionWhenPromptsExtend() throws {
        let env = try RetrievalTestModel.load()
        let tok = env.tokenizer
        let base = tok.encode("The quick brown fox jumps over the lazy dog. It was a sunny day and")
        let a = base
        let b = Array(base.dropLast()) + [base.last!] + tok.encode(" the birds sang loudly", addSpecial: false)
        let c = Array(base.prefix(6)) + tok.encode(" something else entirely", addSpecial: false)
        let d = c + tok.encode(" and more", addSpecial: false)
        let inputs = [a, b, c, d, a].map { NeedleTrialInput(prompt: $0, span: nil) }
        func run(_ batch: Int) throws -> [NeedleDecodeResult] {
            let s = env.model.makeSession(maxContext: 128)
            let dec = NeedleDecoder(session: s, tokenizer: tok, decodeBatch: batch)
            var out: [NeedleDecodeResult] = []
            try dec.runTrials(inputs, maxNewTokens: 6, scoreHeads: false) { i, r in
                XCTAssertEqual(i, out.count, "results in order")
                out.append(r)
            }
            return out
        }
        let one = try run(1)
        XCTAssertEqual(one.count, inputs.count)
        XCTAssertLessThanOrEqual(one[1].prefilledTokens, b.count - 1 - a.count, "b reuses a row that decoding wrote")
        for batch in [2, 3, 5] {
            let got = try run(batch)
            XCTAssertEqual(got, one, "batch \(batch)")
        }
    }

    /// `ablate` decoding B (trial, condition) pairs together equals one at a time: decode-phase
    /// ablation (conditions of one trial in one batch, prefix shared) with causal target scores,
    /// and ablation in both phases (each condition prefilled anew), records in the same order.
    func testBatchedAblationEqualsOneAtATime() throws {
        let env = try RetrievalTestModel.load()
        let dir = try tempDir()
        let probe = try NIAHProbe.load(
            contentsOf: RepoPaths.probes.appendingPathComponent("smoke.json"),
            overrides: .init(lengths: [300], depths: [0, 50, 100], maxNewTokens: 24))
        let conditions = [
            AblationCondition(name: "baseline", kind: .baseline, heads: []),
            AblationCondition(
                name: "target", kind: .target, heads: [HeadIndex(layer: 18, head: 6), HeadIndex(layer: 23, head: 2)]),
            AblationCondition(
                name: "control_1", kind: .control, heads: [HeadIndex(layer: 2, head: 3), HeadIndex(layer: 9, head: 0)])
        ]
        for phase in [InterventionPhase.decode, .both] {
            var runs: [[AblationRecord]] = []
            for batch in [1, 4] {
                var o = AblationOptions()
                o.method = .zero
                o.phase = phase
                o.perplexityTokens = 0
                o.decodeBatch = batch
                if phase == .decode { o.causalTargets = [HeadIndex(layer: 18, head: 6), HeadIndex(layer: 23, head: 2)] }
                let runner = try AblationRunner(
                    probe: probe, model: env.model, tokenizer: env.tokenizer, chatTemplate: env.chatWrapper,
                    conditions: conditions, options: o)
                let w = try RunFileWriter(path: dir.appendingPathComponent("a-\(phase)-\(batch).h5").path)
                let r = try runner.run(file: w.file)
                XCTAssertTrue(r.finished)
                try w.finalize()
                runs.append(
                    r.records.map {
                        var x = $0
                        x.seconds = 0
                        return x
                    })
            }
            XCTAssertEqual(runs[0].count, 9)
            XCTAssertEqual(runs[1], runs[0], "phase \(phase)")
            if phase == .decode {
                XCTAssertGreaterThan(runs[0].flatMap(\.targetScores).reduce(0, +), 0, "target scores are compared")
            }
        }
    }
}
