import Foundation

// Citation probes (methods.md section 3; format in probes/README.md, "Citation set"): numbered
// passages, a question, and either an answer with citation markers [k] to teacher-force or
// nothing (the model generates and its citations are parsed). Loading checks every line and
// names file:line in its errors.

/// One probe item. Passage numbers are 1-based in the file and in answers, 0-based in code.
public struct CitationItem: Sendable, Equatable {
    public var id: String
    public var passages: [String]
    public var question: String
    /// Answer to teacher-force, with citation markers like "[2]"; nil: the model generates.
    public var answer: String?
    /// The answer fact as it appears in its source passage (exact-match judge, answer correctness).
    public var gold: String?
    /// 0-based index of the passage that truly holds the answer (nil: unknown).
    public var source: Int?
    /// The answer's citation deliberately points to a distractor (`source` is the true one).
    public var wrongCitation: Bool
    /// Free-form `meta` object, as compact JSON text (nil if absent).
    public var meta: String?
    /// 1-based line in the probe file (0 for items made in code).
    public var line: Int

    public init(
        id: String, passages: [String], question: String, answer: String? = nil, gold: String? = nil,
        source: Int? = nil, wrongCitation: Bool = false, meta: String? = nil, line: Int = 0
    ) {
        self.id = id
        self.passages = passages
        self.question = question
        self.answer = answer
        self.gold = gold
        self.source = source
        self.wrongCitation = wrongCitation
        self.meta = meta
        self.line = line
    }
}

/// A problem with a probe file or item; every message names the file and line.
public enum CitationError: LocalizedError, Equatable, Sendable {
    case noSuchFile(String)
    case emptyFile(String)
    case badLine(file: String, line: Int, detail: String)
    case badReference(file: String, line: Int, id: String, passage: Int, passages: Int)
    case duplicateID(file: String, line: Int, id: String, firstLine: Int)
    case tokenAlignment(id: String, detail: String)
    case tooLong(id: String, tokens: Int, maxContext: Int)
    case badRetrievalHeads(file: String, detail: String)
    case invalid(String)

    public var errorDescription: String? {
        switch self {
        case .noSuchFile(let f): return "\(f): no such file"
        case .emptyFile(let f): return "\(f): no probe items (the file is empty or only blank lines)"
        case .badLine(let f, let l, let d): return "\(f):\(l): \(d)"
        case .badReference(let f, let l, let id, let k, let n):
            return "\(f):\(l): item '\(id)' cites passage [\(k)] but has \(n) passages (valid: [1] ... [\(n)])"
        case .duplicateID(let f, let l, let id, let first):
            return "\(f):\(l): duplicate item id '\(id)' (first on line \(first))"
        case .tokenAlignment(let id, let d): return "item '\(id)': cannot locate text in the prompt tokens: \(d)"
        case .tooLong(let id, let t, let c):
            return "item '\(id)': \(t) tokens exceed the context of \(c) positions"
        case .badRetrievalHeads(let f, let d): return "\(f): not a usable retrieval-heads run file: \(d)"
        case .invalid(let d): return d
        }
    }
}

/// A statement of an answer: the text before a group of citation markers, and the passages cited.
public struct CitedStatement: Sendable, Equatable {
    /// Byte range of the statement text in the answer's UTF-8 (markers, surrounding spaces and
    /// leading punctuation excluded).
    public var bytes: Range<Int>
    public var text: String
    /// Cited passage numbers as written (1-based), in order, without repeats; empty: uncited.
    public var citations: [Int]
}

/// Citation markers: "[2]", "[1, 3]", "[1][3]" (adjacent groups separated only by spaces merge).
public enum CitationParser {
    /// One marker group: its byte range and numbers.
    public struct Marker: Sendable, Equatable {
        public var bytes: Range<Int>
        public var numbers: [Int]
    }

    /// Every marker group in `text` (bytes), merged when only spaces separate them.
    public static func markers(_ text: String) -> [Marker] {
        let b = Array(text.utf8)
        var out: [Marker] = []
        var i = 0
        func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
        func isSpace(_ c: UInt8) -> Bool { c == 32 || c == 9 }
        while i < b.count {
            guard b[i] == UInt8(ascii: "[") else {
                i += 1
                continue
            }
            // [ ws* digits (ws* [,;] ws* digits)* ws* ]
            var j = i + 1
            var nums: [Int] = []
            var ok = true
            while true {
                while j < b.count && isSpace(b[j]) { j += 1 }
                var v = 0, nd = 0
                while j < b.count && isDigit(b[j]) && nd < 6 {
                    v = v * 10 + Int(b[j] - 48)
                    j += 1
                    nd += 1
                }
                if nd == 0 || (j < b.count && isDigit(b[j])) {
                    ok = false
                    break
                }
                nums.append(v)
                while j < b.count && isSpace(b[j]) { j += 1 }
                if j < b.count && (b[j] == UInt8(ascii: ",") || b[j] == UInt8(ascii: ";")) {
                    j += 1
                    continue
                }
                break
            }
            guard ok, j < b.count, b[j] == UInt8(ascii: "]") else {
                i += 1
                continue
            }
            let m = Marker(bytes: i..<(j + 1), numbers: nums)
            if let last = out.last, b[last.bytes.upperBound..<i].allSatisfy(isSpace) {
                out[out.count - 1] = Marker(
                    bytes: last.bytes.lowerBound..<m.bytes.upperBound, numbers: last.numbers + nums)
            } else {
                out.append(m)
            }
            i = j + 1
        }
        return out
    }

    /// Splits an answer into statements: each marker group closes the statement made by the text
    /// since the previous group (trimmed of spaces and of leading ".,;:" punctuation). Text after
    /// the last group that holds a letter or digit is an uncited statement (citations empty).
    /// A group with no text before it (e.g. "x [1]. [2]") adds its citations to the previous statement.
    public static func statements(_ answer: String) -> [CitedStatement] {
        let b = Array(answer.utf8)
        var out: [CitedStatement] = []
        var from = 0
        func trimmed(_ r: Range<Int>) -> Range<Int> {
            var lo = r.lowerBound, hi = r.upperBound
            let lead: Set<UInt8> = [
                32, 9, 10, 13, UInt8(ascii: "."), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: ":")
            ]
            while lo < hi && lead.contains(b[lo]) { lo += 1 }
            while hi > lo && [32, 9, 10, 13].contains(b[hi - 1]) { hi -= 1 }
            return lo..<hi
        }
        func text(_ r: Range<Int>) -> String { String(decoding: b[r], as: UTF8.self) }
        func dedup(_ xs: [Int]) -> [Int] {
            var seen = Set<Int>()
            return xs.filter { seen.insert($0).inserted }
        }
        for m in markers(answer) {
            let r = trimmed(from..<m.bytes.lowerBound)
            if r.isEmpty {
                if !out.isEmpty { out[out.count - 1].citations = dedup(out[out.count - 1].citations + m.numbers) }
            } else {
                out.append(CitedStatement(bytes: r, text: text(r), citations: dedup(m.numbers)))
            }
            from = m.bytes.upperBound
        }
        let rest = trimmed(from..<b.count)
        if b[rest].contains(where: { ($0 >= 48 && $0 <= 57) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 122) || $0 >= 0x80 }) {
            out.append(CitedStatement(bytes: rest, text: text(rest), citations: []))
        }
        return out
    }

    /// `answer` with every marker group's numbers replaced by `map(number)` (groups keep their
    /// position; numbers are written "[a]" or "[a, b]").
    public static func renumber(_ answer: String, _ map: (Int) -> Int) -> String {
        let b = Array(answer.utf8)
        var out: [UInt8] = []
        var from = 0
        for m in markers(answer) {
            out += b[from..<m.bytes.lowerBound]
            out += Array("[\(m.numbers.map { String(map($0)) }.joined(separator: ", "))]".utf8)
            from = m.bytes.upperBound
        }
        out += b[from..<b.count]
        return String(decoding: out, as: UTF8.self)
    }
}

/// Loading a probe file (JSONL).
public enum CitationProbeFile {
    public static let knownKeys: Set<String> = [
        "id", "passages", "question", "answer", "gold", "source",
        "wrong_citation", "meta"
    ]

    public static func load(path: String) throws -> [CitationItem] {
        guard FileManager.default.fileExists(atPath: path) else { throw CitationError.noSuchFile(path) }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let text = String(data: data, encoding: .utf8) else {
            throw CitationError.badLine(file: path, line: 1, detail: "the file is not UTF-8")
        }
        return try parse(text, file: path)
    }

    /// Parses JSONL text; blank lines are skipped, anything else must be one item object.
    public static func parse(_ text: String, file: String) throws -> [CitationItem] {
        var items: [CitationItem] = []
        var firstLine: [String: Int] = [:]
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            let item = try parseLine(line, file: file, line: i + 1, defaultID: "line-\(i + 1)")
            if let f = firstLine[item.id] {
                throw CitationError.duplicateID(file: file, line: i + 1, id: item.id, firstLine: f)
            }
            firstLine[item.id] = i + 1
            items.append(item)
        }
        guard !items.isEmpty else { throw CitationError.emptyFile(file) }
        return items
    }

    static func typeMessage(_ path: [CodingKey]) -> String {
        let key = path.first?.stringValue ?? "?"
        switch key {
        case "passages": return "'passages' must be an array of strings"
        case "source": return "'source' must be an integer passage number (1-based)"
        case "wrong_citation": return "'wrong_citation' must be true or false"
        default: return "'\(key)' must be a string"
        }
    }

    static func parseLine(_ line: String, file: String, line n: Int, defaultID: String) throws -> CitationItem {
        func bad(_ d: String) -> CitationError { .badLine(file: file, line: n, detail: d) }
        let obj: Any
        do { obj = try JSONSerialization.jsonObject(with: Data(line.utf8), options: []) } catch {
            throw bad(
                "not valid JSON "
                    + "(\((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "parse error"))"
            )
        }
        guard let o = obj as? [String: Any] else { throw bad("expected a JSON object per line") }
        let unknown = Set(o.keys).subtracting(knownKeys).sorted()
        if !unknown.isEmpty {
            throw bad(
                "unknown key\(unknown.count > 1 ? "s" : "") \(unknown.map { "'\($0)'" }.joined(separator: ", ")) "
                    + "(known: \(knownKeys.sorted().joined(separator: ", ")); put extra data under 'meta')")
        }
        struct Raw: Decodable {
            var id: String?, passages: [String]?, question: String?, answer: String?, gold: String?
            var source: Int?
            var wrong_citation: Bool?
        }
        let r: Raw
        do { r = try JSONDecoder().decode(Raw.self, from: Data(line.utf8)) } catch let DecodingError.typeMismatch(
            _, ctx)
        {
            throw bad(Self.typeMessage(ctx.codingPath))
        } catch let DecodingError.valueNotFound(_, ctx) {
            throw bad(Self.typeMessage(ctx.codingPath))
        } catch {
            throw bad("cannot read the item (\(error))")
        }
        let id = r.id ?? defaultID
        guard !id.isEmpty else { throw bad("'id' is empty") }
        guard let texts = r.passages else { throw bad("missing 'passages'") }
        guard texts.count >= 2 else { throw bad("item '\(id)' has \(texts.count) passage(s); at least 2 are needed") }
        if let e = texts.firstIndex(where: { $0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }) {
            throw bad("item '\(id)': passage [\(e + 1)] is empty")
        }
        if let e = texts.firstIndex(where: { $0.contains("\n") }) {
            throw bad("item '\(id)': passage [\(e + 1)] contains a newline (passages are one line each)")
        }
        guard let question = r.question else { throw bad("missing 'question'") }
        guard !question.trimmingCharacters(in: .whitespaces).isEmpty else { throw bad("'question' is empty") }
        let answer = r.answer
        let gold = r.gold
        if let g = gold, g.trimmingCharacters(in: .whitespaces).isEmpty { throw bad("'gold' is empty") }
        var source: Int?
        if let k = r.source {
            guard k >= 1 && k <= texts.count else {
                throw CitationError.badReference(file: file, line: n, id: id, passage: k, passages: texts.count)
            }
            source = k - 1
        }
        let wrong = r.wrong_citation ?? false
        var meta: String?
        if let m = o["meta"], !(m is NSNull) {
            guard m is [String: Any] else { throw bad("'meta' must be an object") }
            meta = String(
                decoding: try JSONSerialization.data(withJSONObject: m, options: [.sortedKeys]), as: UTF8.self)
        }
        // The gold text locates the source when it is not given; when both are, they must agree.
        if let g = gold {
            let ng = CitationText.normalize(g)
            let holding = texts.indices.filter { CitationText.normalize(texts[$0]).contains(ng) }
            if let s = source {
                guard holding.contains(s) else {
                    throw bad("item '\(id)': 'gold' does not occur in its source passage [\(s + 1)]")
                }
            } else if holding.count == 1 {
                source = holding[0]
            }
        }
        if let a = answer {
            let statements = CitationParser.statements(a)
            let cited = statements.filter { !$0.citations.isEmpty }
            guard !cited.isEmpty else {
                throw bad(
                    "item '\(id)': the answer has no citation marker like [1] (omit 'answer' to let the model generate)"
                )
            }
            for s in cited {
                for k in s.citations where k < 1 || k > texts.count {
                    throw CitationError.badReference(file: file, line: n, id: id, passage: k, passages: texts.count)
                }
            }
            if wrong {
                guard let s = source else {
                    throw bad(
                        "item '\(id)': 'wrong_citation' needs 'source' (or a 'gold' found in exactly one passage)")
                }
                if cited.contains(where: { $0.citations.contains(s + 1) }) {
                    throw bad("item '\(id)': 'wrong_citation' is true but the answer cites the source [\(s + 1)]")
                }
            }
        } else if wrong {
            throw bad("item '\(id)': 'wrong_citation' needs an 'answer' to teacher-force")
        }
        return CitationItem(
            id: id, passages: texts, question: question, answer: answer, gold: gold, source: source,
            wrongCitation: wrong, meta: meta, line: n)
    }
}

/// Text normalization for exact matching: NFKC, lowercase, whitespace runs collapsed, trimmed.
public enum CitationText {
    public static func normalize(_ s: String) -> String {
        s.precomposedStringWithCompatibilityMapping.lowercased()
            .split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }
}
