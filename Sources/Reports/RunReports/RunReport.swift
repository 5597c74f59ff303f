// Reports built from run files (`headlight report RUN.h5... -o reports/NAME/`) and the figure
// provider the notebook runner uses for the run files its cells produce.
//
// Each analysis group is read by its analysis' reader (Sources/Analysis: RetrievalRunFile,
// AblationRunFile, CompositionRunFile, NeedleAttention, CitationRunFile, MembershipRunFile;
// the one definition of its layout) and drawn by a figure builder returning report blocks:
//   /retrieval_heads   RetrievalFigures   heat map (layers × heads, > threshold outlined), top-heads
//                                         table, needle plot of the plain model, failed trials
//   /ablation          AblationFigures    needle plots per condition side by side, score bars with
//                                         95% CIs (top-K vs random controls), perplexity change
//   /kv_policy         KVPolicyFigures    accuracy and perplexity vs KV memory (Pareto: top-N retrieval
//                                         heads vs random heads vs uniform window), needle grids, table
//   /ablation/causal   HeadGraphFigures   causal graph among the top heads (single-head ablations)
//   /composition       HeadGraphFigures   weight-based Q/K/V composition graph (Graphviz)
//   /needle_attention  AttentionFigures   attention of the top heads around the needle
//   /citation          CitationFigures    agreement / correlation bars, per-head heat map and
//                                         ranking, wrong-citation cases
//   /membership        MembershipFigures  ROC curves with AUC + CI, AUC bars, feature histograms
//   /lens              LensFigures        logit lens (top-1 probability, tokens), logit difference by
//                                         layer, direct logit attribution per head
//   /query_heads       QueryHeadsFigures  QRScore heat map (Wu heads outlined), top-N overlap with Wu et
//                                         al. vs chance, re-ranking recall@k curves, recall/nDCG/MRR table
//   /sparsity_profile  SparsityFigures    top-k share and sink-mass heat maps, head-median curves vs
//                                         context length, summary table
//   /captures          TraceFigures       (headlight trace) interactive attention viewer, head grid,
//                                         per-layer patterns with token labels, top-k, span mass,
//                                         residual norms (TraceCaptureData reads and bins them)
// A figure is drawn only when its data is present; a file with none of these groups gives a
// summary of its root attributes.
import Analysis
import Foundation
import TraceStore

/// Everything a report needs from one run file.
public struct RunFileContents: Sendable {
    public var url: URL
    public var provenance: RunFileProvenance
    public var retrieval: RetrievalRunData?
    public var ablation: AblationRunData?
    public var kvPolicy: KVPolicyRunData?
    public var causal: CausalHeadData?
    public var composition: (scores: CompositionScores, headScores: [Double]?, note: String?)?
    public var attention: NeedleAttentionData?
    public var citation: CitationRunData?
    public var membership: MembershipRunData?
    public var lens: LensRunData?
    public var queryHeads: QueryHeadsRunFile.Contents?
    public var sparsity: SparsityRunFile.Contents?
    /// The drawable captures of a `headlight trace` file (nil without `/captures` or when none
    /// of its captures has a figure).
    public var trace: TraceCaptureData?
    /// The prompts of a batch trace file (`/inputs/NAME`, `trace --prompts`), in file order.
    public var traceInputs: [TraceInputData] = []
    /// Top-level groups and datasets.
    public var children: [String]
    public var complete: Bool

    public var hasAnalysis: Bool {
        retrieval != nil || ablation != nil || kvPolicy != nil || causal != nil || composition != nil
            || attention != nil || citation != nil || membership != nil || lens != nil || trace != nil
            || !traceInputs.isEmpty || queryHeads != nil || sparsity != nil
    }

    /// Opens and reads `url`. Throws when the file is not a readable run file, or when one of its
    /// analysis groups does not have the layout its writer gives it (the error names the object).
    public static func load(_ url: URL, allowIncomplete: Bool = true) throws -> RunFileContents {
        let f = try RunFile.open(url.path, allowIncomplete: allowIncomplete)
        defer { try? f.close() }
        // Each group through its analysis' reader; a file that did not finish is read as such.
        let complete = RR.int(f, RunFile.Attr.complete) == 1
        let ablation = try AblationRunFile.read(f, allowIncomplete: !complete)
        return RunFileContents(
            url: url, provenance: RunFileProvenance.read(f, url: url),
            retrieval: try RetrievalRunFile.read(f, allowIncomplete: !complete).flatMap(RetrievalRunData.init),
            ablation: ablation.map(AblationRunData.init),
            kvPolicy: try KVPolicyRunFile.read(f, allowIncomplete: !complete).map(KVPolicyRunData.init),
            causal: ablation?.causal.flatMap { $0.sources.isEmpty || $0.targets.isEmpty ? nil : CausalHeadData($0) },
            composition: try CompositionRunFile.read(f),
            attention: try NeedleAttention.read(f).flatMap(NeedleAttentionData.init),
            citation: try CitationRunFile.read(f).map(CitationRunData.init),
            membership: try MembershipRunFile.read(f).flatMap(MembershipRunData.init),
            lens: try LensRunFile.read(f),
            queryHeads: try QueryHeadsRunFile.read(f),
            sparsity: try SparsityRunFile.read(f),
            trace: try TraceCaptureData.read(f, maxBins: TraceFigures.maxBins).flatMap { $0.isEmpty ? nil : $0 },
            traceInputs: try TraceInputData.readAll(f, maxBins: TraceFigures.maxBins),
            children: RR.children(f), complete: complete)
    }
}

public enum RunReport {
    /// Topic sections in report order: (heading, blocks).
    public static func sections(_ files: [RunFileContents]) throws -> [(String, [ReportDocument.Block])] {
        var out: [(String, [ReportDocument.Block])] = []
        let retrieval = files.first { $0.retrieval != nil }?.retrieval
        var retrievalScores: [HeadIndex: Double] = [:]
        if let r = retrieval { for x in r.ranked { retrievalScores[x.head] = x.score } }

        var blocks: [ReportDocument.Block] = []
        for f in files {
            if let r = f.retrieval {
                blocks += RetrievalFigures.blocks(r, source: f.provenance.fileName, attention: .init(f.provenance))
            }
        }
        if !blocks.isEmpty { out.append(("Retrieval heads", blocks)) }

        blocks = []
        for f in files {
            if let t = f.trace { blocks += TraceFigures.blocks(t, source: f.provenance.fileName) }
            if !f.traceInputs.isEmpty {
                blocks += TraceFigures.batchBlocks(f.traceInputs, source: f.provenance.fileName)
            }
        }
        if !blocks.isEmpty { out.append(("Attention and activations (trace)", blocks)) }

        blocks = []
        for f in files {
            if let a = f.attention { blocks += AttentionFigures.blocks(a, source: f.provenance.fileName) }
        }
        if !blocks.isEmpty { out.append(("Attention around the needle", blocks)) }

        blocks = []
        for f in files {
            if let a = f.ablation {
                blocks += AblationFigures.blocks(a, plain: retrieval, source: f.provenance.fileName)
            }
        }
        if !blocks.isEmpty { out.append((ablationHeading(files.compactMap(\.ablation)), blocks)) }

        blocks = []
        for f in files {
            if let k = f.kvPolicy { blocks += KVPolicyFigures.blocks(k, source: f.provenance.fileName) }
        }
        if !blocks.isEmpty {
            out.append(("KV-cache policies: retrieval heads vs random heads vs uniform window", blocks))
        }

        blocks = []
        for f in files {
            if let c = f.composition {
                blocks += try HeadGraphFigures.compositionBlocks(
                    c.scores, headScores: c.headScores ?? c.scores.heads.map { retrievalScores[$0] ?? .nan },
                    note: c.note, source: f.provenance.fileName)
            }
        }
        for f in files {
            if let c = f.causal {
                blocks += try HeadGraphFigures.causalBlocks(
                    c, retrievalScores: retrievalScores, source: f.provenance.fileName)
            }
        }
        if !blocks.isEmpty { out.append(("Head graphs", blocks)) }

        blocks = []
        for f in files { if let c = f.citation { blocks += CitationFigures.blocks(c, source: f.provenance.fileName) } }
        if !blocks.isEmpty { out.append(("Citation and attention", blocks)) }

        blocks = []
        for f in files {
            if let q = f.queryHeads { blocks += QueryHeadsFigures.blocks(q, source: f.provenance.fileName) }
        }
        if !blocks.isEmpty { out.append(("Query-focused retrieval heads", blocks)) }

        blocks = []
        for f in files {
            if let p = f.sparsity { blocks += SparsityFigures.blocks(p, source: f.provenance.fileName) }
        }
        if !blocks.isEmpty { out.append(("Attention-sparsity profile", blocks)) }

        blocks = []
        for f in files {
            if let m = f.membership { blocks += MembershipFigures.blocks(m, source: f.provenance.fileName) }
        }
        if !blocks.isEmpty { out.append(("Membership inference", blocks)) }

        blocks = []
        for f in files { if let l = f.lens { blocks += LensFigures.blocks(l, source: f.provenance.fileName) } }
        if !blocks.isEmpty { out.append(("Logit lens and direct logit attribution", blocks)) }

        let plain = files.filter { !$0.hasAnalysis }
        if !plain.isEmpty {
            blocks = []
            for f in plain {
                blocks += RunFileSummary().blocks(forRunFile: f.url)
            }
            out.append(("Other run files", blocks))
        }
        return out
    }

    /// The ablation section's heading, naming what its runs compared: top-K vs random controls,
    /// single heads one at a time (`--causal`), or chosen heads.
    static func ablationHeading(_ runs: [AblationRunData]) -> String {
        let kinds = Set(runs.flatMap { $0.conditions.map(\.kind) })
        if kinds.contains("control") { return "Ablation: top-K retrieval heads vs random heads" }
        if kinds.contains("single") { return "Ablation: one head at a time (causal graph runs)" }
        return "Ablation: chosen heads vs no ablation"
    }

    /// Reproducibility pairs: Headlight version, model file and sha256, the commands that produced
    /// the run files, dates, machine (BLAS kernel). `machine` describes where the report is built
    /// (the CLI adds its OpenBLAS kernel, `RunProvenance.machineSummary()`); each run file's own
    /// machine and kernel come from its attributes.
    public static func reproducibility(
        _ files: [RunFileContents], headlightVersion: String, reportCommand: String?,
        date: Date = Date(), machine: String = RunFile.machineDescription()
    )
        -> [(key: String, value: String)]
    {
        var r: [(key: String, value: String)] = [("headlight (report)", headlightVersion)]
        var models: [String] = []
        for f in files {
            let p = f.provenance
            let m = [p.modelFile ?? p.modelName, p.modelSHA256.map { "sha256 \($0)" }].compactMap { $0 }.joined(
                separator: ", ")
            if !m.isEmpty && !models.contains(m) { models.append(m) }
        }
        for (i, m) in models.enumerated() { r.append((models.count == 1 ? "model" : "model \(i + 1)", m)) }
        for f in files {
            let p = f.provenance
            r.append(("run file \(p.fileName)", p.commandText ?? "(command not recorded)"))
            var facts: [String] = []
            if let v = p.headlightVersion { facts.append("headlight \(v)") }
            if let c = p.created { facts.append("started \(c)") }
            if let e = p.finished { facts.append("finished \(e)") }
            if !f.complete { facts.append("INCOMPLETE") }
            if let m = p.machine { facts.append("machine \(m)") }
            if let b = p.blasKernel { facts.append("BLAS \(b)") }
            if !facts.isEmpty { r.append(("  \(p.fileName)", facts.joined(separator: ", "))) }
        }
        if let reportCommand { r.append(("report command", reportCommand)) }
        r.append(("date", RunFile.timestamp(date)))
        r.append(("machine", machine))
        return r
    }

    /// A complete report document for `files`.
    public static func document(
        _ files: [RunFileContents], title: String? = nil, headlightVersion: String,
        reportCommand: String? = nil, date: Date = Date(),
        machine: String = RunFile.machineDescription()
    ) throws -> ReportDocument {
        let model = files.compactMap { $0.provenance.modelName ?? $0.provenance.modelFile }.first
        let topic: String
        if files.contains(where: { $0.retrieval != nil || $0.ablation != nil }) {
            topic = "Retrieval heads"
        } else if files.contains(where: { $0.citation != nil }) {
            topic = "Citation and attention"
        } else if files.contains(where: { $0.queryHeads != nil }) {
            topic = "Query-focused retrieval heads"
        } else if files.contains(where: { $0.sparsity != nil }) {
            topic = "Attention-sparsity profile"
        } else if files.contains(where: { $0.membership != nil }) {
            topic = "Membership inference"
        } else if files.contains(where: { $0.lens != nil }) {
            topic = "Logit lens"
        } else if files.contains(where: { $0.trace != nil || !$0.traceInputs.isEmpty }) {
            topic = "Attention trace"
        } else {
            topic = "Headlight report"
        }
        var doc = ReportDocument(
            title: title ?? (model.map { "\(topic) — \($0)" } ?? topic),
            subtitle: "Built from \(files.count) run file\(files.count == 1 ? "" : "s"): "
                + files.map(\.provenance.fileName).joined(separator: ", "))
        doc.footer =
            "Generated by Headlight \(headlightVersion). Every number and figure here comes from the run files listed "
            + "under Reproducibility."
        for (heading, blocks) in try sections(files) {
            var s = ReportDocument.Section(heading)
            s.blocks = blocks
            doc.sections.append(s)
        }
        if doc.sections.isEmpty {
            var s = ReportDocument.Section("Contents")
            s.note("None of the run files holds data a figure can be drawn from.")
            doc.sections.append(s)
        }
        doc.reproducibility = reproducibility(
            files, headlightVersion: headlightVersion, reportCommand: reportCommand,
            date: date, machine: machine)
        return doc
    }
}

/// The figures of `headlight report` for one run file at a time: the notebook runner's figure
/// provider (Notebooks makes it a `NotebookFigureProvider`). Keeps the retrieval scores of
/// earlier files, so later graphs can colour their nodes by retrieval score.
public final class RunReportFigureProvider {
    private var retrievalScores: [HeadIndex: Double] = [:]
    private var plain: RetrievalRunData?
    /// Shown as a file's machine when the file does not record one (the machine running now).
    public let machine: String

    public init(machine: String = RunFile.machineDescription()) {
        self.machine = machine
    }

    public func blocks(forRunFile url: URL) throws -> [ReportDocument.Block] {
        let f: RunFileContents
        do {
            f = try RunFileContents.load(url)
        } catch {
            return [
                .note(
                    "\(url.lastPathComponent): not a readable Headlight run file "
                        + "(\((error as? LocalizedError)?.errorDescription ?? "\(error)"))."
                )
            ]
        }
        guard f.hasAnalysis else { return RunFileSummary().blocks(forRunFile: url) }
        var out: [ReportDocument.Block] = []
        let name = f.provenance.fileName
        if let r = f.retrieval {
            plain = r
            for x in r.ranked { retrievalScores[x.head] = x.score }
            out.append(.subheading("Retrieval heads (\(name))"))
            out += RetrievalFigures.blocks(r, source: name, attention: .init(f.provenance))
        }
        if let t = f.trace {
            out.append(.subheading("Attention and activations (\(name))"))
            out += TraceFigures.blocks(t, source: name)
        }
        if !f.traceInputs.isEmpty {
            out.append(.subheading("Attention and activations (\(name), \(f.traceInputs.count) prompts)"))
            out += TraceFigures.batchBlocks(f.traceInputs, source: name)
        }
        if let a = f.attention {
            out.append(.subheading("Attention around the needle (\(name))"))
            out += AttentionFigures.blocks(a, source: name)
        }
        if let a = f.ablation {
            out.append(.subheading("Ablation (\(name))"))
            out += AblationFigures.blocks(a, plain: plain, source: name)
        }
        if let k = f.kvPolicy {
            out.append(.subheading("KV-cache policies (\(name))"))
            out += KVPolicyFigures.blocks(k, source: name)
        }
        if let c = f.composition {
            out.append(.subheading("Composition graph (\(name))"))
            out += try HeadGraphFigures.compositionBlocks(
                c.scores, headScores: c.headScores ?? c.scores.heads.map { retrievalScores[$0] ?? .nan },
                note: c.note, source: name)
        }
        if let c = f.causal {
            out.append(.subheading("Causal graph (\(name))"))
            out += try HeadGraphFigures.causalBlocks(c, retrievalScores: retrievalScores, source: name)
        }
        if let c = f.citation {
            out.append(.subheading("Citation and attention (\(name))"))
            out += CitationFigures.blocks(c, source: name)
        }
        if let q = f.queryHeads {
            out.append(.subheading("Query-focused retrieval heads (\(name))"))
            out += QueryHeadsFigures.blocks(q, source: name)
        }
        if let p = f.sparsity {
            out.append(.subheading("Attention-sparsity profile (\(name))"))
            out += SparsityFigures.blocks(p, source: name)
        }
        if let m = f.membership {
            out.append(.subheading("Membership inference (\(name))"))
            out += MembershipFigures.blocks(m, source: name)
        }
        var facts: [(key: String, value: String)] = [("run file", name)]
        if let cmd = f.provenance.commandText { facts.append(("command", cmd)) }
        let model = [f.provenance.modelFile, f.provenance.modelSHA256.map { "sha256 \($0)" }].compactMap { $0 }.joined(
            separator: ", ")
        if !model.isEmpty { facts.append(("model", model)) }
        if let v = f.provenance.headlightVersion { facts.append(("headlight", v)) }
        facts.append(
            (
                "machine",
                f.provenance.machine.map { m in m + (f.provenance.blasKernel.map { ", OpenBLAS kernel \($0)" } ?? "") }
                    ?? machine
            ))
        out.append(.keyValues(title: "Provenance of \(name)", pairs: facts))
        return out
    }
}
