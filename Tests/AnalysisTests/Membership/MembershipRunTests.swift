import Foundation
import GGUF
import Inference
import TraceStore
import XCTest
@testable import Analysis

/// A fake model: the logits of window row r depend only on the window's tokens 0...r (a fresh
/// context per window), and every call is recorded.
final class FakeWindowLogits: WindowLogitsSource {
    let vocabularySize: Int
    var calls: [(tokens: [Int32], rows: Range<Int>)] = []
    init(vocabularySize: Int = 7) { self.vocabularySize = vocabularySize }

    /// Logits of a row given its context: token (sum of context) % V gets log(3), the token
    /// after it log(2), the rest 0.
    static func logits(context: ArraySlice<Int32>, v: Int) -> [Float] {
        var l = [Float](repeating: 0, count: v)
        let s = Int(context.reduce(0, +)) % v
        l[s] = Float(Foundation.log(3.0))
        l[(s + 1) % v] = Float(Foundation.log(2.0))
        return l
    }

    /// The exact NLL and p_max of `target` under `logits(context:)`.
    static func expected(context: ArraySlice<Int32>, target: Int32, v: Int) -> (nll: Double, pMax: Double) {
        let s = Int(context.reduce(0, +)) % v
        let z = 3.0 + 2.0 + Double(v - 2)
        let p = Int(target) == s ? 3 / z : Int(target) == (s + 1) % v ? 2 / z : 1 / z
        return (-Foundation.log(p), 3 / z)
    }

    func logits(
        window tokens: [Int32], rows: Range<Int>, _ body: (Int, UnsafeBufferPointer<Float>) throws -> Void
    ) throws {
        calls.append((tokens, rows))
        for r in rows {
            let l = Self.logits(context: tokens[0...r], v: vocabularySize)
            try l.withUnsafeBufferPointer { try body(r, $0) }
        }
    }
}

final class MembershipRunTests: XCTestCase {
    // MARK: Windowing

    func testMeeusWindowsOverlapByOneToken() {
        let w = MembershipWindowing.windows(tokenCount: 300, window: 128, stride: 127)
        XCTAssertEqual(
            w,
            [
                MembershipWindow(start: 0, count: 128, firstScored: 1),
                MembershipWindow(start: 127, count: 128, firstScored: 128),
                MembershipWindow(start: 254, count: 46, firstScored: 255)
            ])
        // Every row of every window is used: 127 predictions per full window.
        XCTAssertEqual(w.map(\.rows), [0..<127, 0..<127, 0..<45])
        // The last token of window k is the first (context-only) token of window k + 1.
        XCTAssertEqual(w[0].end - 1, w[1].start)
        XCTAssertEqual(w[1].end - 1, w[2].start)
    }

    func testSmallerStrideGivesMoreContext() {
        let w = MembershipWindowing.windows(tokenCount: 200, window: 128, stride: 64)
        XCTAssertEqual(
            w,
            [
                MembershipWindow(start: 0, count: 128, firstScored: 1),
                MembershipWindow(start: 64, count: 128, firstScored: 128),
                MembershipWindow(start: 128, count: 72, firstScored: 192)
            ])
        XCTAssertEqual(w[1].rows, 63..<127) // tokens 128..<192, each with >= 64 tokens of context
        XCTAssertEqual(w[2].rows, 63..<71)
    }

    func testEdgeCases() {
        XCTAssertEqual(MembershipWindowing.windows(tokenCount: 0, window: 128, stride: 127), [])
        XCTAssertEqual(MembershipWindowing.windows(tokenCount: 1, window: 128, stride: 127), [])
        XCTAssertEqual(
            MembershipWindowing.windows(tokenCount: 2, window: 128, stride: 127),
            [MembershipWindow(start: 0, count: 2, firstScored: 1)])
        XCTAssertEqual(MembershipWindowing.windows(tokenCount: 128, window: 128, stride: 127).count, 1)
        XCTAssertEqual(
            MembershipWindowing.windows(tokenCount: 129, window: 128, stride: 127),
            [
                MembershipWindow(start: 0, count: 128, firstScored: 1),
                MembershipWindow(start: 127, count: 2, firstScored: 128)
            ])
    }

    func testEveryTokenScoredExactlyOnceWithContext() {
        let sizes = [0, 1, 2, 3, 5, 17, 127, 128, 129, 255, 256, 1000, 2000]
        let shapes: [(Int, Int)] = [(128, 127), (128, 64), (128, 1), (2, 1), (16, 5), (16, 15), (64, 32)]
        for n in sizes {
            for (window, stride) in shapes {
                let ws = MembershipWindowing.windows(tokenCount: n, window: window, stride: stride)
                var seen = [Int](repeating: 0, count: max(n, 1))
                for (k, w) in ws.enumerated() {
                    XCTAssertEqual(w.start, k * stride)
                    XCTAssertLessThanOrEqual(w.count, window)
                    XCTAssertLessThanOrEqual(w.end, n)
                    XCTAssertGreaterThan(w.firstScored, w.start, "a scored token needs context")
                    XCTAssertEqual(w.rows.count, w.scored.count)
                    if k > 0 { XCTAssertGreaterThanOrEqual(w.firstScored - w.start, window - stride) }
                    for t in w.scored { seen[t] += 1 }
                }
                if n >= 2 {
                    XCTAssertEqual(seen[0], 0)
                    XCTAssertEqual(
                        Array(seen[1..<n]), [Int](repeating: 1, count: n - 1), "n \(n) w \(window) s \(stride)")
                    XCTAssertEqual(ws.last?.end, n)
                } else {
                    XCTAssertTrue(ws.isEmpty)
                }
            }
        }
    }

    // MARK: Token scores

    func testLogitsRowHandComputed() {
        // softmax([0, log 2, log 3, 0]) = [1, 2, 3, 1] / 7
        let row: [Float] = [0, Float(log(2.0)), Float(log(3.0)), 0]
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 4)
        defer { scratch.deallocate() }
        var acc = [Double](repeating: 0, count: 4)
        let s = row.withUnsafeBufferPointer { r in
            acc.withUnsafeMutableBufferPointer { a in
                LogitsRow.statistics(r, target: 2, scratch: scratch, probabilityAccumulator: a.baseAddress)
            }
        }
        XCTAssertEqual(s.nll, -log(3.0 / 7), accuracy: 1e-6)
        XCTAssertEqual(s.pMax, 3.0 / 7, accuracy: 1e-6)
        let expected: [Double] = [1.0 / 7, 2.0 / 7, 3.0 / 7, 1.0 / 7]
        for (a, e) in zip(acc, expected) { XCTAssertEqual(a, e, accuracy: 1e-6) }
    }

    func testLogitsRowAgainstDoublePrecision() {
        var g = SeededGenerator(seed: 7)
        let v = 49152
        var row = [Float](repeating: 0, count: v)
        for j in 0..<v { row[j] = Float(SeededRandom.unitDouble(using: &g) * 20 - 10) }
        row[17] = 19 // a peaked distribution like a real model's: p_max ~ 0.6
        let m = Double(row.max()!)
        var sum = 0.0
        for x in row { sum += exp(Double(x) - m) }
        let lse = m + log(sum)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: v)
        defer { scratch.deallocate() }
        for target in [0, 17, v - 1] {
            let s = row.withUnsafeBufferPointer { LogitsRow.statistics($0, target: target, scratch: scratch) }
            XCTAssertEqual(s.nll, lse - Double(row[target]), accuracy: 1e-6)
            XCTAssertEqual(s.pMax, exp(m - lse), accuracy: 1e-6 * exp(m - lse))
            XCTAssertGreaterThan(s.pMax, 0.3)
        }
    }

    func testScoreDocumentWithFakeModel() throws {
        let v = 7
        let tokens: [Int32] = (0..<40).map { (i: Int) -> Int32 in Int32((i * 5 + 3) % 7) }
        let fake = FakeWindowLogits(vocabularySize: v)
        let s = try MembershipScoring.scoreDocument(
            tokens: tokens, window: 8, stride: 5, source: fake,
            accumulateProbabilities: true)
        let windows = MembershipWindowing.windows(tokenCount: 40, window: 8, stride: 5)
        XCTAssertEqual(fake.calls.count, windows.count)
        for (c, w) in zip(fake.calls, windows) {
            XCTAssertEqual(c.tokens, Array(tokens[w.start..<w.end]))
            XCTAssertEqual(c.rows, w.rows)
        }
        XCTAssertEqual(s.targets, tokens[1...].map { Int($0) })
        XCTAssertEqual(s.count, 39)
        XCTAssertEqual(s.windowRanges.map { $0.count }, windows.map { $0.scored.count })
        XCTAssertEqual(s.forwardTokens, windows.reduce(0) { $0 + $1.count })
        // Each token scored from its own window's context only.
        var k = 0
        for w in windows {
            for t in w.scored {
                let e = FakeWindowLogits.expected(context: tokens[w.start..<t], target: tokens[t], v: v)
                XCTAssertEqual(s.nll[k], e.nll, accuracy: 1e-6, "token \(t)")
                XCTAssertEqual(s.pMax[k], e.pMax, accuracy: 1e-6)
                k += 1
            }
        }
        // The probability sum: each row sums to 1.
        XCTAssertEqual(s.probabilitySum!.reduce(0, +), 39, accuracy: 1e-6)
    }

    func testScoreDocumentsInParallelMatchesSerial() throws {
        var docs: [[Int32]] = []
        for d in 0..<9 {
            let n = 20 + 7 * d
            docs.append((0..<n).map { (i: Int) -> Int32 in Int32((i * 3 + d) % 11) })
        }
        let serial = try MembershipScoring.scoreDocuments(
            docs, window: 8, stride: 7, workers: 1,
            makeSource: { _ in FakeWindowLogits(vocabularySize: 11) })
        var last = 0
        let parallel = try MembershipScoring.scoreDocuments(
            docs, window: 8, stride: 7, workers: 3,
            makeSource: { _ in FakeWindowLogits(vocabularySize: 11) },
            progress: { p in last = p.documentsDone })
        XCTAssertEqual(last, 9)
        XCTAssertEqual(serial.map { $0.nll }, parallel.map { $0.nll })
        XCTAssertEqual(serial.map { $0.targets }, docs.map { $0.dropFirst().map { Int($0) } })
    }

    // MARK: Baselines and evaluation

    func makeDoc(
        _ name: String, label: Bool?, nll: [[Double]], texts: [String]? = nil, token: Int = 1
    ) -> MembershipScoredDocument {
        var s = DocumentTokenScores()
        for w in nll {
            let b = s.targets.count
            s.targets += [Int](repeating: token, count: w.count)
            s.nll += w
            s.pMax += [Double](repeating: 0.5, count: w.count)
            s.windowRanges.append(b..<s.targets.count)
        }
        let text = texts?.joined() ?? String(repeating: "x = 1\n", count: 10)
        let windowTexts = texts ?? [String](repeating: "abc", count: nll.count)
        return MembershipScoredDocument(
            name: name, label: label, source: name,
            tokens: [Int32](repeating: 1, count: s.count + 1), originalTokenCount: s.count + 1,
            scores: s, text: text, windowTexts: windowTexts)
    }

    func testBaselinesHandComputed() {
        // Two windows: NLLs [1, 3] and [2]; texts "abc" (zlib: 11 bytes), "" (8 bytes).
        let d = makeDoc("d", label: true, nll: [[1, 3], [2]], texts: ["abc", ""])
        let b = MembershipBaselineScores.compute(d, minK: 0.5)
        XCTAssertEqual(b.perplexity, (exp(2.0) + exp(2.0)) / 2, accuracy: 1e-12)
        XCTAssertEqual(b.zlibRatio, (2.0 / 11 + 2.0 / 8) / 2, accuracy: 1e-12)
        // Min-50%: window 1 -> the lowest log-prob of 2 = -3; window 2 -> -2 (at least one token).
        XCTAssertEqual(b.minKProb, (-3.0 + -2.0) / 2, accuracy: 1e-12)
        XCTAssertEqual(b.meanNLL, 2, accuracy: 1e-12)
    }

    func testEvaluateSeparableSets() throws {
        var docs: [MembershipScoredDocument] = []
        var g = SeededGenerator(seed: 3)
        for i in 0..<20 {
            let member = i % 2 == 0
            let base: Double = member ? 1.0 : 2.0
            var nll: [[Double]] = []
            for _ in 0..<3 {
                var w: [Double] = []
                for _ in 0..<20 { w.append(base + SeededRandom.unitDouble(using: &g) * 0.5) }
                nll.append(w)
            }
            docs.append(makeDoc("doc\(i)", label: member, nll: nll, token: member ? 1 : 2))
        }
        docs.append(makeDoc("unlabeled", label: nil, nll: [[1.1, 1.2]]))
        var c = MembershipConfig()
        c.folds = 4
        c.bootstrapResamples = 200
        let e = try MembershipAnalysis.evaluate(docs, config: c)
        XCTAssertEqual(
            e.methods.map { $0.name },
            [
                "classifier_none", "classifier_ratio", "classifier_max",
                "perplexity", "zlib_ratio", "min_k_prob", "blind_surface"
            ])
        XCTAssertEqual(e.labeled.count, 20)
        XCTAssertEqual(e.unlabeled, [20])
        for name in ["classifier_none", "perplexity", "min_k_prob"] {
            XCTAssertEqual(e.method(name)!.auc.estimate, 1, accuracy: 1e-12, name)
        }
        for m in e.methods {
            XCTAssertEqual(m.roc.area, m.auc.estimate, accuracy: 1e-12, m.name)
            XCTAssertEqual(m.scores.count, 20)
            XCTAssertTrue(m.auc.lower <= m.auc.estimate && m.auc.estimate <= m.auc.upper, m.name)
            if m.kind != "baseline" { XCTAssertEqual(m.foldAUCs?.count, 4) }
        }
        // Identical texts: the blind classifier gives every document of a fold the same score
        // (its training prior), so it separates nothing within a fold.
        XCTAssertEqual(e.method("blind_surface")!.foldAUCs!, [0.5, 0.5, 0.5, 0.5])
        // The unlabeled document (low NLL) looks like a member to the classifier fit on all.
        XCTAssertGreaterThan(e.method("classifier_none")!.unlabeledScores![0], 0.5)

        var forest = c
        forest.classifier = .forest
        forest.forestTrees = 50
        forest.features = .histogram
        forest.histogramBins = 10
        let f = try MembershipAnalysis.evaluate(docs, config: forest)
        XCTAssertEqual(f.method("classifier_none")!.auc.estimate, 1, accuracy: 1e-12)
    }

    func testEvaluateNeedsBothClasses() {
        var docs: [MembershipScoredDocument] = (0..<4).map { makeDoc("d\($0)", label: true, nll: [[1, 2]]) }
        docs.append(makeDoc("n", label: false, nll: [[1]]))
        XCTAssertThrowsError(try MembershipAnalysis.evaluate(docs, config: MembershipConfig())) { e in
            XCTAssertTrue("\(e)".contains("at least 2 members and 2 non-members"), "\(e)")
        }
        // Unlabeled only: baselines, no methods.
        let unlabeled = docs.map { (d: MembershipScoredDocument) -> MembershipScoredDocument in
            var x = d
            x.label = nil
            return x
        }
        let e = try? MembershipAnalysis.evaluate(unlabeled, config: MembershipConfig())
        XCTAssertEqual(e?.methods.count, 0)
        XCTAssertEqual(e?.baselines.count, 5)
    }

    func testReferenceDistributions() {
        var a = makeDoc("a", label: true, nll: [[1, 1]], token: 3)
        var b = makeDoc("b", label: false, nll: [[1, 1]], token: 5)
        let tf = MembershipAnalysis.referenceDistribution([a, b], train: [0], kind: .tf)
        XCTAssertEqual(tf(3), 1)
        XCTAssertEqual(tf(5), 0.5) // unseen: min / 2
        a.scores.probabilitySum = [0.2, 1.8] // two positions
        b.scores.probabilitySum = [1.0, 1.0]
        let gp = MembershipAnalysis.referenceDistribution([a, b], train: [0, 1], kind: .gp)
        XCTAssertEqual(gp(0), 0.3, accuracy: 1e-12)
        XCTAssertEqual(gp(1), 0.7, accuracy: 1e-12)
    }

    func testSurfaceFeaturesHandComputed() {
        let f = MembershipSurfaceFeatures.compute("# c\n\n    x = 1\n", tokens: 4)
        let byName = Dictionary(uniqueKeysWithValues: zip(MembershipSurfaceFeatures.names, f))
        XCTAssertEqual(byName["chars"], 15)
        XCTAssertEqual(byName["lines"], 4) // the empty line after the last newline counts
        XCTAssertEqual(byName["blank_line_ratio"], 0.5)
        XCTAssertEqual(byName["comment_line_ratio"], 0.25)
        XCTAssertEqual(byName["mean_indent"], 2) // (0 + 4) / 2 non-blank lines
        XCTAssertEqual(byName["max_line_length"], 9)
        XCTAssertEqual(byName["digit_ratio"], 1.0 / 15)
        XCTAssertEqual(byName["chars_per_token"], 15.0 / 4)
    }

    // MARK: Inputs

    func tempDir() throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("hl-membership-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: u) }
        return u
    }

    func testJSONLParsing() throws {
        let text = "{\"text\": \"a\", \"name\": \"x\"}\n\n{\"text\": \"b\", \"id\": 7}\n{\"text\": \"c\"}\n"
        let ok = try MembershipInput.parseJSONL(Data(text.utf8), source: "f.jsonl", label: true)
        XCTAssertEqual(ok.map { $0.name }, ["x", "7", "line-4"])
        XCTAssertEqual(ok.map { $0.text }, ["a", "b", "c"])
        XCTAssertEqual(ok[2].source, "f.jsonl:4")
        XCTAssertThrowsError(
            try MembershipInput.parseJSONL(
                Data("{\"text\": \"a\"}\n{\"text\": \n".utf8), source: "f.jsonl", label: true)
        ) {
            XCTAssertEqual(($0 as? MembershipInputError)?.message, "f.jsonl:2: malformed JSON line")
        }
        XCTAssertThrowsError(
            try MembershipInput.parseJSONL(Data("{\"body\": \"a\"}\n".utf8), source: "f.jsonl", label: nil)
        ) {
            XCTAssertEqual(($0 as? MembershipInputError)?.message, "f.jsonl:1: missing \"text\" string")
        }
        XCTAssertThrowsError(try MembershipInput.parseJSONL(Data("[1]\n".utf8), source: "g", label: nil))
    }

    func testDirectoriesAndSetFiles() throws {
        let dir = try tempDir()
        let fm = FileManager.default
        try fm.createDirectory(at: dir.appendingPathComponent("m/sub"), withIntermediateDirectories: true)
        try fm.createDirectory(at: dir.appendingPathComponent("m/.hidden"), withIntermediateDirectories: true)
        try "one".write(to: dir.appendingPathComponent("m/b.py"), atomically: true, encoding: .utf8)
        try "two".write(to: dir.appendingPathComponent("m/sub/a.py"), atomically: true, encoding: .utf8)
        try "no".write(to: dir.appendingPathComponent("m/.hidden/c.py"), atomically: true, encoding: .utf8)
        try "no".write(to: dir.appendingPathComponent("m/.d.py"), atomically: true, encoding: .utf8)
        let docs = try MembershipInput.load(path: dir.appendingPathComponent("m").path, label: true)
        XCTAssertEqual(docs.map { $0.name }, ["b.py", "sub/a.py"])
        XCTAssertEqual(docs.map { $0.text }, ["one", "two"])

        try fm.createDirectory(at: dir.appendingPathComponent("empty"), withIntermediateDirectories: true)
        XCTAssertThrowsError(try MembershipInput.load(path: dir.appendingPathComponent("empty").path, label: true)) {
            XCTAssertTrue("\($0)".contains("no documents"), "\($0)")
        }
        XCTAssertThrowsError(try MembershipInput.load(path: dir.appendingPathComponent("nope").path, label: true)) {
            XCTAssertTrue("\($0)".contains("no such file or directory"), "\($0)")
        }

        // A set: members by root + files (with a placeholder), non-members by path.
        try "{\"text\": \"n1\"}\n{\"text\": \"n2\"}\n".write(
            to: dir.appendingPathComponent("n.jsonl"), atomically: true, encoding: .utf8)
        try #"{"root": "{here}/m", "files": [{"path": "sub/a.py", "sha256": "abc"}, "b.py"]}"#
            .write(to: dir.appendingPathComponent("members.json"), atomically: true, encoding: .utf8)
        try
            (#"{"name": "t", "members": {"manifest": "members.json"}, "nonmembers": {"path": "n.jsonl"}, "#
            + #""max_tokens_per_doc": 50}"#)
            .write(to: dir.appendingPathComponent("set.json"), atomically: true, encoding: .utf8)
        let here = dir.path
        let s = try MembershipInput.loadSet(
            path: dir.appendingPathComponent("set.json").path,
            placeholders: ["{here}": { here }])
        XCTAssertEqual(s.name, "t")
        XCTAssertEqual(s.maxTokensPerDocument, 50)
        XCTAssertEqual(s.members.map { $0.name }, ["sub/a.py", "b.py"])
        XCTAssertEqual(s.members.map { $0.label }, [true, true])
        XCTAssertEqual(s.members[0].expectedSHA256, "abc")
        XCTAssertEqual(s.nonmembers.map { $0.text }, ["n1", "n2"])
        XCTAssertEqual(s.nonmembers.map { $0.label }, [false, false])

        // Missing files: an error naming the count, with the manifest's hint.
        try #"{"root": "{here}/m", "hint": "fetch them", "files": ["b.py", "gone.py"]}"#
            .write(to: dir.appendingPathComponent("members.json"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(
            try MembershipInput.loadSet(
                path: dir.appendingPathComponent("set.json").path,
                placeholders: ["{here}": { here }])
        ) { e in
            let err = e as? MembershipInputError
            XCTAssertTrue(err?.message.contains("1 of 2 files missing") == true, "\(e)")
            XCTAssertEqual(err?.hint, "fetch them")
        }
    }

    /// The shipped set file parses and names 60 + 60 documents (the files themselves are not needed).
    func testShippedSetFileIsWellFormed() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("probes/membership")
        let set =
            try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("default.json")))
            as! [String: Any]
        XCTAssertEqual(set["max_tokens_per_doc"] as? Int, 2000)
        for (name, expectedRoot) in [
            ("members.json", "{python-stdlib}"), ("nonmembers.json", "{cache}/membership/nonmembers")
        ] {
            let m =
                try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent(name)))
                as! [String: Any]
            XCTAssertEqual(m["root"] as? String, expectedRoot)
            let files = m["files"] as! [[String: Any]]
            XCTAssertEqual(files.count, 60, name)
            XCTAssertEqual(Set(files.map { $0["path"] as! String }).count, 60)
            XCTAssertTrue(files.allSatisfy { ($0["sha256"] as? String)?.count == 64 })
            if name == "nonmembers.json" {
                XCTAssertTrue(
                    files.allSatisfy { ["MIT", "BSD", "Apache-2.0"].contains($0["license"] as? String ?? "") })
                XCTAssertTrue(files.allSatisfy { ($0["first_release"] as? String ?? "") >= "2025-01" })
            }
        }
    }

    // MARK: Run file

    func testRunFileLayout() throws {
        var docs: [MembershipScoredDocument] = []
        for i in 0..<8 {
            let shift: Double = i < 4 ? 0 : 0.5
            let first: Double = Double(i % 4) + shift
            docs.append(makeDoc("d\(i)", label: i < 4, nll: [[first, 1]]))
        }
        docs.append(makeDoc("u", label: nil, nll: [[1]]))
        var c = MembershipConfig()
        c.folds = 2
        c.bootstrapResamples = 50
        c.normalizations = [.none, .ratio]
        let e = try MembershipAnalysis.evaluate(docs, config: c)
        let r = MembershipRunResult(
            setName: "tiny", setPath: nil, config: c, documents: docs, evaluation: e,
            scoringSeconds: 2, workers: 1)
        let path = try tempDir().appendingPathComponent("m.h5").path
        let w = try RunFileWriter(path: path)
        try MembershipRunFile.write(r, to: w.file)
        try w.finalize()
        let f = try RunFile.open(path)
        let g = try f.group("membership")
        XCTAssertEqual(try g.stringAttribute("analysis"), "membership")
        XCTAssertEqual(try g.intAttribute("window"), 128)
        XCTAssertEqual(try g.stringsAttribute("normalizations"), ["none", "ratio"])
        XCTAssertEqual(try g.intAttribute("tokens_scored"), 17)
        XCTAssertEqual(
            try g.stringsAttribute("method_names"),
            ["classifier_none", "classifier_ratio", "perplexity", "zlib_ratio", "min_k_prob", "blind_surface"])
        XCTAssertTrue(try g.stringAttribute("caveat").contains("distribution"))
        XCTAssertEqual(try f.dataset("membership/documents/name").readStrings(), docs.map { $0.name })
        XCTAssertEqual(try f.dataset("membership/documents/label").read(Int64.self), [1, 1, 1, 1, 0, 0, 0, 0, -1])
        XCTAssertEqual(
            try f.dataset("membership/documents/surface_features").shape, [9, MembershipSurfaceFeatures.names.count])
        let ppl = try f.dataset("membership/documents/score.perplexity").read(Double.self)
        XCTAssertEqual(ppl.count, 9)
        XCTAssertEqual(ppl[8], -e.baselines[8].perplexity)
        let cls = try f.dataset("membership/documents/score.classifier_none").read(Double.self)
        XCTAssertEqual(Array(cls[0..<8]), e.method("classifier_none")!.scores)
        XCTAssertEqual(cls[8], e.method("classifier_none")!.unlabeledScores![0])
        let m = try f.group("membership/methods/perplexity")
        XCTAssertEqual(try m.doubleAttribute("auc"), e.method("perplexity")!.auc.estimate)
        XCTAssertEqual(
            try f.dataset("membership/methods/perplexity/fpr").read(Double.self), e.method("perplexity")!.roc.fpr)
        XCTAssertEqual(try f.dataset("membership/methods/blind_surface/tpr").read(Double.self).last, 1)
        XCTAssertEqual(try f.group("membership/methods/classifier_ratio").doublesAttribute("fold_aucs").count, 2)
        // The group's reader gives back what was written.
        let back = try XCTUnwrap(try MembershipRunFile.read(f))
        XCTAssertEqual(back.methods.map(\.name), e.methods.map(\.name))
        XCTAssertEqual(back.methods.first { $0.name == "perplexity" }?.auc, e.method("perplexity")!.auc.estimate)
        XCTAssertEqual(
            back.methods.first { $0.name == "perplexity" }?.thresholds,
            e.method("perplexity")!.roc.thresholds)
        XCTAssertEqual(back.labels, [1, 1, 1, 1, 0, 0, 0, 0, -1])
        XCTAssertEqual(back.names, docs.map { $0.name })
        XCTAssertEqual(back.documents.doubles("zlib_ratio"), e.baselines.map(\.zlibRatio))
        XCTAssertEqual(back.documents.ints("n_scored"), docs.map { $0.scores.count })
        XCTAssertEqual([back.members, back.nonmembers, back.unlabeled], [4, 4, 1])
        XCTAssertEqual(back.setName, "tiny")
    }

    // MARK: Real model

    static var modelURL: URL { DefaultModel.url }

    /// Windowed scores from the real model equal NLLs computed in double precision from the
    /// full logits of each window run on its own.
    func testRealModelWindowScoresMatchFullLogits() throws {
        let url = Self.modelURL
        guard FileManager.default.fileExists(atPath: url.path) else { throw XCTSkip("model not found at \(url.path)") }
        let gguf = try GGUFFile(url: url)
        let tok = try Tokenizer(gguf: gguf)
        let model = try Model(gguf: gguf)
        let text =
            "def fib(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    a, b = 0, 1\n    for _ in range(n):\n"
            + "        a, b = b, a + b\n    return a\n"
        let ids = tok.encode(text, addSpecial: true, parseSpecial: false)
        XCTAssertGreaterThan(ids.count, 40)
        let source = SessionWindowLogits(session: InferenceSession(model: model, maxContext: 16))
        let s = try MembershipScoring.scoreDocument(tokens: ids, window: 16, stride: 12, source: source)
        XCTAssertEqual(s.count, ids.count - 1)
        let check = model.makeSession(maxContext: 16)
        var k = 0
        for w in MembershipWindowing.windows(tokenCount: ids.count, window: 16, stride: 12) {
            check.reset()
            let logits = try check.prefillAllLogits(tokens: Array(ids[w.start..<w.end]))
            for t in w.scored {
                let row = logits[t - 1 - w.start].map { Double($0) }
                let m = row.max()!
                var sum = 0.0
                for x in row { sum += exp(x - m) }
                let lse = m + log(sum)
                // Tolerances: the output head's GEMM runs on 15 rows here and 16 there, so the
                // float32 logits themselves differ by ~1e-6 relative (~2e-5 absolute).
                XCTAssertEqual(s.nll[k], lse - row[Int(ids[t])], accuracy: 1e-4, "token \(t)")
                XCTAssertEqual(s.pMax[k], exp(m - lse), accuracy: 5e-5 * exp(m - lse))
                k += 1
            }
        }
        XCTAssertEqual(k, s.count)
        // Plausible values for code: mean NLL between 0.1 and 5 nats.
        let mean = s.nll.reduce(0, +) / Double(s.count)
        XCTAssertTrue(mean > 0.1 && mean < 5, "\(mean)")
    }
}
