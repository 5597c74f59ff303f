import Foundation
import GGUF
import Inference
import XCTest
@testable import Analysis

/// `Tokenizer.controlTokenTexts(in:)` (the haystack check of retrieval-heads and ablate) searches
/// bytes: against a naive search on random strings, and against the String.contains search it
/// replaced on the real vocabularies (SmolLM2, Gemma 3 with 262,144 tokens; each skipped when
/// not cached).
final class ControlTokenTextTests: XCTestCase {
    func testByteSearchMatchesNaiveSearch() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
        func naive(_ needle: [UInt8], _ hay: [UInt8]) -> Bool {
            guard !needle.isEmpty, needle.count <= hay.count else { return false }
            return (0...(hay.count - needle.count)).contains { Array(hay[$0..<($0 + needle.count)]) == needle }
        }
        var found = 0
        for _ in 0..<3000 {
            // A 3-letter alphabet so that partial and overlapping matches are common.
            let hay = (0..<next(40)).map { _ in UInt8(97 + next(3)) }
            let needle = (0..<(1 + next(5))).map { _ in UInt8(97 + next(3)) }
            let got = hay.withUnsafeBufferPointer { ByteSearch.occurs(needle, in: $0) }
            XCTAssertEqual(got, naive(needle, hay), "\(needle) in \(hay)")
            if got { found += 1 }
        }
        XCTAssertGreaterThan(found, 300)
        XCTAssertFalse([UInt8]().withUnsafeBufferPointer { ByteSearch.occurs([97], in: $0) })
        XCTAssertTrue(Array("xxab".utf8).withUnsafeBufferPointer { ByteSearch.occurs(Array("ab".utf8), in: $0) })
        XCTAssertFalse(Array("xxa".utf8).withUnsafeBufferPointer { ByteSearch.occurs(Array("ab".utf8), in: $0) })
    }

    /// The former implementation: Foundation's String.contains over every control/unknown token.
    static func stringContainsReference(_ tok: Tokenizer, _ text: String) -> [String] {
        var found: [String] = []
        for id in 0..<Int32(tok.vocabSize) where tok.isSpecial(id) {
            let t = tok.tokenString(id)
            if !t.isEmpty && text.contains(t) && !found.contains(t) { found.append(t) }
        }
        return found.sorted { $0.count > $1.count || ($0.count == $1.count && $0 < $1) }
    }

    func check(model file: String) throws {
        let url = DefaultModel.url.deletingLastPathComponent().appendingPathComponent(file)
        guard FileManager.default.fileExists(atPath: url.path) else { throw XCTSkip("\(file) not cached") }
        let tok = try Tokenizer(gguf: GGUFFile(url: url))
        let specials = (0..<Int32(tok.vocabSize)).filter { tok.isSpecial($0) }.map { tok.tokenString($0) }
        XCTAssertFalse(specials.isEmpty)
        let jargon = try Data(contentsOf: RepoPaths.probes.appendingPathComponent("haystack/jargon-file-4.4.7.txt"))
        let texts = [
            String(decoding: jargon.prefix(4_000), as: UTF8.self),
            "Zürich café — naïve ✓ " + specials.prefix(3).joined(separator: " x ") + " tail",
            "a" + (specials.last ?? "") + "é" + (specials.first ?? ""),
            "plain text"
        ]
        for text in texts {
            let got = tok.controlTokenTexts(in: text)
            XCTAssertEqual(got, Self.stringContainsReference(tok, text), "\(file): \(text.prefix(60))")
        }
        let marked = "<book>" + specials.prefix(2).joined(separator: "hello") + "</book>"
        XCTAssertFalse(tok.controlTokenTexts(in: marked).isEmpty, "\(file): \(marked)")
    }

    func testSmolLM2AgreesWithStringSearch() throws { try check(model: "SmolLM2-135M-Instruct.Q4_1.gguf") }

    func testGemma3AgreesWithStringSearch() throws { try check(model: "gemma-3-270m-q4_k_m.gguf") }
}
