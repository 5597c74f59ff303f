// Tolerant reading of run files for reports.
//
// Reports draw a figure only when its data is present: every reader here returns nil (or an
// empty value) for a missing group, dataset or attribute instead of throwing, and accepts the
// numeric types the writers use (int8/int32/int64, float16/32/64). Only an unreadable file is
// an error. The group layouts are documented in docs/run-file.md and next to each writer
// (RetrievalRunFile, MembershipRunFile, CompositionRunFile, ...).
import Foundation
import TraceStore

/// Small, forgiving accessors over an HDF5 container.
enum RR {
    static func exists(_ c: H5Container, _ path: String) -> Bool { (try? c.exists(path)) ?? false }

    static func group(_ c: H5Container, _ path: String) -> H5Group? {
        guard (try? c.kind(of: path)) == .group else { return nil }
        return try? c.group(path)
    }

    static func dataset(_ c: H5Container, _ path: String) -> H5Dataset? {
        guard (try? c.kind(of: path)) == .dataset else { return nil }
        return try? c.dataset(path)
    }

    /// Numbers of any numeric type as Double.
    static func doubles(_ c: H5Container, _ path: String) -> [Double]? {
        guard let ds = dataset(c, path) else { return nil }
        return doubles(ds)
    }

    static func doubles(_ ds: H5Dataset) -> [Double]? {
        if (try? ds.count) == 0 { return [] }
        switch ds.elementType {
        case .float16, .float32, .float64: return try? ds.read(Double.self)
        case .int8: return (try? ds.read(Int8.self))?.map(Double.init)
        case .uint8: return (try? ds.read(UInt8.self))?.map(Double.init)
        case .int16: return (try? ds.read(Int16.self))?.map(Double.init)
        case .uint16: return (try? ds.read(UInt16.self))?.map(Double.init)
        case .uint32: return (try? ds.read(UInt32.self))?.map(Double.init)
        case .int32: return (try? ds.read(Int32.self))?.map(Double.init)
        case .int64: return (try? ds.read(Int64.self))?.map(Double.init)
        default: return nil
        }
    }

    static func ints(_ c: H5Container, _ path: String) -> [Int]? {
        doubles(c, path)?.map { $0.isFinite ? Int($0) : -1 }
    }

    static func strings(_ c: H5Container, _ path: String) -> [String]? {
        guard let ds = dataset(c, path), ds.elementType == .string else { return nil }
        if (try? ds.count) == 0 { return [] }
        return try? ds.readStrings()
    }

    static func shape(_ c: H5Container, _ path: String) -> [Int]? { dataset(c, path).flatMap { try? $0.shape } }

    static func attr(_ o: H5Object, _ name: String) -> H5AttributeValue? {
        (try? o.attributeIfPresent(name)) ?? nil
    }

    static func string(_ o: H5Object, _ name: String) -> String? {
        guard let v = attr(o, name) else { return nil }
        switch v {
        case .string(let s): return s
        case .strings(let a): return a.joined(separator: " ")
        case .int(let i): return String(i)
        case .double(let d): return String(d)
        default: return nil
        }
    }

    static func stringList(_ o: H5Object, _ name: String) -> [String]? {
        guard let v = attr(o, name) else { return nil }
        switch v {
        case .strings(let a): return a
        case .string(let s): return [s]
        default: return nil
        }
    }

    static func double(_ o: H5Object, _ name: String) -> Double? { attr(o, name)?.doubleValue }
    static func int(_ o: H5Object, _ name: String) -> Int? {
        guard let v = attr(o, name) else { return nil }
        if let i = v.intValue { return Int(i) }
        if let d = v.doubleValue, d.isFinite { return Int(d) }
        return nil
    }
    static func doubleList(_ o: H5Object, _ name: String) -> [Double]? { attr(o, name)?.doublesValue }
    static func intList(_ o: H5Object, _ name: String) -> [Int]? { attr(o, name)?.intsValue?.map(Int.init) }

    /// Children of a group (empty if unreadable).
    static func children(_ c: H5Container) -> [String] { (try? c.children()) ?? [] }
}

/// Root attributes of a run file: where it came from (for the reproducibility block).
public struct RunFileProvenance: Sendable, Equatable {
    public var fileName: String
    public var path: String
    public var command: String?
    public var commandLine: [String]?
    public var headlightVersion: String?
    public var modelFile: String?
    public var modelName: String?
    public var modelSHA256: String?
    public var created: String?
    public var finished: String?
    /// Machine / BLAS kernel, when the writer recorded them (root attributes `machine`,
    /// `blas_core` or `blas_kernel`).
    public var machine: String?
    public var blasKernel: String?
    public var nLayers: Int?
    public var nHeads: Int?
    public var nKVHeads: Int?

    /// The argv as one shell-quoted line (or the command name).
    public var commandText: String? {
        if let a = commandLine, !a.isEmpty {
            var argv = a
            if let first = argv.first, first.contains("/") { argv[0] = (first as NSString).lastPathComponent }
            return Shell.command(argv)
        }
        return command.map { "headlight " + $0 }
    }

    static func read(_ f: H5File, url: URL) -> RunFileProvenance {
        RunFileProvenance(
            fileName: url.lastPathComponent, path: url.path,
            command: RR.string(f, RunFile.Attr.command), commandLine: RR.stringList(f, RunFile.Attr.commandLine),
            headlightVersion: RR.string(f, RunFile.Attr.headlightVersion), modelFile: RR.string(f, RunFile.Attr.modelFile),
            modelName: RR.string(f, RunFile.Attr.modelName), modelSHA256: RR.string(f, RunFile.Attr.modelSHA256),
            created: RR.string(f, RunFile.Attr.created), finished: RR.string(f, RunFile.Attr.finished),
            machine: RR.string(f, "machine"), blasKernel: RR.string(f, "blas_core") ?? RR.string(f, "blas_kernel"),
            nLayers: RR.int(f, "n_layers"), nHeads: RR.int(f, "n_heads"), nKVHeads: RR.int(f, "n_key_value_heads"))
    }
}
