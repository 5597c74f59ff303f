import Dispatch
import Foundation
import Inference

// Meta-classifiers for document-level membership inference (Meeus et al. 2024 use sklearn's
// LogisticRegression() with its defaults and RandomForestClassifier(n_estimators=500,
// max_depth=5, min_samples_leaf=3) on min-max scaled features), and seeded stratified k-fold
// cross-validation returning out-of-fold scores.
//
// Matrices are [[Double]] rows (one row per document, one column per feature); labels are
// Bool (true = member / positive class).

/// A binary classifier: fit on rows and labels, then P(label == true) for new rows.
public protocol BinaryClassifier {
    mutating func fit(_ x: [[Double]], _ y: [Bool])
    func predictProbability(_ x: [[Double]]) -> [Double]
}

/// z-scoring fit on training rows (sklearn StandardScaler): (x - mean) / std with the
/// population std (ddof 0); a constant column keeps scale 1 (so it becomes 0).
public struct StandardScaler: Sendable, Equatable {
    public let means: [Double]
    public let scales: [Double]

    public init(fitting rows: [[Double]]) {
        precondition(!rows.isEmpty, "StandardScaler: no rows")
        let d = rows[0].count
        var m = [Double](repeating: 0, count: d), s = [Double](repeating: 0, count: d)
        for j in 0..<d {
            let col = rows.map { $0[j] }
            m[j] = Statistics.mean(col)
            let sd = Statistics.standardDeviation(col, ddof: 0)
            s[j] = sd > 0 && sd.isFinite ? sd : 1
        }
        means = m
        scales = s
    }

    public func transform(_ row: [Double]) -> [Double] {
        (0..<row.count).map { (row[$0] - means[$0]) / scales[$0] }
    }
}

// MARK: - Logistic regression

/// L2-regularized logistic regression fit by Newton's method (IRLS with a backtracking line
/// search) to convergence.
///
/// Objective — sklearn's `LogisticRegression(C=c, penalty="l2")`, intercept not penalized:
///     minimize 0.5 ||w||^2 + C sum_i [log(1 + exp(z_i)) - y_i z_i],  z_i = w . x_i + b.
/// `c` is sklearn's C: the inverse regularization strength on the sum (not mean) of the
/// losses; C = 1 is sklearn's default and what Meeus et al. used. Larger C = weaker penalty.
///
/// `standardize: true` (default) z-scores the features first (StandardScaler fit on the
/// training rows) and `coefficients` refer to the standardized features; the result equals
/// sklearn's `make_pipeline(StandardScaler(), LogisticRegression(C=c))`. Meeus et al. did not
/// standardize (they min-max scaled, see `MinMaxScaler`); `standardize: false` on min-max
/// scaled rows reproduces them. Standardizing changes what a given C means.
///
/// Stops when the largest gradient component divided by C n (the scale of sklearn's
/// objective) is below `tolerance` (default 1e-10, far tighter than sklearn's lbfgs default
/// 1e-4, so this is the exact optimum; sklearn with default tol differs from it by ~1e-5 in
/// probabilities). Cost per iteration O(n d^2 + d^3); Newton typically needs < 15.
public struct LogisticRegression: BinaryClassifier, Sendable {
    public var c: Double
    public var standardize: Bool
    public var tolerance: Double
    public var maxIterations: Int

    public private(set) var scaler: StandardScaler?
    /// Weights on the (standardized, if `standardize`) features.
    public private(set) var coefficients: [Double] = []
    public private(set) var intercept: Double = 0
    public private(set) var iterations = 0
    public private(set) var converged = false

    public init(
        c: Double = 1.0, standardize: Bool = true, tolerance: Double = 1e-10,
        maxIterations: Int = 100
    ) {
        precondition(c > 0, "LogisticRegression: C must be > 0")
        self.c = c
        self.standardize = standardize
        self.tolerance = tolerance
        self.maxIterations = maxIterations
    }

    public mutating func fit(_ x: [[Double]], _ y: [Bool]) {
        precondition(x.count == y.count && !x.isEmpty, "LogisticRegression.fit: bad shapes")
        precondition(y.contains(true) && y.contains(false), "LogisticRegression.fit: needs both classes")
        let n = x.count, d = x[0].count, p = d + 1
        scaler = standardize ? StandardScaler(fitting: x) : nil
        // Augmented design [x, 1]: // [n, p] row-major
        var a = [Double](repeating: 1, count: n * p)
        for i in 0..<n {
            let row = scaler?.transform(x[i]) ?? x[i]
            precondition(row.count == d, "LogisticRegression.fit: ragged rows")
            for j in 0..<d { a[i * p + j] = row[j] }
        }
        let yv = y.map { $0 ? 1.0 : 0.0 }
        let cc = c

        func margins(_ th: [Double]) -> [Double] {
            var z = [Double](repeating: 0, count: n)
            for i in 0..<n {
                var s = 0.0
                for j in 0..<p { s += a[i * p + j] * th[j] }
                z[i] = s
            }
            return z
        }
        func objective(_ th: [Double], _ z: [Double]) -> Double {
            var f = 0.0
            for j in 0..<d { f += 0.5 * th[j] * th[j] }
            var l = 0.0
            for i in 0..<n { l += Self.log1pExp(z[i]) - yv[i] * z[i] }
            return f + cc * l
        }

        var theta = [Double](repeating: 0, count: p)
        var z = margins(theta)
        var f = objective(theta, z)
        converged = false
        iterations = 0
        while iterations < maxIterations {
            // gradient and Hessian
            var g = [Double](repeating: 0, count: p)
            var h = [Double](repeating: 0, count: p * p) // [p, p], upper triangle filled
            for j in 0..<d {
                g[j] = theta[j]
                h[j * p + j] = 1
            }
            for i in 0..<n {
                let pi = Self.sigmoid(z[i])
                let r = cc * (pi - yv[i])
                let wi = cc * pi * (1 - pi)
                let base = i * p
                for j in 0..<p {
                    let aj = a[base + j]
                    g[j] += r * aj
                    if wi != 0 {
                        let wa = wi * aj
                        for k in j..<p { h[j * p + k] += wa * a[base + k] }
                    }
                }
            }
            let gmax = g.map { abs($0) }.max() ?? 0
            if gmax / (cc * Double(n)) <= tolerance {
                converged = true
                break
            }
            for j in 0..<p { for k in 0..<j { h[j * p + k] = h[k * p + j] } }
            guard let step = Self.choleskySolve(h, g, p) else { break }
            // backtracking (Armijo) line search along -step
            var dec = 0.0
            for j in 0..<p { dec += g[j] * step[j] }
            var t = 1.0
            var accepted = false
            for _ in 0..<60 {
                let cand = (0..<p).map { theta[$0] - t * step[$0] }
                let zc = margins(cand)
                let fc = objective(cand, zc)
                if fc <= f - 1e-4 * t * dec || (fc <= f && t < 1e-6) {
                    theta = cand
                    z = zc
                    f = fc
                    accepted = true
                    break
                }
                t /= 2
            }
            iterations += 1
            if !accepted {
                // No further decrease representable in double precision: optimal to rounding
                // if the gradient is already tiny, otherwise report non-convergence.
                converged = gmax / (cc * Double(n)) <= 1e-7
                break
            }
        }
        coefficients = Array(theta[0..<d])
        intercept = theta[d]
    }

    /// w . x + b (on standardized features if `standardize`).
    public func decisionFunction(_ x: [[Double]]) -> [Double] {
        x.map { row in
            let r = scaler?.transform(row) ?? row
            var s = intercept
            for j in 0..<coefficients.count { s += coefficients[j] * r[j] }
            return s
        }
    }

    public func predictProbability(_ x: [[Double]]) -> [Double] {
        decisionFunction(x).map(Self.sigmoid)
    }

    static func sigmoid(_ z: Double) -> Double {
        z >= 0
            ? 1 / (1 + exp(-z))
            : {
                let e = exp(z)
                return e / (1 + e)
            }()
    }

    static func log1pExp(_ z: Double) -> Double {
        z > 0 ? z + log1p(exp(-z)) : log1p(exp(z))
    }

    /// Solves H x = b for symmetric positive definite H ([p, p] row-major); retries with a
    /// growing diagonal jitter if the factorization fails. nil if it never succeeds.
    static func choleskySolve(_ h: [Double], _ b: [Double], _ p: Int) -> [Double]? {
        var jitter = 0.0
        let trace = (0..<p).reduce(0.0) { $0 + h[$1 * p + $1] }
        for _ in 0..<8 {
            var l = h
            var ok = true
            for j in 0..<p {
                var s = l[j * p + j] + jitter
                for k in 0..<j { s -= l[j * p + k] * l[j * p + k] }
                if !(s > 0) {
                    ok = false
                    break
                }
                let ljj = s.squareRoot()
                l[j * p + j] = ljj
                for i in (j + 1)..<max(j + 1, p) {
                    var t = l[i * p + j]
                    for k in 0..<j { t -= l[i * p + k] * l[j * p + k] }
                    l[i * p + j] = t / ljj
                }
            }
            if ok {
                var y = b
                for i in 0..<p {
                    var s = y[i]
                    for k in 0..<i { s -= l[i * p + k] * y[k] }
                    y[i] = s / l[i * p + i]
                }
                for i in stride(from: p - 1, through: 0, by: -1) {
                    var s = y[i]
                    for k in (i + 1)..<max(i + 1, p) { s -= l[k * p + i] * y[k] }
                    y[i] = s / l[i * p + i]
                }
                return y
            }
            jitter = jitter == 0 ? 1e-12 * max(trace / Double(p), 1) : jitter * 100
        }
        return nil
    }
}

// MARK: - Random forest

/// Random forest of CART trees, after sklearn's `RandomForestClassifier` with Meeus et al.'s
/// parameters as defaults: 500 trees, max depth 5, min samples per leaf 3, sqrt(d) candidate
/// features per split, bootstrap resampling, Gini impurity.
///
/// The algorithm follows sklearn's: each tree is grown on a bootstrap sample of n draws with
/// replacement, kept as per-sample weights (draw counts) — impurities and leaf probabilities
/// use the weights, while `minSamplesLeaf` counts distinct samples, as sklearn does. At each
/// node candidate features are drawn without replacement until `maxFeatures` non-constant
/// ones have been evaluated (features constant within the node do not count); the best split
/// maximizes the weighted Gini decrease, thresholds are midpoints between consecutive distinct
/// values (x <= threshold goes left), ties between splits keep the first found. A node is a
/// leaf at `maxDepth`, when it has fewer than max(`minSamplesSplit`, 2 `minSamplesLeaf`)
/// samples, when it is pure, or when no split leaves `minSamplesLeaf` samples on both sides.
/// The forest probability is the mean over trees of the leaf's weighted positive fraction.
///
/// It is not bit-identical to sklearn (different random streams). Randomness comes only from
/// `SeededGenerator(seed:)`: one 64-bit seed per tree is drawn from it first, so the result is
/// the same for a seed whatever the thread count (trees are grown concurrently).
public struct RandomForest: BinaryClassifier, Sendable {
    public enum MaxFeatures: Sendable, Equatable {
        /// max(1, floor(sqrt(d))) — sklearn's "sqrt" (the classifier's default).
        case sqrt
        /// max(1, floor(log2(d))).
        case log2
        /// Every feature (bagged trees).
        case all
        case count(Int)
        /// max(1, floor(fraction d)).
        case fraction(Double)

        func resolve(_ d: Int) -> Int {
            let k: Int
            switch self {
            case .sqrt: k = Int(Double(d).squareRoot())
            case .log2: k = Int(Foundation.log2(Double(d)))
            case .all: k = d
            case .count(let c): k = c
            case .fraction(let f): k = Int(f * Double(d))
            }
            return Swift.min(d, Swift.max(1, k))
        }
    }

    public var trees: Int
    /// nil: grow until the other limits stop it.
    public var maxDepth: Int?
    public var minSamplesLeaf: Int
    public var minSamplesSplit: Int
    public var maxFeatures: MaxFeatures
    public var bootstrap: Bool
    public var seed: UInt64

    public private(set) var forest: [DecisionTree] = []

    public init(
        trees: Int = 500, maxDepth: Int? = 5, minSamplesLeaf: Int = 3,
        minSamplesSplit: Int = 2, maxFeatures: MaxFeatures = .sqrt,
        bootstrap: Bool = true, seed: UInt64 = 0
    ) {
        precondition(
            trees >= 1 && minSamplesLeaf >= 1 && minSamplesSplit >= 2,
            "RandomForest: bad parameters")
        self.trees = trees
        self.maxDepth = maxDepth
        self.minSamplesLeaf = minSamplesLeaf
        self.minSamplesSplit = minSamplesSplit
        self.maxFeatures = maxFeatures
        self.bootstrap = bootstrap
        self.seed = seed
    }

    public mutating func fit(_ x: [[Double]], _ y: [Bool]) {
        precondition(x.count == y.count && !x.isEmpty, "RandomForest.fit: bad shapes")
        let n = x.count, d = x[0].count
        var columns = [Double](repeating: 0, count: n * d) // [d, n] column-major
        for i in 0..<n {
            precondition(x[i].count == d, "RandomForest.fit: ragged rows")
            for j in 0..<d { columns[j * n + i] = x[i][j] }
        }
        var master = SeededGenerator(seed: seed)
        let seeds = (0..<trees).map { _ in master.next() }
        let builder = TreeBuilder(
            columns: columns, labels: y, n: n, d: d,
            maxDepth: maxDepth ?? Int.max, minLeaf: minSamplesLeaf,
            minSplit: minSamplesSplit, maxFeatures: maxFeatures.resolve(d),
            bootstrap: bootstrap)
        var built = [DecisionTree?](repeating: nil, count: trees)
        built.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            DispatchQueue.concurrentPerform(iterations: trees) { t in
                (base + t).pointee = builder.build(seed: seeds[t])
            }
        }
        forest = built.map { $0! }
    }

    public func predictProbability(_ x: [[Double]]) -> [Double] {
        precondition(!forest.isEmpty, "RandomForest: predict before fit")
        return x.map { row in
            var s = 0.0
            for t in forest { s += t.probability(row) }
            return s / Double(forest.count)
        }
    }
}

/// One fitted CART tree, stored as parallel node arrays (node 0 is the root).
public struct DecisionTree: Sendable, Equatable {
    /// Split feature per node; -1 for a leaf.
    public let feature: [Int]
    public let threshold: [Double]
    public let left: [Int]
    public let right: [Int]
    /// Weighted fraction of positives among the node's training samples.
    public let value: [Double]

    public var nodeCount: Int { feature.count }

    /// P(positive) for one row: the value of the leaf it falls into.
    public func probability(_ row: [Double]) -> Double {
        var k = 0
        while feature[k] >= 0 { k = row[feature[k]] <= threshold[k] ? left[k] : right[k] }
        return value[k]
    }

    /// Depth of the deepest leaf (root = 0).
    public var depth: Int {
        func go(_ k: Int) -> Int { feature[k] < 0 ? 0 : 1 + Swift.max(go(left[k]), go(right[k])) }
        return go(0)
    }
}

/// Grows one tree; immutable so trees can be grown concurrently.
private struct TreeBuilder: @unchecked Sendable {
    let columns: [Double] // [d, n]
    let labels: [Bool]
    let n: Int, d: Int
    let maxDepth: Int, minLeaf: Int, minSplit: Int, maxFeatures: Int
    let bootstrap: Bool

    static let featureThreshold = 1e-7 // sklearn FEATURE_THRESHOLD
    static let epsilon = Double.ulpOfOne // sklearn EPSILON for "pure" nodes

    final class Nodes {
        var feature: [Int] = [], threshold: [Double] = [], left: [Int] = [], right: [Int] = []
        var value: [Double] = []
        func add() -> Int {
            feature.append(-1)
            threshold.append(0)
            left.append(-1)
            right.append(-1)
            value.append(0)
            return feature.count - 1
        }
    }

    func build(seed: UInt64) -> DecisionTree {
        var rng = SeededGenerator(seed: seed)
        var weight = [Double](repeating: 0, count: n)
        if bootstrap {
            for _ in 0..<n { weight[SeededRandom.uniformInt(below: n, using: &rng)] += 1 }
        } else {
            for i in 0..<n { weight[i] = 1 }
        }
        let samples = (0..<n).filter { weight[$0] > 0 }
        let nodes = Nodes()
        var features = Array(0..<d)
        grow(samples, depth: 0, weight: weight, nodes: nodes, features: &features, rng: &rng)
        return DecisionTree(
            feature: nodes.feature, threshold: nodes.threshold, left: nodes.left,
            right: nodes.right, value: nodes.value)
    }

    @discardableResult
    private func grow(
        _ idx: [Int], depth: Int, weight: [Double], nodes: Nodes,
        features: inout [Int], rng: inout SeededGenerator
    ) -> Int {
        let k = nodes.add()
        var wPos = 0.0, wAll = 0.0
        for i in idx {
            wAll += weight[i]
            if labels[i] { wPos += weight[i] }
        }
        nodes.value[k] = wPos / wAll
        let pp = wPos / wAll, pn = 1 - pp
        let impurity = 1 - pp * pp - pn * pn
        let m = idx.count
        if depth >= maxDepth || m < minSplit || m < 2 * minLeaf || impurity <= Self.epsilon {
            return k
        }

        var bestScore = -Double.infinity, bestFeature = -1, bestThreshold = 0.0
        var visited = 0
        var pairs = [(value: Double, index: Int)](repeating: (0, 0), count: m)
        var order = idx
        var xs = [Double](repeating: 0, count: m)
        var drawn = 0
        while drawn < d && visited < maxFeatures {
            let j = drawn + SeededRandom.uniformInt(below: d - drawn, using: &rng)
            features.swapAt(drawn, j)
            let f = features[drawn]
            drawn += 1
            let base = f * n
            var lo = Double.infinity, hi = -Double.infinity
            for i in idx {
                let v = columns[base + i]
                lo = Swift.min(lo, v)
                hi = Swift.max(hi, v)
            }
            if hi <= lo + Self.featureThreshold { continue } // constant here: not counted
            visited += 1
            for (r, i) in idx.enumerated() { pairs[r] = (columns[base + i], i) }
            pairs.sort { $0.value < $1.value || ($0.value == $1.value && $0.index < $1.index) }
            for r in 0..<m {
                xs[r] = pairs[r].value
                order[r] = pairs[r].index
            }
            var lPos = 0.0, lAll = 0.0
            for p in 1..<m {
                let i = order[p - 1]
                lAll += weight[i]
                if labels[i] { lPos += weight[i] }
                if xs[p] <= xs[p - 1] + Self.featureThreshold { continue }
                if p < minLeaf || m - p < minLeaf { continue }
                let lNeg = lAll - lPos
                let rAll = wAll - lAll, rPos = wPos - lPos, rNeg = rAll - rPos
                // sklearn's Gini proxy: -(W_L gini_L + W_R gini_R) + const
                let score = (lPos * lPos + lNeg * lNeg) / lAll + (rPos * rPos + rNeg * rNeg) / rAll
                if score > bestScore {
                    bestScore = score
                    bestFeature = f
                    var t = xs[p - 1] / 2 + xs[p] / 2
                    if t == xs[p] || !t.isFinite { t = xs[p - 1] }
                    bestThreshold = t
                }
            }
        }
        if bestFeature < 0 { return k }
        let base = bestFeature * n
        var li: [Int] = [], ri: [Int] = []
        for i in idx { if columns[base + i] <= bestThreshold { li.append(i) } else { ri.append(i) } }
        nodes.feature[k] = bestFeature
        nodes.threshold[k] = bestThreshold
        let l = grow(li, depth: depth + 1, weight: weight, nodes: nodes, features: &features, rng: &rng)
        let r = grow(ri, depth: depth + 1, weight: weight, nodes: nodes, features: &features, rng: &rng)
        nodes.left[k] = l
        nodes.right[k] = r
        return k
    }
}

// MARK: - Cross-validation

/// Out-of-fold scores of a k-fold cross-validation, with AUCs.
public struct CrossValidationResult: Sendable {
    /// Out-of-fold P(positive) per sample (each from the model not trained on it).
    public let scores: [Double]
    /// Fold index (0..<k) of each sample.
    public let folds: [Int]
    /// AUC within each test fold (NaN for a fold holding one class).
    public let foldAUCs: [Double]
    /// AUC of the pooled out-of-fold scores, with a stratified bootstrap CI over samples. The
    /// CI treats the fitted models as fixed (it ignores training variability).
    public let pooledAUC: ConfidenceInterval

    /// Mean of the per-fold AUCs (how Meeus et al. summarize their folds).
    public var meanFoldAUC: Double { Statistics.mean(foldAUCs.filter { !$0.isNaN }) }
}

public enum CrossValidation {
    /// Stratified fold assignment: the negatives, then the positives, are each shuffled
    /// (Fisher-Yates on one `SeededGenerator(seed:)`, negatives first) and dealt to folds
    /// round-robin with a counter that continues from one class to the next, so every fold
    /// gets floor or ceil of n/k samples and of each class's share. Returns the fold of each
    /// sample. (Not sklearn's StratifiedKFold assignment, which uses numpy's RNG.)
    public static func stratifiedFolds(labels: [Bool], folds k: Int = 5, seed: UInt64) -> [Int] {
        precondition(k >= 2 && k <= labels.count, "stratifiedFolds: need 2 <= k <= n")
        var rng = SeededGenerator(seed: seed)
        var out = [Int](repeating: 0, count: labels.count)
        var counter = 0
        for cls in [false, true] {
            var members = labels.indices.filter { labels[$0] == cls }
            SeededRandom.shuffle(&members, using: &rng)
            for i in members {
                out[i] = counter % k
                counter += 1
            }
        }
        return out
    }

    /// Out-of-fold scores with any model: for each fold f, `fitPredict(trainIndices,
    /// testIndices)` fits on the training indices and returns one score per test index (in
    /// the given, ascending, order). Feature steps that must be fit on training data only
    /// (histogram edges, token frequencies, scaling) belong inside `fitPredict`.
    public static func outOfFoldScores(
        labels: [Bool], folds k: Int = 5, seed: UInt64,
        fitPredict: (_ train: [Int], _ test: [Int]) throws -> [Double]
    ) rethrows -> (scores: [Double], folds: [Int]) {
        let assignment = stratifiedFolds(labels: labels, folds: k, seed: seed)
        var scores = [Double](repeating: .nan, count: labels.count)
        for f in 0..<k {
            let test = labels.indices.filter { assignment[$0] == f }
            let train = labels.indices.filter { assignment[$0] != f }
            let s = try fitPredict(train, test)
            precondition(
                s.count == test.count,
                "outOfFoldScores: fitPredict returned \(s.count) scores for \(test.count) samples")
            for (i, v) in zip(test, s) { scores[i] = v }
        }
        return (scores, assignment)
    }

    /// k-fold cross-validation of a classifier on a feature matrix. With `minMaxScale` (the
    /// Meeus et al. pipeline) a `MinMaxScaler` is fit on each training fold and applied to its
    /// test fold. `classifier` is copied unfitted for each fold.
    public static func evaluate<C: BinaryClassifier>(
        features x: [[Double]], labels y: [Bool],
        classifier: C, folds k: Int = 5,
        seed: UInt64, minMaxScale: Bool = true,
        bootstrapResamples: Int = Statistics.defaultBootstrapResamples
    ) -> CrossValidationResult {
        precondition(x.count == y.count, "CrossValidation.evaluate: shapes differ")
        let (scores, folds) = outOfFoldScores(labels: y, folds: k, seed: seed) { train, test in
            var trainX = train.map { x[$0] }, testX = test.map { x[$0] }
            if minMaxScale {
                let s = MinMaxScaler(fitting: trainX)
                trainX = s.transform(trainX)
                testX = s.transform(testX)
            }
            var model = classifier
            model.fit(trainX, train.map { y[$0] })
            return model.predictProbability(testX)
        }
        return summarize(
            scores: scores, labels: y, folds: folds, k: k, seed: seed,
            bootstrapResamples: bootstrapResamples)
    }

    /// AUCs of given out-of-fold scores.
    public static func summarize(
        scores: [Double], labels: [Bool], folds: [Int], k: Int,
        seed: UInt64,
        bootstrapResamples: Int = Statistics.defaultBootstrapResamples
    ) -> CrossValidationResult {
        let foldAUCs = (0..<k).map { f -> Double in
            let idx = labels.indices.filter { folds[$0] == f }
            return Statistics.rocAUC(labels: idx.map { labels[$0] }, scores: idx.map { scores[$0] })
        }
        let pooled = Statistics.bootstrapAUC(
            labels: labels, scores: scores, stratified: true,
            resamples: bootstrapResamples, seed: seed)
        return CrossValidationResult(
            scores: scores, folds: folds, foldAUCs: foldAUCs,
            pooledAUC: pooled)
    }
}
