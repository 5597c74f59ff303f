import Foundation
import Inference
import TraceStore

// Document-level membership inference, end to end (Meeus et al. 2024, "Did the Neurons Read
// your Book?"): token scores in sliding windows (MembershipScoring.swift), normalization and
// document features (Features.swift), a meta-classifier under stratified k-fold
// cross-validation (Classifiers.swift), reference-free baselines, a "blind" surface-feature
// baseline, ROC AUCs with bootstrap CIs, and the run file.

/// Reference distribution lambda for the ratio / max normalizations.
public enum MembershipReference: String, Sendable, CaseIterable {
    /// Token frequencies counted over the training split of each fold.
    case tf
    /// General probability: the model's mean softmax over every scored position of the
    /// training split of each fold.
    case gp
}

public enum MembershipFeatureKind: String, Sendable, CaseIterable {
    /// The 14 aggregates of `MembershipFeatures.aggregates`.
    case aggregates
    /// Histogram densities with edges fit on each training split.
    case histogram
}

public enum MembershipClassifierKind: String, Sendable, CaseIterable {
    case logreg, forest
}

public struct MembershipConfig: Sendable {
    public var window = 128
    public var stride = 127
    public var reference = MembershipReference.tf
    public var normalizations: [MembershipNormalization] = MembershipNormalization.allCases
    public var features = MembershipFeatureKind.aggregates
    /// Histogram bins (the paper used 1000, its code defaults to 100).
    public var histogramBins = 100
    public var classifier = MembershipClassifierKind.logreg
    public var folds = 5
    public var seed: UInt64 = 0
    /// Min-K% fraction, 0.05...0.6.
    public var minK = 0.2
    /// Token budget per document (BOS included if the model adds one); longer documents are cut.
    public var maxTokensPerDocument = 2000
    public var bootstrapResamples = Statistics.defaultBootstrapResamples
    public var forestTrees = 500

    public init() {}

    /// Checks the parameters; the message names the option at fault.
    public func validate() throws {
        func bad(_ s: String) -> MembershipInputError { MembershipInputError(s) }
        guard window >= 2 else { throw bad("--window must be at least 2 (got \(window))") }
        guard stride >= 1 && stride < window else {
            throw bad(
                "--stride must be in 1..<window so every scored token has context (got \(stride) with window \(window))"
            )
        }
        guard (0.05...0.6).contains(minK) else { throw bad("--min-k must be in 0.05...0.6 (got \(minK))") }
        guard folds >= 2 else { throw bad("--folds must be at least 2 (got \(folds))") }
        guard maxTokensPerDocument >= 2 else { throw bad("--max-tokens-per-doc must be at least 2") }
        guard histogramBins >= 1 else { throw bad("--bins must be at least 1") }
        guard bootstrapResamples >= 1 else { throw bad("--bootstrap must be at least 1") }
        guard !normalizations.isEmpty else { throw bad("no normalization chosen") }
    }
}

/// One document after scoring.
public struct MembershipScoredDocument: Sendable {
    public var name: String
    public var label: Bool?
    public var source: String
    /// Tokens fed to the model (after the per-document budget).
    public var tokens: [Int32]
    /// Token count before the budget was applied.
    public var originalTokenCount: Int
    public var scores: DocumentTokenScores
    /// Text of the scored tokens (`tokens` decoded), for surface features.
    public var text: String
    /// Per window, the text of the tokens it scored (for the zlib ratio).
    public var windowTexts: [String]

    public init(
        name: String, label: Bool?, source: String, tokens: [Int32], originalTokenCount: Int,
        scores: DocumentTokenScores, text: String, windowTexts: [String]
    ) {
        self.name = name
        self.label = label
        self.source = source
        self.tokens = tokens
        self.originalTokenCount = originalTokenCount
        self.scores = scores
        self.text = text
        self.windowTexts = windowTexts
    }

    /// Builds the texts from a decoder (e.g. `Tokenizer.decode`).
    public init(
        document: MembershipDocument, tokens: [Int32], originalTokenCount: Int,
        scores: DocumentTokenScores, decode: ([Int32]) -> String
    ) {
        let windowTexts = scores.windowRanges.map { r in decode(scores.targets[r].map { Int32($0) }) }
        self.init(
            name: document.name, label: document.label, source: document.source, tokens: tokens,
            originalTokenCount: originalTokenCount, scores: scores, text: decode(tokens),
            windowTexts: windowTexts)
    }
}

/// Reference-free baselines of one document: each is computed per window (over the tokens the
/// window scored) and averaged over the document's windows with equal weight.
public struct MembershipBaselineScores: Sendable, Equatable {
    /// Mean over windows of exp(mean NLL).
    public var perplexity: Double
    /// Mean over windows of log(ppl) / zlib-compressed length of the window's text.
    public var zlibRatio: Double
    /// Mean over windows of the Min-K% prob (mean log-prob of the k% least likely tokens).
    public var minKProb: Double
    /// Mean NLL over all scored tokens of the document.
    public var meanNLL: Double

    public static func compute(_ d: MembershipScoredDocument, minK: Double) -> MembershipBaselineScores {
        var ppl: [Double] = [], zlib: [Double] = [], mink: [Double] = []
        for (w, r) in d.scores.windowRanges.enumerated() where !r.isEmpty {
            let nll = Array(d.scores.nll[r])
            let p = MembershipBaselines.perplexity(nll: nll)
            ppl.append(p)
            let text = w < d.windowTexts.count ? d.windowTexts[w] : ""
            zlib.append(MembershipBaselines.zlibRatio(perplexity: p, text: text))
            mink.append(MembershipBaselines.minKPercentProb(nll: nll, fraction: minK))
        }
        return MembershipBaselineScores(
            perplexity: Statistics.mean(ppl), zlibRatio: Statistics.mean(zlib),
            minKProb: Statistics.mean(mink), meanNLL: Statistics.mean(d.scores.nll))
    }
}

/// The AUC of one method over the labeled documents.
public struct MembershipMethodResult: Sendable {
    /// Identifier used in the run file and JSON, e.g. `classifier_ratio`, `perplexity`, `blind_surface`.
    public var name: String
    /// Human label for the summary.
    public var label: String
    /// `classifier`, `baseline` or `blind`.
    public var kind: String
    /// Score per labeled document (out-of-fold for classifiers), higher = more likely a member.
    public var scores: [Double]
    /// Pooled AUC of `scores` with its stratified-bootstrap CI.
    public var auc: ConfidenceInterval
    /// Per-fold AUCs (classifiers only).
    public var foldAUCs: [Double]?
    public var roc: ROCCurve
    /// Scores of the unlabeled documents, if any (classifiers: fit on every labeled document).
    public var unlabeledScores: [Double]?
}

public struct MembershipEvaluation: Sendable {
    /// Indices (into the scored documents) of the labeled and unlabeled documents.
    public var labeled: [Int]
    public var unlabeled: [Int]
    public var labels: [Bool]
    public var folds: [Int]?
    public var methods: [MembershipMethodResult]
    public var baselines: [MembershipBaselineScores]
    /// Surface features per document (`MembershipSurfaceFeatures.names`).
    public var surface: [[Double]]

    public func method(_ name: String) -> MembershipMethodResult? { methods.first { $0.name == name } }
    public var blindAUC: Double? { method("blind_surface")?.auc.estimate }
}

public enum MembershipAnalysis {
    /// The caveat printed next to every AUC.
    public static let caveat = """
        Member and non-member sets drawn from different times or sources can differ in \
        distribution (topics, APIs, style, length), so an AUC above 0.5 is not by itself evidence \
        of memorization; the blind baseline (a classifier on surface features of the text, no \
        model) shows how much of it that shift alone explains.
        """

    /// Refuses a labeled set the classifiers cannot be trained and cross-validated on: fewer than
    /// 2 members or 2 non-members, or more folds than labeled documents. `qualifier` says which
    /// documents were counted (e.g. " with text").
    public static func checkLabels(_ labels: [Bool], folds: Int, qualifier: String = "") throws {
        let nPos = labels.filter { $0 }.count, nNeg = labels.count - nPos
        guard nPos >= 2 && nNeg >= 2 else {
            throw MembershipInputError(
                "classification needs at least 2 members and 2 non-members\(qualifier) (got \(nPos) and \(nNeg))")
        }
        guard folds <= labels.count else {
            throw MembershipInputError("--folds \(folds) exceeds the \(labels.count) labeled documents")
        }
    }

    /// Evaluates scored documents: baselines for every document; if labeled documents of both
    /// classes are present, the classifiers (one per normalization), the baselines' and the
    /// blind baseline's AUCs, and classifier scores for the unlabeled documents.
    public static func evaluate(
        _ docs: [MembershipScoredDocument], config: MembershipConfig
    ) throws -> MembershipEvaluation {
        try config.validate()
        let baselines = docs.map { MembershipBaselineScores.compute($0, minK: config.minK) }
        let surface = docs.map { MembershipSurfaceFeatures.compute($0.text, tokens: $0.tokens.count) }
        let labeled = docs.indices.filter { docs[$0].label != nil }
        let unlabeled = docs.indices.filter { docs[$0].label == nil }
        let labels = labeled.map { docs[$0].label! }
        var eval = MembershipEvaluation(
            labeled: labeled, unlabeled: unlabeled, labels: labels, folds: nil,
            methods: [], baselines: baselines, surface: surface)
        guard !labeled.isEmpty else { return eval }
        try checkLabels(labels, folds: config.folds)
        let folds = CrossValidation.stratifiedFolds(labels: labels, folds: config.folds, seed: config.seed)
        eval.folds = folds

        func finish(
            name: String, label: String, kind: String, scores: [Double], foldAUCs: [Double]?,
            unlabeledScores: [Double]?
        ) -> MembershipMethodResult {
            let ci = Statistics.bootstrapAUC(
                labels: labels, scores: scores, stratified: true,
                resamples: config.bootstrapResamples, seed: config.seed)
            return MembershipMethodResult(
                name: name, label: label, kind: kind, scores: scores, auc: ci,
                foldAUCs: foldAUCs, roc: Statistics.rocCurve(labels: labels, scores: scores),
                unlabeledScores: unlabeledScores)
        }
        func crossValidated(_ fitPredict: ([Int], [Int]) -> [Double]) -> (scores: [Double], foldAUCs: [Double]) {
            // `train` / `test` index the labeled documents.
            let (scores, _) = CrossValidation.outOfFoldScores(
                labels: labels, folds: config.folds, seed: config.seed,
                fitPredict: fitPredict)
            let foldAUCs = (0..<config.folds).map { f -> Double in
                let idx = labels.indices.filter { folds[$0] == f }
                return Statistics.rocAUC(labels: idx.map { labels[$0] }, scores: idx.map { scores[$0] })
            }
            return (scores, foldAUCs)
        }

        // Meeus et al. meta-classifier, one per normalization.
        let featureLabel = config.features == .aggregates ? "14 aggregates" : "\(config.histogramBins)-bin histogram"
        for norm in config.normalizations {
            let cv = crossValidated { train, test in
                classifierScores(
                    docs, train: train.map { labeled[$0] }, trainLabels: train.map { labels[$0] },
                    test: test.map { labeled[$0] }, normalization: norm, config: config)
            }
            let un: [Double]? =
                unlabeled.isEmpty
                ? nil
                : classifierScores(
                    docs, train: labeled, trainLabels: labels, test: unlabeled,
                    normalization: norm, config: config)
            let refText = norm == .none ? "" : ", \(config.reference.rawValue) reference"
            eval.methods.append(
                finish(
                    name: "classifier_\(norm.rawValue)",
                    label: "\(config.classifier.rawValue), \(featureLabel), \(norm.rawValue) norm\(refText)",
                    kind: "classifier", scores: cv.scores, foldAUCs: cv.foldAUCs, unlabeledScores: un))
        }
        // Reference-free baselines (no fitting): higher = more likely a member.
        let b = labeled.map { baselines[$0] }
        eval.methods.append(
            finish(
                name: "perplexity", label: "perplexity (lower = member)", kind: "baseline",
                scores: b.map { -$0.perplexity }, foldAUCs: nil, unlabeledScores: nil))
        eval.methods.append(
            finish(
                name: "zlib_ratio", label: "zlib ratio (lower = member)", kind: "baseline",
                scores: b.map { -$0.zlibRatio }, foldAUCs: nil, unlabeledScores: nil))
        eval.methods.append(
            finish(
                name: "min_k_prob", label: "Min-\(Int((config.minK * 100).rounded()))% prob (higher = member)",
                kind: "baseline", scores: b.map { $0.minKProb }, foldAUCs: nil, unlabeledScores: nil))
        // Blind baseline: the same classifier and CV on surface features only.
        let sx = labeled.map { surface[$0] }
        let blind = crossValidated { train, test in
            fitAndPredict(
                train: train.map { sx[$0] }, labels: train.map { labels[$0] }, test: test.map { sx[$0] },
                config: config)
        }
        eval.methods.append(
            finish(
                name: "blind_surface", label: "blind: \(config.classifier.rawValue) on surface features, no model",
                kind: "blind", scores: blind.scores, foldAUCs: blind.foldAUCs, unlabeledScores: nil))
        return eval
    }

    /// The classifier pipeline for one split: reference distribution and feature edges fit on
    /// the training documents only, min-max scaling fit on them, classifier fit, test scores.
    public static func classifierScores(
        _ docs: [MembershipScoredDocument], train: [Int], trainLabels: [Bool],
        test: [Int], normalization: MembershipNormalization,
        config: MembershipConfig
    ) -> [Double] {
        let reference =
            normalization == .none
            ? nil
            : referenceDistribution(docs, train: train, kind: config.reference)
        func normalized(_ i: Int) -> [Double] {
            let s = docs[i].scores
            return MembershipFeatures.normalize(
                tokens: s.targets, nll: s.nll, pMax: s.pMax,
                reference: reference, normalization: normalization)
        }
        let trainValues = train.map(normalized), testValues = test.map(normalized)
        let trainX: [[Double]], testX: [[Double]]
        switch config.features {
        case .aggregates:
            trainX = trainValues.map(MembershipFeatures.aggregates)
            testX = testValues.map(MembershipFeatures.aggregates)
        case .histogram:
            let binning = HistogramBinning(fitting: trainValues, bins: config.histogramBins)
            trainX = trainValues.map(binning.density)
            testX = testValues.map(binning.density)
        }
        return fitAndPredict(train: trainX, labels: trainLabels, test: testX, config: config)
    }

    /// Min-max scaling fit on `train`, then the configured classifier. Non-finite features
    /// (an empty histogram row) become 0.
    static func fitAndPredict(train: [[Double]], labels: [Bool], test: [[Double]], config: MembershipConfig) -> [Double]
    {
        func clean(_ rows: [[Double]]) -> [[Double]] { rows.map { $0.map { $0.isFinite ? $0 : 0 } } }
        let scaler = MinMaxScaler(fitting: clean(train))
        let tr = scaler.transform(clean(train)), te = scaler.transform(clean(test))
        switch config.classifier {
        case .logreg:
            // Meeus et al.: sklearn LogisticRegression() (C = 1) on min-max scaled features.
            var m = LogisticRegression(c: 1, standardize: false)
            m.fit(tr, labels)
            return m.predictProbability(te)
        case .forest:
            var m = RandomForest(trees: config.forestTrees, maxDepth: 5, minSamplesLeaf: 3, seed: config.seed)
            m.fit(tr, labels)
            return m.predictProbability(te)
        }
    }

    /// lambda from the training documents: token frequencies of their scored tokens (TF), or
    /// the mean of their softmax rows (GP; needs `probabilitySum`, else falls back to TF).
    public static func referenceDistribution(
        _ docs: [MembershipScoredDocument], train: [Int],
        kind: MembershipReference
    ) -> ReferenceDistribution {
        if kind == .gp, let v = train.first.flatMap({ docs[$0].scores.probabilitySum?.count }) {
            var sum = [Double](repeating: 0, count: v)
            var positions = 0
            for i in train {
                guard let p = docs[i].scores.probabilitySum else { continue }
                for j in 0..<v { sum[j] += p[j] }
                positions += docs[i].scores.count
            }
            let inv = 1 / Double(max(positions, 1))
            return ReferenceDistribution.generalProbability(sum.map { $0 * inv })
        }
        return ReferenceDistribution.tokenFrequency(documents: train.map { docs[$0].scores.targets })
    }
}

/// Everything a membership run produced, for the run file and the summary.
public struct MembershipRunResult: Sendable {
    public var setName: String?
    public var setPath: String?
    public var config: MembershipConfig
    public var documents: [MembershipScoredDocument]
    public var evaluation: MembershipEvaluation
    /// Documents dropped before scoring (fewer than 2 tokens): name and reason.
    public var skipped: [(name: String, reason: String)]
    public var warnings: [String]
    public var scoringSeconds: Double
    public var workers: Int

    public init(
        setName: String?, setPath: String?, config: MembershipConfig, documents: [MembershipScoredDocument],
        evaluation: MembershipEvaluation, skipped: [(name: String, reason: String)] = [],
        warnings: [String] = [], scoringSeconds: Double, workers: Int
    ) {
        self.setName = setName
        self.setPath = setPath
        self.config = config
        self.documents = documents
        self.evaluation = evaluation
        self.skipped = skipped
        self.warnings = warnings
        self.scoringSeconds = scoringSeconds
        self.workers = workers
    }

    public var tokensScored: Int { documents.reduce(0) { $0 + $1.scores.count } }
    public var forwardTokens: Int { documents.reduce(0) { $0 + $1.scores.forwardTokens } }
    public var tokensPerSecond: Double { scoringSeconds > 0 ? Double(tokensScored) / scoringSeconds : .nan }
    public var memberCount: Int { documents.filter { $0.label == true }.count }
    public var nonmemberCount: Int { documents.filter { $0.label == false }.count }
    public var unlabeledCount: Int { documents.filter { $0.label == nil }.count }
}

/// The `/membership` group of a run file.
///
/// ```
/// /membership  @analysis = "membership", @analysis_version = 1, parameters (window, stride,
///              reference, normalizations, features, histogram_bins, classifier, folds, seed,
///              min_k, max_tokens_per_doc, bootstrap_resamples, forest_trees), counts,
///              tokens_scored, forward_tokens, scoring_seconds, tokens_per_second, workers,
///              set_name, set_path, caveat, method_names, warnings
///   documents/name, source              str     [doc]
///   documents/label                      int64   [doc]   1 member, 0 non-member, -1 unlabeled
///   documents/n_tokens                   int64   [doc]   tokens fed (after the budget)
///   documents/n_tokens_original          int64   [doc]
///   documents/n_scored                   int64   [doc]   tokens scored (n_tokens - 1)
///   documents/perplexity, zlib_ratio, min_k_prob, mean_nll   float64 [doc]
///   documents/surface_features           float64 [doc, feature]  @names
///   documents/fold                       int64   [doc]   CV fold (-1 unlabeled)
///   documents/score.<method>             float64 [doc]   higher = member (out-of-fold for
///                                                        classifiers; NaN if not scored)
///   methods/<method>                     group   @label @kind @auc @ci_lower @ci_upper
///                                                @ci_level @ci_resamples @mean_fold_auc
///                                                @fold_aucs @auc_minus_blind @caveat
///   methods/<method>/fpr, tpr, thresholds  float64 [point]   ROC curve (thresholds[0] = +inf)
/// ```
public enum MembershipRunFile {
    public static let group = "membership"
    public static let analysisVersion = 1

    /// The scalar columns of `documents/`, one row per document (written in one go; besides
    /// them `surface_features`, `fold` and one `score.<method>` per method).
    public static let documentColumns: [RecordTable.Column] = [
        .init("name", .string), .init("source", .string), .init("label", .int64), .init("n_tokens", .int64),
        .init("n_tokens_original", .int64), .init("n_scored", .int64), .init("perplexity", .float64),
        .init("zlib_ratio", .float64), .init("min_k_prob", .float64), .init("mean_nll", .float64)
    ]

    public static func write(_ r: MembershipRunResult, to file: H5File) throws {
        let g = try file.createGroup(group)
        let e = r.evaluation
        try r.config.write(to: g)
        try g.setAttribute("members", r.memberCount)
        try g.setAttribute("nonmembers", r.nonmemberCount)
        try g.setAttribute("unlabeled", r.unlabeledCount)
        try g.setAttribute("tokens_scored", r.tokensScored)
        try g.setAttribute("forward_tokens", r.forwardTokens)
        try g.setAttribute("scoring_seconds", r.scoringSeconds)
        try g.setAttribute("tokens_per_second", r.tokensPerSecond)
        try g.setAttribute("workers", r.workers)
        try writeInputs(g, setName: r.setName, setPath: r.setPath, warnings: r.warnings)
        try g.setAttribute("method_names", e.methods.map(\.name))
        if !r.skipped.isEmpty { try g.setAttribute("skipped", r.skipped.map { "\($0.name): \($0.reason)" }) }

        let docs = r.documents
        let d = try g.createGroup("documents")
        let rows = docs.indices.map { i -> [String: RecordTable.Value] in
            let doc = docs[i], b = e.baselines[i]
            return [
                "name": .string(doc.name), "source": .string(doc.source),
                "label": .int(doc.label.map { $0 ? 1 : 0 } ?? -1),
                "n_tokens": .int(doc.tokens.count), "n_tokens_original": .int(doc.originalTokenCount),
                "n_scored": .int(doc.scores.count), "perplexity": .double(b.perplexity),
                "zlib_ratio": .double(b.zlibRatio), "min_k_prob": .double(b.minKProb),
                "mean_nll": .double(b.meanNLL)
            ]
        }
        try RecordTable.write(group: d, columns: documentColumns, rows: rows)
        let nf = MembershipSurfaceFeatures.names.count
        let sf = try d.createDataset("surface_features", data: e.surface.flatMap { $0 }, shape: [docs.count, nf])
        try sf.setAttribute("names", MembershipSurfaceFeatures.names)
        try sf.setAttribute("axes", ["doc", "feature"])
        var fold = [Int64](repeating: -1, count: docs.count)
        if let folds = e.folds { for (k, i) in e.labeled.enumerated() { fold[i] = Int64(folds[k]) } }
        try d.createDataset("fold", data: fold)

        let m = try g.createGroup("methods")
        let blind = e.blindAUC
        for method in e.methods {
            var perDoc = [Double](repeating: .nan, count: docs.count)
            for (k, i) in e.labeled.enumerated() { perDoc[i] = method.scores[k] }
            if let u = method.unlabeledScores { for (k, i) in e.unlabeled.enumerated() { perDoc[i] = u[k] } }
            if method.kind == "baseline" { // baselines are defined for every document
                for i in e.unlabeled {
                    let b = e.baselines[i]
                    switch method.name {
                    case "perplexity": perDoc[i] = -b.perplexity
                    case "zlib_ratio": perDoc[i] = -b.zlibRatio
                    default: perDoc[i] = b.minKProb
                    }
                }
            }
            try d.createDataset("score.\(method.name)", data: perDoc)
            let mg = try m.createGroup(method.name)
            try mg.setAttribute("label", method.label)
            try mg.setAttribute("kind", method.kind)
            try mg.setAttribute("auc", method.auc.estimate)
            try mg.setAttribute("ci_lower", method.auc.lower)
            try mg.setAttribute("ci_upper", method.auc.upper)
            try mg.setAttribute("ci_level", method.auc.level)
            try mg.setAttribute("ci_resamples", method.auc.resamples)
            if let f = method.foldAUCs {
                try mg.setAttribute("fold_aucs", f)
                try mg.setAttribute("mean_fold_auc", Statistics.mean(f.filter { !$0.isNaN }))
            }
            if let blind, method.kind != "blind" { try mg.setAttribute("auc_minus_blind", method.auc.estimate - blind) }
            try mg.setAttribute("caveat", MembershipAnalysis.caveat)
            try mg.createDataset("fpr", data: method.roc.fpr)
            try mg.createDataset("tpr", data: method.roc.tpr)
            try mg.createDataset("thresholds", data: method.roc.thresholds)
        }
    }

    // MARK: Reading

    /// One method's results, as stored under `methods/<method>`.
    public struct Method: Sendable {
        public var name: String
        public var label: String
        /// classifier, baseline or blind.
        public var kind: String
        public var auc: Double
        public var ciLower: Double
        public var ciUpper: Double
        public var ciLevel: Double
        public var fpr: [Double]
        public var tpr: [Double]
        public var thresholds: [Double]
    }

    /// What a `/membership` group holds (the one reader of the group).
    public struct Contents: Sendable {
        /// In `method_names` order.
        public var methods: [Method]
        /// `documents/` scalar columns (`documentColumns`).
        public var documents: RecordTable.Rows
        /// Per document: 1 member, 0 non-member, -1 unlabeled.
        public var labels: [Int]
        public var names: [String]
        public var members: Int
        public var nonmembers: Int
        public var unlabeled: Int
        public var caveat: String
        public var setName: String?
        public var warnings: [String]
    }

    /// Reads the `/membership` group of an open run file; nil if it has none. What the writer
    /// always stores must be present with its type and shape (else a `TraceStoreError` or
    /// `RecordTableError` naming the object).
    public static func read(_ f: H5File) throws -> Contents? {
        guard try f.kind(of: group) != nil else { return nil }
        let g = try f.group(group)
        let docs = try RecordTable.read(group: try g.group("documents"), columns: documentColumns)
        var methods: [Method] = []
        let mg = try g.group("methods")
        for n in try g.stringsAttribute("method_names") {
            let m = try mg.group(n)
            func curve(_ name: String) throws -> [Double] {
                let ds = try m.dataset(name)
                return try ds.count == 0 ? [] : try ds.read(Double.self)
            }
            let fpr = try curve("fpr"), tpr = try curve("tpr"), thresholds = try curve("thresholds")
            guard fpr.count == tpr.count, tpr.count == thresholds.count else {
                throw TraceStoreError.shapeMismatch(
                    file: f.path, object: m.name,
                    detail: "fpr, tpr, thresholds have \(fpr.count), \(tpr.count), "
                        + "\(thresholds.count) points")
            }
            methods.append(
                Method(
                    name: n, label: try m.stringAttribute("label"), kind: try m.stringAttribute("kind"),
                    auc: try m.doubleAttribute("auc"), ciLower: try m.doubleAttribute("ci_lower"),
                    ciUpper: try m.doubleAttribute("ci_upper"),
                    ciLevel: try m.doubleAttribute("ci_level"),
                    fpr: fpr, tpr: tpr, thresholds: thresholds))
        }
        return Contents(
            methods: methods, documents: docs, labels: docs.ints("label"), names: docs.strings("name"),
            members: try g.intAttribute("members"), nonmembers: try g.intAttribute("nonmembers"),
            unlabeled: try g.intAttribute("unlabeled"), caveat: try g.stringAttribute("caveat"),
            setName: try g.attributeIfPresent("set_name")?.stringValue,
            warnings: try g.attributeIfPresent("warnings")?.stringsValue ?? [])
    }
}
