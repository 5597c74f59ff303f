import XCTest
@testable import Analysis
import Inference

final class StatsClassifierTests: XCTestCase {
    /// Gaussian rows from the seeded generator (Box-Muller).
    private func gaussianRows(_ n: Int, _ d: Int, seed: UInt64) -> [[Double]] {
        var g = SeededGenerator(seed: seed)
        return (0..<n).map { _ in
            (0..<d).map { _ in
                let u1 = max(SeededRandom.unitDouble(using: &g), 1e-300), u2 = SeededRandom.unitDouble(using: &g)
                return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
            }
        }
    }

    func testLogisticRegressionMatchesSklearn() {
        let sec = StatsFixture.dict(StatsFixture.section("logreg"))
        let x = StatsFixture.matrix(sec["X"]), xt = StatsFixture.matrix(sec["X_test"])
        let y = StatsFixture.ints(sec["y"]).map { $0 == 1 }
        for c in StatsFixture.list(sec["cases"]).map(StatsFixture.dict) {
            let cc = StatsFixture.num(c["C"]), std = c["standardize"] as! Bool
            var lr = LogisticRegression(c: cc, standardize: std)
            lr.fit(x, y)
            XCTAssertTrue(lr.converged, "C=\(cc) standardize=\(std)")
            let what = "logreg C=\(cc) standardize=\(std) (\(lr.iterations) Newton steps)"
            statsAssertClose(
                lr.predictProbability(xt), StatsFixture.nums(c["proba_test"]), tol: 1e-6,
                "\(what) test proba vs sklearn tol=1e-12")
            statsAssertClose(
                lr.predictProbability(x), StatsFixture.nums(c["proba_train"]), tol: 1e-6, "\(what) train proba")
            statsAssertClose(
                lr.coefficients + [lr.intercept], StatsFixture.nums(c["coef"]) + [StatsFixture.num(c["intercept"])],
                tol: 1e-5, "\(what) coef + intercept")
            let dflt = statsMaxAbsDiff(lr.predictProbability(xt), StatsFixture.nums(c["proba_test_default_tol"]))
            print("[stats] \(what): vs sklearn default tol=1e-4: max|diff| \(dflt)")
            XCTAssertLessThan(dflt, 1e-3)
        }
    }

    func testLogisticRegressionSeparableAndConstantColumn() {
        // perfectly separable: the L2 penalty keeps the weights finite
        let x: [[Double]] = [[0, 1], [1, 1], [2, 1], [3, 1], [4, 1], [5, 1]]
        let y = [false, false, false, true, true, true]
        var lr = LogisticRegression(c: 100)
        lr.fit(x, y)
        XCTAssertTrue(lr.converged)
        XCTAssertEqual(lr.coefficients[1], 0, "constant column gets no weight")
        let p = lr.predictProbability(x)
        XCTAssertTrue(p[0] < 0.05 && p[5] > 0.95)
        XCTAssertEqual(Statistics.rocAUC(labels: y, scores: p), 1)
    }

    func testRandomForestSeparableNoiseAndDeterminism() {
        let d = 6
        let train = gaussianRows(300, d, seed: 1), test = gaussianRows(300, d, seed: 2)
        func label(_ r: [Double]) -> Bool { r[0] + 0.8 * r[1] > 0.1 }
        var rf = RandomForest(trees: 200, seed: 42)
        rf.fit(train, train.map(label))
        let auc = Statistics.rocAUC(labels: test.map(label), scores: rf.predictProbability(test))
        print("[stats] random forest, separable (2 informative of 6 features): held-out AUC \(auc)")
        XCTAssertGreaterThan(auc, 0.93)
        XCTAssertTrue(rf.forest.allSatisfy { $0.depth <= 5 })

        var again = RandomForest(trees: 200, seed: 42)
        again.fit(train, train.map(label))
        XCTAssertEqual(again.predictProbability(test), rf.predictProbability(test), "same seed, same forest")
        XCTAssertEqual(again.forest, rf.forest)
        var other = RandomForest(trees: 200, seed: 43)
        other.fit(train, train.map(label))
        XCTAssertNotEqual(other.predictProbability(test), rf.predictProbability(test))

        // pure noise: labels independent of the features
        var g = SeededGenerator(seed: 5)
        let noiseY = train.map { _ in SeededRandom.uniformInt(below: 2, using: &g) == 1 }
        let testY = test.map { _ in SeededRandom.uniformInt(below: 2, using: &g) == 1 }
        var noise = RandomForest(trees: 200, seed: 7)
        noise.fit(train, noiseY)
        let nauc = Statistics.rocAUC(labels: testY, scores: noise.predictProbability(test))
        print("[stats] random forest, noise: held-out AUC \(nauc)")
        XCTAssertEqual(nauc, 0.5, accuracy: 0.1)
    }

    func testRandomForestLeafSizeWithoutBootstrap() {
        let x = gaussianRows(120, 3, seed: 9)
        let y = x.map { $0[2] > 0 }
        var rf = RandomForest(trees: 5, maxDepth: nil, minSamplesLeaf: 3, maxFeatures: .all, bootstrap: false, seed: 1)
        rf.fit(x, y)
        for tree in rf.forest {
            var leafCounts: [Int: Int] = [:]
            for row in x {
                var k = 0
                while tree.feature[k] >= 0 {
                    k = row[tree.feature[k]] <= tree.threshold[k] ? tree.left[k] : tree.right[k]
                }
                leafCounts[k, default: 0] += 1
            }
            XCTAssertTrue(leafCounts.values.allSatisfy { $0 >= 3 }, "min_samples_leaf")
        }
        // all features, no bootstrap: every tree is the same, and it fits the training data
        XCTAssertEqual(Statistics.rocAUC(labels: y, scores: rf.predictProbability(x)), 1)
    }

    func testStratifiedFoldsAndCrossValidation() {
        let labels = (0..<53).map { $0 % 3 == 0 } // 18 positives, 35 negatives
        let f = CrossValidation.stratifiedFolds(labels: labels, folds: 5, seed: 3)
        XCTAssertEqual(f, CrossValidation.stratifiedFolds(labels: labels, folds: 5, seed: 3))
        XCTAssertNotEqual(f, CrossValidation.stratifiedFolds(labels: labels, folds: 5, seed: 4))
        for k in 0..<5 {
            let members = labels.indices.filter { f[$0] == k }
            XCTAssertTrue([10, 11].contains(members.count))
            XCTAssertTrue([3, 4].contains(members.filter { labels[$0] }.count))
        }

        let x = gaussianRows(200, 4, seed: 11)
        let y = x.map { $0[0] - $0[1] > 0 }
        let lr = CrossValidation.evaluate(
            features: x, labels: y, classifier: LogisticRegression(), folds: 5, seed: 1,
            bootstrapResamples: 500)
        XCTAssertFalse(lr.scores.contains { $0.isNaN })
        print(
            "[stats] 5-fold CV logistic regression, separable: pooled AUC \(lr.pooledAUC.estimate) "
                + "[\(lr.pooledAUC.lower), \(lr.pooledAUC.upper)], mean fold AUC \(lr.meanFoldAUC)"
        )
        XCTAssertGreaterThan(lr.pooledAUC.estimate, 0.95)
        XCTAssertTrue(lr.pooledAUC.contains(lr.pooledAUC.estimate))
        XCTAssertEqual(lr.foldAUCs.count, 5)

        var g = SeededGenerator(seed: 8)
        let noiseY = x.map { _ in SeededRandom.uniformInt(below: 2, using: &g) == 1 }
        let rf = CrossValidation.evaluate(
            features: x, labels: noiseY, classifier: RandomForest(trees: 100, seed: 2),
            folds: 5, seed: 1, bootstrapResamples: 500)
        print(
            "[stats] 5-fold CV random forest, noise: pooled AUC \(rf.pooledAUC.estimate) [\(rf.pooledAUC.lower), "
                + "\(rf.pooledAUC.upper)]"
        )
        XCTAssertEqual(rf.pooledAUC.estimate, 0.5, accuracy: 0.12)
        XCTAssertTrue(rf.pooledAUC.contains(0.5))

        // generic form: train and test never overlap, and each index is tested once
        var tested = [Int](repeating: 0, count: labels.count)
        let out = CrossValidation.outOfFoldScores(labels: labels, folds: 4, seed: 2) { train, test in
            XCTAssertTrue(Set(train).isDisjoint(with: test))
            XCTAssertEqual(train.count + test.count, labels.count)
            for i in test { tested[i] += 1 }
            return test.map { Double($0) }
        }
        XCTAssertEqual(tested, [Int](repeating: 1, count: labels.count))
        XCTAssertEqual(out.scores, (0..<labels.count).map(Double.init))
    }
}
