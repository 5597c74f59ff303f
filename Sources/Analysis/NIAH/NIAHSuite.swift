import Foundation

// A needle-in-a-haystack (NIAH) suite: which haystack, which needles, which
// grid of context lengths x depths, and how the prompt is built. The format
// is documented in probes/README.md; probes/niah/default.json and smoke.json
// are examples.

/// One needle: the sentence inserted into the haystack, the question asked
/// about it, and the answer part (`real_needle`) that scoring and the needle
/// span use. Field names follow Wu et al.'s `haystack_for_detect/needles.jsonl`.
public struct NIAHNeedle: Codable, Equatable, Hashable, Sendable {
    /// Stable name used by a suite's `needle_ids`; "line-N" when the JSONL line has no `id`.
    public var id: String
    public var needle: String
    public var question: String
    public var realNeedle: String
    /// NeedleBench keyword: a short string that must appear verbatim
    /// (case-sensitive) in a correct answer. Optional.
    public var keyword: String?
    /// Where the needle comes from (free text). Optional.
    public var source: String?

    public init(
        id: String, needle: String, question: String, realNeedle: String,
        keyword: String? = nil, source: String? = nil
    ) {
        self.id = id
        self.needle = needle
        self.question = question
        self.realNeedle = realNeedle
        self.keyword = keyword
        self.source = source
    }

    static let requiredKeys = ["needle", "question", "real_needle"]
    static let allowedKeys: Set<String> = ["id", "needle", "question", "real_needle", "keyword", "source"]

    enum CodingKeys: String, CodingKey {
        case id, needle, question, realNeedle = "real_needle", keyword, source
    }

    /// Decodes one JSONL object; unknown keys, missing or mistyped fields
    /// throw `FieldProblem`. A missing `id` decodes as "" (the loader names it).
    public init(from decoder: Decoder) throws {
        let c = try FieldReader(decoder, allowed: Self.allowedKeys)
        id = try c.optional("id", String.self, "a string") ?? ""
        needle = try c.required("needle", String.self, "a string")
        question = try c.required("question", String.self, "a string")
        realNeedle = try c.required("real_needle", String.self, "a string")
        keyword = try c.optional("keyword", String.self, "a string")
        source = try c.optional("source", String.self, "a string")
        for (k, v) in [("needle", needle), ("question", question), ("real_needle", realNeedle)]
        where v.unicodeScalars.allSatisfy(PythonText.isSpace) {
            throw FieldProblem.invalid(k, "must not be empty")
        }
        if let kw = keyword, kw.isEmpty { throw FieldProblem.invalid("keyword", "must not be empty when given") }
    }
}

/// A NIAH suite as written in its JSON file. Paths are kept as written;
/// relative ones resolve against `baseDirectory` (the suite file's folder).
public struct NIAHSuite: Codable, Equatable, Sendable {
    public var name: String
    public var description: String?
    /// A UTF-8 text file, or a directory whose `*.txt` files are read in name order.
    public var haystack: String
    /// A JSONL file of needles (see `NIAHNeedle`).
    public var needles: String
    /// Needles to use, by id, in this order; nil: every needle in file order.
    public var needleIDs: [String]?
    /// Context lengths in tokens (the whole prompt budget, as in Wu et al.).
    public var lengths: [Int]
    /// Needle depths in percent of the trimmed haystack, 0...100.
    public var depths: [Double]
    /// Tokens left for the question and template (Wu et al.'s `final_context_length_buffer`).
    public var buffer: Int
    /// Prompt template with `{context}` and `{question}`; nil: the default for `chat`.
    public var template: String?
    /// Wrap the rendered template in the model's chat template (one user turn + generation prompt).
    public var chat: Bool
    /// Seed for every random choice made while running the suite (trial construction itself is deterministic).
    public var seed: UInt64
    /// Greedy decoding budget per trial.
    public var maxNewTokens: Int

    /// Folder that relative paths resolve against; set by `load(contentsOf:)`.
    public var baseDirectory: URL?
    /// The file the suite was loaded from (for error messages); nil when built in code.
    public var sourceFile: String?

    public static let defaultBuffer = 200
    public static let defaultMaxNewTokens = 50
    /// Wu et al.'s prompt for chat models (the user turn given to the chat template).
    public static let chatTemplate =
        "<book>{context}</book>\nBased on the content of the book, Question: {question}\nAnswer:"
    /// Wu et al.'s prompt for base models: `context + question`, no tags, no separator.
    public static let plainTemplate =
        "{context}Based on the content of the book, Question: {question}\nAnswer:"

    static let allowedKeys: Set<String> = [
        "name", "description", "haystack", "needles", "needle_ids", "lengths", "depths",
        "buffer", "template", "chat", "seed", "max_new_tokens"
    ]

    enum CodingKeys: String, CodingKey {
        case name, description, haystack, needles, needleIDs = "needle_ids", lengths, depths,
            buffer, template, chat, seed, maxNewTokens = "max_new_tokens"
    }

    public init(
        name: String, description: String? = nil, haystack: String, needles: String,
        needleIDs: [String]? = nil, lengths: [Int], depths: [Double],
        buffer: Int = NIAHSuite.defaultBuffer, template: String? = nil, chat: Bool = true,
        seed: UInt64 = 0, maxNewTokens: Int = NIAHSuite.defaultMaxNewTokens,
        baseDirectory: URL? = nil
    ) {
        self.name = name
        self.description = description
        self.haystack = haystack
        self.needles = needles
        self.needleIDs = needleIDs
        self.lengths = lengths
        self.depths = depths
        self.buffer = buffer
        self.template = template
        self.chat = chat
        self.seed = seed
        self.maxNewTokens = maxNewTokens
        self.baseDirectory = baseDirectory
    }

    public init(from decoder: Decoder) throws {
        let c = try FieldReader(decoder, allowed: Self.allowedKeys)
        name = try c.required("name", String.self, "a string")
        description = try c.optional("description", String.self, "a string")
        haystack = try c.required("haystack", String.self, "a path string")
        needles = try c.required("needles", String.self, "a path string")
        needleIDs = try c.optional("needle_ids", [String].self, "an array of strings")
        lengths = try c.required("lengths", [Int].self, "an array of integers")
        depths = try c.required("depths", [Double].self, "an array of numbers")
        buffer = try c.optional("buffer", Int.self, "an integer") ?? Self.defaultBuffer
        template = try c.optional("template", String.self, "a string")
        chat = try c.optional("chat", Bool.self, "true or false") ?? true
        seed = try c.optional("seed", UInt64.self, "a non-negative integer") ?? 0
        maxNewTokens = try c.optional("max_new_tokens", Int.self, "an integer") ?? Self.defaultMaxNewTokens
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encodeIfPresent(description, forKey: .description)
        try c.encode(haystack, forKey: .haystack)
        try c.encode(needles, forKey: .needles)
        try c.encodeIfPresent(needleIDs, forKey: .needleIDs)
        try c.encode(lengths, forKey: .lengths)
        try c.encode(depths, forKey: .depths)
        try c.encode(buffer, forKey: .buffer)
        try c.encode(effectiveTemplate, forKey: .template)
        try c.encode(chat, forKey: .chat)
        try c.encode(seed, forKey: .seed)
        try c.encode(maxNewTokens, forKey: .maxNewTokens)
    }

    /// The template in force: `template`, or Wu et al.'s chat / plain prompt.
    public var effectiveTemplate: String { template ?? (chat ? Self.chatTemplate : Self.plainTemplate) }

    /// Where `haystack` and `needles` point.
    public var haystackURL: URL { resolve(haystack) }
    public var needlesURL: URL { resolve(needles) }

    func resolve(_ path: String) -> URL {
        if path.hasPrefix("/") { return URL(fileURLWithPath: path).standardizedFileURL }
        if let base = baseDirectory { return base.appendingPathComponent(path).standardizedFileURL }
        return URL(fileURLWithPath: path).standardizedFileURL // relative to the working directory
    }

    var fileLabel: String { sourceFile ?? "<suite \(name)>" }

    // MARK: Loading and validation

    /// Reads and validates a suite file (values only; `NIAHProbe.load` also
    /// reads the needles and the haystack).
    public static func load(contentsOf url: URL) throws -> NIAHSuite {
        let file = url.path
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw NIAHSuiteError.unreadable(file: file, reason: error.localizedDescription)
        }
        var suite: NIAHSuite
        do {
            suite = try JSONDecoder().decode(NIAHSuite.self, from: data)
        } catch let p as FieldProblem {
            throw p.suiteError(file: file)
        } catch let e as DecodingError {
            throw NIAHSuiteError.badJSON(file: file, detail: describe(e))
        }
        suite.baseDirectory = url.deletingLastPathComponent().standardizedFileURL
        suite.sourceFile = file
        try suite.validate()
        return suite
    }

    /// Checks every value; each failure names the file and the field.
    public func validate() throws {
        func bad(_ field: String, _ reason: String) -> NIAHSuiteError {
            .invalidValue(file: fileLabel, field: field, reason: reason)
        }
        if name.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw bad("name", "must not be empty") }
        if haystack.isEmpty { throw bad("haystack", "must not be empty") }
        if needles.isEmpty { throw bad("needles", "must not be empty") }
        if buffer < 0 { throw bad("buffer", "must be >= 0, got \(buffer)") }
        if lengths.isEmpty { throw bad("lengths", "must list at least one length") }
        for (i, l) in lengths.enumerated() where l <= buffer {
            throw bad("lengths[\(i)]", "length \(l) must be greater than buffer \(buffer)")
        }
        if depths.isEmpty { throw bad("depths", "must list at least one depth") }
        for (i, d) in depths.enumerated() where !(d >= 0 && d <= 100) {
            throw bad("depths[\(i)]", "depth \(d) is outside 0...100")
        }
        if maxNewTokens < 1 { throw bad("max_new_tokens", "must be >= 1, got \(maxNewTokens)") }
        if let ids = needleIDs {
            if ids.isEmpty { throw bad("needle_ids", "must list at least one id (or be omitted)") }
            var seen = Set<String>()
            for (i, id) in ids.enumerated() where !seen.insert(id).inserted {
                throw bad("needle_ids[\(i)]", "duplicate id \"\(id)\"")
            }
        }
        let t = effectiveTemplate
        for p in ["{context}", "{question}"] where !t.contains(p) {
            throw bad("template", "must contain the placeholder \(p)")
        }
    }

    /// Replaceable values, for command-line options. Paths in an override are
    /// absolute or relative to the current directory.
    public struct Overrides: Sendable {
        public var haystack: String?
        public var needles: String?
        public var needleIDs: [String]?
        public var lengths: [Int]?
        public var depths: [Double]?
        public var buffer: Int?
        public var template: String?
        public var chat: Bool?
        public var seed: UInt64?
        public var maxNewTokens: Int?
        public init(
            haystack: String? = nil, needles: String? = nil, needleIDs: [String]? = nil,
            lengths: [Int]? = nil, depths: [Double]? = nil, buffer: Int? = nil,
            template: String? = nil, chat: Bool? = nil, seed: UInt64? = nil,
            maxNewTokens: Int? = nil
        ) {
            self.haystack = haystack
            self.needles = needles
            self.needleIDs = needleIDs
            self.lengths = lengths
            self.depths = depths
            self.buffer = buffer
            self.template = template
            self.chat = chat
            self.seed = seed
            self.maxNewTokens = maxNewTokens
        }
    }

    /// A copy with `o`'s values in place, validated again.
    public func applying(_ o: Overrides) throws -> NIAHSuite {
        var s = self
        var changed = false
        func set<T>(_ value: T?, _ path: WritableKeyPath<NIAHSuite, T>) {
            if let v = value {
                s[keyPath: path] = v
                changed = true
            }
        }
        let fromCWD = { (p: String) in URL(fileURLWithPath: p).standardizedFileURL.path }
        set(o.haystack.map(fromCWD), \.haystack)
        set(o.needles.map(fromCWD), \.needles)
        // Another needles file without --needle-ids: all of its needles (the suite's ids name
        // needles of its own file).
        if o.needles != nil && o.needleIDs == nil { s.needleIDs = nil }
        set(o.needleIDs.map(Optional.some), \.needleIDs)
        set(o.lengths, \.lengths)
        set(o.depths, \.depths)
        set(o.buffer, \.buffer)
        set(o.template.map(Optional.some), \.template)
        set(o.chat, \.chat)
        set(o.seed, \.seed)
        set(o.maxNewTokens, \.maxNewTokens)
        if changed { s.sourceFile = sourceFile.map { "\($0) (with overrides)" } }
        try s.validate()
        return s
    }

    public static func == (a: NIAHSuite, b: NIAHSuite) -> Bool {
        a.name == b.name && a.description == b.description && a.haystackURL == b.haystackURL
            && a.needlesURL == b.needlesURL && a.needleIDs == b.needleIDs && a.lengths == b.lengths
            && a.depths == b.depths && a.buffer == b.buffer && a.effectiveTemplate == b.effectiveTemplate
            && a.chat == b.chat && a.seed == b.seed && a.maxNewTokens == b.maxNewTokens
    }
}

/// One cell of a suite's grid.
public struct NIAHCell: Hashable, Sendable, CustomStringConvertible {
    public var needleIndex: Int
    public var length: Int
    public var depth: Double
    public init(needleIndex: Int, length: Int, depth: Double) {
        self.needleIndex = needleIndex
        self.length = length
        self.depth = depth
    }
    public var description: String { "needle \(needleIndex) length \(length) depth \(depth)" }
}

/// A suite with its needles and haystack read and checked.
public struct NIAHProbe: Sendable {
    public let suite: NIAHSuite
    /// The needles in use, in suite order.
    public let needles: [NIAHNeedle]
    /// The haystack files, in reading order.
    public let haystackFiles: [URL]
    /// Wu et al.'s `read_context_files`: the files concatenated (no separator)
    /// and the whole set repeated until it holds at least max(lengths) words.
    public let haystackText: String

    /// Grid in Wu et al.'s order: needles, then lengths, then depths.
    public var cells: [NIAHCell] {
        var out: [NIAHCell] = []
        for n in needles.indices {
            for l in suite.lengths {
                for d in suite.depths {
                    out.append(NIAHCell(needleIndex: n, length: l, depth: d))
                }
            }
        }
        return out
    }

    public static func load(contentsOf url: URL, overrides: NIAHSuite.Overrides = .init()) throws -> NIAHProbe {
        try load(suite: NIAHSuite.load(contentsOf: url).applying(overrides))
    }

    public static func load(suite: NIAHSuite) throws -> NIAHProbe {
        try suite.validate()
        let all = try loadNeedles(suite.needlesURL)
        let chosen: [NIAHNeedle]
        if let ids = suite.needleIDs {
            let byID = Dictionary(all.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            chosen = try ids.map { id in
                guard let n = byID[id] else {
                    throw NIAHSuiteError.unknownNeedleID(
                        file: suite.fileLabel, id: id,
                        known: all.map(\.id))
                }
                return n
            }
        } else {
            chosen = all
        }
        let files = try haystackFiles(suite.haystackURL)
        let text = try readHaystack(files, minWords: suite.lengths.max() ?? 0, label: suite.haystackURL.path)
        return NIAHProbe(suite: suite, needles: chosen, haystackFiles: files, haystackText: text)
    }

    /// Parses a needles JSONL file. Blank lines are skipped; every other line
    /// must be one JSON object. Errors name the file and the 1-based line.
    public static func loadNeedles(_ url: URL) throws -> [NIAHNeedle] {
        let file = url.path
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw NIAHSuiteError.unreadable(file: file, reason: error.localizedDescription)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw NIAHSuiteError.unreadable(file: file, reason: "not valid UTF-8")
        }
        var out: [NIAHNeedle] = []
        var seen: [String: Int] = [:]
        let lines = PythonText.universalNewlines(text).split(separator: "\n", omittingEmptySubsequences: false)
        for (i, raw) in lines.enumerated() {
            let lineNo = i + 1
            if raw.unicodeScalars.allSatisfy(PythonText.isSpace) { continue }
            var n: NIAHNeedle
            do {
                n = try JSONDecoder().decode(NIAHNeedle.self, from: Data(raw.utf8))
            } catch let p as FieldProblem {
                throw NIAHSuiteError.needleLine(file: file, line: lineNo, problem: p.text)
            } catch let e as DecodingError {
                throw NIAHSuiteError.needleLine(file: file, line: lineNo, problem: "bad JSON: " + describe(e))
            }
            if n.id.isEmpty { n.id = "line-\(lineNo)" }
            if let first = seen[n.id] {
                throw NIAHSuiteError.needleLine(
                    file: file, line: lineNo,
                    problem: "duplicate id \"\(n.id)\" (first on line \(first))")
            }
            seen[n.id] = lineNo
            out.append(n)
        }
        if out.isEmpty { throw NIAHSuiteError.noNeedles(file: file) }
        return out
    }

    /// A file, or a directory's `*.txt` files sorted by name (Wu et al. use
    /// `glob` order, which is unspecified; sorting makes runs reproducible).
    public static func haystackFiles(_ url: URL) throws -> [URL] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw NIAHSuiteError.haystackMissing(path: url.path)
        }
        if !isDir.boolValue { return [url] }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: url.path) } catch {
            throw NIAHSuiteError.unreadable(file: url.path, reason: error.localizedDescription)
        }
        let txt = names.filter { $0.hasSuffix(".txt") }.sorted()
        if txt.isEmpty { throw NIAHSuiteError.haystackEmpty(path: url.path, reason: "no *.txt files") }
        return txt.map { url.appendingPathComponent($0) }
    }

    /// `read_context_files`: concatenate the files (Python universal newlines,
    /// UTF-8), repeating the whole set while the text has fewer than
    /// `minWords` whitespace-separated words.
    public static func readHaystack(_ files: [URL], minWords: Int, label: String) throws -> String {
        var parts: [String] = []
        for f in files {
            let data: Data
            do { data = try Data(contentsOf: f) } catch {
                throw NIAHSuiteError.unreadable(file: f.path, reason: error.localizedDescription)
            }
            guard let s = String(data: data, encoding: .utf8) else {
                throw NIAHSuiteError.unreadable(file: f.path, reason: "not valid UTF-8")
            }
            parts.append(PythonText.universalNewlines(s))
        }
        let once = parts.joined()
        let words = PythonText.wordCount(once)
        if words == 0 { throw NIAHSuiteError.haystackEmpty(path: label, reason: "no words") }
        var text = ""
        while PythonText.wordCount(text) < minWords { text += once }
        return text
    }
}

// MARK: Errors

/// Suite, needle and haystack problems; each names the file and the field or line.
public enum NIAHSuiteError: LocalizedError, Equatable {
    case unreadable(file: String, reason: String)
    case badJSON(file: String, detail: String)
    case missingField(file: String, field: String)
    case wrongType(file: String, field: String, expected: String)
    case unknownKey(file: String, key: String)
    case invalidValue(file: String, field: String, reason: String)
    case needleLine(file: String, line: Int, problem: String)
    case noNeedles(file: String)
    case unknownNeedleID(file: String, id: String, known: [String])
    case haystackMissing(path: String)
    case haystackEmpty(path: String, reason: String)

    public var errorDescription: String? {
        switch self {
        case let .unreadable(f, r): return "\(f): cannot read: \(r)"
        case let .badJSON(f, d): return "\(f): bad JSON: \(d)"
        case let .missingField(f, k): return "\(f): missing field \"\(k)\""
        case let .wrongType(f, k, e): return "\(f): field \"\(k)\" must be \(e)"
        case let .unknownKey(f, k): return "\(f): unknown key \"\(k)\""
        case let .invalidValue(f, k, r): return "\(f): field \"\(k)\": \(r)"
        case let .needleLine(f, l, p): return "\(f) line \(l): \(p)"
        case let .noNeedles(f): return "\(f): no needles"
        case let .unknownNeedleID(f, id, _): return "\(f): field \"needle_ids\": no needle with id \"\(id)\""
        case let .haystackMissing(p): return "\(p): haystack not found"
        case let .haystackEmpty(p, r): return "\(p): empty haystack (\(r))"
        }
    }

    public var recoverySuggestion: String? {
        switch self {
        case .unknownKey:
            return "Allowed keys: " + NIAHSuite.allowedKeys.sorted().joined(separator: ", ")
                + " (see probes/README.md)."
        case .missingField, .wrongType, .invalidValue, .badJSON: return "See the suite format in probes/README.md."
        case .needleLine:
            return
                "Each line of a needles file is one JSON object with needle, question, real_needle (optional: id, "
                + "keyword, source)."
        case let .unknownNeedleID(_, _, known): return "Known ids: " + known.joined(separator: ", ")
        case .haystackMissing, .haystackEmpty:
            return
                "Point \"haystack\" at a UTF-8 text file or a directory of *.txt files (paths are relative to the "
                + "suite file)."
        case .noNeedles: return "Add at least one needle line."
        case .unreadable: return nil
        }
    }
}

/// A field-level problem found while decoding; the loader adds the file (and line).
enum FieldProblem: Error {
    case missing(String)
    case wrongType(String, String)
    case unknownKeys([String])
    case invalid(String, String)

    var text: String {
        switch self {
        case let .missing(k): return "missing field \"\(k)\""
        case let .wrongType(k, e): return "field \"\(k)\" must be \(e)"
        case let .unknownKeys(ks): return "unknown key " + ks.map { "\"\($0)\"" }.joined(separator: ", ")
        case let .invalid(k, r): return "field \"\(k)\": \(r)"
        }
    }

    func suiteError(file: String) -> NIAHSuiteError {
        switch self {
        case let .missing(k): return .missingField(file: file, field: k)
        case let .wrongType(k, e): return .wrongType(file: file, field: k, expected: e)
        case let .unknownKeys(ks): return .unknownKey(file: file, key: ks.joined(separator: ", "))
        case let .invalid(k, r): return .invalidValue(file: file, field: k, reason: r)
        }
    }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// A keyed container that rejects unknown keys and reports fields by name.
struct FieldReader {
    let c: KeyedDecodingContainer<AnyKey>

    init(_ decoder: Decoder, allowed: Set<String>) throws {
        do { c = try decoder.container(keyedBy: AnyKey.self) } catch {
            throw FieldProblem.wrongType("(top level)", "a JSON object")
        }
        let unknown = c.allKeys.map(\.stringValue).filter { !allowed.contains($0) }.sorted()
        if !unknown.isEmpty { throw FieldProblem.unknownKeys(unknown) }
    }

    func required<T: Decodable>(_ key: String, _ type: T.Type, _ expected: String) throws -> T {
        guard c.contains(AnyKey(key)) else { throw FieldProblem.missing(key) }
        guard let v = try optional(key, type, expected) else {
            throw FieldProblem.wrongType(key, expected + ", not null")
        }
        return v
    }

    func optional<T: Decodable>(_ key: String, _ type: T.Type, _ expected: String) throws -> T? {
        let k = AnyKey(key)
        guard c.contains(k) else { return nil }
        if (try? c.decodeNil(forKey: k)) == true { throw FieldProblem.wrongType(key, expected + ", not null") }
        // Any error here is the value's fault (Foundation may throw an internal
        // error type, not DecodingError, for a number that does not fit).
        do { return try c.decode(T.self, forKey: k) } catch {
            throw FieldProblem.wrongType(key, expected)
        }
    }
}

func describe(_ e: DecodingError) -> String {
    switch e {
    case let .dataCorrupted(ctx):
        if let u = ctx.underlyingError { return "\(ctx.debugDescription) \(u.localizedDescription)" }
        return ctx.debugDescription
    case let .keyNotFound(k, _): return "missing key \(k.stringValue)"
    case let .typeMismatch(_, ctx), let .valueNotFound(_, ctx): return ctx.debugDescription
    @unknown default: return "\(e)"
    }
}
