import Foundation
import XCTest
@testable import Analysis
import GGUF
import Inference
import TraceStore

/// End-to-end on the real default model (skipped without it): spans and statements land on the
/// right tokens, span masses equal sums over full attention rows, and a run file is written.
final class CitationRunCiteTests: XCTestCase {
    static var modelURL: URL { DefaultModel.url }

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    struct Env {
        let model: Model
        let tokenizer: Tokenizer
        let chat: ChatTemplate?
    }
    nonisolated(unsafe) static var cached: Env?

    func env() throws -> Env {
        if let e = Self.cached { return e }
        let url = Self.modelURL
        guard FileManager.default.fileExists(atPath: url.path) else { throw XCTSkip("model not found at \(url.path)") }
        let gguf = try GGUFFile(url: url)
        let e = Env(
            model: try Model(gguf: gguf), tokenizer: try Tokenizer(gguf: gguf), chat: try? ChatTemplate(gguf: gguf))
        Self.cached = e
        return e
    }

    func smoke() throws -> [CitationItem] {
        try CitationProbeFile.load(path: Self.root.appendingPathComponent("probes/citation/smoke.jsonl").path)
    }

    /// Passage spans cover exactly the passage text (no "[k]" marker), statements the statement text.
    func testSpansAndStatementsOnRealTokenizer() throws {
        let e = try env()
        let runner = CitationRunner(
            model: e.model, tokenizer: e.tokenizer, chatTemplate: e.chat, options: CitationRunOptions())
        for item in try smoke() where item.answer != nil {
            let p = try runner.prepare(item, originalPassages: item.passages.count)
            XCTAssertEqual(p.passageSpans.count, item.passages.count)
            for (k, span) in p.passageSpans.enumerated() {
                let text = e.tokenizer.decode(Array(p.ids[span]))
                XCTAssertEqual(
                    text.trimmingCharacters(in: .whitespaces), item.passages[k], "\(item.id) passage \(k + 1)")
                XCTAssertFalse(text.contains("[\(k + 1)]"))
            }
            XCTAssertEqual(p.statements.count, 1)
            let (s, t) = p.statements[0]
            XCTAssertEqual(e.tokenizer.decode(Array(p.ids[t])).trimmingCharacters(in: .whitespaces), s.text)
            XCTAssertEqual(t.lowerBound, p.promptTokens) // the answer starts with the statement
            XCTAssertFalse(e.tokenizer.decode(Array(p.ids[t])).contains("["))
        }
    }

    /// The span masses the runner averages equal sums over full attention rows (hook_pattern rows
    /// captured during a plain prefill).
    func testSpanMassMatchesFullRows() throws {
        let e = try env()
        let item = try smoke()[0]
        let runner = CitationRunner(
            model: e.model, tokenizer: e.tokenizer, chatTemplate: e.chat, options: CitationRunOptions())
        let p = try runner.prepare(item, originalPassages: item.passages.count)
        let session = InferenceSession(model: e.model, maxContext: p.ids.count)
        let r = try runner.runTeacher(p, session: session, layers: e.model.config.nLayers, heads: e.model.config.nHeads)
        let obs = try XCTUnwrap(r.statements[0].observation)
        let queries = r.statements[0].queries
        XCTAssertEqual(queries, Array((p.promptTokens - 1)..<(p.promptTokens - 1 + queries.count)))
        let layers = [0, 7, 29], heads = [0, 4, 8]
        let cap = CaptureStore()
        session.reset()
        try session.prefill(
            tokens: p.ids,
            capturing: [
                CaptureRequest(
                    hooks: ["attn.hook_pattern"],
                    layers: IndexSelection(layers),
                    heads: IndexSelection(heads),
                    queries: .positions(queries))
            ], into: cap)
        let S = p.passageSpans.count, H = e.model.config.nHeads
        for l in layers {
            for h in heads {
                for (j, span) in p.passageSpans.enumerated() {
                    var sum = 0.0
                    for q in queries {
                        let row = try XCTUnwrap(cap["blocks.\(l).attn.hook_pattern"]?.attentionRow(head: h, query: q))
                        sum += row[span].reduce(0.0) { $0 + Double($1) }
                    }
                    XCTAssertEqual(
                        Double(obs.mass[(l * H + h) * S + j]), sum / Double(queries.count), accuracy: 2e-5,
                        "layer \(l) head \(h) passage \(j + 1)")
                }
            }
        }
        // masses are probabilities: at most 1 per head
        for lh in 0..<(e.model.config.nLayers * H) {
            let total = (0..<S).reduce(Float(0)) { $0 + obs.mass[lh * S + $1] }
            XCTAssertLessThanOrEqual(total, 1.0001)
            XCTAssertGreaterThanOrEqual(total, 0)
        }
    }

    /// The whole smoke set (5 teacher-forced items, 1 generated), summary and run file.
    func testSmokeRunAndRunFile() throws {
        let e = try env()
        let items = try smoke()
        var opts = CitationRunOptions()
        opts.maxNewTokens = 24
        let runner = CitationRunner(model: e.model, tokenizer: e.tokenizer, chatTemplate: e.chat, options: opts)
        var seen: [Int] = []
        let results = try runner.run(items) { done, total, _ in
            seen.append(done)
            XCTAssertEqual(total, items.count)
        }
        XCTAssertEqual(seen, Array(1...items.count))
        XCTAssertEqual(results.map(\.mode), items.map { $0.answer == nil ? .generate : .teacher })
        let gen = try XCTUnwrap(results.first { $0.mode == .generate })
        XCTAssertLessThanOrEqual(gen.answerTokens, 24)
        XCTAssertNotNil(gen.answerCorrect)
        let obs = results.flatMap(\.observations)
        XCTAssertGreaterThanOrEqual(obs.count, 5)
        XCTAssertEqual(obs.filter(\.isWrongCitation).count, 2)
        // teacher-forced recall: 1 for items citing their source, 0 for deliberately wrong ones
        for r in results where r.mode == .teacher {
            XCTAssertEqual(r.quality.recall, r.item.wrongCitation ? 0 : 1, r.item.id)
        }
        let c = e.model.config
        let rh = [HeadIndex(layer: 3, head: 0), HeadIndex(layer: 15, head: 2)]
        let s = CitationMetrics.summarize(
            obs, layers: c.nLayers, heads: c.nHeads, retrieval: rh, resamples: 100, seed: 0)
        XCTAssertEqual(s.statements, obs.count)
        XCTAssertEqual(s.ranking.count, c.nLayers * c.nHeads)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cite-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("cite.h5").path
        let w = try RunFileWriter(path: path)
        try CitationRunFile.write(
            to: w.file, results: results, summary: s,
            parameters: .init(
                probes: "smoke.jsonl", mode: "auto", padTo: nil, maxNewTokens: 24, chat: true,
                instruction: opts.instruction,
                retrievalFile: nil, retrievalRule: "test", judge: runner.judge, seed: 0, resamples: 100))
        try w.finalize()
        let f = try RunFile.open(path)
        defer { try? f.close() }
        let g = try f.group("citation")
        XCTAssertEqual(try g.stringAttribute("analysis"), "citation")
        XCTAssertEqual(try g.doubleAttribute("agreement_all_heads"), s.allHeads.agreement.estimate)
        XCTAssertEqual(try g.dataset("head_agreement").shape, [c.nLayers, c.nHeads])
        XCTAssertEqual(try g.dataset("items/id").readStrings(), items.map(\.id))
        let rows = obs.map(\.passages).reduce(0, +)
        XCTAssertEqual(try g.dataset("statement_passages/head_mass").shape, [rows, c.nLayers, c.nHeads])
        XCTAssertEqual(try g.dataset("retrieval_heads").read(Int64.self), [3, 0, 15, 2])
        // mass_all_heads is the mean of head_mass over heads
        let hm = try g.dataset("statement_passages/head_mass").read(Float.self)
        let all = try g.dataset("statement_passages/mass_all_heads").read(Double.self)
        let lh = c.nLayers * c.nHeads
        XCTAssertEqual(all[0], hm[0..<lh].reduce(0.0) { $0 + Double($1) } / Double(lh), accuracy: 1e-6)
        // The group's reader gives back what was written.
        let back = try XCTUnwrap(try CitationRunFile.read(f))
        XCTAssertEqual(back.layers, c.nLayers)
        XCTAssertEqual(back.statements, s.statements)
        XCTAssertEqual(back.wrongCitations, s.wrong)
        XCTAssertEqual(
            back.readouts.map(\.name),
            ["all_heads", "retrieval_heads", "best_head"]
                + (s.allHeadsPerToken == nil ? [] : ["all_heads_per_token"]))
        XCTAssertEqual(back.readouts[0].values["agreement"]?.estimate, s.allHeads.agreement.estimate)
        XCTAssertEqual(back.headAgreement.count, c.nLayers * c.nHeads)
        XCTAssertEqual(back.ranking, s.ranking)
        XCTAssertEqual(back.retrievalHeads, rh)
        XCTAssertEqual(back.itemRows.strings("id"), items.map(\.id))
        XCTAssertEqual(back.statementRows.count, results.map(\.statements.count).reduce(0, +))
        XCTAssertEqual(back.statementRows.ints("scored").filter { $0 == 1 }.count, s.statements)
        let passages = try RecordTable.read(
            group: try g.group("statement_passages"),
            columns: CitationRunFile.passageColumns(
                layers: c.nLayers, heads: c.nHeads,
                retrievalHeads: true))
        XCTAssertEqual(passages.count, rows)
        XCTAssertEqual(passages.floatBlocks("head_mass").first, Array(hm[0..<lh]))
    }

    /// --pad-to: distractors are added until the prompt reaches the target; citations follow.
    func testPaddingOnRealTokenizer() throws {
        let e = try env()
        let items = Array(try smoke().prefix(1))
        var opts = CitationRunOptions()
        opts.padTo = 900
        let runner = CitationRunner(model: e.model, tokenizer: e.tokenizer, chatTemplate: e.chat, options: opts)
        let pool = try CitationProbeFile.load(
            path: Self.root.appendingPathComponent("probes/citation/default.jsonl").path
        )
        .flatMap(\.passages)
        let p = try runner.padded(items[0], pool: pool, target: 900, index: 0)
        XCTAssertGreaterThanOrEqual(p.promptTokens, 900)
        XCTAssertLessThan(p.promptTokens, 1100)
        XCTAssertGreaterThan(p.item.passages.count, items[0].passages.count)
        let src = try XCTUnwrap(p.item.source)
        XCTAssertEqual(p.item.passages[src], items[0].passages[items[0].source!])
        let cited = CitationParser.statements(p.item.answer!)[0].citations[0] - 1
        let origCited = CitationParser.statements(items[0].answer!)[0].citations[0] - 1
        XCTAssertEqual(p.item.passages[cited], items[0].passages[origCited])
    }

    /// Generating B answers together (`decodeBatch`) gives every item exactly the output, statements
    /// and attention masses of generating it alone; items leave in the same order.
    func testBatchedGenerationEqualsOneAtATime() throws {
        let e = try env()
        let items = try smoke()
        func run(_ batch: Int) throws -> [CitationItemResult] {
            var opts = CitationRunOptions()
            opts.mode = .generate
            opts.maxNewTokens = 12
            opts.decodeBatch = batch
            return try CitationRunner(model: e.model, tokenizer: e.tokenizer, chatTemplate: e.chat, options: opts)
                .run(items)
        }
        let one = try run(1)
        XCTAssertEqual(one.count, items.count)
        for batch in [4] { // a batch of 4, then the last 2
            let got = try run(batch)
            XCTAssertEqual(got.map(\.item.id), one.map(\.item.id))
            for (a, b) in zip(got, one) {
                XCTAssertEqual(a.response, b.response, "batch \(batch) item \(a.item.id)")
                XCTAssertEqual(a.answerTokens, b.answerTokens)
                XCTAssertEqual(a.answerCorrect, b.answerCorrect)
                XCTAssertEqual(a.statements.map(\.text), b.statements.map(\.text))
                XCTAssertEqual(a.statements.map(\.tokens), b.statements.map(\.tokens))
                XCTAssertEqual(
                    a.observations.map { $0.mass.map(\.bitPattern) }, b.observations.map { $0.mass.map(\.bitPattern) },
                    "batch \(batch) item \(a.item.id): attention masses")
            }
        }
        XCTAssertGreaterThan(one.map(\.answerTokens).reduce(0, +), items.count, "answers are generated")
    }
}
