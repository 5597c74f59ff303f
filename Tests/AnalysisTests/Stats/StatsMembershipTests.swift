import XCTest
@testable import Analysis

/// Meeus et al. features and the reference-free baselines, against hand cases and against the
/// original code paths run in Python (make_fixtures.py copies them).
final class StatsMembershipTests: XCTestCase {
    func testHandComputed() {
        let ref = ReferenceDistribution.tokenFrequency(documents: [[1, 1, 2], [3]])
        XCTAssertEqual(ref(1), 0.5)
        XCTAssertEqual(ref(2), 0.25)
        XCTAssertEqual(ref(99), 0.125)
        XCTAssertEqual(ref.unseenValue, 0.125)
        let nll = [log(2.0)]
        let r = MembershipFeatures.normalize(tokens: [2], nll: nll, reference: ref, normalization: .ratio)
        XCTAssertEqual(r[0], -log(2.0), accuracy: 1e-15)
        let m = MembershipFeatures.normalize(tokens: [2], nll: nll, pMax: [0.7], reference: ref, normalization: .max)
        XCTAssertEqual(m[0], -log(3.2), accuracy: 1e-15)
        XCTAssertEqual(MembershipFeatures.normalize(tokens: [2], nll: nll, reference: nil, normalization: .none), nll)
        // p = 0 gives -log(0) = inf, replaced as the original does (10e-6), or kept
        let inf = MembershipFeatures.normalize(tokens: [1], nll: [.infinity], reference: ref, normalization: .ratio)
        XCTAssertEqual(inf, [1e-5])
        let kept = MembershipFeatures.normalize(
            tokens: [1], nll: [.infinity], reference: ref, normalization: .ratio,
            nonFiniteReplacement: nil)
        XCTAssertEqual(kept, [.infinity])
        let gp = ReferenceDistribution.generalProbability([0.5, 0.3, 0.2])
        XCTAssertEqual(gp(1), 0.3)
        XCTAssertEqual(gp(7), 0.1)

        let agg = MembershipFeatures.aggregates([1, 2, 3, 4])
        XCTAssertEqual(agg.count, 14)
        XCTAssertEqual(MembershipFeatures.aggregateNames.count, 14)
        XCTAssertEqual(Array(agg[0..<5]), [2.5, 1, 4, 1.25.squareRoot(), 4])
        XCTAssertEqual(agg[9], 2.5) // median
        XCTAssertEqual(MembershipFeatures.aggregateNames[9], "perc_50")

        let h = HistogramBinning(fitting: [[0, 1], [2]], bins: 2)
        XCTAssertEqual(h.edges, [0, 1, 2])
        XCTAssertEqual(h.counts([0, 0.5, 1, 2, 2.5, -1]), [2, 2])
        XCTAssertEqual(h.density([0, 0.5, 1, 2]), [0.5, 0.5])
        XCTAssertEqual(HistogramBinning(fitting: [[3, 3]], bins: 2).edges, [2.5, 3, 3.5])
        XCTAssertTrue(h.density([5]).allSatisfy { $0.isNaN })
        XCTAssertEqual(HistogramBinning(fitting: [[0.0, 1]]).binCount, 1000)

        let s = MinMaxScaler(fitting: [[0, 5, 1], [10, 5, 3]])
        XCTAssertEqual(s.transform([5, 7, 4]), [0.5, 0, 1.5])

        let lp: [Double] = (1...10).map { -Double($0) }
        XCTAssertEqual(MembershipBaselines.minKPercentProb(logProbs: lp, fraction: 0.2), -9.5)
        XCTAssertEqual(MembershipBaselines.minKPercentProb(logProbs: lp, fraction: 0.05), -10)
        XCTAssertTrue(MembershipBaselines.minKPercentProb(logProbs: lp, fraction: 0.05, minimumCount: 0).isNaN)
        XCTAssertEqual(MembershipBaselines.minKPercentProb(nll: lp.map { -$0 }, fraction: 0.2), -9.5)
        XCTAssertEqual(MembershipBaselines.minKCount(tokens: 10, fraction: 0.3), 3) // 0.3 * 10 = 3.0000000000000004
        // 28.999999999999996, truncated as Python int() does
        XCTAssertEqual(MembershipBaselines.minKCount(tokens: 100, fraction: 0.29), 28)
        XCTAssertEqual(MembershipBaselines.perplexity(nll: [log(2.0), log(8.0)]), 4, accuracy: 1e-14)
        // zlib of the empty input: 2-byte header + 3-byte empty final block (2 bytes + pad) + 4-byte Adler-32 -> 8
        XCTAssertEqual(MembershipBaselines.zlibCompressedLength(""), 8)
        XCTAssertLessThan(MembershipBaselines.zlibCompressedLength(String(repeating: "ab", count: 1000)), 40)
    }

    func testNormalizationsAndAggregatesFixture() {
        let sec = StatsFixture.dict(StatsFixture.section("membership"))
        var table: [Int: Double] = [:]
        for row in StatsFixture.list(sec["tf"]).map(StatsFixture.list) {
            table[Int(StatsFixture.num(row[0]))] = StatsFixture.num(row[1])
        }
        let ref = ReferenceDistribution(table)
        XCTAssertEqual(ref.unseenValue, StatsFixture.num(sec["unseen"]))
        var maxRatio = 0.0, maxMax = 0.0, maxAgg = 0.0, unseen = 0
        for d in StatsFixture.list(sec["docs"]).map(StatsFixture.dict) {
            let toks = StatsFixture.ints(d["tokens"]), nll = StatsFixture.nums(d["nll"]),
                pmax = StatsFixture.nums(d["pmax"])
            unseen += toks.filter { table[$0] == nil }.count
            let r = MembershipFeatures.normalize(tokens: toks, nll: nll, reference: ref, normalization: .ratio)
            let m = MembershipFeatures.normalize(
                tokens: toks, nll: nll, pMax: pmax, reference: ref, normalization: .max)
            maxRatio = max(maxRatio, statsMaxAbsDiff(r, StatsFixture.nums(d["ratio"])))
            maxMax = max(maxMax, statsMaxAbsDiff(m, StatsFixture.nums(d["max"])))
            maxAgg = max(maxAgg, statsMaxAbsDiff(MembershipFeatures.aggregates(r), StatsFixture.nums(d["agg_ratio"])))
        }
        print(
            "[stats] Meeus normalizations vs original code: ratio max|diff| \(maxRatio), max \(maxMax); 14 aggregates "
                + "\(maxAgg); \(unseen) unseen tokens"
        )
        XCTAssertGreaterThan(unseen, 0, "fixture must exercise unseen tokens")
        XCTAssertLessThan(maxRatio, 1e-12)
        XCTAssertLessThan(maxMax, 1e-12)
        XCTAssertLessThan(maxAgg, 1e-12)
    }

    func testHistogramAndScalingFixture() {
        let sec = StatsFixture.dict(StatsFixture.section("membership"))
        let docs = StatsFixture.list(sec["docs"]).map(StatsFixture.dict).map { StatsFixture.nums($0["ratio"]) }
        let train = Array(docs[0..<3]), test = Array(docs[3..<5]) + [[1e9, -1e9]]
        for bins in [10, 1000] {
            let h = StatsFixture.dict(StatsFixture.dict(sec["hist"])["\(bins)"])
            let binning = HistogramBinning(fitting: train, bins: bins)
            XCTAssertEqual(
                binning.edges, StatsFixture.nums(h["edges"]), "numpy.histogram edges, \(bins) bins (bit-identical)")
            var d = 0.0
            for (x, want) in zip(train + test, StatsFixture.matrix(h["train"]) + StatsFixture.matrix(h["test"])) {
                d = max(d, statsMaxAbsDiff(binning.density(x), want))
            }
            print("[stats] histogram density (\(bins) bins) vs numpy: max|diff| \(d)")
            XCTAssertLessThan(d, 1e-12)
        }
        let sc = StatsFixture.dict(sec["scale"])
        let s = MinMaxScaler(fitting: StatsFixture.matrix(sc["train"]))
        let a = s.transform(StatsFixture.matrix(sc["train"])).flatMap { $0 }
        let b = s.transform(StatsFixture.matrix(sc["test"])).flatMap { $0 }
        statsAssertClose(
            a, StatsFixture.matrix(sc["train_scaled"]).flatMap { $0 }, tol: 1e-15, "min-max scaling (train)")
        statsAssertClose(
            b, StatsFixture.matrix(sc["test_scaled"]).flatMap { $0 }, tol: 1e-15, "min-max scaling (test, fit on train)"
        )
    }

    func testMinKAndZlibFixture() {
        let sec = StatsFixture.dict(StatsFixture.section("membership"))
        var maxd = 0.0, checked = 0
        for c in StatsFixture.list(sec["mink"]).map(StatsFixture.dict) {
            let lp = StatsFixture.nums(c["logprobs"])
            for e in StatsFixture.list(c["entries"]).map(StatsFixture.dict) {
                let k = StatsFixture.num(e["ratio"]), want = StatsFixture.num(e["neg_mean"])
                let kLen = Int(StatsFixture.num(e["k_length"]))
                XCTAssertEqual(
                    MembershipBaselines.minKCount(tokens: lp.count, fraction: k, minimumCount: 0), kLen,
                    "int(n*k), n=\(lp.count) k=\(k)")
                XCTAssertEqual(MembershipBaselines.minKCount(tokens: lp.count, fraction: k), max(1, kLen))
                let orig = -MembershipBaselines.minKPercentProb(logProbs: lp, fraction: k, minimumCount: 0)
                if want.isNaN {
                    XCTAssertTrue(orig.isNaN)
                    continue
                }
                maxd = max(maxd, abs(orig - want))
                checked += 1
            }
        }
        print("[stats] Min-K% vs paper code: \(checked) values, max|diff| \(maxd)")
        XCTAssertLessThan(maxd, 1e-12)

        var maxr = 0.0
        for z in StatsFixture.list(sec["zlib"]).map(StatsFixture.dict) {
            let text = z["text"] as! String
            XCTAssertEqual(
                MembershipBaselines.zlibCompressedLength(text), Int(StatsFixture.num(z["zlib_len"])),
                "len(zlib.compress(\(text.prefix(20).debugDescription)...))")
            let r1 = MembershipBaselines.zlibRatio(perplexity: StatsFixture.num(z["ppl"]), text: text)
            let r2 = MembershipBaselines.zlibRatio(nll: StatsFixture.nums(z["nll"]), text: text)
            maxr = max(maxr, abs(r1 - StatsFixture.num(z["ratio"])), abs(r2 - StatsFixture.num(z["ratio"])))
        }
        print("[stats] zlib ratio vs Python zlib.compress: max|diff| \(maxr)")
        XCTAssertLessThan(maxr, 1e-14)
    }
}
