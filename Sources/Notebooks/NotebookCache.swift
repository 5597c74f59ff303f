// Cell caching for notebooks.
//
// A cell is skipped when a cache entry exists for its key, that entry recorded exit code 0,
// and every output file it produced still exists. The key is a hash of
//
//   - the cell's arguments after parsing (so re-wrapping a command over lines, changing its
//     quoting style or editing comments does not invalidate it),
//   - the version string of the headlight binary that runs the cells,
//   - the environment variables whose names start with `HEADLIGHT_` (e.g. HEADLIGHT_MODEL,
//     which picks the default model),
//   - a fingerprint of every input file named in the arguments: each argument (or the value
//     part of `--name=value`) that names an existing file or directory, relative to the
//     working directory, except the cell's own output paths (`-o`/`--output`). Files up to
//     `NotebookKey.contentHashLimit` (64 MiB) are hashed by content; larger files (models)
//     by size and modification time; directories by the list of their regular files with
//     size and modification time,
//   - the key of the previous cell, so any change upstream re-runs every cell after it.
//
// Prose is not part of any key: editing only prose re-renders without running anything.
// Not part of the key (use --force after changing them): the headlight binary itself when its
// version string is unchanged (a rebuild during development), files a command reads that are
// not named in its arguments (such as the cached default model), the working directory.
//
// The hash function is injected (`NotebookHasher`): the CLI passes its SHA-256
// (HeadlightCLI/SHA256.swift, which the Reports module cannot import); the built-in default
// is FNV-1a-128, which is fine for change detection (not for adversarial inputs).
//
// The cache lives in `<output-dir>/.cache/<key>.json`, one JSON file per cell run (arguments,
// exit code, duration, stdout, stderr, output files, input fingerprints), written atomically
// after each successful cell, so a later failure keeps the earlier cells cached. After a
// complete run, entries no cell of the notebook uses any more are deleted.
import Foundation
import Reports

/// A hash function for cache keys and file fingerprints (hex digests).
public struct NotebookHasher: Sendable {
    /// Algorithm name shown in reports, e.g. "sha256".
    public var name: String
    public var hashData: @Sendable (Data) -> String
    public var hashFile: @Sendable (URL) throws -> String

    public init(
        name: String, hashData: @escaping @Sendable (Data) -> String,
        hashFile: @escaping @Sendable (URL) throws -> String
    ) {
        self.name = name
        self.hashData = hashData
        self.hashFile = hashFile
    }

    /// FNV-1a with 128-bit state (the Reports module's own, dependency-free default).
    public static let fnv1a128 = NotebookHasher(
        name: "fnv1a128",
        hashData: { data in
            var h = FNV1a128()
            h.update(data)
            return h.hex
        },
        hashFile: { url in
            guard let fh = try? FileHandle(forReadingFrom: url) else {
                throw NotebookError.io(path: url.path, message: "cannot open for hashing")
            }
            defer { try? fh.close() }
            var h = FNV1a128()
            while true {
                let chunk = fh.readData(ofLength: 1 << 20)
                if chunk.isEmpty { break }
                h.update(chunk)
            }
            return h.hex
        })
}

/// FNV-1a, 128-bit (offset basis 0x6c62272e07bb014262b821756295c58d, prime 2^88 + 0x13b).
struct FNV1a128 {
    var hi: UInt64 = 0x6c62_272e_07bb_0142
    var lo: UInt64 = 0x62b8_2175_6295_c58d

    mutating func update(_ data: Data) {
        data.withUnsafeBytes { (buf: UnsafeRawBufferPointer) in
            var h = hi, l = lo
            for b in buf {
                l ^= UInt64(b)
                // (h, l) *= 2^88 + 0x13b  (mod 2^128)
                let (ph, pl) = l.multipliedFullWidth(by: 0x13b)
                h = h &* 0x13b &+ ph &+ (l << 24)
                l = pl
            }
            hi = h
            lo = l
        }
    }

    var hex: String {
        func h16(_ v: UInt64) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: 16 - s.count) + s
        }
        return h16(hi) + h16(lo)
    }
}

/// Computes cell keys (see the top of this file).
public enum NotebookKey {
    /// Input files up to this size are hashed by content, larger ones by size and mtime.
    public static let contentHashLimit = 64 << 20
    /// At most this many files of a directory argument enter its fingerprint.
    public static let directoryEntryLimit = 10_000

    /// Paths a cell writes: the values of `-o`/`--output` (also `--output=PATH`, `-o=PATH`).
    public static func outputPaths(_ arguments: [String]) -> [String] {
        var out: [String] = []
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            if a == "-o" || a == "--output" {
                if i + 1 < arguments.count { out.append(arguments[i + 1]) }
                i += 2
                continue
            }
            for p in ["--output=", "-o="] where a.hasPrefix(p) { out.append(String(a.dropFirst(p.count))) }
            i += 1
        }
        return out
    }

    /// Arguments that may name input files: every argument (or the value of `--name=value`)
    /// except output paths, in order, without duplicates.
    static func inputCandidates(_ arguments: [String]) -> [String] {
        var skip = Set<Int>()
        for (i, a) in arguments.enumerated() where (a == "-o" || a == "--output") && i + 1 < arguments.count {
            skip.insert(i + 1)
        }
        var seen = Set<String>()
        var out: [String] = []
        for (i, a) in arguments.enumerated() where !skip.contains(i) {
            if a.hasPrefix("--output=") || a.hasPrefix("-o=") { continue }
            var v = a
            if a.hasPrefix("-"), let eq = a.firstIndex(of: "=") { v = String(a[a.index(after: eq)...]) }
            if v.isEmpty || v.hasPrefix("-") && v == a { continue }
            if seen.insert(v).inserted { out.append(v) }
        }
        return out
    }

    /// Resolves `path` against `directory` unless it is absolute.
    public static func resolve(_ path: String, in directory: URL) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path) : directory.appendingPathComponent(path)
    }

    /// Fingerprints of the existing input files named by `arguments`: (argument, fingerprint).
    static func inputFingerprints(
        _ arguments: [String], workingDirectory: URL, hasher: NotebookHasher
    ) throws -> [(String, String)] {
        let fm = FileManager.default
        var out: [(String, String)] = []
        for arg in inputCandidates(arguments) {
            let url = resolve(arg, in: workingDirectory)
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: url.path, isDirectory: &isDir) else { continue }
            if isDir.boolValue {
                out.append((arg, "dir:" + directoryFingerprint(url, hasher: hasher)))
            } else {
                let attrs = try? fm.attributesOfItem(atPath: url.path)
                let size = (attrs?[.size] as? NSNumber)?.intValue ?? 0
                if size > contentHashLimit {
                    out.append((arg, "size=\(size) mtime=\(mtimeString(attrs))"))
                } else {
                    do {
                        out.append((arg, "\(hasher.name):" + (try hasher.hashFile(url))))
                    } catch {
                        out.append((arg, "unreadable size=\(size) mtime=\(mtimeString(attrs))"))
                    }
                }
            }
        }
        return out
    }

    static func mtimeString(_ attrs: [FileAttributeKey: Any]?) -> String {
        guard let d = attrs?[.modificationDate] as? Date else { return "?" }
        return String(format: "%.6f", d.timeIntervalSince1970)
    }

    static func directoryFingerprint(_ dir: URL, hasher: NotebookHasher) -> String {
        let fm = FileManager.default
        var rows: [String] = []
        if let e = fm.enumerator(atPath: dir.path) {
            while let rel = e.nextObject() as? String {
                if rows.count >= directoryEntryLimit {
                    rows.append("(truncated)")
                    break
                }
                let p = dir.appendingPathComponent(rel).path
                guard let attrs = try? fm.attributesOfItem(atPath: p),
                    attrs[.type] as? FileAttributeType == .typeRegular
                else { continue }
                rows.append("\(rel)\t\((attrs[.size] as? NSNumber)?.intValue ?? 0)\t\(mtimeString(attrs))")
            }
        }
        rows.sort()
        return hasher.hashData(Data(rows.joined(separator: "\n").utf8))
    }

    /// The key of `cell` and the input fingerprints that went into it.
    public static func key(
        for cell: NotebookCell, headlightVersion: String, environment: [String: String],
        workingDirectory: URL, previousKey: String?, hasher: NotebookHasher
    ) throws
        -> (key: String, inputs: [(String, String)])
    {
        let inputs = try inputFingerprints(cell.arguments, workingDirectory: workingDirectory, hasher: hasher)
        var m = "headlight-notebook-cell v1\n"
        m += "version\t\(headlightVersion)\n"
        m += "argv\t" + cell.arguments.joined(separator: "\u{0}") + "\n"
        for k in environment.keys.sorted() where k.hasPrefix("HEADLIGHT_") {
            m += "env\t\(k)=\(environment[k]!)\n"
        }
        for (arg, fp) in inputs { m += "input\t\(arg)\t\(fp)\n" }
        m += "previous\t\(previousKey ?? "none")\n"
        return (hasher.hashData(Data(m.utf8)), inputs)
    }
}

/// What the cache remembers of one successful cell run.
public struct NotebookCacheEntry: Codable, Equatable, Sendable {
    public var format = 1
    public var key: String
    public var cell: Int
    public var arguments: [String]
    public var exitCode: Int32
    /// Wall-clock seconds of the original run.
    public var duration: Double
    /// Captured output (clipped to `NotebookCache.storedOutputLimit` bytes).
    public var stdout: String
    public var stderr: String
    /// Sizes of the full outputs in bytes (before clipping).
    public var stdoutBytes: Int
    public var stderrBytes: Int
    /// Output files the cell produced (as written in its arguments).
    public var outputs: [String]
    /// Input fingerprints that went into the key: argument -> fingerprint.
    public var inputs: [String: String]
    /// ISO 8601 time the run finished.
    public var finished: String
}

/// The cache directory `<output-dir>/.cache`.
public struct NotebookCache {
    /// Stored stdout/stderr are clipped to this many bytes (head and tail kept).
    public static let storedOutputLimit = 4 << 20

    public let directory: URL

    public init(outputDirectory: URL) {
        directory = outputDirectory.appendingPathComponent(".cache", isDirectory: true)
    }

    func file(for key: String) -> URL {
        directory.appendingPathComponent(HTML.safeFileStem(key) + ".json")
    }

    /// The entry stored for `key`, or nil if none (or it is unreadable).
    public func entry(for key: String) -> NotebookCacheEntry? {
        guard let data = try? Data(contentsOf: file(for: key)),
            let e = try? JSONDecoder().decode(NotebookCacheEntry.self, from: data), e.key == key, e.format == 1
        else { return nil }
        return e
    }

    public func store(_ entry: NotebookCacheEntry) throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(try enc.encode(entry), to: file(for: entry.key))
        } catch let e as ReportError {
            throw NotebookError.io(path: directory.path, message: e.localizedDescription)
        } catch {
            throw NotebookError.io(
                path: directory.path, message: "cannot write the cache: \(error.localizedDescription)")
        }
    }

    /// Deletes every entry whose key is not in `keys`.
    public func prune(keeping keys: Set<String>) {
        let fm = FileManager.default
        let keep = Set(keys.map { HTML.safeFileStem($0) + ".json" })
        guard let names = try? fm.contentsOfDirectory(atPath: directory.path) else { return }
        for n in names where n.hasSuffix(".json") && !keep.contains(n) {
            try? fm.removeItem(at: directory.appendingPathComponent(n))
        }
    }
}

/// Shortens text to about `limit` UTF-8 bytes, keeping the first 3/4 and the last 1/4 (cut at
/// line boundaries where possible) around a marker line. Returns the text and whether it was cut.
func clipText(_ text: String, limit: Int) -> (String, Bool) {
    let bytes = Array(text.utf8)
    guard bytes.count > limit else { return (text, false) }
    var headEnd = limit * 3 / 4
    var tailStart = bytes.count - limit / 4
    // Prefer line boundaries within a small window.
    if let nl = bytes[max(0, headEnd - 2048)..<headEnd].lastIndex(of: 0x0A) { headEnd = nl + 1 }
    if let nl = bytes[tailStart..<min(bytes.count, tailStart + 2048)].firstIndex(of: 0x0A) { tailStart = nl + 1 }
    let head = String(decoding: bytes[0..<headEnd], as: UTF8.self)
    let tail = String(decoding: bytes[tailStart...], as: UTF8.self)
    let omitted = tailStart - headEnd
    return (head + (head.hasSuffix("\n") ? "" : "\n") + "[... \(omitted) bytes omitted ...]\n" + tail, true)
}
