import Foundation

/// The prompts of `headlight trace --prompts FILE.jsonl`: one JSON object a line,
///
///     {"prompt": "The capital of France is", "name": "france", "chat": false, "system": "...", "generate": 4}
///
/// `prompt` (a non-empty string) is required; `name` (default: the prompt's index, zero-padded
/// to four digits or more) becomes the HDF5 group `/inputs/NAME`, so it is 1-64 characters of
/// `A-Z a-z 0-9 _ -` starting with a letter or digit, and unique in the file; `chat` (bool),
/// `system` (string, needs chat) and `generate` (int >= 0) override `--chat`, `--system` and
/// `--generate` for that prompt. Blank lines are skipped; any other line that is not such an
/// object is an error naming the file and line.
struct PromptBatchFile {
    struct Entry: Equatable {
        /// 1-based line in the file.
        var line: Int
        var name: String
        var prompt: String
        var chat: Bool?
        var system: String?
        var generate: Int?
    }

    struct ParseError: LocalizedError, Equatable {
        var file: String
        /// 1-based line, nil for the file as a whole.
        var line: Int?
        var detail: String
        var hint: String?

        var errorDescription: String? {
            "--prompts \(file)\(line.map { ":\($0)" } ?? ""): \(detail)" + (hint.map { "\nhint: \($0)" } ?? "")
        }
    }

    static let keys: Set<String> = ["prompt", "name", "chat", "system", "generate"]
    static let maxNameLength = 64

    var path: String
    var entries: [Entry]

    /// True when `name` can be an HDF5 group name here: 1-64 of [A-Za-z0-9_-], first a letter or digit.
    static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= maxNameLength else { return false }
        func alnum(_ u: Unicode.Scalar) -> Bool { u.isASCII && (CharacterSet.alphanumerics.contains(u)) }
        return alnum(first) && name.unicodeScalars.allSatisfy { alnum($0) || $0 == "_" || $0 == "-" }
    }

    /// Reads and checks `path`.
    static func read(_ path: String) throws -> PromptBatchFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ParseError(file: path, line: nil, detail: "cannot read the file", hint: "check the path")
        }
        return try parse(data, path: path)
    }

    static func parse(_ data: Data, path: String) throws -> PromptBatchFile {
        guard let text = String(data: data, encoding: .utf8) else {
            throw ParseError(file: path, line: nil, detail: "is not UTF-8 text")
        }
        var raw: [(line: Int, object: [String: JSONLValue])] = []
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for (i, lineText) in lines.enumerated() {
            let line = i + 1
            let trimmed = lineText.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            let value: JSONLValue
            do {
                value = try JSONDecoder().decode(JSONLValue.self, from: Data(trimmed.utf8))
            } catch {
                throw ParseError(
                    file: path, line: line, detail: "not valid JSON (\(Self.describe(error)))",
                    hint: "each line is one JSON object, e.g. {\"prompt\": \"The capital of France is\"}")
            }
            guard case .object(let object) = value else {
                throw ParseError(
                    file: path, line: line, detail: "expected a JSON object, found \(value.kind)",
                    hint: "each line is one JSON object, e.g. {\"prompt\": \"The capital of France is\"}")
            }
            raw.append((line, object))
        }
        guard !raw.isEmpty else {
            throw ParseError(
                file: path, line: nil, detail: "holds no prompts",
                hint: "write one JSON object a line, e.g. {\"prompt\": \"The capital of France is\"}")
        }
        let width = max(4, String(raw.count - 1).count)
        var entries: [Entry] = []
        var firstLine: [String: Int] = [:]
        for (index, (line, object)) in raw.enumerated() {
            func bad(_ detail: String, hint: String? = nil) -> ParseError {
                ParseError(file: path, line: line, detail: detail, hint: hint)
            }
            if let unknown = object.keys.sorted().first(where: { !keys.contains($0) }) {
                throw bad(
                    "unknown key \"\(unknown)\"", hint: "the keys are prompt, name, chat, system and generate")
            }
            guard let p = object["prompt"] else {
                throw bad("missing \"prompt\"", hint: "give the text, e.g. {\"prompt\": \"The capital of France is\"}")
            }
            guard case .string(let prompt) = p else { throw bad("\"prompt\" must be a string, found \(p.kind)") }
            guard !prompt.isEmpty else { throw bad("\"prompt\" is empty") }
            if let nul = prompt.utf8.firstIndex(of: 0) {
                let offset = prompt.utf8.distance(from: prompt.utf8.startIndex, to: nul)
                throw bad("\"prompt\" contains a NUL character (at byte \(offset)); prompts must be text")
            }
            var name = String(repeating: "0", count: max(0, width - String(index).count)) + String(index)
            if let n = object["name"] {
                guard case .string(let s) = n else { throw bad("\"name\" must be a string, found \(n.kind)") }
                guard isValidName(s) else {
                    throw bad(
                        "\"name\" \(s.debugDescription) is not a valid prompt name",
                        hint: "names become HDF5 groups /inputs/NAME: 1-\(maxNameLength) characters of A-Z, a-z, "
                            + "0-9, _ and -, starting with a letter or digit")
                }
                name = s
            }
            if let first = firstLine[name] {
                throw bad(
                    "duplicate name \"\(name)\" (line \(first) has it too)",
                    hint: "give each prompt its own \"name\" (unnamed prompts are named by their index)")
            }
            firstLine[name] = line
            var entry = Entry(line: line, name: name, prompt: prompt)
            if let c = object["chat"] {
                guard case .bool(let b) = c else { throw bad("\"chat\" must be true or false, found \(c.kind)") }
                entry.chat = b
            }
            if let s = object["system"] {
                guard case .string(let text) = s else { throw bad("\"system\" must be a string, found \(s.kind)") }
                if text.utf8.contains(0) { throw bad("\"system\" contains a NUL character") }
                entry.system = text
            }
            if let g = object["generate"] {
                guard case .number(let x) = g, x >= 0, x <= 1_000_000, x == x.rounded() else {
                    throw bad(
                        "\"generate\" must be a whole number >= 0, found \(g.kind == "a number" ? "\(g)" : g.kind)")
                }
                entry.generate = Int(x)
            }
            entries.append(entry)
        }
        return PromptBatchFile(path: path, entries: entries)
    }

    static func describe(_ error: Error) -> String {
        if case DecodingError.dataCorrupted(let c) = error {
            let under = (c.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return under ?? c.debugDescription
        }
        return (error as? LocalizedError)?.errorDescription ?? "\(error)"
    }
}

/// A JSON value, decoded strictly (a number is never a bool).
enum JSONLValue: Decodable, Equatable, CustomStringConvertible {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONLValue])
    case object([String: JSONLValue])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let x = try? c.decode(Double.self) {
            self = .number(x)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONLValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONLValue].self))
        }
    }

    var kind: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    var description: String {
        if case .number(let x) = self { return x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x) }
        return kind
    }
}
