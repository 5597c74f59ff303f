import Foundation

/// Errors of the HDF5 layer. Every case names the file (as the caller spelled its path) and,
/// where there is one, the object inside it (an absolute HDF5 path such as
/// `/captures/blocks.3.attn.hook_pattern`, with ` @name` appended for an attribute).
public enum TraceStoreError: LocalizedError, Equatable, Sendable {
    /// No file at this path.
    case fileNotFound(file: String)
    /// The file exists but has no HDF5 signature (not HDF5, or truncated before its superblock).
    case notHDF5(file: String)
    /// The file has an HDF5 signature but HDF5 cannot read it (truncated, damaged).
    case corruptFile(file: String, detail: String)
    /// The file could not be opened or created for another reason (permissions, lock, directory).
    case cannotOpen(file: String, detail: String)
    /// `create(truncate: false)` on an existing file.
    case fileExists(file: String)
    /// The handle was used after `close()` (or after a run file was finalized).
    case fileClosed(file: String)
    /// A write was attempted through a file opened read-only.
    case readOnly(file: String, object: String)
    /// No object (group, dataset, attribute) at this path.
    case notFound(file: String, object: String)
    /// An object already exists at this path.
    case alreadyExists(file: String, object: String)
    /// The object exists but is not of the expected kind (e.g. a group where a dataset was asked for).
    case wrongKind(file: String, object: String, expected: String, actual: String)
    /// Element or attribute type differs from what the caller asked for.
    case typeMismatch(file: String, object: String, expected: String, actual: String)
    /// Element counts, ranks or selections that do not fit the dataset's shape.
    case shapeMismatch(file: String, object: String, detail: String)
    /// Arguments that cannot be valid (negative sizes, NUL bytes in strings, ...).
    case invalidArgument(file: String, object: String, detail: String)
    /// The file is HDF5 but not a Headlight run file, or not one this version reads.
    case notARunFile(file: String, detail: String)
    /// Any other failure reported by the HDF5 library; `detail` is its error stack, outermost
    /// call first, innermost cause last.
    case hdf5(file: String, object: String, operation: String, detail: String)
    /// A file-system operation around HDF5 failed (rename, fsync, remove).
    case io(file: String, operation: String, detail: String)
    /// An output path that cannot be written (empty, a directory, missing or read-only directory).
    case badOutputPath(file: String, detail: String)
    /// An interrupted `.partial` that must not be resumed by this run.
    case cannotResume(file: String, detail: String, hint: String)
    /// The disk is full; a resumable run stopped at its last intact checkpoint.
    case diskFull(file: String, detail: String)

    /// The file the error is about.
    public var file: String {
        switch self {
        case .fileNotFound(let f), .notHDF5(let f), .fileExists(let f), .fileClosed(let f): return f
        case .corruptFile(let f, _), .cannotOpen(let f, _), .notARunFile(let f, _), .io(let f, _, _): return f
        case .badOutputPath(let f, _), .cannotResume(let f, _, _), .diskFull(let f, _): return f
        case .readOnly(let f, _), .notFound(let f, _), .alreadyExists(let f, _): return f
        case .wrongKind(let f, _, _, _), .typeMismatch(let f, _, _, _): return f
        case .shapeMismatch(let f, _, _), .invalidArgument(let f, _, _): return f
        case .hdf5(let f, _, _, _): return f
        }
    }

    /// The object inside the file, if the error is about one.
    public var object: String? {
        switch self {
        case .readOnly(_, let o), .notFound(_, let o), .alreadyExists(_, let o): return o
        case .wrongKind(_, let o, _, _), .typeMismatch(_, let o, _, _): return o
        case .shapeMismatch(_, let o, _), .invalidArgument(_, let o, _): return o
        case .hdf5(_, let o, _, _): return o
        default: return nil
        }
    }

    public var errorDescription: String? {
        switch self {
        case .fileNotFound(let f): return "\(f): no such file"
        case .notHDF5(let f): return "\(f): not an HDF5 file (no HDF5 signature)"
        case .corruptFile(let f, let d): return "\(f): damaged or truncated HDF5 file: \(d)"
        case .cannotOpen(let f, let d): return "\(f): cannot open: \(d)"
        case .fileExists(let f): return "\(f): file already exists"
        case .fileClosed(let f): return "\(f): file is closed"
        case .readOnly(let f, let o): return "\(f): \(o): file is open read-only"
        case .notFound(let f, let o): return "\(f): \(o): not found"
        case .alreadyExists(let f, let o): return "\(f): \(o): already exists"
        case .wrongKind(let f, let o, let e, let a): return "\(f): \(o): is a \(a), expected a \(e)"
        case .typeMismatch(let f, let o, let e, let a): return "\(f): \(o): type is \(a), expected \(e)"
        case .shapeMismatch(let f, let o, let d): return "\(f): \(o): \(d)"
        case .invalidArgument(let f, let o, let d): return "\(f): \(o): \(d)"
        case .notARunFile(let f, let d): return "\(f): not a Headlight run file: \(d)"
        case .hdf5(let f, let o, let op, let d): return "\(f): \(o): \(op) failed: \(d)"
        case .io(let f, let op, let d): return "\(f): \(op) failed: \(d)"
        case .badOutputPath(let f, let d): return "output \"\(f)\": \(d)"
        case .cannotResume(let f, let d, _): return "cannot resume \(f): \(d)"
        case .diskFull(let f, let d): return "\(f): disk full: \(d)"
        }
    }

    public var recoverySuggestion: String? {
        switch self {
        case .notHDF5:
            return "Headlight run files are HDF5 (.h5); check the path."
        case .corruptFile:
            return
                "The file may have been cut short (disk full, copy interrupted, or a writer killed before finalize). "
                + "Unfinished runs live in '<name>.tmp-<pid>' or '<name>.partial' files; rerun the command."
        case .cannotOpen(_, let d) where d.contains("unable to lock"):
            return "Another process has the file open for writing (HDF5 file locking)."
        case .cannotOpen(_, let d) where d.contains("already open"):
            return "This process already has the file open in another mode; close that H5File first."
        case .cannotResume(_, _, let hint):
            return hint
        case .diskFull:
            return "Free some space on that file system and rerun the same command: it resumes from the checkpoint."
        case .hdf5(_, _, _, let d) where d.contains("No space left on device"),
            .io(_, _, let d) where d.contains("No space left on device"):
            return "The disk is full. Free some space and run the command again."
        case .readOnly:
            return "Open the file with mode: .readWrite (or H5File.openForAppend)."
        case .fileClosed:
            return "Keep the H5File (or RunFileWriter) open while its groups and datasets are used."
        default:
            return nil
        }
    }
}
