import Foundation
import XCTest
import GGUF
import Inference
import TraceStore
@testable import Analysis

/// Detection sweeps on the default model (skipped without it): prefix reuse changes nothing,
/// a sweep stopped after k trials and resumed equals an uninterrupted one, and the text check.
final class SweepRetrievalTests: XCTestCase {
    /// 1 needle x 2 short lengths x 3 depths, 12 new tokens: quick, and the needle is found.
    func smallProbe(maxNewTokens: Int = 12) throws -> NIAHProbe {
        try NIAHProbe.load(contentsOf: RepoPaths.probes.appendingPathComponent("smoke.json"),
                           overrides: .init(lengths: [300, 420], depths: [0, 50, 100], maxNewTokens: maxNewTokens))
    }

    func tempDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("rh-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: d) }
        return d
    }

    func testPrefixReuseGivesIdenticalResults() throws {
        let env = try RetrievalTestModel.load()
        let probe = try smallProbe()
        let builder = NIAHTrialBuilder(probe: probe, tokenizer: env.tokenizer, chatTemplate: env.chatWrapper)
        let trials = try probe.cells.map { try builder.trial($0) }
        let order = RetrievalHeadSweep.sharedPrefixOrder(trials.map(\.promptTokens))
        let maxCtx = trials.map(\.promptTokens.count).max()! + 13
        let shared = NeedleDecoder(session: env.model.makeSession(maxContext: maxCtx), tokenizer: env.tokenizer)
        var reused = 0
        for i in order {
            let t = trials[i]
            let a = try shared.run(prompt: t.promptTokens, maxNewTokens: 12, span: t.needleSpan, scoreHeads: true)
            let fresh = NeedleDecoder(session: env.model.makeSession(maxContext: maxCtx), tokenizer: env.tokenizer,
                                      reusePrefix: false)
            let b = try fresh.run(prompt: t.promptTokens, maxNewTokens: 12, span: t.needleSpan, scoreHeads: true)
            XCTAssertEqual(a.generated, b.generated, "trial \(i)")
            XCTAssertEqual(a.headScores, b.headScores, "trial \(i)")   // bit for bit
            XCTAssertEqual(b.prefilledTokens, t.promptTokens.count - 1)
            reused += t.promptTokens.count - 1 - a.prefilledTokens
        }
        XCTAssertGreaterThan(reused, 0, "consecutive trials share a prefix")
    }

    /// Scoring only some heads (what `ablate --causal` does) gives those heads the same scores,
    /// bit for bit, and the same tokens as scoring every head; the others stay 0.
    func testScoringOnlySomeHeadsMatchesScoringAll() throws {
        let env = try RetrievalTestModel.load()
        let probe = try smallProbe(maxNewTokens: 32)
        let builder = NIAHTrialBuilder(probe: probe, tokenizer: env.tokenizer, chatTemplate: env.chatWrapper)
        let only = [HeadIndex(layer: 18, head: 6), HeadIndex(layer: 18, head: 7), HeadIndex(layer: 23, head: 2),
                    HeadIndex(layer: 0, head: 0)]
        var scored = 0.0
        for cell in probe.cells.prefix(3) {
            let t = try builder.trial(cell)
            let maxCtx = t.promptTokens.count + 33
            let all = try NeedleDecoder(session: env.model.makeSession(maxContext: maxCtx), tokenizer: env.tokenizer)
                .run(prompt: t.promptTokens, maxNewTokens: 32, span: t.needleSpan, scoreHeads: true)
            let some = try NeedleDecoder(session: env.model.makeSession(maxContext: maxCtx), tokenizer: env.tokenizer)
                .run(prompt: t.promptTokens, maxNewTokens: 32, span: t.needleSpan, scoreHeads: true, onlyHeads: only)
            XCTAssertEqual(all.generated, some.generated)
            let a = try XCTUnwrap(all.headScores), b = try XCTUnwrap(some.headScores)
            for l in 0..<30 { for h in 0..<9 {
                let k = l * 9 + h
                if only.contains(HeadIndex(layer: l, head: h)) { XCTAssertEqual(b[k], a[k], "\(l).\(h)") } else { XCTAssertEqual(b[k], 0) }
            } }
            scored += only.map { a[$0.layer * 9 + $0.head] }.reduce(0, +)
        }
        XCTAssertGreaterThan(scored, 0, "the chosen heads copy something on these trials")
    }

    func testStopAndResumeEqualsUninterruptedRun() throws {
        let env = try RetrievalTestModel.load()
        let probe = try smallProbe(maxNewTokens: 32)   // room for the whole answer: trials count
        let dir = try tempDir()
        func sweep(stopAfter: Int?) throws -> RetrievalHeadSweep {
            var o = RetrievalSweepOptions()
            o.stopAfter = stopAfter
            return try RetrievalHeadSweep(probe: probe, model: env.model, tokenizer: env.tokenizer,
                                          chatTemplate: env.chatWrapper, options: o)
        }
        // Uninterrupted.
        let fullPath = dir.appendingPathComponent("full.h5").path
        let w1 = try RunFileWriter(path: fullPath, resumable: true)
        let full = try sweep(stopAfter: nil).run(file: w1.file)
        XCTAssertTrue(full.finished)
        try w1.finalize()

        // Two trials, "killed" (writer dropped without finalizing), then resumed twice.
        let path = dir.appendingPathComponent("resumed.h5").path
        do {
            let w = try RunFileWriter(path: path, resumable: true)
            let r = try sweep(stopAfter: 2).run(file: w.file)
            XCTAssertFalse(r.finished)
            XCTAssertEqual(r.ranNow, 2)
            try w.checkpoint()
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        do {
            let w = try RunFileWriter(path: path, resumable: true)
            XCTAssertTrue(w.resumed)
            let r = try sweep(stopAfter: 1).run(file: w.file)
            XCTAssertEqual(r.resumedTrials, 2)
            XCTAssertEqual(r.records.count, 3)
        }
        let w = try RunFileWriter(path: path, resumable: true)
        let resumed = try sweep(stopAfter: nil).run(file: w.file)
        XCTAssertTrue(resumed.finished)
        XCTAssertEqual(resumed.resumedTrials, 3)
        try w.finalize()

        XCTAssertEqual(resumed.scores, full.scores)
        XCTAssertEqual(resumed.records.count, full.records.count)
        for (a, b) in zip(resumed.records, full.records) { XCTAssertTrue(a.sameResult(as: b), "trial \(a.trialIndex)") }
        let fa = try RetrievalRunFile.read(path: fullPath), fb = try RetrievalRunFile.read(path: path)
        XCTAssertEqual(fa.scores, fb.scores)
        XCTAssertEqual(fa.suiteJSON, fb.suiteJSON)
        XCTAssertGreaterThan(full.scores.countedTrials, 0)
        XCTAssertFalse(full.retrievalHeads.isEmpty)
    }

    func testResumeRefusesAnotherSuite() throws {
        let env = try RetrievalTestModel.load()
        let dir = try tempDir()
        let path = dir.appendingPathComponent("x.h5").path
        var o = RetrievalSweepOptions()
        o.stopAfter = 1
        do {
            let w = try RunFileWriter(path: path, resumable: true)
            _ = try RetrievalHeadSweep(probe: try smallProbe(), model: env.model, tokenizer: env.tokenizer,
                                       chatTemplate: env.chatWrapper, options: o).run(file: w.file)
            try w.checkpoint()
        }
        let other = try NIAHProbe.load(contentsOf: RepoPaths.probes.appendingPathComponent("smoke.json"),
                                       overrides: .init(lengths: [300], depths: [0], maxNewTokens: 12))
        let w = try RunFileWriter(path: path, resumable: true)
        XCTAssertThrowsError(try RetrievalHeadSweep(probe: other, model: env.model, tokenizer: env.tokenizer,
                                                    chatTemplate: env.chatWrapper).run(file: w.file)) { e in
            guard case RetrievalHeadsError.partialMismatch = e else { return XCTFail("\(e)") }
        }
        try w.abandon()
    }

    func testTokenizerConformanceAndTextCheck() throws {
        let env = try RetrievalTestModel.load()
        let tok = env.tokenizer
        // Same as the explicit call with parseSpecial (the chat template's markers become tokens).
        let text = "<|im_start|>user\nhello<|im_end|>"
        XCTAssertEqual(tok.encode(text, addSpecial: false), tok.encode(text, addSpecial: false, parseSpecial: true))
        XCTAssertEqual(tok.encode(text, addSpecial: false).first, tok.tokenID("<|im_start|>"))
        XCTAssertEqual(tok.controlTokenTexts(in: text), ["<|im_start|>", "<|im_end|>"])
        XCTAssertEqual(tok.controlTokenTexts(in: "plain text"), [])
        // The shipped haystack and needles are clean; a haystack with a marker is refused.
        let probe = try smallProbe()
        XCTAssertNoThrow(try NIAHTextCheck.check(probe, tokenizer: tok))
        let dir = try tempDir()
        let hay = dir.appendingPathComponent("hay.txt")
        try (String(repeating: "Some words here. ", count: 400) + "<|endoftext|> more.").write(to: hay, atomically: true, encoding: .utf8)
        let dirty = try NIAHProbe.load(contentsOf: RepoPaths.probes.appendingPathComponent("smoke.json"),
                                       overrides: .init(haystack: hay.path, lengths: [300], depths: [0]))
        XCTAssertThrowsError(try NIAHTextCheck.check(dirty, tokenizer: tok)) { e in
            XCTAssertTrue("\(e)".contains("<|endoftext|>"), "\(e)")
        }
    }
}
