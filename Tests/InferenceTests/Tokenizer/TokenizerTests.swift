// Tokenizer fidelity against llama.cpp.
//
// Fixtures (Tests/Fixtures/tokenizer, written by make_fixtures.py with llama-cpp-python):
//  - smollm2.json: llama.cpp's ids for 420 strings with the default model's vocab (byte-level BPE,
//    pre-tokenizer "smollm"), with and without special-token parsing, llama.cpp's detokenization,
//    and a digest of every token piece. Needs the default model (skipped when it is not cached).
//  - pretokenizers.json: the same strings with the default model's vocab under other pre-tokenizers
//    (llama-bpe, qwen2, gpt-2, default, starcoder), as llama.cpp tokenizes them.
//  - spm.json: a SentencePiece BPE vocab (byte fallback) written as a Llama-style GGUF, and
//    llama.cpp's ids for the same strings. Runs without any model: the GGUF is rebuilt here with
//    GGUFWriter.
//  - gemma3.json: llama.cpp's ids, detokenization and piece digest for the same strings plus
//    Gemma-specific ones with Gemma 3 270M's 262,144-token SentencePiece vocabulary. Needs the
//    model (`scripts/fetch-model.sh gemma3-270m`; skipped with the reason printed when absent).
// Plus hand-computed cases on tiny synthetic vocabularies, streaming decode, errors, and speed.

import Foundation
import XCTest
@testable import GGUF
@testable import Inference

final class TokenizerTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tokenizer")

    static var defaultModelPath: URL {
        let env = ProcessInfo.processInfo.environment
        if let m = env["HEADLIGHT_MODEL"], !m.isEmpty { return URL(fileURLWithPath: m) }
        if let dir = env["HEADLIGHT_CACHE"], !dir.isEmpty {
            return URL(fileURLWithPath: dir).appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf")
        }
        return FileManager.default.homeDirectoryForCurrentUser
            .appendingPathComponent(".cache/headlight/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    }

    // MARK: - Fixture format

    struct Bytes: Decodable {
        let text: String?
        let hex: String?
        var bytes: [UInt8] {
            if let text { return Array(text.utf8) }
            let h = Array(hex!.utf8)
            return stride(from: 0, to: h.count, by: 2).map {
                UInt8(String(decoding: h[$0..<($0 + 2)], as: UTF8.self), radix: 16)!
            }
        }
    }

    struct Case: Decodable {
        let text: String
        let ids: [Int32]
        let ids_no_special: [Int32]
        let ids_add_special: [Int32]
        let detok: Bytes
        let detok_skip: Bytes
    }

    struct Info: Decodable {
        let n_tokens: Int
        let bos: Int32?
        let eos: Int32?
        let eot: Int32?
        let add_bos: Bool
        let add_eos: Bool
        let eog: [Int32]
        let control: [Int32]
    }

    struct Pieces: Decodable {
        let fnv1a64: String
        let sample_hex: [String: String]
    }

    struct SmolFixture: Decodable {
        let llama_cpp_python: String
        let model: String
        let info: Info
        let pieces: Pieces
        let cases: [Case]
    }

    struct SPMFixture: Decodable {
        let tokens: [String]
        let scores: [Float]
        let token_types: [Int]
        let bos: Int
        let eos: Int
        let unk: Int
        let add_bos: Bool
        let add_eos: Bool
        let info: Info
        let pieces: Pieces
        let cases: [Case]
    }

    static func load<T: Decodable>(_ name: String, as: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: fixtures.appendingPathComponent(name)))
    }

    static let smolTokenizer: Result<Tokenizer, Error> = Result {
        let path = defaultModelPath
        guard FileManager.default.fileExists(atPath: path.path) else {
            throw XCTSkip("default model not found at \(path.path) (scripts/fetch-model.sh)")
        }
        return try Tokenizer(gguf: GGUFFile(url: path))
    }

    func smol() throws -> Tokenizer { try Self.smolTokenizer.get() }

    static func show(_ ids: [Int32], _ t: Tokenizer) -> String {
        ids.map { "\($0):\(String(reflecting: t.tokenString($0)))" }.joined(separator: " ")
    }

    static func fnv1a64(_ pieces: (Int32) -> [UInt8], count: Int) -> String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ b: UInt8) {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01B3
        }
        for i in 0..<count {
            let p = pieces(Int32(i))
            withUnsafeBytes(of: UInt32(p.count).littleEndian) { $0.forEach(mix) }
            p.forEach(mix)
        }
        return String(format: "%016llx", h)
    }

    /// Compares every case; prints the match count and the first mismatch in detail.
    func check(_ cases: [Case], _ t: Tokenizer, label: String) {
        var matched = 0, matchedPlain = 0, matchedAdd = 0, detokOK = 0, skipOK = 0, roundTrips = 0, roundTripOK = 0
        var firstFailure: String?
        func note(_ s: @autoclosure () -> String) { if firstFailure == nil { firstFailure = s() } }
        for c in cases {
            let ids = t.encode(c.text, addSpecial: false, parseSpecial: true)
            if ids == c.ids {
                matched += 1
            } else {
                note(
                    """
                    ids (parseSpecial) differ for \(String(reflecting: c.text)):
                      expected \(Self.show(c.ids, t))
                      got      \(Self.show(ids, t))
                    """)
            }
            let plain = t.encode(c.text, addSpecial: false, parseSpecial: false)
            if plain == c.ids_no_special {
                matchedPlain += 1
            } else {
                note(
                    """
                    ids (no special) differ for \(String(reflecting: c.text)):
                      expected \(Self.show(c.ids_no_special, t))
                      got      \(Self.show(plain, t))
                    """)
            }
            let add = t.encode(c.text, addSpecial: true, parseSpecial: true)
            if add == c.ids_add_special {
                matchedAdd += 1
            } else {
                note(
                    "ids (addSpecial) differ for \(String(reflecting: c.text)): expected \(c.ids_add_special), got "
                        + "\(add)"
                )
            }
            let d = t.decodeBytes(c.ids, removeSpecial: false, unparseSpecial: true)
            if d == c.detok.bytes {
                detokOK += 1
            } else {
                note(
                    "decode(\(c.ids)) = \(String(reflecting: String(decoding: d, as: UTF8.self))), expected "
                        + String(reflecting: String(decoding: c.detok.bytes, as: UTF8.self)))
            }
            let ds = t.decodeBytes(c.ids_add_special, removeSpecial: true, unparseSpecial: false)
            if ds == c.detok_skip.bytes {
                skipOK += 1
            } else {
                note(
                    "decode(skipSpecial) of \(c.ids_add_special) = "
                        + "\(String(reflecting: String(decoding: ds, as: UTF8.self))), "
                        + "expected " + String(reflecting: String(decoding: c.detok_skip.bytes, as: UTF8.self)))
            }
            if c.detok.text == c.text {
                roundTrips += 1
                if t.decode(t.encode(c.text, addSpecial: false)) == c.text {
                    roundTripOK += 1
                } else {
                    note("round trip failed for \(String(reflecting: c.text))")
                }
            }
        }
        let n = cases.count
        print(
            """
            [\(label)] ids: \(matched)/\(n) identical (parse_special), \(matchedPlain)/\(n) (no special), \
            \(matchedAdd)/\(n) (add_special); detokenize: \(detokOK)/\(n), skip-special \(skipOK)/\(n); \
            round trip decode(encode(s)) == s: \(roundTripOK)/\(roundTrips) (strings llama.cpp round-trips)
            """)
        if let firstFailure { print("[\(label)] first mismatch: \(firstFailure)") }
        XCTAssertEqual(matched, n, "\(label): parse_special ids")
        XCTAssertEqual(matchedPlain, n, "\(label): no-special ids")
        XCTAssertEqual(matchedAdd, n, "\(label): add_special ids")
        XCTAssertEqual(detokOK, n, "\(label): detokenize")
        XCTAssertEqual(skipOK, n, "\(label): detokenize skip special")
        XCTAssertEqual(roundTripOK, roundTrips, "\(label): round trip")
    }

    func checkInfo(_ info: Info, _ t: Tokenizer, label: String) {
        XCTAssertEqual(t.vocabSize, info.n_tokens, label)
        XCTAssertEqual(t.bos, info.bos, "\(label) bos")
        XCTAssertEqual(t.eos, info.eos, "\(label) eos")
        XCTAssertEqual(t.eot, info.eot, "\(label) eot")
        XCTAssertEqual(t.addBOS, info.add_bos, "\(label) add_bos")
        XCTAssertEqual(t.addEOS, info.add_eos, "\(label) add_eos")
        XCTAssertEqual(t.endOfGeneration, Set(info.eog), "\(label) end-of-generation set")
        for id in 0..<Int32(t.vocabSize) {
            XCTAssertEqual(t.isEndOfGeneration(id), info.eog.contains(id), "\(label) isEndOfGeneration(\(id))")
        }
        let control = (0..<Int32(t.vocabSize)).filter { t.attributes(of: $0).contains(.control) }
        XCTAssertEqual(control, info.control, "\(label) control tokens")
    }

    func checkPieces(_ p: Pieces, _ t: Tokenizer, label: String) {
        var bad = 0
        for (k, hex) in p.sample_hex.sorted(by: { Int($0.key)! < Int($1.key)! }) {
            let got = t.pieceBytes(Int32(k)!, special: true)
            let want = Bytes(text: nil, hex: hex).bytes
            if got != want {
                if bad == 0 { print("[\(label)] piece \(k): got \(got), want \(want)") }
                bad += 1
            }
        }
        XCTAssertEqual(bad, 0, "\(label): sampled pieces")
        XCTAssertEqual(
            Self.fnv1a64({ t.pieceBytes($0, special: true) }, count: t.vocabSize), p.fnv1a64,
            "\(label): digest of all \(t.vocabSize) pieces")
    }

    // MARK: - SmolLM2 (byte-level BPE) vs llama.cpp

    func testSmolLM2MatchesLlamaCpp() throws {
        let t = try smol()
        let f = try Self.load("smollm2.json", as: SmolFixture.self)
        print(
            "[smollm2] fixture from llama-cpp-python \(f.llama_cpp_python), \(f.cases.count) strings, model \(f.model)")
        XCTAssertEqual(t.model, .bpe)
        XCTAssertEqual(t.pre, "smollm")
        checkInfo(f.info, t, label: "smollm2")
        check(f.cases, t, label: "smollm2")
        checkPieces(f.pieces, t, label: "smollm2")
    }

    // MARK: - Gemma 3 (SentencePiece, 262,144 tokens) vs llama.cpp

    static var gemmaModelPath: URL {
        let env = ProcessInfo.processInfo.environment
        let cache: URL
        if let dir = env["HEADLIGHT_CACHE"], !dir.isEmpty {
            cache = URL(fileURLWithPath: dir)
        } else if let xdg = env["XDG_CACHE_HOME"], !xdg.isEmpty {
            cache = URL(fileURLWithPath: xdg).appendingPathComponent("headlight")
        } else {
            cache = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/headlight")
        }
        return cache.appendingPathComponent("models/gemma-3-270m-q4_k_m.gguf")
    }

    func testGemma3MatchesLlamaCpp() throws {
        let path = Self.gemmaModelPath
        guard FileManager.default.fileExists(atPath: path.path) else {
            print(
                "[gemma3] skipping: Gemma 3 270M not cached at \(path.path) "
                    + "(run scripts/fetch-model.sh gemma3-270m)")
            throw XCTSkip("Gemma 3 270M not cached (scripts/fetch-model.sh gemma3-270m)")
        }
        let f = try Self.load("gemma3.json", as: SmolFixture.self)
        let t = try Tokenizer(gguf: GGUFFile(url: path))
        print(
            "[gemma3] fixture from llama-cpp-python \(f.llama_cpp_python), \(f.cases.count) strings, "
                + "model \(f.model)")
        XCTAssertEqual(t.model, .spm)
        XCTAssertEqual(t.vocabSize, 262_144)
        XCTAssertFalse(t.addSpacePrefix)
        XCTAssertTrue(t.addBOS)
        XCTAssertEqual(t.bos, 2)
        XCTAssertEqual(t.tokenString(t.eot ?? -1), "<end_of_turn>")
        checkInfo(f.info, t, label: "gemma3")
        check(f.cases, t, label: "gemma3")
        checkPieces(f.pieces, t, label: "gemma3")
    }

    struct PreCase: Decodable {
        let ids: [Int32]
        let ids_no_special: [Int32]
        let detok: Bytes
    }

    struct PreFixture: Decodable {
        struct Entry: Decodable {
            let info: Info
            let cases: [PreCase]
        }
        let pretokenizers: [String: Entry]
    }

    /// The default model's vocab and merges with other `tokenizer.ggml.pre` values (llama-bpe,
    /// qwen2, gpt-2, default, starcoder): the other pre-tokenizer scanners, ignore_merges (llama-bpe)
    /// and clean_spaces (gpt-2, default, llama-bpe) against llama.cpp.
    func testOtherPreTokenizersMatchLlamaCpp() throws {
        _ = try smol()
        let file = try GGUFFile(url: Self.defaultModelPath)
        let texts = try Self.load("smollm2.json", as: SmolFixture.self).cases.map(\.text)
        let f = try Self.load("pretokenizers.json", as: PreFixture.self)
        XCTAssertEqual(Set(f.pretokenizers.keys), ["llama-bpe", "qwen2", "gpt-2", "default", "starcoder"])
        for (pre, entry) in f.pretokenizers.sorted(by: { $0.key < $1.key }) {
            var meta = file.metadata
            meta["tokenizer.ggml.pre"] = .string(pre)
            let t = try Tokenizer(metadata: meta, source: "SmolLM2 vocab with pre=\(pre)")
            XCTAssertEqual(t.endOfGeneration, Set(entry.info.eog), pre)
            XCTAssertEqual(entry.cases.count, texts.count)
            var ids = 0, plain = 0, detok = 0
            var firstFailure: String?
            for (text, c) in zip(texts, entry.cases) {
                let got = t.encode(text, addSpecial: false, parseSpecial: true)
                if got == c.ids {
                    ids += 1
                } else if firstFailure == nil {
                    firstFailure =
                        "\(String(reflecting: text)):\n  expected \(Self.show(c.ids, t))\n"
                        + "  got      \(Self.show(got, t))"
                }
                if t.encode(text, addSpecial: false, parseSpecial: false) == c.ids_no_special { plain += 1 }
                if t.decodeBytes(c.ids, removeSpecial: false, unparseSpecial: true) == c.detok.bytes { detok += 1 }
            }
            let n = texts.count
            print(
                "[pre=\(pre)] ids: \(ids)/\(n) identical, \(plain)/\(n) without special parsing; detokenize "
                    + "\(detok)/\(n)"
            )
            if let firstFailure { print("[pre=\(pre)] first mismatch: \(firstFailure)") }
            XCTAssertEqual(ids, n, pre)
            XCTAssertEqual(plain, n, pre)
            XCTAssertEqual(detok, n, pre)
        }
    }

    func testSmolLM2Basics() throws {
        let t = try smol()
        XCTAssertEqual(t.vocabSize, 49152)
        XCTAssertEqual(t.bos, 1)
        XCTAssertEqual(t.eos, 2)
        XCTAssertEqual(t.tokenString(1), "<|im_start|>")
        XCTAssertEqual(t.encode("<|im_start|>user"), [1, 4093])
        XCTAssertEqual(t.piece(4093), "user")
        XCTAssertTrue(t.isEndOfGeneration(2))
        XCTAssertFalse(t.isEndOfGeneration(1))
        // Digits are split one by one ("\p{N}" first), contractions kept.
        XCTAssertEqual(t.encode("123").map { t.piece($0) }, ["1", "2", "3"])
        XCTAssertEqual(t.decode(t.encode("don't stop")), "don't stop")
        XCTAssertEqual(t.decode(t.encode("<|im_start|>hi<|im_end|>"), skipSpecial: true), "hi")
        XCTAssertEqual(t.decode([]), "")
        XCTAssertEqual(t.decode([-1, 999_999]), "")
    }

    func testStreamDecoderMatchesWholeDecode() throws {
        let t = try smol()
        let f = try Self.load("smollm2.json", as: SmolFixture.self)
        var checked = 0
        for c in f.cases {
            var d = t.streamDecoder()
            var streamed = ""
            var sawPartial = false
            for id in c.ids {
                let s = d.push(id)
                if !d.pendingBytes.isEmpty { sawPartial = true }
                XCTAssertFalse(
                    s.unicodeScalars.contains("\u{FFFD}") && !c.text.unicodeScalars.contains("\u{FFFD}"),
                    "stream emitted U+FFFD for \(String(reflecting: c.text))")
                streamed += s
            }
            streamed += d.finish()
            let whole = String(decoding: c.ids.flatMap { t.pieceBytes($0) }, as: UTF8.self)
            XCTAssertEqual(streamed, whole, String(reflecting: c.text))
            if sawPartial { checked += 1 }
        }
        XCTAssertGreaterThan(checked, 10, "some strings should split UTF-8 sequences across tokens")
        // An emoji's four bytes, one token each: nothing until the last one.
        var d = t.streamDecoder()
        let bytes = Array("😀".utf8)
        for b in bytes.dropLast() { XCTAssertEqual(d.push(bytes: [b]), "") }
        XCTAssertEqual(d.push(bytes: [bytes.last!]), "😀")
        XCTAssertEqual(d.push(bytes: [0xE2]), "")
        XCTAssertEqual(d.finish(), "\u{FFFD}")
        XCTAssertEqual(d.push(bytes: [0x80, 0x41]), "\u{FFFD}A") // a stray continuation byte is not held
    }

    // MARK: - SentencePiece BPE vs llama.cpp

    /// The fixture's SentencePiece vocab as a GGUF (tokenizer.ggml.model = llama), written with GGUFWriter.
    static func spmGGUF(_ f: SPMFixture, extra: [(String, GGUFValue)] = []) throws -> GGUFFile {
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        w.set("tokenizer.ggml.model", .string("llama"))
        w.set("tokenizer.ggml.tokens", .array(.string, f.tokens.map { .string($0) }))
        w.set("tokenizer.ggml.scores", .array(.float32, f.scores.map { .float32($0) }))
        w.set("tokenizer.ggml.token_type", .array(.int32, f.token_types.map { .int32(Int32($0)) }))
        w.set("tokenizer.ggml.bos_token_id", .uint32(UInt32(f.bos)))
        w.set("tokenizer.ggml.eos_token_id", .uint32(UInt32(f.eos)))
        w.set("tokenizer.ggml.unknown_token_id", .uint32(UInt32(f.unk)))
        w.set("tokenizer.ggml.add_bos_token", .bool(f.add_bos))
        w.set("tokenizer.ggml.add_eos_token", .bool(f.add_eos))
        for (k, v) in extra { w.set(k, v) }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "headlight-spm-\(UUID().uuidString).gguf")
        try w.write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        return try GGUFFile(url: url)
    }

    func testSentencePieceMatchesLlamaCpp() throws {
        let f = try Self.load("spm.json", as: SPMFixture.self)
        let t = try Tokenizer(gguf: Self.spmGGUF(f))
        XCTAssertEqual(t.model, .spm)
        XCTAssertTrue(t.addSpacePrefix)
        checkInfo(f.info, t, label: "spm")
        check(f.cases, t, label: "spm")
        checkPieces(f.pieces, t, label: "spm")
    }

    /// A hand-built SentencePiece vocab, expectations worked out by hand from llama.cpp's algorithm.
    func testSentencePieceHandComputed() throws {
        // id: 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then pieces with scores.
        var tokens = ["<unk>", "<s>", "</s>"]
        var scores: [Float] = [0, 0, 0]
        var types = [2, 3, 3]
        for b in 0..<256 {
            tokens.append(String(format: "<0x%02X>", b))
            scores.append(0)
            types.append(6)
        }
        let pieces: [(String, Float)] = [
            ("▁", -1), ("a", -2), ("b", -3), ("c", -4), ("ab", -5), ("bc", -0.5),
            ("▁a", -6), ("▁ab", -7), ("abc", -8), ("<sep>", 0)
        ]
        for (p, s) in pieces {
            tokens.append(p)
            scores.append(s)
            types.append(p == "<sep>" ? 4 : 1)
        }
        func id(_ s: String) -> Int32 { Int32(tokens.firstIndex(of: s)!) }
        var w = GGUFWriter()
        w.set("tokenizer.ggml.model", .string("llama"))
        w.set("tokenizer.ggml.tokens", .array(.string, tokens.map { .string($0) }))
        w.set("tokenizer.ggml.scores", .array(.float32, scores.map { .float32($0) }))
        w.set("tokenizer.ggml.token_type", .array(.int32, types.map { .int32(Int32($0)) }))
        let t = try Tokenizer(metadata: try GGUFFile(url: writeTemp(w)).metadata)

        // "abc" -> "▁abc": candidates ▁a(-6), ab(-5), bc(-0.5): bc wins -> ▁ a bc; then ▁a(-6) -> ▁a bc;
        // "▁abc" is not a token, so the result is [▁a, bc]. (Leftmost-longest would give ▁ab + c.)
        XCTAssertEqual(t.encode("abc", addSpecial: false), [id("▁a"), id("bc")])
        // add_bos defaults to true for SentencePiece.
        XCTAssertEqual(t.encode("abc"), [1, id("▁a"), id("bc")])
        // Unknown characters fall back to bytes: "é" = C3 A9; space prefix only at the start.
        XCTAssertEqual(t.encode("aé", addSpecial: false), [id("▁a"), id("<0xC3>"), id("<0xA9>")])
        // User-defined tokens are matched even without special parsing; text after a special
        // token gets the space prefix again (llama.cpp's is_prev_special).
        XCTAssertEqual(
            t.encode("a<sep>b", addSpecial: false, parseSpecial: false), [id("▁a"), id("<sep>"), id("▁"), id("b")])
        // Decoding: "▁" -> " ", the leading space of the first piece removed, bytes reassembled.
        XCTAssertEqual(t.decode([id("▁a"), id("bc"), id("<0xC3>"), id("<0xA9>")]), "abcé")
        XCTAssertEqual(t.decode([1, id("▁a"), id("bc")]), "<s> abc")
        XCTAssertEqual(t.decode([1, id("▁a"), id("bc")], skipSpecial: true), " abc") // as llama_detokenize
    }

    /// A hand-built byte-level BPE vocab: merge order, rank ties, unknown-symbol fallback.
    func testByteLevelBPEHandComputed() throws {
        let tokens = ["a", "b", "c", "Ġ", "ab", "bc", "Ġa", "abc", "<|x|>", "1", "2", "3", "12"]
        let merges = ["b c", "a b", "Ġ a", "ab c", "a bc", "1 2", "x y"]
        var w = GGUFWriter()
        w.set("tokenizer.ggml.model", .string("gpt2"))
        w.set("tokenizer.ggml.pre", .string("gpt-2"))
        w.set("tokenizer.ggml.tokens", .array(.string, tokens.map { .string($0) }))
        w.set("tokenizer.ggml.token_type", .array(.int32, tokens.map { .int32($0 == "<|x|>" ? 3 : 1) }))
        w.set("tokenizer.ggml.merges", .array(.string, merges.map { .string($0) }))
        let t = try Tokenizer(metadata: try GGUFFile(url: writeTemp(w)).metadata)
        func id(_ s: String) -> Int32 { Int32(tokens.firstIndex(of: s)!) }
        // "abc": "b c" (rank 0) first, then "a bc" (rank 4) -> "abc".
        XCTAssertEqual(t.encode("abc", addSpecial: false), [id("abc")])
        // " abc" is one word: Ġ a b c -> Ġ a bc -> Ġa bc (rank 2) -> no "Ġa bc" merge.
        XCTAssertEqual(t.encode(" abc", addSpecial: false), [id("Ġa"), id("bc")])
        // Digits split by \p{N}+ as one word; "123" -> 12 3.
        XCTAssertEqual(t.encode("123", addSpecial: false), [id("12"), id("3")])
        // Control token text is matched only with parseSpecial.
        XCTAssertEqual(t.encode("a<|x|>", addSpecial: false), [id("a"), id("<|x|>")])
        // Characters without a token are dropped, as llama.cpp does (no byte tokens in this vocab).
        XCTAssertEqual(t.encode("d", addSpecial: false), [])
        // gpt2 BPE without a BOS key: llama.cpp's default BOS/EOS is 11 (here "2"); add_bos defaults off.
        XCTAssertEqual(t.bos, 11)
        XCTAssertFalse(t.addBOS)
        XCTAssertEqual(t.decode([id("Ġa"), id("bc")]), " abc")
        XCTAssertTrue(t.cleanSpaces) // on for "gpt-2", off for "smollm"
    }

    /// llama_detokenize's clean-up passes: " ," -> ",", " ' " -> "'", " 's" -> "'s" (but " 't" kept).
    func testCleanUpSpaces() {
        func clean(_ s: String) -> String {
            var b = Array(s.utf8)
            Tokenizer.cleanUpSpaces(&b)
            return String(decoding: b, as: UTF8.self)
        }
        XCTAssertEqual(clean("a , b 's c ' d"), "a, b's c'd")
        XCTAssertEqual(clean("Hi ! Really ? Yes . No ,"), "Hi! Really? Yes. No,")
        XCTAssertEqual(clean("we 're they 've I 'm don 't we 'll"), "we're they've I'm don 't we 'll")
        XCTAssertEqual(clean(""), "")
        XCTAssertEqual(clean(" "), " ")
    }

    func testPreTokenizers() throws {
        func split(_ kind: PreTokenizer, _ s: String) -> [String] {
            let cpts = s.unicodeScalars.map(\.value)
            let lens = cpts.withUnsafeBufferPointer { kind.split($0, flags: UnicodeFlags()) }
            var out: [String] = []
            var i = 0
            for n in lens {
                out.append(String(String.UnicodeScalarView(cpts[i..<(i + n)].map { Unicode.Scalar($0)! })))
                i += n
            }
            return out
        }
        XCTAssertEqual(split(.gpt2, "Hello world's 123  x\n\n"), ["Hello", " world", "'s", " 123", " ", " x", "\n\n"])
        XCTAssertEqual(split(.starcoder, "ab 1234"), ["ab", " ", "1", "2", "3", "4"])
        XCTAssertEqual(
            split(.llama3, "I'M 1234567 ok!!\n\nx"), ["I", "'M", " ", "123", "456", "7", " ok", "!!\n\n", "x"])
        XCTAssertEqual(split(.qwen2, "ab12"), ["ab", "1", "2"])
        XCTAssertEqual(split(.llama3, "  \n  x"), ["  \n", " ", " x"])
        XCTAssertEqual(split(.default, "a+b=12345!"), ["a", "+", "b", "=", "123", "45", "!"])
        XCTAssertEqual(split(.gpt2, ""), [])
    }

    func testUnicodeFlagsMatchLlamaCppVersion() {
        let u = UnicodeFlags()
        XCTAssertTrue(u.isLetter(0x61))
        XCTAssertTrue(u.isNumber(0x0663)) // Arabic-Indic three
        XCTAssertTrue(u.isWhitespace(0x3000))
        XCTAssertTrue(u.isWhitespace(0x85))
        XCTAssertFalse(u.isWhitespace(0x200B))
        XCTAssertTrue(u.isPunctuation(0x2014))
        // U+2FFC (Unicode 15.1) is a symbol; U+1C89 (Unicode 16) is unassigned, as in llama.cpp's tables.
        XCTAssertEqual(u.flags(0x2FFC), UnicodeFlags.symbol)
        XCTAssertEqual(u.flags(0x1C89), UnicodeFlags.undefined)
        XCTAssertEqual(u.flags(0x110000), 0)
    }

    // MARK: - Errors

    func writeTemp(_ w: GGUFWriter) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "headlight-tok-\(UUID().uuidString).gguf")
        try w.write(to: url)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    func testErrorsNameTheKey() throws {
        func message(_ meta: [String: GGUFValue]) -> String {
            do {
                _ = try Tokenizer(metadata: meta, source: "x.gguf")
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        let toks = GGUFValue.array(.string, [.string("a"), .string("b")])
        XCTAssertTrue(message([:]).contains("tokenizer.ggml.model"))
        XCTAssertTrue(message([:]).hasPrefix("x.gguf: "))
        XCTAssertTrue(
            message(["tokenizer.ggml.model": .string("bert")]).contains("unsupported tokenizer.ggml.model 'bert'"))
        XCTAssertTrue(message(["tokenizer.ggml.model": .string("gpt2")]).contains("tokenizer.ggml.tokens"))
        XCTAssertTrue(
            message(["tokenizer.ggml.model": .string("gpt2"), "tokenizer.ggml.tokens": .uint32(3)])
                .contains("'tokenizer.ggml.tokens' should be array[string], found u32"))
        XCTAssertTrue(
            message(["tokenizer.ggml.model": .string("gpt2"), "tokenizer.ggml.tokens": toks])
                .contains("tokenizer.ggml.merges"))
        XCTAssertTrue(
            message([
                "tokenizer.ggml.model": .string("gpt2"), "tokenizer.ggml.tokens": toks,
                "tokenizer.ggml.pre": .string("nonesuch")
            ])
            .contains("unsupported tokenizer.ggml.pre 'nonesuch'"))
        XCTAssertTrue(
            message([
                "tokenizer.ggml.model": .string("llama"), "tokenizer.ggml.tokens": toks,
                "tokenizer.ggml.scores": .array(.float32, [.float32(0)])
            ])
            .contains("'tokenizer.ggml.scores' has 1 entries for 2 tokens"))
        XCTAssertTrue(
            message([
                "tokenizer.ggml.model": .string("llama"), "tokenizer.ggml.tokens": toks,
                "tokenizer.ggml.add_bos_token": .uint8(1)
            ])
            .contains("'tokenizer.ggml.add_bos_token' should be a bool"))
    }

    // MARK: - Speed

    /// Deterministic prose-like text: common words, made-up words, numbers, punctuation, newlines.
    static func prose(words count: Int) -> String {
        let common = """
            the of and to in a is that for it as was with be by on not he I this are or his from at which but \
            have an they you were her she there been one all we their has would when if so no will more can out \
            what about up other into could time only new some these two may first then do any like my now over \
            such our man me even most made after also did many before must through back years where much your way \
            well down should because each just those people how too little state good very make world still own \
            see men work long get here between both life being under never day same another know while last might \
            us great old year off come since against go came right used take three model layer attention token \
            neuron circuit feature residual stream interpretability gradient embedding probability
            """.split(separator: " ").map(String.init)
        let syllables = ["ka", "lo", "mi", "ten", "sor", "vi", "qua", "rel", "ph", "ux", "str", "an", "ee", "io", "zy"]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(truncatingIfNeeded: state >> 33)
        }
        var out = ""
        out.reserveCapacity(count * 6)
        for i in 0..<count {
            let r = next() % 100
            var w: String
            if r < 80 {
                w = common[next() % common.count]
            } else if r < 95 {
                w = (0..<(2 + next() % 3)).map { _ in syllables[next() % syllables.count] }.joined()
            } else {
                w = String(next() % 100_000)
            }
            if i % 12 == 0 { w = w.prefix(1).uppercased() + w.dropFirst() }
            out += w
            let p = next() % 40
            out += p == 0 ? ".\n\n" : p < 4 ? ". " : p < 7 ? ", " : p == 8 ? "'s " : " "
        }
        return out
    }

    func testEncodingSpeed() throws {
        let path = Self.defaultModelPath
        guard FileManager.default.fileExists(atPath: path.path) else { throw XCTSkip("default model not cached") }
        let loadStart = Date()
        let t = try Tokenizer(gguf: GGUFFile(url: path))
        let loadTime = Date().timeIntervalSince(loadStart)
        let text = Self.prose(words: 90_000)
        let start = Date()
        let ids = t.encode(text, addSpecial: false)
        let cold = Date().timeIntervalSince(start)
        let start2 = Date()
        _ = t.encode(text, addSpecial: false)
        let warm = Date().timeIntervalSince(start2)
        let decodeStart = Date()
        let back = t.decode(ids)
        let decodeTime = Date().timeIntervalSince(decodeStart)
        XCTAssertEqual(back, text)
        print(
            String(
                format: "[speed] tokenizer load %.3fs; encode %d bytes -> %d tokens: %.3fs cold cache "
                    + "(%.0f tokens/s), %.3fs warm; decode %.3fs", loadTime, text.utf8.count, ids.count, cold,
                Double(ids.count) / cold, warm, decodeTime))
        XCTAssertGreaterThan(ids.count, 100_000)
        #if !DEBUG
            XCTAssertLessThan(cold, 1.0, "encoding 100k tokens should take well under a second in release builds")
        #endif
    }
}
