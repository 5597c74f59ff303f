import CNative
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
        /// str[n_layers]: "full" or "sliding" per layer (absent in files written before families).
        public static let layerAttention = "layer_attention"
        /// int: the sliding window n_swa of the "sliding" layers (a query at p sees keys k with
        /// p - k < n_swa); 0 when every layer attends to the full causal context.
        public static let slidingWindow = "sliding_window"
        /// str: how the KV cache stored keys and values, "f32" or "f16" (`--kv`; absent in files
        /// written before it existed, which were all f32).
        public static let kvCache = "kv_cache"
        public static let prompt = "prompt"
    }

    /// Model dimension attributes, named like TransformerLens' HookedTransformerConfig.
    public static let dimensionNames = [
        "n_layers", "n_heads", "n_key_value_heads", "d_model", "d_head", "d_mlp", "d_vocab", "n_ctx"
    ]

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
            throw TraceStoreError.notARunFile(
                file: path, detail: "root attribute 'format' is not \"\(RunFile.format)\"")
        }
        let version = try f.attributeIfPresent(Attr.formatVersion)?.intValue ?? 0
        guard version >= 1 && version <= formatVersion else {
            throw TraceStoreError.notARunFile(
                file: path, detail: "format_version \(version) (this Headlight reads 1...\(formatVersion))")
        }
        if !allowIncomplete, try f.attributeIfPresent(Attr.complete)?.intValue != 1 {
            throw TraceStoreError.notARunFile(
                file: path, detail: "the run did not finish (root attribute complete != 1)")
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
    /// "full" / "sliding" per layer (`layer_attention`).
    public var layerAttention: [String]?
    /// Window of the sliding layers, 0 if none (`sliding_window`).
    public var slidingWindow: Int?
    /// KV cache storage of the run, "f32" or "f16" (`kv_cache`).
    public var kvCache: String?

    public init(
        headlightVersion: String? = nil, command: String? = nil, commandLine: [String]? = nil,
        modelFile: String? = nil, modelSize: Int? = nil, modelSHA256: String? = nil, modelName: String? = nil,
        architecture: String? = nil, dimensions: [String: Int] = [:]
    ) {
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
        if let v = layerAttention { try file.setAttribute(A.layerAttention, v) }
        if let v = slidingWindow { try file.setAttribute(A.slidingWindow, v) }
        if let v = kvCache { try file.setAttribute(A.kvCache, v) }
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
        h.layerAttention = try file.attributeIfPresent(A.layerAttention)?.stringsValue
        h.slidingWindow = try file.attributeIfPresent(A.slidingWindow)?.intValue.map(Int.init)
        h.kvCache = try file.attributeIfPresent(A.kvCache)?.stringValue
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
///   (HDF5's file lock makes the second open fail with `.cannotOpen`, "another process is
///   writing").
///
/// Safety (docs/security.md): temporary files are created exclusively and never through a
/// symbolic link (a planted link at `<path>.tmp-<pid>` is removed, not followed; a `.partial`
/// that is a link is refused). A new `.partial` appears only once its header (format, `header`,
/// `identity`) is on disk: it is written as `<path>.partial.tmp-<pid>` and renamed, so a kill
/// at any moment leaves either no `.partial` or one that names its command and model. A
/// `.partial` is resumed only when every `identity` attribute matches (command, model sha256,
/// plan hash, ...), and it is checked read-only before anything is written to it.
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
    /// True for a `.partial` run (checkpointed, space reserved before each trial).
    public let resumable: Bool
    public private(set) var isFinalized = false
    /// Resumable runs: file descriptor used only to reserve disk space ahead of the next
    /// checkpoint (see `reserveSpace`), and the growth bookkeeping that sizes the reservation.
    private var reserveFD: Int32 = -1
    private var lastSize = 0
    private var largestGrowth = 0

    /// - Parameters:
    ///   - header: root attributes written when the file is created (ignored when resuming: the
    ///     partial file already has them).
    ///   - identity: root string attributes that a resumed `.partial` must carry with exactly
    ///     these values (written on creation); a mismatch is `.cannotResume` naming the key.
    public init(
        path: String, resumable: Bool = false, header: RunFileHeader? = nil,
        identity: [String: String] = [:]
    ) throws {
        try RunFileWriter.checkOutputPath(path)
        self.path = path
        self.resumable = resumable
        self.temporaryPath = RunFileWriter.temporaryPath(for: path, resumable: resumable)
        if resumable, let existing = try RunFileWriter.existingPartial(temporaryPath, identity: identity) {
            file = existing
            resumed = true
            try reserveSpace()
            try file.setAttribute(RunFile.Attr.complete, 0)
            try file.flush()
            return
        }
        resumed = false
        if resumable {
            // Build the header in a private temporary file, then publish it as `.partial`.
            let staging = temporaryPath + ".tmp-\(getpid())"
            let f = try RunFileWriter.createWithHeader(staging, header: header, identity: identity)
            do {
                try f.flush()
                try f.close()
                if rename(staging, temporaryPath) != 0 {
                    throw TraceStoreError.io(
                        file: temporaryPath, operation: "rename from \(staging)",
                        detail: String(cString: strerror(errno)))
                }
            } catch {
                try? f.close()
                _ = unlink(staging)
                throw error
            }
            file = try H5File.openForAppend(temporaryPath)
            try reserveSpace()
        } else {
            file = try RunFileWriter.createWithHeader(temporaryPath, header: header, identity: identity)
        }
    }

    deinit {
        if !isFinalized { try? file.close() }
        if reserveFD >= 0 { posixClose(reserveFD) }
    }

    /// Bytes kept reserved beyond the file's end for the next checkpoint: at least 256 KiB and
    /// three times the largest growth between two checkpoints so far.
    var reservation: Int { max(256 << 10, 3 * largestGrowth) }

    /// Disk-full safety for resumable runs. HDF5 updates a file in place, so a flush that fails
    /// half-way (ENOSPC) can leave the checkpoint unreadable. Before each trial the writer
    /// therefore reserves `reservation` bytes past the end of the file (`fallocate` with
    /// FALLOC_FL_KEEP_SIZE: blocks are allocated, the size HDF5 sees is unchanged), so the
    /// trial's writes and its checkpoint land in space that is already the file's. If the space
    /// cannot be had, the run stops *before* writing anything more, with the last checkpoint
    /// intact and resumable. Where fallocate is unsupported the free space is checked instead.
    func reserveSpace() throws {
        var st = stat()
        guard lstat(temporaryPath, &st) == 0 else { return }
        let size = Int(st.st_size)
        if lastSize > 0 { largestGrowth = max(largestGrowth, size - lastSize) }
        lastSize = size
        let want = reservation
        // A file-size limit (ulimit -f) is space that cannot be had either; fallocate with
        // KEEP_SIZE does not check it, the writes would (EFBIG) and damage the checkpoint.
        var lim = rlimit()
        if getrlimit(Int32(RLIMIT_FSIZE.rawValue), &lim) == 0, lim.rlim_cur != rlim_t.max,
            UInt64(size + want) > UInt64(lim.rlim_cur)
        {
            throw diskFull(want)
        }
        if reserveFD < 0 { reserveFD = posixOpen(temporaryPath, O_WRONLY | O_NOFOLLOW | O_CLOEXEC) }
        if reserveFD >= 0 {
            let r = hl_fs_reserve(reserveFD, Int64(size), Int64(want))
            if r == 0 { return }
            if r == ENOSPC || r == EDQUOT || r == EFBIG { throw diskFull(want) }
            // EOPNOTSUPP and friends: fall through to the free-space check.
        }
        var vfs = statvfs()
        if statvfs(temporaryPath, &vfs) == 0 {
            let free = Int(vfs.f_bavail) * Int(vfs.f_frsize)
            if free < want { throw diskFull(want) }
        }
    }

    /// Gives back the blocks reserved past the end of the file (truncating to the same size
    /// drops preallocated blocks) and closes the descriptor.
    private func releaseReservation() {
        guard reserveFD >= 0 else { return }
        var st = stat()
        if fstat(reserveFD, &st) == 0 { _ = ftruncate(reserveFD, st.st_size) }
        posixClose(reserveFD)
        reserveFD = -1
    }

    private func diskFull(_ want: Int) -> TraceStoreError {
        .diskFull(
            file: temporaryPath,
            detail: "cannot reserve \(want / 1024) KiB for the next checkpoint (No space left on device); "
                + "stopped before writing, the last checkpoint is intact")
    }

    /// The directory part of `path` ("" for a bare file name), by plain string steps:
    /// `NSString.deletingLastPathComponent` traps on one-character paths such as "x" in the
    /// Foundation of Swift 6.3 on Linux (a crash for `-o x`).
    public static func parentDirectory(of path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return "" }
        if slash == p.startIndex { return "/" }
        var dir = p[..<slash]
        while dir.count > 1 && dir.hasSuffix("/") { dir = dir.dropLast() }
        return String(dir)
    }

    /// `<path>.partial` when resumable, else `<path>.tmp-<pid>` (same directory as `path`, so
    /// the final rename never crosses file systems).
    public static func temporaryPath(for path: String, resumable: Bool) -> String {
        resumable ? path + ".partial" : path + ".tmp-\(getpid())"
    }

    /// Checks an output path before any work is done: not empty, not a directory, its directory
    /// exists and is writable. Commands call this from argument validation; `init` calls it too.
    public static func checkOutputPath(_ path: String) throws {
        func bad(_ detail: String) -> TraceStoreError { .badOutputPath(file: path, detail: detail) }
        guard !path.isEmpty else { throw bad("the output path is empty") }
        guard !path.hasSuffix("/") else { throw bad("names a directory; give a file name such as run.h5") }
        var st = stat()
        if lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
            throw bad("is a directory; give a file name such as \(path)/run.h5")
        }
        let dir = RunFileWriter.parentDirectory(of: path)
        let d = dir.isEmpty ? "." : dir
        var ds = stat()
        guard stat(d, &ds) == 0 else { throw bad("its directory \(d) does not exist") }
        guard (ds.st_mode & S_IFMT) == S_IFDIR else { throw bad("\(d) is not a directory") }
        guard access(d, W_OK | X_OK) == 0 else { throw bad("its directory \(d) is not writable") }
    }

    /// Removes whatever sits at a temporary path of this process (a stale file, or a symbolic
    /// link someone planted: `unlink` removes the link, never its target), then creates the HDF5
    /// file exclusively (`O_CREAT | O_EXCL`: fails on any existing entry, links included).
    static func createExclusive(_ p: String) throws -> H5File {
        var st = stat()
        if lstat(p, &st) == 0 {
            if (st.st_mode & S_IFMT) == S_IFDIR {
                throw TraceStoreError.badOutputPath(file: p, detail: "a directory is in the way of the temporary file")
            }
            if unlink(p) != 0 {
                throw TraceStoreError.io(
                    file: p, operation: "remove stale temporary file",
                    detail: String(cString: strerror(errno)))
            }
        }
        do {
            return try H5File.create(p, truncate: false)
        } catch TraceStoreError.fileExists {
            throw TraceStoreError.badOutputPath(file: p, detail: "another process created this temporary file first")
        } catch {
            // Created but not initialised (disk full while writing the superblock): the file is
            // ours (the path was free and the create exclusive), so no 0-byte file is left.
            if lstat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG { _ = unlink(p) }
            throw error
        }
    }

    /// A new file at `p` (created exclusively) holding the root header; on failure nothing is
    /// left at `p`.
    static func createWithHeader(_ p: String, header: RunFileHeader?, identity: [String: String]) throws -> H5File {
        let f = try createExclusive(p)
        do {
            try f.setAttribute(RunFile.Attr.format, RunFile.format)
            try f.setAttribute(RunFile.Attr.formatVersion, RunFile.formatVersion)
            try f.setAttribute(RunFile.Attr.created, RunFile.timestamp())
            try f.setAttribute(RunFile.Attr.complete, 0)
            try header?.write(to: f)
            for (k, v) in identity.sorted(by: { $0.key < $1.key }) { try f.setAttribute(k, v) }
            return f
        } catch {
            try? f.close()
            _ = unlink(p)
            throw error
        }
    }

    /// Opens a `.partial`, turning HDF5's lock failure into "another process is writing it".
    static func openPartial(_ p: String, mode: H5File.Mode) throws -> H5File {
        do {
            return try H5File.open(p, mode: mode)
        } catch TraceStoreError.cannotOpen(_, let d) where d.contains("unable to lock") {
            throw TraceStoreError.cannotResume(
                file: p, detail: "another process is writing it",
                hint: "Wait for that run to finish, or choose another -o.")
        }
    }

    /// The interrupted `.partial` at `p`, checked read-only first and then opened read-write, or
    /// nil when there is none (or only an empty one left by a kill before its header existed,
    /// which an older Headlight could leave; it is removed).
    static func existingPartial(_ p: String, identity: [String: String]) throws -> H5File? {
        var st = stat()
        guard lstat(p, &st) == 0 else { return nil }
        switch st.st_mode & S_IFMT {
        case S_IFLNK:
            throw TraceStoreError.cannotResume(
                file: p, detail: "it is a symbolic link; Headlight never writes through one",
                hint: "Remove the link (or choose another -o).")
        case S_IFREG: break
        default:
            throw TraceStoreError.cannotResume(
                file: p, detail: "it is not a regular file",
                hint: "Remove it (or choose another -o).")
        }
        if st.st_size == 0 {
            _ = unlink(p)
            return nil
        }
        // Read-only check: nothing is written to a file that fails it.
        do {
            let ro = try openPartial(p, mode: .readOnly)
            defer { try? ro.close() }
            let format = try ro.attributeIfPresent(RunFile.Attr.format)?.stringValue
            guard format == RunFile.format else {
                throw TraceStoreError.cannotResume(
                    file: p, detail: "it is not a partial Headlight run file",
                    hint: "Remove it (or rerun with --restart).")
            }
            if try ro.attributeIfPresent(RunFile.Attr.complete)?.intValue == 1 {
                throw TraceStoreError.cannotResume(
                    file: p, detail: "it is a finished run file, not an interrupted one",
                    hint: "Move it to its final name, or remove it.")
            }
            // Killed before its header was complete (Headlight <= session 9 wrote the model
            // header after creating the file): no records and none of this run's identity yet,
            // so nothing is lost by starting over.
            let names = Set(try ro.attributeNames())
            if try ro.children().isEmpty, !identity.isEmpty, identity.keys.allSatisfy({ !names.contains($0) }) {
                try ro.close()
                _ = unlink(p)
                return nil
            }
            for (k, want) in identity.sorted(by: { $0.key < $1.key }) {
                let have = try ro.attributeIfPresent(k)?.stringValue
                guard have == want else {
                    throw TraceStoreError.cannotResume(
                        file: p,
                        detail: "it was written with \(k) = \(have.map { "\"\($0)\"" } ?? "(none)"), "
                            + "this run has \(k) = \"\(want)\"",
                        hint: "Rerun with --restart to discard it, or choose another -o.")
                }
            }
        } catch let e as TraceStoreError {
            switch e {
            case .cannotResume: throw e
            default:
                throw TraceStoreError.cannotResume(
                    file: p, detail: e.errorDescription ?? "\(e)",
                    hint: "Rerun with --restart to discard it, or choose another -o.")
            }
        }
        return try openPartial(p, mode: .readWrite)
    }

    /// Flushes everything written so far to disk (call after each record of a resumable run).
    public func checkpoint() throws {
        try file.flush()
        if resumable { try reserveSpace() }
    }

    /// Marks the run complete, closes the file and moves it to `path` (replacing any file there).
    public func finalize() throws {
        guard !isFinalized else { return }
        do {
            try file.setAttribute(RunFile.Attr.finished, RunFile.timestamp())
            try file.setAttribute(RunFile.Attr.complete, 1)
            try file.flush()
            try file.close()
        } catch {
            // Never leave an HDF5 file half-open (disk full): close it. The temporary file stays
            // until the caller decides: `abandon()` removes it (plain runs leave no 0-byte or
            // partial temporary file on disk-full), `close()` keeps a resumable run's checkpoint.
            try? file.close()
            throw error
        }
        releaseReservation()
        try fsyncPath(temporaryPath, directory: false)
        if rename(temporaryPath, path) != 0 {
            throw TraceStoreError.io(
                file: path, operation: "rename from \(temporaryPath)", detail: String(cString: strerror(errno)))
        }
        isFinalized = true
        let dir = RunFileWriter.parentDirectory(of: path)
        try? fsyncPath(dir.isEmpty ? "." : dir, directory: true) // make the rename durable
    }

    /// Closes the file and deletes the temporary file; `path` is untouched. For a resumable run
    /// use `close()` instead on errors: the `.partial` is the checkpoint.
    public func abandon() throws {
        guard !isFinalized else { return }
        try? file.close()
        releaseReservation()
        isFinalized = true
        if unlink(temporaryPath) != 0 && errno != ENOENT {
            throw TraceStoreError.io(file: temporaryPath, operation: "remove", detail: String(cString: strerror(errno)))
        }
    }

    /// Closes the file and keeps the temporary file (a resumable run's checkpoint) after an error.
    public func close() {
        guard !isFinalized else { return }
        try? file.close()
        releaseReservation()
        isFinalized = true
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
