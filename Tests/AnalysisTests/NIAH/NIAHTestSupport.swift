import Foundation
@testable import Analysis

/// Paths of the repository, found from this file.
enum RepoPaths {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let probes = root.appendingPathComponent("probes/niah")
    static let scoringFixtures = root.appendingPathComponent("Tests/Fixtures/scoring")
}

/// One token per Unicode scalar (id = scalar value), so positions in the
/// tests can be checked by counting characters. `addSpecial` prepends BOS
/// (id 0x110000), which `decode` renders as "<s>" only when `renderBOS`.
struct CharTokenizer: TextTokenizer {
    static let bos: Int32 = 0x110000
    var renderBOS = false

    func encode(_ text: String, addSpecial: Bool) -> [Int32] {
        (addSpecial ? [Self.bos] : []) + text.unicodeScalars.map { Int32(bitPattern: $0.value) }
    }

    func decode(_ ids: [Int32]) -> String {
        var s = String.UnicodeScalarView()
        for id in ids {
            if id == Self.bos {
                if renderBOS { s.append(contentsOf: "<s>".unicodeScalars) }
                continue
            }
            s.append(Unicode.Scalar(UInt32(id))!)
        }
        return String(s)
    }
}

/// A BPE-like fake: a token is an optional leading space plus a run of
/// letters/digits, or a run of punctuation (so ")." and ".”" are single
/// tokens, as in a byte-level BPE), or a run of other whitespace. Ids are
/// handed out on first sight.
final class PieceTokenizer: TextTokenizer {
    private(set) var vocab: [String: Int32] = [:]
    private(set) var pieces: [String] = []

    func id(_ piece: String) -> Int32 {
        if let i = vocab[piece] { return i }
        let i = Int32(pieces.count)
        vocab[piece] = i
        pieces.append(piece)
        return i
    }

    /// ` ?[letters/digits]+`, ` ?[punctuation]+`, or `\s+` (lossless).
    static func split(_ text: String) -> [String] {
        let c = Array(text)
        func isWord(_ x: Character) -> Bool { x.isLetter || x.isNumber }
        var out: [String] = []
        var i = 0
        while i < c.count {
            let start = i
            if c[i] == " " && i + 1 < c.count && !c[i + 1].isWhitespace { i += 1 }
            if c[i].isWhitespace {
                while i < c.count && c[i].isWhitespace { i += 1 }
            } else if isWord(c[i]) {
                while i < c.count && isWord(c[i]) { i += 1 }
            } else {
                while i < c.count && !isWord(c[i]) && !c[i].isWhitespace { i += 1 }
            }
            out.append(String(c[start..<i]))
        }
        return out
    }

    func encode(_ text: String, addSpecial: Bool) -> [Int32] { Self.split(text).map(id) }
    func decode(_ ids: [Int32]) -> String { ids.map { pieces[Int($0)] }.joined() }
}

/// A temporary directory removed at deinit.
final class TempDir {
    let url: URL
    init() {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("headlight-niah-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }

    @discardableResult
    func write(_ name: String, _ text: String) -> URL {
        let u = url.appendingPathComponent(name)
        try! FileManager.default.createDirectory(at: u.deletingLastPathComponent(), withIntermediateDirectories: true)
        try! text.write(to: u, atomically: true, encoding: .utf8)
        return u
    }
}
