import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Names and helpers of the run-file schema (docs/run-file.md).
public enum RunFile {
    /// Value of the root attribute `format`.
    public static let format = "headlight-run"
    /// Value of the root attribute `format_version`; bump on incompatible layout changes.
    public static let formatVersion = 1

    /// Root attribute names.
    public enum Attr {
        public static let format = "format"
        public static let formatVersion = "format_version"
        public static let complete = "complete"
        public static let created = "created"
        public static let finished = "finished"
        public static let headlightVersion = "headlight_version"
        public static let command = "command"
        public static let commandLine = "command_line"
        public static let modelFile = "model_file"
        public static let modelSize = "model_size"
        public static let modelSHA256 = "model_sha256"
        public static let modelName = "model_name"
        public static let architecture = "architecture"
        public static let prompt = "prompt"
    }

    /// Model dimension attributes, named like TransformerLens' HookedTransformerConfig.
    public static let dimensionNames = ["n_layers", "n_heads", "n_key_value_heads", "d_model", "d_head", "d_mlp", "d_vocab", "n_ctx"]

    /// Dataset paths.
    public static let tokens = "/tokens"
    public static let tokenStrings = "/token_strings"
    public static let captures = "/captures"

    /// Dataset path of a captured hook, e.g. `capturePath("blocks.3.attn.hook_pattern")`.
    public static func capturePath(_ hook: String) -> String { captures + "/" + hook }

    /// ISO 8601 UTC timestamp with seconds, e.g. "2025-01-31T12:00:00Z".
    public static func timestamp(_ date: Date = Date()) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: date)
    }

    /// Opens a finished run file read-only, checking `format`, `format_version` and, unless
    /// `allowIncomplete`, that `complete == 1`.
    public static func open(_ path: String, allowIncomplete: Bool = false) throws -> H5File {
        let f = try H5File.open(path)
        guard let format = try f.attributeIfPresent(Attr.format)?.stringValue, format == RunFile.format else {
            throw TraceStoreError.notARunFile(file: path, detail: "root attribute 'format' is not \"\(RunFile.format)\"")
        }
        let version = try f.attributeIfPresent(Attr.formatVersion)?.intValue ?? 0
        guard version >= 1 && version <= formatVersion else {
            throw TraceStoreError.notARunFile(file: path, detail: "format_version \(version) (this Headlight reads 1...\(formatVersion))")
        }
        if !allowIncomplete, try f.attributeIfPresent(Attr.complete)?.intValue != 1 {
            throw TraceStoreError.notARunFile(file: path, detail: "the run did not finish (root attribute complete != 1)")
        }
        return f
    }
}

/// Descriptive root attributes of a run file. Write once after creating the file; every field
/// is optional except what `RunFileWriter` sets itself (format, format_version, created, complete).
public struct RunFileHeader: Equatable, Sendable {
    public var headlightVersion: String?
    /// Subcommand, e.g. "retrieval-heads".
    public var command: String?
    /// Full argv.
    public var commandLine: [String]?
    public var modelFile: String?
    public var modelSize: Int?
    public var modelSHA256: String?
    public var modelName: String?
    /// GGUF `general.architecture`, e.g. "llama".
    public var architecture: String?
    /// Keys from `RunFile.dimensionNames` (others are stored too).
    public var dimensions: [String: Int]

    public init(headlightVersion: String? = nil, command: String? = nil, commandLine: [String]? = nil,
                modelFile: String? = nil, modelSize: Int? = nil, modelSHA256: String? = nil, modelName: String? = nil,
                architecture: String? = nil, dimensions: [String: Int] = [:]) {
        self.headlightVersion = headlightVersion
        self.command = command
        self.commandLine = commandLine
        self.modelFile = modelFile
        self.modelSize = modelSize
        self.modelSHA256 = modelSHA256
        self.modelName = modelName
        self.architecture = architecture
        self.dimensions = dimensions
    }

    public func write(to file: H5File) throws {
        typealias A = RunFile.Attr
        if let v = headlightVersion { try file.setAttribute(A.headlightVersion, v) }
        if let v = command { try file.setAttribute(A.command, v) }
        if let v = commandLine { try file.setAttribute(A.commandLine, v) }
        if let v = modelFile { try file.setAttribute(A.modelFile, v) }
        if let v = modelSize { try file.setAttribute(A.modelSize, v) }
        if let v = modelSHA256 { try file.setAttribute(A.modelSHA256, v) }
        if let v = modelName { try file.setAttribute(A.modelName, v) }
        if let v = architecture { try file.setAttribute(A.architecture, v) }
        for (k, v) in dimensions { try file.setAttribute(k, v) }
    }

    public static func read(from file: H5File) throws -> RunFileHeader {
        typealias A = RunFile.Attr
        var h = RunFileHeader()
        h.headlightVersion = try file.attributeIfPresent(A.headlightVersion)?.stringValue
        h.command = try file.attributeIfPresent(A.command)?.stringValue
        h.commandLine = try file.attributeIfPresent(A.commandLine)?.stringsValue
        h.modelFile = try file.attributeIfPresent(A.modelFile)?.stringValue
        h.modelSize = try file.attributeIfPresent(A.modelSize)?.intValue.map(Int.init)
        h.modelSHA256 = try file.attributeIfPresent(A.modelSHA256)?.stringValue
        h.modelName = try file.attributeIfPresent(A.modelName)?.stringValue
        h.architecture = try file.attributeIfPresent(A.architecture)?.stringValue
        for k in RunFile.dimensionNames {
            if let v = try file.attributeIfPresent(k)?.intValue { h.dimensions[k] = Int(v) }
        }
        return h
    }
}

/// Writes a run file atomically: everything goes to a temporary file in the same directory,
/// which `finalize()` marks complete (`complete = 1`), flushes, closes, fsyncs and renames to
/// `path`. Until then `path` is untouched (an older file there stays intact), and a process that
/// dies leaves only the temporary file behind.
///
/// - `resumable: false` (default): the temporary file is `<path>.tmp-<pid>` and always starts
///   empty.
/// - `resumable: true`, for long sweeps that must survive being killed: the temporary file is
///   `<path>.partial`; if it exists (a previous run was interrupted) it is reopened read-write
///   and `resumed` is true, so the caller can count the records already there and continue.
///   Append one record per trial and call `checkpoint()` after each (see `H5File`'s
///   documentation for the guarantee). Two processes must not resume the same path at once
///   (HDF5's file lock makes the second open fail with `.cannotOpen`).
///
/// Dropping an unfinalized writer closes the file and leaves the temporary file in place (it is
/// evidence, and with `resumable` the checkpoint); `abandon()` deletes it.
public final class RunFileWriter {
    /// Final path of the run file.
    public let path: String
    /// Where data is written until `finalize()`.
    public let temporaryPath: String
    /// The open file (root group). Valid until `finalize()` / `abandon()`.
    public let file: H5File
    /// True when an interrupted `<path>.partial` was reopened.
    public let resumed: Bool
    public private(set) var isFinalized = false

    public init(path: String, resumable: Bool = false) throws {
        self.path = path
        self.temporaryPath = RunFileWriter.temporaryPath(for: path, resumable: resumable)
        if resumable && FileManager.default.fileExists(atPath: temporaryPath) {
            let f = try H5File.openForAppend(temporaryPath)
            guard try f.attributeIfPresent(RunFile.Attr.format)?.stringValue == RunFile.format else {
                try? f.close()
                throw TraceStoreError.notARunFile(file: temporaryPath, detail: "cannot resume: not a partial Headlight run file")
            }
            file = f
            resumed = true
            try file.setAttribute(RunFile.Attr.complete, 0)
        } else {
            file = try H5File.create(temporaryPath, truncate: true)
            resumed = false
            try file.setAttribute(RunFile.Attr.format, RunFile.format)
            try file.setAttribute(RunFile.Attr.formatVersion, RunFile.formatVersion)
            try file.setAttribute(RunFile.Attr.created, RunFile.timestamp())
            try file.setAttribute(RunFile.Attr.complete, 0)
            if resumable { try file.flush() }
        }
    }

    deinit {
        if !isFinalized { try? file.close() }
    }

    /// `<path>.partial` when resumable, else `<path>.tmp-<pid>` (same directory as `path`, so
    /// the final rename never crosses file systems).
    public static func temporaryPath(for path: String, resumable: Bool) -> String {
        resumable ? path + ".partial" : path + ".tmp-\(getpid())"
    }

    /// Flushes everything written so far to disk (call after each record of a resumable run).
    public func checkpoint() throws {
        try file.flush()
    }

    /// Marks the run complete, closes the file and moves it to `path` (replacing any file there).
    public func finalize() throws {
        guard !isFinalized else { return }
        try file.setAttribute(RunFile.Attr.finished, RunFile.timestamp())
        try file.setAttribute(RunFile.Attr.complete, 1)
        try file.flush()
        try file.close()
        try fsyncPath(temporaryPath, directory: false)
        if rename(temporaryPath, path) != 0 {
            throw TraceStoreError.io(file: path, operation: "rename from \(temporaryPath)", detail: String(cString: strerror(errno)))
        }
        isFinalized = true
        let dir = (path as NSString).deletingLastPathComponent
        try? fsyncPath(dir.isEmpty ? "." : dir, directory: true) // make the rename durable
    }

    /// Closes the file and deletes the temporary file; `path` is untouched.
    public func abandon() throws {
        guard !isFinalized else { return }
        try? file.close()
        isFinalized = true
        if unlink(temporaryPath) != 0 && errno != ENOENT {
            throw TraceStoreError.io(file: temporaryPath, operation: "remove", detail: String(cString: strerror(errno)))
        }
    }

    private func fsyncPath(_ p: String, directory: Bool) throws {
        let fd = posixOpen(p, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY)
        guard fd >= 0 else {
            throw TraceStoreError.io(file: p, operation: "open for fsync", detail: String(cString: strerror(errno)))
        }
        defer { posixClose(fd) }
        if fsync(fd) != 0 {
            throw TraceStoreError.io(file: p, operation: "fsync", detail: String(cString: strerror(errno)))
        }
    }
}

private func posixOpen(_ path: String, _ flags: Int32) -> Int32 {
    #if canImport(Glibc)
    return Glibc.open(path, flags)
    #else
    return Darwin.open(path, flags)
    #endif
}

private func posixClose(_ fd: Int32) {
    #if canImport(Glibc)
    _ = Glibc.close(fd)
    #else
    _ = Darwin.close(fd)
    #endif
}
