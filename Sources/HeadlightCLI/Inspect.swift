import ArgumentParser
import Foundation
import GGUF
import Inference

/// `headlight inspect MODEL`: what a GGUF file holds.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a GGUF model's architecture, hyperparameters, tokenizer and tensor table.",
        discussion: """
            Reads and validates the file (as strictly as llama.cpp's gguf.cpp) without loading weights. \
            MODEL defaults to $HEADLIGHT_MODEL, then the cached default model.
            """)

    @Argument(help: "Path to a .gguf file (default: $HEADLIGHT_MODEL or the cached SmolLM2-135M-Instruct).")
    var model: String?

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Flag(help: "List every metadata key (long arrays abbreviated).")
    var metadata = false

    @Flag(name: .customLong("no-tensors"), help: "Leave out the per-tensor table.")
    var noTensors = false

    func run() throws {
        let summary = ModelSummary(file: try ModelFile.open(model).gguf)
        if json {
            let data = try JSONSerialization.data(
                withJSONObject: summary.json(
                    includeTensors: !noTensors,
                    includeMetadata: metadata),
                options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(summary.text(includeTensors: !noTensors, includeMetadata: metadata))
        }
    }
}

/// A summary of a GGUF file for `inspect`: read only from metadata and tensor infos.
struct ModelSummary {
    let file: GGUFFile

    var arch: String { (try? file.architecture()) ?? "unknown" }

    /// The `{arch}.*` hyperparameters, with short names.
    var hyperparameters: [(String, GGUFValue)] {
        let prefix = arch + "."
        let wanted = [
            "block_count", "context_length", "embedding_length", "feed_forward_length",
            "attention.head_count", "attention.head_count_kv", "attention.key_length",
            "attention.value_length", "attention.layer_norm_rms_epsilon", "rope.freq_base",
            "rope.dimension_count", "rope.scaling.type", "rope.scaling.factor", "vocab_size",
            "attention.sliding_window", "attn_logit_softcapping", "final_logit_softcapping"
        ]
        return wanted.compactMap { k in file.metadata[prefix + k].map { (k, $0) } }
    }

    var vocabSize: Int? { file.metadata["tokenizer.ggml.tokens"]?.arrayValue?.count }

    /// The decoded config of a supported architecture (metadata only, no weights), else the error.
    var config: Result<ModelConfig, Error> {
        do { return .success(try ModelRegistry.config(of: file)) } catch { return .failure(error) }
    }

    /// Per-layer attention as Headlight runs it: "full" / "sliding" and the window (0: none).
    var layerAttention: (kinds: [String], window: Int)? {
        guard case .success(let c) = config else { return nil }
        return (c.layerAttentionKinds, c.layerWindow.max() ?? 0)
    }

    var tokenizer: [(String, String)] {
        var rows: [(String, String)] = []
        let m = file.metadata
        if let v = m["tokenizer.ggml.model"]?.stringValue { rows.append(("model", v)) }
        if let v = m["tokenizer.ggml.pre"]?.stringValue { rows.append(("pre-tokenizer", v)) }
        if let n = vocabSize { rows.append(("tokens", "\(n)")) }
        if let n = m["tokenizer.ggml.merges"]?.arrayValue?.count { rows.append(("merges", "\(n)")) }
        let tokens = m["tokenizer.ggml.tokens"]?.arrayValue
        for (label, key) in [
            ("bos", "bos_token_id"), ("eos", "eos_token_id"), ("unk", "unknown_token_id"),
            ("pad", "padding_token_id"), ("eot", "eot_token_id")
        ] {
            if let id = m["tokenizer.ggml." + key]?.intValue {
                let text = tokens.flatMap { id >= 0 && id < $0.count ? $0[id].stringValue : nil } ?? "?"
                rows.append((label, "\(id) \(text.debugDescription)"))
            }
        }
        if let b = m["tokenizer.ggml.add_bos_token"]?.boolValue { rows.append(("add bos", "\(b)")) }
        if let b = m["tokenizer.ggml.add_eos_token"]?.boolValue { rows.append(("add eos", "\(b)")) }
        if let t = m["tokenizer.chat_template"]?.stringValue { rows.append(("chat template", "\(t.utf8.count) bytes")) }
        return rows
    }

    /// Tensor count and bytes per GGML type, largest first.
    var typeTotals: [(type: String, count: Int, bytes: Int)] {
        var totals: [String: (Int, Int)] = [:]
        for t in file.tensors {
            let cur = totals[t.type.name] ?? (0, 0)
            totals[t.type.name] = (cur.0 + 1, cur.1 + t.byteCount)
        }
        return totals.map { ($0.key, $0.value.0, $0.value.1) }.sorted { $0.bytes > $1.bytes }
    }

    func text(includeTensors: Bool, includeMetadata: Bool) -> String {
        var out: [String] = []
        let m = file.metadata
        out.append("file: \(file.url.path)")
        out.append(
            "  size \(formatBytes(file.fileSize)), GGUF v\(file.version), alignment \(file.alignment), "
                + "\(file.metadata.count) metadata keys, \(file.tensors.count) tensors")
        if let name = m["general.name"]?.stringValue { out.append("  name: \(name)") }
        if let ft = m["general.file_type"]?.intValue { out.append("  file type: \(ft)") }
        out.append("architecture: \(arch)")
        for (k, v) in hyperparameters {
            out.append("  \(k.padding(toLength: 34, withPad: " ", startingAt: 0)) \(v.summary)")
        }
        if let n = vocabSize {
            out.append("  \("vocab size (tokens)".padding(toLength: 34, withPad: " ", startingAt: 0)) \(n)")
        }
        switch config {
        case .success(let c):
            let full: [Int] = c.layerWindow.indices.filter { c.layerWindow[$0] == 0 }
            let window: Int = c.layerWindow.max() ?? 0
            let fullList: String = full.map(String.init).joined(separator: ", ")
            var text = "full causal on all \(c.nLayers) layers"
            if c.hasSlidingWindow {
                text = "\(c.nLayers - full.count) sliding (window \(window)), \(full.count) full"
                if !full.isEmpty { text += ": layers " + fullList }
            }
            out.append("  \("layer attention".padding(toLength: 34, withPad: " ", startingAt: 0)) \(text)")
        case .failure(let e):
            out.append("  cannot run: \((e as? LocalizedError)?.errorDescription ?? "\(e)")")
        }
        out.append("tokenizer:")
        for (k, v) in tokenizer { out.append("  \(k.padding(toLength: 14, withPad: " ", startingAt: 0)) \(v)") }
        out.append("tensors by type:")
        for t in typeTotals {
            out.append(
                "  \(t.type.padding(toLength: 6, withPad: " ", startingAt: 0)) \(String(t.count).leftPad(4)) tensors  "
                    + "\(formatBytes(t.bytes).leftPad(10))"
            )
        }
        out.append(
            "  total  \(String(file.tensors.count).leftPad(4)) tensors  "
                + "\(formatBytes(file.totalTensorBytes).leftPad(10))  \(file.totalElements) parameters"
        )
        if includeMetadata {
            out.append("metadata:")
            for k in file.metadataKeys { out.append("  \(k) = \(file.metadata[k]!.summary)") }
        }
        if includeTensors {
            out.append("tensor table (name, shape outermost-first, type, bytes):")
            let width = min(max(file.tensors.map { $0.name.count }.max() ?? 0, 10), 48)
            for t in file.tensors {
                let shape = "[" + t.shape.map(String.init).joined(separator: ", ") + "]"
                out.append(
                    "  \(t.name.padding(toLength: width, withPad: " ", startingAt: 0))  "
                        + "\(shape.padding(toLength: 14, withPad: " ", startingAt: 0)) "
                        + "\(t.type.name.padding(toLength: 6, withPad: " ", startingAt: 0)) "
                        + "\(String(t.byteCount).leftPad(10))"
                )
            }
        }
        return out.joined(separator: "\n")
    }

    func json(includeTensors: Bool, includeMetadata: Bool) -> [String: Any] {
        var hp: [String: Any] = [:]
        for (k, v) in hyperparameters { hp[k] = jsonValue(v) }
        if let n = vocabSize { hp["vocab_size"] = n }
        var obj: [String: Any] = [
            "file": file.url.path,
            "file_size": file.fileSize,
            "gguf_version": Int(file.version),
            "alignment": file.alignment,
            "architecture": arch,
            "hyperparameters": hp,
            "tokenizer": Dictionary(uniqueKeysWithValues: tokenizer.map { ($0.0, $0.1) }),
            "tensor_count": file.tensors.count,
            "tensor_bytes": file.totalTensorBytes,
            "parameters": file.totalElements,
            "types": Dictionary(
                uniqueKeysWithValues: typeTotals.map { ($0.type, ["count": $0.count, "bytes": $0.bytes]) })
        ]
        if let name = file.metadata["general.name"]?.stringValue { obj["name"] = name }
        if let la = layerAttention {
            obj["layer_attention"] = la.kinds
            obj["sliding_window"] = la.window
        }
        if case .failure(let e) = config {
            obj["unsupported"] = (e as? LocalizedError)?.errorDescription ?? "\(e)"
        }
        if includeTensors {
            obj["tensors"] = file.tensors.map {
                ["name": $0.name, "shape": $0.shape, "type": $0.type.name, "bytes": $0.byteCount, "offset": $0.offset]
                    as [String: Any]
            }
        }
        if includeMetadata {
            obj["metadata"] = Dictionary(
                uniqueKeysWithValues: file.metadataKeys.map { ($0, jsonValue(file.metadata[$0]!, abbreviate: true)) })
        }
        return obj
    }

    private func jsonValue(_ v: GGUFValue, abbreviate: Bool = false) -> Any {
        switch v {
        case .string(let s): return s
        case .bool(let b): return b
        case .float32(let f): return Double(f)
        case .float64(let d): return d
        case .array(let t, let a):
            if abbreviate && a.count > 16 { return "[\(t) x \(a.count)]" }
            return a.map { jsonValue($0) }
        default: return v.intValue ?? v.summary
        }
    }
}

func formatBytes(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(n)
    var i = 0
    while value >= 1024 && i < units.count - 1 {
        value /= 1024
        i += 1
    }
    return i == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[i])
}

extension String {
    func leftPad(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
