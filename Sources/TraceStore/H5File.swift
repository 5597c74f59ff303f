import CNative
import Foundation

/// Anything inside an HDF5 file that has a name and can carry attributes: the file itself
/// (its root group), groups and datasets.
public protocol H5Object: AnyObject {
    /// The file this object lives in (the file itself for `H5File`).
    var file: H5File { get }
    /// Absolute HDF5 path of the object ("/" for the root group), like h5py's `.name`.
    var name: String { get }
    /// The underlying HDF5 id (hid_t), valid while `file.isOpen`. For diagnostics.
    var rawID: Int64 { get }
}

extension H5Object {
    /// The id, or `.fileClosed` if the file has been closed.
    func liveID() throws -> Int64 {
        guard file.isOpen else { throw TraceStoreError.fileClosed(file: file.path) }
        return rawID
    }

    func requireWritable(_ object: String? = nil) throws {
        guard file.mode == .readWrite else {
            throw TraceStoreError.readOnly(file: file.path, object: object ?? name)
        }
    }

    /// An `.hdf5` error carrying the shim's last message (call right after the failing call).
    func h5Error(_ operation: String, object: String? = nil) -> TraceStoreError {
        .hdf5(file: file.path, object: object ?? name, operation: operation, detail: H5Lib.lastError)
    }

    /// `count` names read through the shim's two-call pattern: `name(i, nil, 0)` gives the length,
    /// `name(i, buf, len + 1)` the bytes (call inside `H5Lib.sync`; `operation` names the failure).
    func names(
        _ operation: String, of id: Int64, count n: Int64,
        _ nameAt: (Int64, UnsafeMutablePointer<CChar>?, Int) -> Int64
    ) throws -> [String] {
        if n < 0 { throw h5Error(operation) }
        // A damaged count must not size an allocation: every name takes bytes in the file.
        if hl_h5_check_read(id, n, 1, 1) < 0 {
            throw TraceStoreError.corruptFile(file: file.path, detail: "\(name): \(H5Lib.lastError)")
        }
        var names: [String] = []
        names.reserveCapacity(Int(min(n, 4096)))
        for i in 0..<n {
            let len = nameAt(i, nil, 0)
            if len < 0 { throw h5Error(operation) }
            var buf = [CChar](repeating: 0, count: Int(len) + 1)
            if nameAt(i, &buf, buf.count) < 0 { throw h5Error(operation) }
            names.append(String(cString: buf))
        }
        return names
    }
}

/// An open HDF5 file. Closing it (explicitly, or when the last reference goes away) closes every
/// group and dataset opened through it; those keep a strong reference to the file, so it stays
/// open as long as they are alive unless `close()` is called.
///
/// Checkpoint / resume: a long sweep that must survive being killed opens its file with
/// `openForAppend`, appends one record per trial (e.g. `H5Dataset.append(rows:)` on an extendible
/// dataset) and calls `flush()` after each record. After `flush()` returns, the file on disk is
/// consistent and contains every record so far; on restart, reopen it with `openForAppend`, read
/// how many rows exist and continue from there. Records written after the last flush may be lost.
/// (HDF5 without SWMR gives no stronger guarantee: a kill in the middle of a flush can, rarely,
/// leave the file unreadable, which `open` reports as `.corruptFile`.) `RunFileWriter` with
/// `resumable: true` packages this pattern with atomic publication of the finished file.
public final class H5File: H5Object {
    public enum Mode: Sendable { case readOnly, readWrite }

    /// File-system path, as given when the file was opened or created.
    public let path: String
    public let mode: Mode
    public let rawID: Int64
    public private(set) var isOpen = true

    public var file: H5File { self }
    public var name: String { "/" }

    private init(id: Int64, path: String, mode: Mode) {
        self.rawID = id
        self.path = path
        self.mode = mode
    }

    deinit {
        if isOpen { _ = H5Lib.sync { hl_h5_close(rawID) } }
    }

    /// Creates a new file. `truncate: true` replaces an existing file; `false` fails with
    /// `.fileExists` instead.
    public static func create(_ path: String, truncate: Bool = true) throws -> H5File {
        if !truncate && FileManager.default.fileExists(atPath: path) { throw TraceStoreError.fileExists(file: path) }
        return try H5Lib.sync {
            let id = hl_h5f_create(path, truncate ? 0 : 1)
            guard id >= 0 else {
                let msg = H5Lib.lastError
                if !truncate && msg.contains("exist") { throw TraceStoreError.fileExists(file: path) }
                throw TraceStoreError.cannotOpen(file: path, detail: msg)
            }
            return H5File(id: id, path: path, mode: .readWrite)
        }
    }

    /// Opens an existing file. Missing, non-HDF5 and damaged/truncated files are reported as
    /// `.fileNotFound`, `.notHDF5` and `.corruptFile`.
    public static func open(_ path: String, mode: Mode = .readOnly) throws -> H5File {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw TraceStoreError.fileNotFound(file: path)
        }
        if isDir.boolValue { throw TraceStoreError.cannotOpen(file: path, detail: "is a directory") }
        if !FileManager.default.isReadableFile(atPath: path) {
            throw TraceStoreError.cannotOpen(file: path, detail: "permission denied")
        }
        return try H5Lib.sync {
            let sig = hl_h5f_is_hdf5(path)
            if sig == 0 { throw TraceStoreError.notHDF5(file: path) }
            if sig < 0 { throw TraceStoreError.cannotOpen(file: path, detail: H5Lib.lastError) }
            let id = hl_h5f_open(path, mode == .readWrite ? 1 : 0)
            guard id >= 0 else {
                let msg = H5Lib.lastError
                // (match whole phrases: "sblock" in a truncation message must not read as "lock")
                if !msg.contains("truncated file")
                    && (msg.contains("unable to lock") || msg.contains("ermission denied")
                        || msg.contains("already open"))
                {
                    throw TraceStoreError.cannotOpen(file: path, detail: msg)
                }
                throw TraceStoreError.corruptFile(file: path, detail: msg)
            }
            return H5File(id: id, path: path, mode: mode)
        }
    }

    /// Reopens an existing file read-write to add records to it (checkpoint/resume; see the
    /// type's documentation). Call `flush()` after each record.
    public static func openForAppend(_ path: String) throws -> H5File {
        try open(path, mode: .readWrite)
    }

    /// Writes all buffered data and metadata to the operating system. After it returns the file
    /// on disk is a consistent HDF5 file containing everything written so far.
    public func flush() throws {
        let id = try liveID()
        guard mode == .readWrite else { return }
        try H5Lib.sync {
            if hl_h5f_flush(id) < 0 { throw h5Error("flush") }
        }
    }

    /// Closes the file and every object opened in it. Further use of them throws `.fileClosed`.
    /// Closing twice is harmless.
    public func close() throws {
        guard isOpen else { return }
        isOpen = false
        try H5Lib.sync {
            if hl_h5_close(rawID) < 0 { throw h5Error("close") }
        }
    }

    /// HDF5 library version, e.g. "1.10.8".
    public static var libraryVersion: String { H5Lib.version }
}

/// A group. Open it with `createGroup`, `group` or `requireGroup` on a file or another group.
public final class H5Group: H5Object {
    public let file: H5File
    public let name: String
    public let rawID: Int64

    init(file: H5File, name: String, id: Int64) {
        self.file = file
        self.name = name
        self.rawID = id
    }

    deinit {
        if file.isOpen { _ = H5Lib.sync { hl_h5_close(rawID) } }
    }
}

/// Files and groups: objects that contain other objects. Paths are relative to the container
/// ("blocks/3") or absolute ("/captures"); missing intermediate groups are created on creation.
public protocol H5Container: H5Object {}

extension H5File: H5Container {}
extension H5Group: H5Container {}

extension H5Container {
    func checkPath(_ path: String) throws {
        if path.isEmpty || path.utf8.contains(0) {
            throw TraceStoreError.invalidArgument(
                file: file.path, object: name, detail: "invalid object path \"\(path)\"")
        }
    }

    /// The kind of object at `path`, or nil if there is none.
    public func kind(of path: String) throws -> H5ObjectKind? {
        try checkPath(path)
        let id = try liveID()
        return try H5Lib.sync {
            let k = hl_h5_object_kind(id, path)
            switch Int(k) {
            case Int(HL_H5_KIND_MISSING): return nil
            case Int(HL_H5_KIND_GROUP): return .group
            case Int(HL_H5_KIND_DATASET): return .dataset
            case Int(HL_H5_KIND_DATATYPE): return .datatype
            case Int(HL_H5_KIND_OTHER): return .other
            default: throw h5Error("look up", object: h5Join(name, path))
            }
        }
    }

    /// Whether an object exists at `path` (every intermediate group is checked).
    public func exists(_ path: String) throws -> Bool { try kind(of: path) != nil }

    /// Names of the objects directly inside this group, sorted by name.
    public func children() throws -> [String] {
        let id = try liveID()
        return try H5Lib.sync {
            try names("list children", of: id, count: hl_h5g_count(id)) { hl_h5g_child_name(id, $0, $1, $2) }
        }
    }

    /// Creates a group (and any missing parents). Throws `.alreadyExists` if `path` exists.
    @discardableResult
    public func createGroup(_ path: String) throws -> H5Group {
        try requireWritable(h5Join(name, path))
        let full = h5Join(name, path)
        if try kind(of: path) != nil { throw TraceStoreError.alreadyExists(file: file.path, object: full) }
        let id = try liveID()
        return try H5Lib.sync {
            let g = hl_h5g_create(id, path)
            if g < 0 { throw h5Error("create group", object: full) }
            return H5Group(file: file, name: full, id: g)
        }
    }

    /// Opens an existing group.
    public func group(_ path: String) throws -> H5Group {
        let full = h5Join(name, path)
        switch try kind(of: path) {
        case nil: throw TraceStoreError.notFound(file: file.path, object: full)
        case .group?: break
        case let other?:
            throw TraceStoreError.wrongKind(file: file.path, object: full, expected: "group", actual: other.rawValue)
        }
        let id = try liveID()
        return try H5Lib.sync {
            let g = hl_h5g_open(id, path)
            if g < 0 { throw h5Error("open group", object: full) }
            return H5Group(file: file, name: full, id: g)
        }
    }

    /// Opens the group at `path`, creating it (and missing parents) if needed.
    public func requireGroup(_ path: String) throws -> H5Group {
        try exists(path) ? try group(path) : try createGroup(path)
    }

    /// Removes the link at `path`. (HDF5 does not reclaim the space inside the file.)
    public func remove(_ path: String) throws {
        let full = h5Join(name, path)
        try requireWritable(full)
        if try kind(of: path) == nil { throw TraceStoreError.notFound(file: file.path, object: full) }
        let id = try liveID()
        try H5Lib.sync {
            if hl_h5l_delete(id, path) < 0 { throw h5Error("remove", object: full) }
        }
    }

    /// Opens an existing dataset.
    public func dataset(_ path: String) throws -> H5Dataset {
        let full = h5Join(name, path)
        switch try kind(of: path) {
        case nil: throw TraceStoreError.notFound(file: file.path, object: full)
        case .dataset?: break
        case let other?:
            throw TraceStoreError.wrongKind(file: file.path, object: full, expected: "dataset", actual: other.rawValue)
        }
        let id = try liveID()
        let did: Int64 = try H5Lib.sync {
            let d = hl_h5d_open(id, path)
            if d < 0 { throw h5Error("open dataset", object: full) }
            return d
        }
        return try H5Dataset(file: file, name: full, id: did)
    }

    /// Creates a dataset.
    ///
    /// - Parameters:
    ///   - shape: current shape (row-major). With `extendible`, `shape[0]` is the initial row
    ///     count (often 0) and rows are added with `append(rows:)`.
    ///   - type: element type on disk.
    ///   - chunks: chunk shape; nil chooses one when chunking is needed (extendible or
    ///     compressed), using h5py's heuristic capped at 512 KiB so a chunk fits HDF5's default
    ///     1 MiB per-dataset chunk cache. For streaming one row at a time, pass a chunk whose first
    ///     dimension is the number of rows written together (e.g. `[1, nHeads, nKeys]`).
    ///   - gzip: deflate level 0...9 (nil: no compression).
    ///   - shuffle: byte-shuffle before deflate (helps floats compress).
    ///   - extendible: first dimension unlimited.
    @discardableResult
    public func createDataset(
        _ path: String, type: H5ElementType, shape: [Int], chunks: [Int]? = nil,
        gzip: Int? = nil, shuffle: Bool = false, extendible: Bool = false
    ) throws -> H5Dataset {
        try checkPath(path)
        let full = h5Join(name, path)
        try requireWritable(full)
        func bad(_ detail: String) -> TraceStoreError {
            .invalidArgument(file: file.path, object: full, detail: detail)
        }
        guard shape.count <= Int(HL_H5_MAX_RANK) else { throw bad("rank \(shape.count) exceeds \(HL_H5_MAX_RANK)") }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw bad("negative dimension in shape \(shape)") }
        if extendible && shape.isEmpty { throw bad("an extendible dataset needs at least one dimension") }
        if let g = gzip, !(0...9).contains(g) { throw bad("gzip level \(g) is not in 0...9") }
        if let c = chunks {
            guard c.count == shape.count else {
                throw bad("chunk rank \(c.count) differs from shape rank \(shape.count)")
            }
            guard c.allSatisfy({ $0 > 0 }) else { throw bad("chunk dimensions must be positive: \(c)") }
            if !extendible || shape.count > 1 {
                for i in (extendible ? 1 : 0)..<shape.count where c[i] > max(shape[i], 1) {
                    throw bad("chunk \(c) larger than shape \(shape) in dimension \(i)")
                }
            }
        }
        if try kind(of: path) != nil { throw TraceStoreError.alreadyExists(file: file.path, object: full) }
        let needsChunks = extendible || gzip != nil || shuffle
        var chunkShape = chunks
        if chunkShape == nil && needsChunks && !shape.isEmpty {
            chunkShape = H5Dataset.guessChunks(shape: shape, extendible: extendible, elementSize: type.byteSize)
        }
        if shape.isEmpty && needsChunks { throw bad("a scalar dataset cannot be chunked or compressed") }
        let dims = shape.map(Int64.init)
        let maxDims: [Int64]? = extendible ? [-1] + dims.dropFirst() : nil
        let chunk64 = chunkShape?.map(Int64.init)
        let id = try liveID()
        let did: Int64 = try H5Lib.sync {
            let d = dims.withUnsafeBufferPointer { dp in
                withOptionalPointer(maxDims) { mp in
                    withOptionalPointer(chunk64) { cp in
                        hl_h5d_create(
                            id, path, type.code, Int32(dims.count), dp.baseAddress, mp, cp,
                            Int32(gzip ?? -1), shuffle ? 1 : 0)
                    }
                }
            }
            if d < 0 { throw h5Error("create dataset", object: full) }
            return d
        }
        return try H5Dataset(file: file, name: full, id: did)
    }

    /// Creates a dataset and writes `data` into it. `shape` defaults to `[data.count]`;
    /// `type` defaults to the Swift element type's (pass `.float16` to store `Float` data as
    /// half precision).
    @discardableResult
    public func createDataset<T: H5Scalar>(
        _ path: String, data: [T], shape: [Int]? = nil, as type: H5ElementType? = nil,
        chunks: [Int]? = nil, gzip: Int? = nil, shuffle: Bool = false,
        extendible: Bool = false
    ) throws -> H5Dataset {
        let shape = shape ?? [data.count]
        let ds = try createDataset(
            path, type: type ?? T.h5ElementType, shape: shape, chunks: chunks, gzip: gzip,
            shuffle: shuffle, extendible: extendible)
        try ds.write(data)
        return ds
    }

    /// Creates a 1-D variable-length UTF-8 string dataset holding `strings`.
    @discardableResult
    public func createDataset(
        _ path: String, strings: [String], chunks: [Int]? = nil, gzip: Int? = nil,
        extendible: Bool = false
    ) throws -> H5Dataset {
        let ds = try createDataset(
            path, type: .string, shape: [strings.count], chunks: chunks, gzip: gzip,
            extendible: extendible)
        try ds.write(strings: strings)
        return ds
    }
}

@inline(__always)
func withOptionalPointer<R>(_ a: [Int64]?, _ body: (UnsafePointer<Int64>?) -> R) -> R {
    guard let a else { return body(nil) }
    return a.withUnsafeBufferPointer { body($0.baseAddress) }
}
