// Tolerant reading of a run file's root attributes for reports (provenance). The analysis
// groups are read by their analyses' readers (RetrievalRunFile, AblationRunFile,
// CompositionRunFile, NeedleAttention, CitationRunFile, MembershipRunFile in Sources/Analysis),
// which own the layouts documented in docs/run-file.md.
import Foundation
import TraceStore

/// Small, forgiving accessors over root attributes: nil when missing or of another type.
enum RR {
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

    static func int(_ o: H5Object, _ name: String) -> Int? {
        guard let v = attr(o, name) else { return nil }
        if let i = v.intValue { return Int(i) }
        if let d = v.doubleValue, d.isFinite { return Int(d) }
        return nil
    }

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
    /// "full" / "sliding" per layer and the sliding window (root attributes `layer_attention`,
    /// `sliding_window`; written for every model since issue 12, absent in older files).
    public var layerAttention: [String]?
    public var slidingWindow: Int?

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
            headlightVersion: RR.string(f, RunFile.Attr.headlightVersion),
            modelFile: RR.string(f, RunFile.Attr.modelFile),
            modelName: RR.string(f, RunFile.Attr.modelName), modelSHA256: RR.string(f, RunFile.Attr.modelSHA256),
            created: RR.string(f, RunFile.Attr.created), finished: RR.string(f, RunFile.Attr.finished),
            machine: RR.string(f, "machine"), blasKernel: RR.string(f, "blas_core") ?? RR.string(f, "blas_kernel"),
            nLayers: RR.int(f, "n_layers"), nHeads: RR.int(f, "n_heads"), nKVHeads: RR.int(f, "n_key_value_heads"),
            layerAttention: RR.stringList(f, RunFile.Attr.layerAttention),
            slidingWindow: RR.int(f, RunFile.Attr.slidingWindow))
    }
}
