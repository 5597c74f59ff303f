import Foundation

/// One document of a membership run.
public struct MembershipDocument: Sendable, Equatable {
    /// Name shown in reports: the file's path relative to its set root, or the JSONL `name`/`id`.
    public var name: String
    public var text: String
    /// true = member, false = non-member, nil = unlabeled (to score only).
    public var label: Bool?
    /// Where it came from: a file path or `FILE:LINE`.
    public var source: String
    /// SHA-256 the set file expects of the file's bytes (lowercase hex), if it names one.
    public var expectedSHA256: String?

    public init(name: String, text: String, label: Bool?, source: String, expectedSHA256: String? = nil) {
        self.name = name
        self.text = text
        self.label = label
        self.source = source
        self.expectedSHA256 = expectedSHA256
    }
}

/// A bad membership input: the message names the file (and line) at fault.
public struct MembershipInputError: Error, LocalizedError, CustomStringConvertible, Equatable {
    public let message: String
    public let hint: String?
    public init(_ message: String, hint: String? = nil) {
        self.message = message
        self.hint = hint
    }
    public var description: String { message }
    public var errorDescription: String? { message }
}

/// A set file (e.g. probes/membership/default.json): members and non-members, each a source.
public struct MembershipSet: Sendable {
    public var name: String
    public var description: String?
    public var members: [MembershipDocument]
    public var nonmembers: [MembershipDocument]
    /// The set's own `max_tokens_per_doc`, if any (the command line overrides it).
    public var maxTokensPerDocument: Int?
    public var path: String
}

/// Loading documents: a JSONL file, a directory of text files, or a set file.
///
/// - JSONL: one JSON object per non-blank line with a string `text` and optionally `name` (or
///   `id`); other keys are ignored. Lines are numbered from 1 in errors.
/// - Directory: every regular, non-hidden file below it (recursively, hidden directories
///   skipped), sorted by relative path, read as UTF-8; the name is the relative path.
/// - Set file: a JSON object with `members` and `nonmembers` sources, optional `name`,
///   `description` and `max_tokens_per_doc`. A source is one of
///     `{"path": "DIR_OR_JSONL"}`,
///     `{"root": "DIR", "files": ["a.py", {"path": "b.py", "sha256": "..."}, ...]}`, or
///     `{"manifest": "FILE.json"}` (a JSON file holding such a root/files object, plus an
///     optional `hint` shown when files are missing).
///   Relative paths are relative to the file that names them; a root may start with a
///   placeholder such as `{python-stdlib}` or `{cache}`, resolved by the caller.
public enum MembershipInput {
    /// Loads a directory or a JSONL file (by extension `.jsonl`/`.json`/`.ndjson`; anything
    /// else that is a file is read as JSONL too).
    public static func load(path: String, label: Bool?) throws -> [MembershipDocument] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw MembershipInputError("\(path): no such file or directory")
        }
        let docs = isDir.boolValue ? try loadDirectory(path, label: label) : try loadJSONL(path, label: label)
        guard !docs.isEmpty else {
            throw MembershipInputError(
                "\(path): no documents "
                    + "(\(isDir.boolValue ? "the directory holds no files" : "the file holds no JSON lines"))"
            )
        }
        return docs
    }

    public static func loadJSONL(_ path: String, label: Bool?) throws -> [MembershipDocument] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MembershipInputError("\(path): cannot read the file")
        }
        return try parseJSONL(data, source: path, label: label)
    }

    public static func parseJSONL(_ data: Data, source: String, label: Bool?) throws -> [MembershipDocument] {
        guard let text = String(data: data, encoding: .utf8) else {
            throw MembershipInputError("\(source): not UTF-8 text")
        }
        var docs: [MembershipDocument] = []
        var lineNo = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNo += 1
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            let obj: Any
            do {
                obj = try JSONSerialization.jsonObject(with: Data(trimmed.utf8), options: [.fragmentsAllowed])
            } catch {
                throw MembershipInputError("\(source):\(lineNo): malformed JSON line")
            }
            guard let dict = obj as? [String: Any] else {
                throw MembershipInputError("\(source):\(lineNo): expected a JSON object with a \"text\" string")
            }
            guard let t = dict["text"] as? String else {
                throw MembershipInputError("\(source):\(lineNo): missing \"text\" string")
            }
            let name =
                (dict["name"] as? String) ?? (dict["id"] as? String)
                ?? (dict["id"] as? NSNumber).map { "\($0)" } ?? "line-\(lineNo)"
            docs.append(MembershipDocument(name: name, text: t, label: label, source: "\(source):\(lineNo)"))
        }
        return docs
    }

    public static func loadDirectory(_ path: String, label: Bool?) throws -> [MembershipDocument] {
        let root = URL(fileURLWithPath: path).standardizedFileURL
        guard
            let e = FileManager.default.enumerator(
                at: root, includingPropertiesForKeys: [.isRegularFileKey],
                options: [.skipsHiddenFiles])
        else {
            throw MembershipInputError("\(path): cannot list the directory")
        }
        var rel: [String] = []
        let prefix = root.path.hasSuffix("/") ? root.path : root.path + "/"
        for case let url as URL in e {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true else { continue }
            let p = url.standardizedFileURL.path
            rel.append(p.hasPrefix(prefix) ? String(p.dropFirst(prefix.count)) : url.lastPathComponent)
        }
        rel.sort()
        return try rel.map { r in
            let full = prefix + r
            return MembershipDocument(name: r, text: try readText(full), label: label, source: full)
        }
    }

    static func readText(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MembershipInputError("\(path): cannot read the file")
        }
        guard let s = String(data: data, encoding: .utf8) else {
            throw MembershipInputError("\(path): not UTF-8 text")
        }
        return s
    }

    /// Loads a set file. `placeholders` maps a root prefix such as `{python-stdlib}` to a
    /// function returning the directory it stands for (called only when used).
    public static func loadSet(path: String, placeholders: [String: () throws -> String] = [:]) throws -> MembershipSet
    {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MembershipInputError("\(path): no such set file")
        }
        guard let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw MembershipInputError("\(path): not a JSON object")
        }
        let dir = (path as NSString).deletingLastPathComponent
        func source(_ key: String, label: Bool) throws -> [MembershipDocument] {
            guard let s = obj[key] as? [String: Any] else {
                throw MembershipInputError("\(path): missing \"\(key)\" source object")
            }
            return try loadSource(
                s, baseDirectory: dir, origin: "\(path): \(key)", label: label,
                placeholders: placeholders)
        }
        let members = try source("members", label: true)
        let nonmembers = try source("nonmembers", label: false)
        var maxTokens: Int?
        if let m = obj["max_tokens_per_doc"] {
            guard let n = m as? Int, n >= 2 else {
                throw MembershipInputError("\(path): max_tokens_per_doc must be an integer >= 2")
            }
            maxTokens = n
        }
        return MembershipSet(
            name: obj["name"] as? String ?? ((path as NSString).lastPathComponent as NSString).deletingPathExtension,
            description: obj["description"] as? String, members: members,
            nonmembers: nonmembers, maxTokensPerDocument: maxTokens, path: path)
    }

    static func resolve(
        _ p: String, baseDirectory: String, placeholders: [String: () throws -> String]
    ) throws -> String {
        for (key, f) in placeholders where p.hasPrefix(key) {
            return try f() + String(p.dropFirst(key.count))
        }
        if p.hasPrefix("{") {
            throw MembershipInputError(
                "unknown placeholder in \"\(p)\" (known: \(placeholders.keys.sorted().joined(separator: ", ")))")
        }
        if p.hasPrefix("/") { return p }
        if p.hasPrefix("~/") { return FileManager.default.homeDirectoryForCurrentUser.path + String(p.dropFirst(1)) }
        return baseDirectory.isEmpty ? p : (baseDirectory as NSString).appendingPathComponent(p)
    }

    static func loadSource(
        _ s: [String: Any], baseDirectory: String, origin: String, label: Bool,
        placeholders: [String: () throws -> String], hint: String? = nil
    ) throws -> [MembershipDocument] {
        if let manifest = s["manifest"] as? String {
            let mp = try resolve(manifest, baseDirectory: baseDirectory, placeholders: placeholders)
            guard let data = FileManager.default.contents(atPath: mp) else {
                throw MembershipInputError("\(origin): manifest \(mp) not found")
            }
            guard let m = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
                throw MembershipInputError("\(mp): not a JSON object")
            }
            return try loadSource(
                m, baseDirectory: (mp as NSString).deletingLastPathComponent, origin: mp,
                label: label, placeholders: placeholders, hint: m["hint"] as? String)
        }
        if let p = s["path"] as? String {
            return try load(
                path: try resolve(p, baseDirectory: baseDirectory, placeholders: placeholders), label: label)
        }
        guard let rootSpec = s["root"] as? String, let files = s["files"] as? [Any] else {
            throw MembershipInputError("\(origin): a source needs \"path\", \"manifest\", or \"root\" with \"files\"")
        }
        let root = try resolve(rootSpec, baseDirectory: baseDirectory, placeholders: placeholders)
        var docs: [MembershipDocument] = []
        var missing: [String] = []
        for (i, f) in files.enumerated() {
            let rel: String, sha: String?
            if let name = f as? String {
                rel = name
                sha = nil
            } else if let o = f as? [String: Any], let name = o["path"] as? String {
                rel = name
                sha = o["sha256"] as? String
            } else {
                throw MembershipInputError("\(origin): files[\(i)] must be a path or an object with \"path\"")
            }
            let full = (root as NSString).appendingPathComponent(rel)
            guard FileManager.default.fileExists(atPath: full) else {
                missing.append(full)
                continue
            }
            docs.append(
                MembershipDocument(
                    name: rel, text: try readText(full), label: label, source: full,
                    expectedSHA256: sha))
        }
        if !missing.isEmpty {
            throw MembershipInputError(
                "\(origin): \(missing.count) of \(files.count) files missing under \(root) (first: \(missing[0]))",
                hint: hint)
        }
        guard !docs.isEmpty else { throw MembershipInputError("\(origin): no documents (empty \"files\")") }
        return docs
    }
}
