import Analysis
import Foundation
@testable import Notebooks
@testable import Reports
import TraceStore
import XCTest

/// Synthetic run files with every analysis group, in the layouts the writers use (RetrievalRunFile,
/// AblationRunFile, CitationRunFile, MembershipRunFile, CompositionRunFile, NeedleAttention; their
/// record tables through the analyses' own column lists), with a caller-chosen string in every
/// text field. The analyses' readers, which reports use, check every group.
enum SyntheticRuns {
    static let layers = 6, heads = 4

    static func scores() -> [Double] {
        var s = [Double](repeating: 0.01, count: layers * heads)
        s[3 * heads + 1] = 0.8
        s[4 * heads + 2] = 0.55
        s[2 * heads + 0] = 0.3
        s[5 * heads + 3] = 0.12
        s[1 * heads + 1] = .nan
        return s
    }

    static func header(_ text: String, command: String) -> RunFileHeader {
        RunFileHeader(
            headlightVersion: "0.1.0", command: command, commandLine: ["/x/headlight", command, text, "-o", "out.h5"],
            modelFile: "model-\(text).gguf", modelSize: 1, modelSHA256: String(repeating: "ab", count: 32),
            modelName: "Tiny \(text)", architecture: "llama",
            dimensions: ["n_layers": layers, "n_heads": heads, "n_key_value_heads": 2])
    }

    /// Writes a run file with the given groups ("retrieval", "ablation", "causal", "composition",
    /// "attention", "citation", "membership"); `text` goes into every string field.
    static func write(_ url: URL, text raw: String, groups: Set<String>, complete: Bool = true) throws {
        // HDF5 strings are C strings: NUL cannot be stored (the real writers drop it too).
        let text = raw.replacingOccurrences(of: "\0", with: "")
        let w = try RunFileWriter(path: url.path)
        let f = w.file
        try header(text, command: groups.sorted().joined(separator: "+")).write(to: f)
        try f.setAttribute("machine", "Linux \(text)")
        try f.setAttribute("blas_core", "Cooperlake")
        let L = layers, H = heads
        if groups.contains("retrieval") {
            let g = try f.createGroup(RetrievalRunFile.group)
            try g.setAttribute("analysis", "retrieval_heads")
            try g.setAttribute("analysis_version", 1)
            try g.setAttribute("n_layers", L)
            try g.setAttribute("n_heads", H)
            try g.setAttribute("threshold", 0.1)
            try g.setAttribute("suite_name", text)
            try g.setAttribute("suite", "{\"name\": \"\(text)\"}")
            try g.setAttribute("planned_trials", 9)
            if complete { try g.setAttribute("counted_trials", 5) }
            if complete { try g.createDataset("scores", data: scores(), shape: [L, H]) }
            let t = try RecordTable(
                group: try g.createGroup("trials"),
                columns: RetrievalRunFile.columns(layers: L, heads: H))
            var k = 0
            for l in [500, 1000, 2000] {
                for d in [0.0, 50, 100] {
                    let r = k == 4 ? Double.nan : Double((k * 37) % 101)
                    try t.append([
                        "trial_index": .int(k), "needle_id": .string(text), "needle_index": .int(0), "length": .int(l),
                        "depth": .double(d), "prompt_tokens": .int(l), "span_start": .int(10), "span_end": .int(20),
                        "response": .string("answer \(k) \(text)"), "generated_tokens": .int(3), "stop": .string(text),
                        "rouge1_recall": .double(r), "success": .int(r > 50 ? 1 : 0), "counted": .int(r > 50 ? 1 : 0),
                        "head_scores": .doubles(scores().map { $0.isNaN ? 0 : $0 * Double(k % 3) }),
                        "prefilled_tokens": .int(l), "seconds": .double(0.5)
                    ])
                    k += 1
                }
            }
        }
        if groups.contains("ablation") || groups.contains("causal") {
            // A top-K run ("ablation"), a --causal run ("causal" alone), or a top-K run with a
            // causal group too (both).
            let causalRun = !groups.contains("ablation")
            let g = try f.createGroup(AblationRunFile.group)
            let names =
                causalRun
                ? ["baseline", "ablate_2.0", "ablate_3.1", "ablate_4.2"]
                : ["baseline", "top4 \(text)", "control_1", "control_2"]
            let C = names.count, M = 3
            try g.setAttribute("analysis", "ablation")
            try g.setAttribute("analysis_version", 1)
            try g.setAttribute("condition_names", names)
            try g.setAttribute(
                "condition_heads",
                causalRun
                    ? ["", "2.0", "3.1", "4.2"]
                    : [
                        "", "3.1,4.2,2.0,5.3",
                        "0.0,0.1,1.2,2.3", "1.0,1.3,2.2,4.0"
                    ])
            try g.setAttribute(
                "condition_kinds",
                causalRun
                    ? ["baseline", "single", "single", "single"]
                    : ["baseline", "target", "control", "control"])
            try g.setAttribute("method", "uniform \(text)")
            try g.setAttribute("phase", "decode")
            try g.setAttribute("metrics", ["rouge1_recall_x100", "needlebench_v1", "exact_recovery_x100"])
            try g.setAttribute("level", 0.95)
            try g.setAttribute("trials", 9)
            try g.setAttribute("perplexity_tokens", causalRun ? 0 : 64)
            let targets = ["3.1", "4.2", "5.3"]
            if causalRun { try g.setAttribute("causal_targets", targets) }
            _ = try RecordTable(
                group: try g.createGroup("records"),
                columns: AblationRunFile.recordColumns(causalTargets: causalRun ? targets.count : 0))
            _ = try RecordTable(
                group: try g.createGroup("perplexity_records"),
                columns: AblationRunFile.perplexityColumns)
            let mean = [90.0, 20, 85, 88], lo = [80.0, 10, 75, 79], hi = [97.0, 31, 93, 95]
            func cm(_ v: [Double]) -> [Double] { v.flatMap { [$0, $0 / 2, .nan] } }
            try g.createDataset("mean", data: cm(mean), shape: [C, M])
            try g.createDataset("ci_lower", data: cm(lo), shape: [C, M])
            try g.createDataset("ci_upper", data: cm(hi), shape: [C, M])
            var cells: [Double] = []
            for c in 0..<C {
                for m in 0..<M {
                    for l in 0..<3 {
                        for d in 0..<3 {
                            cells.append(m == 0 ? (c == 1 ? Double(l * 10 + d) : 90 - Double(l + d)) : .nan)
                        }
                    }
                }
            }
            let ds = try g.createDataset("cells", data: cells, shape: [C, M, 3, 3])
            try ds.setAttribute("lengths", [500, 1000, 2000])
            try ds.setAttribute("depths", [0.0, 50, 100])
            if !causalRun {
                try g.createDataset("perplexity", data: [12.0, 12.4, 12.1, .infinity])
                try g.createDataset("perplexity_delta", data: [0.0, 0.4, 0.1, .nan])
                try g.createDataset("mean_nll", data: [2.48, 2.52, 2.49, .infinity])
                try g.createDataset(
                    "difference_target_vs_controls",
                    data: [-66.0, -75, -55, 0.001, 1, 2, 3, 4, 5, 6, 7, 8],
                    shape: [3, 4])
            }
            if groups.contains("causal") {
                let cg = try g.createGroup("causal")
                try cg.setAttribute("method", "zero \(text)")
                try cg.createDataset("sources", strings: ["2.0", "3.1", "4.2"])
                try cg.createDataset("targets", strings: targets)
                try cg.createDataset("baseline_scores", data: [0.8, 0.55, 0.12])
                try cg.createDataset("scores", data: [0.5, 0.54, 0.13, 0.8, 0.2, 0.05, 0.81, 0.55, 0.3], shape: [3, 3])
                try cg.createDataset("counted_trials", data: [Int64(5), 4, 5])
                try cg.setAttribute("baseline_counted_trials", 5)
            }
        }
        if groups.contains("composition") {
            let hs = [
                HeadIndex(layer: 2, head: 0), HeadIndex(layer: 3, head: 1), HeadIndex(layer: 4, head: 2),
                HeadIndex(layer: 5, head: 3)
            ]
            let n = hs.count
            var q = [[Double]](repeating: [Double](repeating: .nan, count: n), count: n)
            var k = q, v = q
            for i in 0..<n {
                for j in 0..<n where hs[i].layer < hs[j].layer {
                    q[i][j] = 0.05 + 0.02 * Double(i + j)
                    k[i][j] = 0.04 + 0.01 * Double(j)
                    v[i][j] = 0.2 - 0.03 * Double(i)
                }
            }
            let s = CompositionScores(
                heads: hs, q: q, k: k, v: v, baseline: [.q: 0.04, .k: 0.04, .v: 0.04], foldedNormGains: true)
            try CompositionRunFile.write(
                s, to: f, selection: "top 4 \(text)", headsSource: text, headScores: [0.3, 0.8, 0.55, 0.12],
                baselineDraws: 4)
        }
        if groups.contains("attention") {
            let n = 60
            let toks = (0..<n).map { i in i % 7 == 0 ? text : (i % 5 == 0 ? " tok\(i)\n" : "t\(i)") }
            try f.createDataset("tokens", data: (0..<n).map { Int32($0) })
            try f.createDataset("token_strings", strings: toks)
            let g = try f.createGroup(NeedleAttention.group)
            try g.setAttribute("analysis", "needle_attention")
            try g.setAttribute("analysis_version", 1)
            try g.setAttribute("heads", ["3.1", "4.2"])
            try g.setAttribute("span_start", 30)
            try g.setAttribute("span_end", 38)
            try g.setAttribute("query_positions", [50, 51, 52])
            try g.setAttribute("chosen_step", 1)
            try g.setAttribute("trial_index", 4)
            try g.setAttribute("length", 1000)
            try g.setAttribute("depth", 50.0)
            try g.setAttribute("needle_id", text)
            try g.setAttribute("response", text)
            try g.setAttribute("heads_source", text)
            var w = [Float](repeating: 0.001, count: 2 * 3 * n)
            w[(0 * 3 + 1) * n + 33] = 0.9
            w[(1 * 3 + 1) * n + 34] = 0.7
            w[(1 * 3 + 1) * n + 5] = .nan
            try g.createDataset("weights", data: w, shape: [2, 3, n])
        }
        if groups.contains("citation") {
            let g = try f.createGroup(CitationRunFile.group)
            try g.setAttribute("analysis", "citation")
            try g.setAttribute("analysis_version", 1)
            try g.setAttribute("n_layers", L)
            try g.setAttribute("n_heads", H)
            try g.setAttribute("mode", text)
            try g.setAttribute("n_items", 2)
            try g.setAttribute("n_statements", 3)
            try g.setAttribute("n_wrong_citations", 1)
            try g.setAttribute("n_consistent", 2)
            try g.setAttribute("chance_agreement", 0.25)
            let readouts = ["all_heads", "retrieval_heads", "best_head"]
            for (key, base) in zip(readouts, [0.6, 0.7, 0.9]) {
                for m in CitationRunData.metricNames {
                    try g.setAttribute("\(m)_\(key)", base - 0.1)
                    try g.setAttribute("\(m)_\(key)_ci", [base - 0.3, base + 0.05])
                }
                try g.setAttribute("agreement_all_statements_\(key)", base - 0.2)
            }
            try g.setAttribute("citation_recall", 0.6)
            try g.setAttribute("citation_precision", 0.4)
            try g.setAttribute("citation_f1", 0.5)
            try g.setAttribute("best_head", text)
            try g.setAttribute("best_head_held_out_agreement", 0.5)
            try RecordTable.write(
                group: try g.createGroup("items"), columns: CitationRunFile.itemColumns,
                rows: [("item \(text)", 2), ("b", 0)].enumerated().map { i, x in
                    [
                        "id": .string(x.0), "mode": .string(text), "line": .int(i + 1),
                        "n_passages": .int(3), "n_padded": .int(0),
                        "prompt_tokens": .int(100), "answer_tokens": .int(10), "response": .string(text),
                        "wrong_citation": .int(0),
                        "source": .int(x.1), "answer_correct": .int(-1), "cite_recall": .double(0.5),
                        "cite_precision": .double(0.5),
                        "cite_f1": .double(0.5), "seconds": .double(1)
                    ]
                })
            let statements: [(item: Int, text: String, cites: String, wrong: Int, argmax: Int)] = [
                (0, text, "1", 1, 2), (0, "ok", "2", 0, 1), (1, text + " wrong", text, 0, 0)
            ]
            try RecordTable.write(
                group: try g.createGroup("statements"),
                columns: CitationRunFile.statementColumns(readouts),
                rows: statements.map { st in
                    var row: [String: RecordTable.Value] = [
                        "item": .int(st.item), "text": .string(st.text), "citations": .string(st.cites),
                        "scored": .int(st.argmax > 0 ? 1 : 0), "wrong": .int(st.wrong), "token_start": .int(0),
                        "token_end": .int(4), "n_queries": .int(4)
                    ]
                    for r in readouts {
                        row["argmax_\(r)"] = .int(r == "all_heads" ? st.argmax : 0)
                        row["agree_\(r)"] = .int(0)
                        row["spearman_\(r)"] = .double(.nan)
                        row["point_biserial_\(r)"] = .double(.nan)
                    }
                    return row
                })
            try RecordTable.write(
                group: try g.createGroup("statement_passages"),
                columns: CitationRunFile.passageColumns(layers: L, heads: H, retrievalHeads: true),
                rows: [])
            var agr = [Double](repeating: 0.2, count: L * H)
            agr[7] = 0.9
            agr[8] = .nan
            try g.createDataset("head_agreement", data: agr, shape: [L, H])
            try g.createDataset("head_mean_spearman", data: agr.map { $0 - 0.1 }, shape: [L, H])
            for name in ["head_mean_point_biserial", "head_wrong_follows_citation", "head_wrong_follows_true_source"] {
                try g.createDataset(name, data: agr.map { $0 / 2 }, shape: [L, H])
            }
            try g.createDataset("head_ranking", data: [Int64(1), 3, 2, 0], shape: [2, 2])
            try g.createDataset("retrieval_heads", data: [Int64(3), 1], shape: [1, 2])
        }
        if groups.contains("membership") {
            let g = try f.createGroup(MembershipRunFile.group)
            try g.setAttribute("analysis", "membership")
            try g.setAttribute("analysis_version", 1)
            try g.setAttribute("caveat", "caveat \(text)")
            try g.setAttribute("set_name", text)
            try g.setAttribute("warnings", [text])
            try g.setAttribute("method_names", ["perplexity", "forest"])
            let labels = [1, 1, 1, 0, 0, 0, -1]
            try g.setAttribute("members", 3)
            try g.setAttribute("nonmembers", 3)
            try g.setAttribute("unlabeled", 1)
            let ppl = [10.0, 12, 11, 20, 22, .nan, 15], zlib = [1.0, 1.1, 1.2, 1.4, 1.5, 1.6, 1.3]
            try RecordTable.write(
                group: try g.createGroup("documents"), columns: MembershipRunFile.documentColumns,
                rows: labels.indices.map { i in
                    [
                        "name": .string("doc \(labels[i]) \(text)"), "source": .string(text), "label": .int(labels[i]),
                        "n_tokens": .int(100), "n_tokens_original": .int(100), "n_scored": .int(99),
                        "perplexity": .double(ppl[i]),
                        "zlib_ratio": .double(zlib[i]), "min_k_prob": .double(-Double(i)),
                        "mean_nll": .double(Double(i) / 3)
                    ]
                })
            let m = try g.createGroup("methods")
            for (name, auc) in [("perplexity", 0.83), ("forest", 0.61)] {
                let mg = try m.createGroup(name)
                try mg.setAttribute("label", "\(name) \(text)")
                try mg.setAttribute("kind", text)
                try mg.setAttribute("auc", auc)
                try mg.setAttribute("ci_lower", auc - 0.2)
                try mg.setAttribute("ci_upper", min(1, auc + 0.1))
                try mg.setAttribute("ci_level", 0.95)
                try mg.createDataset("fpr", data: [0.0, 0, 0.33, 0.66, 1])
                try mg.createDataset("tpr", data: [0.0, 0.33, 0.66, 1, 1])
                try mg.createDataset("thresholds", data: [Double.infinity, 0.9, 0.5, 0.2, 0.1])
            }
        }
        if complete {
            try w.finalize()
        } else {
            try w.checkpoint()
            try FileManager.default.copyItem(atPath: w.temporaryPath, toPath: url.path)
            try w.abandon()
        }
    }

    static let allGroups: Set<String> = [
        "retrieval", "ablation", "causal", "composition", "attention", "citation", "membership"
    ]
}

final class RunReportCommandTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("hl-runreport-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func load(
        _ name: String, text: String = "plain", groups: Set<String> = SyntheticRuns.allGroups
    ) throws -> RunFileContents {
        let url = dir.appendingPathComponent(name)
        try SyntheticRuns.write(url, text: text, groups: groups)
        return try RunFileContents.load(url)
    }

    static let expectedFigures: Set<String> = [
        "retrieval-heatmap", "needle-plain", "needle-attention", "ablation-needle-grids", "ablation-scores",
        "ablation-perplexity", "composition-graph", "causal-graph", "citation-agreement", "citation-correlation",
        "citation-head-agreement", "citation-wrong", "membership-roc-1", "membership-auc",
        "membership-feature-perplexity",
        "membership-feature-zlib_ratio", "membership-feature-mean_nll", "membership-feature-min_k_prob"
    ]

    func figureNames(_ doc: ReportDocument) -> Set<String> {
        Set(
            doc.figureFiles().map { ($0.path as NSString).lastPathComponent.replacingOccurrences(of: ".svg", with: "") }
        )
    }

    /// Every figure kind is drawn from a file holding every group, and the report is well formed.
    /// Also writes the report to $HL_RUNREPORT_DIR (default /tmp/hl-runreport) for
    /// scripts/screenshot-report.sh when no demo report exists.
    func testEveryFigureFromAFullRunFile() throws {
        let f = try load("all.h5")
        let doc = try RunReport.document([f], headlightVersion: "9.9", reportCommand: "headlight report all.h5 -o x")
        XCTAssertEqual(figureNames(doc), Self.expectedFigures)
        let html = doc.html()
        XCTAssertNil(unbalancedTags(html))
        for (path, fig) in doc.figureFiles() {
            let check = XMLCheck.parse(ReportDocument.inlineSVG(fig.svg))
            XCTAssertTrue(check.ok, "\(path): \(check.error ?? "")")
            XCTAssertFalse(check.elements(named: "title").isEmpty, "\(path) has no title")
        }
        XCTAssertGreaterThanOrEqual(html.components(separatedBy: "<table>").count - 1, 6)
        XCTAssertTrue(html.contains("Reproducibility"))
        let out = URL(fileURLWithPath: ProcessInfo.processInfo.environment["HL_RUNREPORT_DIR"] ?? "/tmp/hl-runreport")
        let index = try doc.write(to: out)
        print("synthetic run report: \(index.path)")
    }

    /// Hostile text in every string field of every group: escaped in HTML and SVG, never able to
    /// add nodes or edges to a Graphviz graph, control characters shown as control pictures.
    func testHostileTextIsEscapedEverywhere() throws {
        for (i, text) in Hostile.strings.enumerated() {
            let f = try load("h\(i).h5", text: text)
            let doc = try RunReport.document([f], headlightVersion: "9.9", reportCommand: "headlight report \(text)")
            XCTAssertEqual(figureNames(doc), Self.expectedFigures, "input #\(i)")
            let html = doc.html()
            XCTAssertFalse(Hostile.hasRawScript(html), "raw <script> for input #\(i)")
            XCTAssertNil(unbalancedTags(html), "input #\(i)")
            let check = XMLCheck.parse(html.replacingOccurrences(of: "<!DOCTYPE html>", with: ""))
            XCTAssertTrue(check.ok, "index.html is not XML for input #\(i): \(check.error ?? "")")
            for s in html.unicodeScalars where s.value < 0x20 && s != "\n" && s != "\t" {
                XCTFail("raw control character U+\(String(s.value, radix: 16)) for input #\(i)")
                break
            }
            for (path, fig) in doc.figureFiles() {
                let c = XMLCheck.parse(ReportDocument.inlineSVG(fig.svg))
                XCTAssertTrue(c.ok, "\(path) for input #\(i): \(c.error ?? "")")
                if path.contains("causal-graph") || path.contains("composition-graph") {
                    // Graphviz: 4 head nodes + 4 layer captions, whatever the strings say.
                    XCTAssertEqual(c.elements(withClass: "node").count, 8, "\(path) nodes for input #\(i)")
                }
            }
            if text == Hostile.dotBreakout {
                let causal = doc.figureFiles().first { $0.path.contains("causal") }!.figure.svg
                XCTAssertTrue(causal.contains("zero &quot;]; a -&gt; b [label=&quot;"), "graph title kept literally")
            }
        }
    }

    /// Figures are drawn only when their data is there.
    func testFiguresNeedTheirData() throws {
        let retrieval = try load("r.h5", groups: ["retrieval"])
        XCTAssertEqual(
            figureNames(try RunReport.document([retrieval], headlightVersion: "1")),
            ["retrieval-heatmap", "needle-plain"])

        let membership = try load("m.h5", groups: ["membership"])
        let m = figureNames(try RunReport.document([membership], headlightVersion: "1"))
        XCTAssertFalse(m.isEmpty)
        XCTAssertTrue(m.allSatisfy { $0.hasPrefix("membership-") })

        let ablation = try load("a.h5", groups: ["ablation"])
        XCTAssertEqual(
            figureNames(try RunReport.document([ablation], headlightVersion: "1")),
            ["ablation-needle-grids", "ablation-scores", "ablation-perplexity"])

        let plain = try load("p.h5", groups: [])
        let doc = try RunReport.document([plain], headlightVersion: "1")
        XCTAssertTrue(doc.figureFiles().isEmpty)
        XCTAssertTrue(doc.html().contains("Other run files"))

        // A group without the layout its writer gives it is an error naming the object, not a crash
        // nor a silently missing figure.
        let url = dir.appendingPathComponent("empty-group.h5")
        let w = try RunFileWriter(path: url.path)
        let g = try w.file.createGroup("retrieval_heads")
        try g.setAttribute("n_layers", 2)
        try w.finalize()
        XCTAssertThrowsError(try RunFileContents.load(url)) { e in
            XCTAssertTrue(e.localizedDescription.contains("/retrieval_heads @n_heads"), e.localizedDescription)
        }
        // Likewise a record table missing a column, and per-condition attributes of the wrong length.
        let t = dir.appendingPathComponent("no-column.h5")
        try SyntheticRuns.write(t, text: "x", groups: ["retrieval"])
        do {
            let f = try H5File.openForAppend(t.path)
            try f.remove("retrieval_heads/trials/stop")
            try f.close()
        }
        XCTAssertThrowsError(try RunFileContents.load(t)) { e in
            XCTAssertEqual(
                e as? RecordTableError,
                .missingColumn(file: t.path, table: "/retrieval_heads/trials", column: "stop"))
        }
        let k = dir.appendingPathComponent("kinds.h5")
        try SyntheticRuns.write(k, text: "x", groups: ["ablation"])
        do {
            let f = try H5File.openForAppend(k.path)
            try f.group("ablation").setAttribute("condition_kinds", ["baseline"])
            try f.close()
        }
        XCTAssertThrowsError(try RunFileContents.load(k)) { e in
            XCTAssertTrue(
                e.localizedDescription.contains("/ablation @condition_kinds: 1 values for 4 conditions"),
                e.localizedDescription)
        }
    }

    /// An unfinished detection run: scores averaged from the stored trial records, with a note.
    func testIncompleteRunUsesTrialRecords() throws {
        let url = dir.appendingPathComponent("partial.h5")
        try SyntheticRuns.write(url, text: "x", groups: ["retrieval"], complete: false)
        XCTAssertThrowsError(try RunFileContents.load(url, allowIncomplete: false))
        let f = try RunFileContents.load(url)
        XCTAssertFalse(f.complete)
        XCTAssertEqual(f.retrieval?.fromTrials, true)
        let html = try RunReport.document([f], headlightVersion: "1").html()
        XCTAssertTrue(html.contains("INCOMPLETE"))
        XCTAssertTrue(html.contains("did not finish"))
    }

    /// The reproducibility block names the version, model and hash, commands, date and BLAS kernel.
    func testReproducibilityBlock() throws {
        let a = try load("one.h5", groups: ["retrieval"])
        let b = try load("two.h5", groups: ["membership"])
        let pairs = RunReport.reproducibility(
            [a, b], headlightVersion: "9.9", reportCommand: "headlight report one.h5 two.h5 -o r",
            date: Date(timeIntervalSince1970: 0), machine: "Linux test, OpenBLAS kernel Cooperlake")
        let text = pairs.map { "\($0.key)=\($0.value)" }.joined(separator: "\n")
        XCTAssertTrue(text.contains("headlight (report)=9.9"), text)
        XCTAssertTrue(text.contains("model=model-plain.gguf, sha256 " + String(repeating: "ab", count: 32)), text)
        XCTAssertTrue(text.contains("run file one.h5=headlight retrieval plain -o out.h5"), text)
        XCTAssertTrue(text.contains("run file two.h5=headlight membership"), text)
        XCTAssertTrue(text.contains("BLAS Cooperlake"), text)
        XCTAssertTrue(text.contains("date=1970-01-01T00:00:00Z"), text)
        XCTAssertTrue(text.contains("report command=headlight report one.h5 two.h5 -o r"), text)
    }

    /// The notebook provider draws the same figures per run file.
    func testNotebookFigureProvider() throws {
        let provider = RunReportFigureProvider()
        let cell = NotebookCell(number: 1, fenceLine: 1, line: 2, source: "x", arguments: ["x"])
        let r = dir.appendingPathComponent("r.h5")
        try SyntheticRuns.write(r, text: "x", groups: ["retrieval"])
        func names(_ b: [ReportDocument.Block]) -> [String] {
            b.compactMap {
                if case .figure(let f) = $0 { return f.name }
                return nil
            }
        }
        XCTAssertEqual(names(try provider.blocks(forRunFile: r, cell: cell)), ["retrieval-heatmap", "needle-plain"])
        let c = dir.appendingPathComponent("c.h5")
        try SyntheticRuns.write(c, text: "x", groups: ["causal", "composition"])
        // A --causal ablation run: its needle grids and single-head bars, then the graphs.
        XCTAssertEqual(
            names(try provider.blocks(forRunFile: c, cell: cell)),
            ["ablation-needle-grids", "ablation-scores", "composition-graph", "causal-graph"])
        let bad = dir.appendingPathComponent("bad.h5")
        try Data("not hdf5".utf8).write(to: bad)
        guard case .note = try provider.blocks(forRunFile: bad, cell: cell).first else {
            return XCTFail("expected a note for an unreadable file")
        }
    }

    /// Side-by-side panels: one SVG root, each panel translated, one title of its own.
    func testPanelsCombine() {
        let a = NeedleGrid(title: "A", contextLengths: [1000, 2000], depths: [0, 100], scores: [[100, 50], [0, .nan]])
            .svg()
        let b = NeedleGrid(title: "B", contextLengths: [1000], depths: [0], scores: [[10]]).svg()
        let svg = SVGPanels.combine([a, b, a, b], title: "Panels", subtitle: "sub", columns: 3)
        let c = XMLCheck.parse(svg)
        XCTAssertTrue(c.ok, c.error ?? "")
        XCTAssertEqual(c.elements(named: "svg").count, 1)
        XCTAssertEqual(svg.components(separatedBy: "translate(").count - 1, 4)
        XCTAssertEqual(c.texts["title"]?.first, "Panels")
    }
}

/// Composition scores against a brute-force computation with the full D × D matrices.
final class CompositionReportCommandTests: XCTestCase {
    func matmul(_ a: [Double], _ b: [Double], _ n: Int, _ k: Int, _ m: Int) -> [Double] {
        var c = [Double](repeating: 0, count: n * m)
        for i in 0..<n { for t in 0..<k { for j in 0..<m { c[i * m + j] += a[i * k + t] * b[t * m + j] } } }
        return c
    }

    func transpose(_ a: [Double], _ r: Int, _ c: Int) -> [Double] {
        var t = [Double](repeating: 0, count: r * c)
        for i in 0..<r { for j in 0..<c { t[j * r + i] = a[i * c + j] } }
        return t
    }

    func fro(_ a: [Double]) -> Double { a.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    func testMatchesBruteForce() {
        let dh = 3, D = 7
        var seed: UInt64 = 42
        func r() -> [Double] {
            (0..<(dh * D)).map { _ in
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                return Double(Int64(bitPattern: seed >> 11) % 2000) / 1000 - 1
            }
        }
        let a = (q: r(), k: r(), v: r(), ot: r()), b = (q: r(), k: r(), v: r(), ot: r())
        let s = Composition.scores(writer: a, reader: b, dh: dh, D: D)
        // Full matrices: W_QK = Qᵀ K, W_OV = Vᵀ Oᵀ (each D × D).
        let qkB = matmul(transpose(b.q, dh, D), b.k, D, dh, D)
        let ovA = matmul(transpose(a.v, dh, D), a.ot, D, dh, D)
        let ovB = matmul(transpose(b.v, dh, D), b.ot, D, dh, D)
        let q = fro(matmul(ovA, qkB, D, D, D)) / (fro(ovA) * fro(qkB))
        let k = fro(matmul(qkB, transpose(ovA, D, D), D, D, D)) / (fro(qkB) * fro(ovA))
        let v = fro(matmul(ovA, ovB, D, D, D)) / (fro(ovA) * fro(ovB))
        print("composition: q \(s.q) vs \(q), k \(s.k) vs \(k), v \(s.v) vs \(v)")
        XCTAssertEqual(s.q, q, accuracy: 1e-9)
        XCTAssertEqual(s.k, k, accuracy: 1e-9)
        XCTAssertEqual(s.v, v, accuracy: 1e-9)
        XCTAssertTrue((0...1).contains(s.q) && (0...1).contains(s.k) && (0...1).contains(s.v))
    }

    func testRunFileRoundTrip() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("hl-comp-\(UUID().uuidString).h5")
        defer { try? FileManager.default.removeItem(at: url) }
        let hs = [HeadIndex(layer: 1, head: 0), HeadIndex(layer: 2, head: 3)]
        let s = CompositionScores(
            heads: hs, q: [[.nan, 0.3], [.nan, .nan]], k: [[.nan, 0.2], [.nan, .nan]],
            v: [[.nan, 0.1], [.nan, .nan]], baseline: [.q: 0.05, .k: 0.06, .v: 0.07], foldedNormGains: true)
        let w = try RunFileWriter(path: url.path)
        try CompositionRunFile.write(
            s, to: w.file, selection: "test", headsSource: nil, headScores: [0.5, 0.4], baselineDraws: 2)
        try w.finalize()
        let f = try RunFile.open(url.path)
        let back = try XCTUnwrap(try CompositionRunFile.read(f))
        try f.close()
        XCTAssertEqual(back.scores.heads, hs)
        XCTAssertEqual(back.scores.q[0][1], 0.3)
        XCTAssertTrue(back.scores.q[1][0].isNaN)
        XCTAssertEqual(back.scores.baseline[.v], 0.07)
        XCTAssertEqual(back.headScores, [0.5, 0.4])
        XCTAssertEqual(back.scores.pairs().first?.kind, .q)
    }
}
