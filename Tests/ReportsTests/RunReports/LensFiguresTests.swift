import Foundation
import XCTest

@testable import Analysis
@testable import Reports

/// The lens figures from a hand-built lens: which figures, the probabilities they show, and
/// hostile token text (markup, quotes, control characters) escaped in SVG and HTML.
final class LensFiguresTests: XCTestCase {
    func lens(target: Bool) -> LensRunData {
        // 2 layers (3 rows), 1 position, top 2, 2 heads; logits chosen so p(top-1) is known.
        let lse = log(exp(2.0) + exp(1.0) + exp(0.0))
        var l = LogitLens(
            request: LogitLensRequest(positions: [4], top: 2, target: target ? 7 : nil, baseline: target ? 8 : nil),
            layers: 2, heads: 2, topIDs: [7, 8, 8, 7, 7, 9], topLogits: [2, 1, 2, 1, 2, 1],
            logNormalizer: [lse, lse, lse], targetLogit: [], baselineLogit: [], targetRank: [], modelTop: [7],
            attribution: nil)
        if target {
            l.targetLogit = [2, 1, 2]
            l.baselineLogit = [1, 2, 0]
            l.targetRank = [0, 1, 0]
            l.attribution = DirectLogitAttribution(
                heads: [0.5, -0.25, 1, 0.125], attentionBias: [0, 0], mlp: [0.1, 0.2], embed: [0.3], total: [1.975],
                logitDifference: [2], finalScale: [1], direction: [1, 0], normWeight: [1, 1], headSumError: 0,
                residualError: 0)
        }
        return LensRunData(
            lens: l, texts: [7: "<script>alert(1)</script>", 8: "\"&'\u{1B}[31m", 9: "x\u{202E}gnp.exe"])
    }

    func figures(_ blocks: [ReportDocument.Block]) -> [ReportDocument.Figure] {
        blocks.compactMap { if case .figure(let f) = $0 { return f } else { return nil } }
    }

    func testFiguresAndEscaping() throws {
        let blocks = LensFigures.blocks(lens(target: true), source: "<evil>.h5")
        XCTAssertEqual(figures(blocks).map(\.name), ["lens-top1", "lens-logit-diff", "lens-dla-4"])
        let lensOnly = LensFigures.blocks(lens(target: false), source: "x.h5")
        XCTAssertEqual(figures(lensOnly).map(\.name), ["lens-top1"])

        let p = exp(2.0) / (exp(2.0) + exp(1.0) + exp(0.0))
        var doc = ReportDocument(title: "t")
        var s = ReportDocument.Section("Lens")
        s.blocks = blocks
        doc.sections = [s]
        let html = doc.html()
        XCTAssertTrue(html.contains(Num.fixed(p, 3)), "the table shows p(top-1) = \(Num.fixed(p, 3))")
        for f in figures(blocks) {
            XCTAssertFalse(f.svg.contains("<script"), f.name)
            XCTAssertFalse(f.svg.contains("\u{1B}"), f.name)
            let x = XMLCheck.parse(f.svg)
            XCTAssertTrue(x.ok, "\(f.name): \(x.error ?? "")")
            XCTAssertFalse(x.elements.contains { $0.name == "script" }, f.name)
        }
        XCTAssertFalse(html.contains("<script>alert"))
        XCTAssertFalse(html.contains("\u{1B}"))
        // Bidi overrides pass through by the escaping policy, isolated by CSS (Escaping.swift).
        XCTAssertTrue(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        // The top-1 heat map's tooltips name the tokens.
        XCTAssertTrue(figures(blocks)[0].svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
    }
}
