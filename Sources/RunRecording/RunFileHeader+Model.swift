import Foundation
import Inference
import TraceStore

extension RunFileHeader {
    /// The root header of a run file made with `model` (loaded from `file`): Headlight version,
    /// command, model file, size, SHA-256, name, architecture, the dimensions of
    /// `RunFile.dimensionNames` and the KV cache storage (`kv`: the run's sessions'; default
    /// `KVStorage.default`). `modelSHA256` is passed in because hashing a model takes a
    /// while and callers overlap it with loading (`SHA256.hashFile(at:)`).
    public init(
        model: Model, file: URL, modelSHA256: String, command: String, headlightVersion: String,
        commandLine: [String] = CommandLine.arguments, kv: KVStorage = .default
    ) {
        let size = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.intValue
        self.init(
            headlightVersion: headlightVersion, command: command, commandLine: commandLine,
            modelFile: file.lastPathComponent, modelSize: size, modelSHA256: modelSHA256,
            modelName: model.name, architecture: model.config.architecture,
            dimensions: Self.dimensions(of: model.config))
        layerAttention = model.config.layerAttentionKinds
        slidingWindow = model.config.layerWindow.max() ?? 0
        kvCache = kv.rawValue
    }

    /// A model's dimensions under their run-file names (`RunFile.dimensionNames`).
    public static func dimensions(of c: ModelConfig) -> [String: Int] {
        [
            "n_layers": c.nLayers, "n_heads": c.nHeads, "n_key_value_heads": c.nKVHeads,
            "d_model": c.dModel, "d_head": c.dHead, "d_mlp": c.dFF, "d_vocab": c.vocabSize,
            "n_ctx": c.contextLength
        ]
    }
}

/// Where a run ran: the machine and the OpenBLAS kernel. Recorded by the writers whose results
/// depend on BLAS numerics (root attributes `machine` and `blas_core`, docs/run-file.md); reports
/// read them back from the file (`RunFileProvenance`) instead of asking the running process.
public enum RunProvenance {
    /// This machine (`RunFile.machineDescription()`) with the loaded OpenBLAS kernel.
    public static func machineSummary() -> String {
        "\(RunFile.machineDescription()), OpenBLAS kernel \(BLASRuntime.corename)"
    }

    /// Writes the root attributes `machine` and `blas_core` of a run file being written.
    public static func writeMachineAttributes(into file: H5File) throws {
        try file.setAttribute("machine", RunFile.machineDescription())
        try file.setAttribute("blas_core", BLASRuntime.corename)
    }
}
