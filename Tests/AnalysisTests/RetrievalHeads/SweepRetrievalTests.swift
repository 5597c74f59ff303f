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
        try NIAHProbe.load(
            contentsOf: RepoPaths.probes.appendingPathComponent("smoke.json"),
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
            let fresh = NeedleDecoder(
                session: env.model.makeSession(maxContext: maxCtx), tokenizer: env.tokenizer,
                reusePrefix: false)
            let b = try fresh.run(prompt: t.promptTokens, maxNewTokens: 12, span: t.needleSpan, scoreHeads: true)
            XCTAssertEqual(a.generated, b.generated, "trial \(i)")
            XCTAssertEqual(a.headScores, b.headScores, "trial \(i)") // bit for bit
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
        let only = [
            HeadIndex(layer: 18, head: 6), HeadIndex(layer: 18, head: 7), HeadIndex(layer: 23, head: 2),
            HeadIndex(layer: 0, head: 0)
        ]
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
            for l in 0..<30 {
                for h in 0..<9 {
                    let k = l * 9 + h
                    if only.contains(HeadIndex(layer: l, head: h)) {
                        XCTAssertEqual(b[k], a[k], "\(l).\(h)")
                    } else {
                        XCTAssertEqual(b[k], 0)
                    }
                }
            }
            scored += only.map { a[$0.layer * 9 + $0.head] }.reduce(0, +)
        }
        XCTAssertGreaterThan(scored, 0, "the chosen heads copy something on these trials")
    }

    func testStopAndResumeEqualsUninterruptedRun() throws {
        let env = try RetrievalTestModel.load()
        let probe = try smallProbe(maxNewTokens: 32) // room for the whole answer: trials count
        let dir = try tempDir()
        func sweep(stopAfter: Int?) throws -> RetrievalHeadSweep {
            var o = RetrievalSweepOptions()
            o.stopAfter = stopAfter
            return try RetrievalHeadSweep(
                probe: probe, model: env.model, tokenizer: env.tokenizer,
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
        // The partial file reads as an unfinished sweep (scores from its records), only when asked.
        XCTAssertThrowsError(try RetrievalRunFile.read(path: path + ".partial"))
        let part = try RetrievalRunFile.read(path: path + ".partial", allowIncomplete: true)
        XCTAssertFalse(part.finished)
        XCTAssertEqual(part.records.count, 2)
        XCTAssertEqual(part.records.map(\.trialIndex), part.records.map(\.trialIndex).sorted())
        XCTAssertEqual(
            part.scores,
            RetrievalHeadScores.aggregate(
                trialScores: part.records.map(\.headScores),
                counted: part.records.map(\.counted),
                layers: 30, heads: 9))
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
        XCTAssertTrue(fa.finished)
        XCTAssertEqual(fa.records.count, full.records.count)
        for (a, b) in zip(fa.records, full.records) { XCTAssertEqual(a, b) }
        XCTAssertEqual(fa.scores, fb.scores)
        XCTAssertEqual(fa.suiteJSON, fb.suiteJSON)
        XCTAssertGreaterThan(full.scores.countedTrials, 0)
        XCTAssertFalse(full.retrievalHeads.isEmpty)
    }

    /// `report attention`'s rerun answers exactly like the detection decoder (the same stop rule)
    /// and its run file reads back; the trial choice prefers a counted trial of the longest length.
    func testNeedleAttentionMatchesTheDecoderAndReadsBack() throws {
        let env = try RetrievalTestModel.load()
        let probe = try smallProbe(maxNewTokens: 32)
        let builder = NIAHTrialBuilder(probe: probe, tokenizer: env.tokenizer, chatTemplate: env.chatWrapper)
        let t = try builder.trial(probe.cells[4])
        let heads = [HeadIndex(layer: 18, head: 6), HeadIndex(layer: 23, head: 2)]
        let r = try NeedleAttention.run(
            model: env.model, tokenizer: env.tokenizer, trial: t, trialIndex: 4,
            heads: heads,
            maxSteps: 32)
        let session = env.model.makeSession(maxContext: t.promptTokens.count + 33)
        let d = try NeedleDecoder(session: session, tokenizer: env.tokenizer)
            .run(prompt: t.promptTokens, maxNewTokens: 32, span: t.needleSpan, scoreHeads: false)
        XCTAssertEqual(r.generated, d.generated)
        XCTAssertEqual(r.queryPositions, (0..<d.generated.count).map { t.promptTokens.count - 1 + $0 })
        let stop = NeedleStopRule.stopTokens(tokenizer: env.tokenizer, vocabSize: env.model.config.vocabSize)
        XCTAssertTrue(stop.isSuperset(of: env.tokenizer.endOfGeneration))
        XCTAssertTrue(stop.contains { NeedleStopRule.containsNewline($0, tokenizer: env.tokenizer) })

        let path = try tempDir().appendingPathComponent("att.h5").path
        let w = try RunFileWriter(path: path)
        try NeedleAttention.write(r, headsSource: "detect.h5", to: w.file)
        try w.finalize()
        let f = try RunFile.open(path)
        defer { try? f.close() }
        let c = try XCTUnwrap(try NeedleAttention.read(f))
        XCTAssertEqual(c.heads, heads)
        XCTAssertEqual(c.shape, [2, max(r.queryPositions.count, 1), r.keys])
        XCTAssertEqual(c.weights, r.weights.map(Double.init))
        XCTAssertEqual(c.chosenStep, r.chosenStep)
        XCTAssertEqual(c.span, t.needleSpan)
        XCTAssertEqual(c.tokenStrings.count, r.tokens.count)
        XCTAssertEqual(c.response, r.response)

        func rec(_ i: Int, _ length: Int, _ depth: Double, counted: Bool) -> RetrievalTrialRecord {
            RetrievalTrialRecord(
                trialIndex: i, needleID: "n", needleIndex: 0, length: length, depth: depth,
                promptTokens: 1,
                spanStart: 0, spanEnd: 1, response: "", generatedTokens: 0, stop: "newline", rouge: 0,
                success: counted, counted: counted, headScores: [], prefilledTokens: 0, seconds: 0)
        }
        let recs = [
            rec(0, 500, 50, counted: true), rec(1, 1000, 0, counted: true), rec(2, 1000, 100, counted: true),
            rec(3, 1000, 50, counted: false)
        ]
        XCTAssertEqual(try NeedleAttention.chooseTrial(recs, requested: nil, file: "x").trialIndex, 1)
        XCTAssertEqual(try NeedleAttention.chooseTrial(recs, requested: 3, file: "x").trialIndex, 3)
        XCTAssertThrowsError(try NeedleAttention.chooseTrial(recs, requested: 9, file: "x")) { e in
            XCTAssertEqual(e as? NeedleAttentionError, .trialNotInFile(trial: 9, file: "x", trials: 4))
        }
        XCTAssertThrowsError(try NeedleAttention.chooseTrial([], requested: nil, file: "x"))
    }

    func testResumeRefusesAnotherSuite() throws {
        let env = try RetrievalTestModel.load()
        let dir = try tempDir()
        let path = dir.appendingPathComponent("x.h5").path
        var o = RetrievalSweepOptions()
        o.stopAfter = 1
        do {
            let w = try RunFileWriter(path: path, resumable: true)
            _ = try RetrievalHeadSweep(
                probe: try smallProbe(), model: env.model, tokenizer: env.tokenizer,
                chatTemplate: env.chatWrapper, options: o
            ).run(file: w.file)
            try w.checkpoint()
        }
        let other = try NIAHProbe.load(
            contentsOf: RepoPaths.probes.appendingPathComponent("smoke.json"),
            overrides: .init(lengths: [300], depths: [0], maxNewTokens: 12))
        let w = try RunFileWriter(path: path, resumable: true)
        XCTAssertThrowsError(
            try RetrievalHeadSweep(
                probe: other, model: env.model, tokenizer: env.tokenizer,
                chatTemplate: env.chatWrapper
            ).run(file: w.file)
        ) { e in
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
        try (String(repeating: "Some words here. ", count: 400) + "<|endoftext|> more.").write(
            to: hay, atomically: true, encoding: .utf8)
        let dirty = try NIAHProbe.load(
            contentsOf: RepoPaths.probes.appendingPathComponent("smoke.json"),
            overrides: .init(haystack: hay.path, lengths: [300], depths: [0]))
        XCTAssertThrowsError(try NIAHTextCheck.check(dirty, tokenizer: tok)) { e in
            XCTAssertTrue("\(e)".contains("<|endoftext|>"), "\(e)")
        }
    }
}
