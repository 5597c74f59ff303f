import ArgumentParser
import Foundation
import Inference

/// One vocabulary for head ablation in `trace` and `ablate`: the same option names
/// (`--ablate-method`, `--ablate-phase`), values and defaults in both commands.
///
/// Defaults: `uniform` (Wu et al.'s rule: the head's query is zeroed after RoPE, so its attention
/// is uniform over the keys) and `both` (every position, prompt and generated). `ablate` used to
/// default to `--phase decode` (prefill untouched) and `trace` to `--ablate-method zero`; pass those
/// explicitly to keep the old behaviour. Old spellings still work with a warning on stderr:
/// `ablate --method M` and `--phase P`, and the phase value `all` (= `both`).
struct AblationVocabulary: ParsableArguments {
    static let defaultMethod = "uniform"
    static let defaultPhase = InterventionPhase.both

    @Option(
        name: .customLong("ablate-method"),
        help: ArgumentHelp(
            "How a head is ablated: uniform (query zeroed after RoPE: uniform attention; the default), zero "
                + "(output set to 0), mean (its mean output), bos (all attention on the first token), scale=F.",
            valueName: "method"))
    var method: String?

    @Option(
        name: .customLong("ablate-phase"),
        help: ArgumentHelp(
            "When ablations apply: both (prompt and generated tokens; the default), prefill or decode "
                + "(generated tokens only, prefill untouched).",
            valueName: "phase"))
    var phase: String?

    func validate() throws {
        if let m = method { try Self.checkMethod(m, option: "--ablate-method") }
        if let p = phase { try Self.checkPhase(p, option: "--ablate-phase") }
    }

    static func checkMethod(_ m: String, option: String) throws {
        guard (try? AblationMethod(parsing: m)) != nil else {
            throw ValidationError("\(option) must be uniform, zero, mean, bos or scale=F (got \(m))")
        }
    }

    static func checkPhase(_ p: String, option: String) throws {
        guard p == "all" || InterventionPhase(rawValue: p) != nil else {
            throw ValidationError("\(option) must be both, prefill or decode (got \(p))")
        }
    }

    /// The method and phase in effect. `oldMethod` / `oldPhase` are deprecated spellings of the
    /// same options (`ablate --method`, `--phase`); giving both spellings with different values is
    /// an error. Each deprecated spelling used is reported through `warn`.
    func resolve(
        oldMethod: (option: String, value: String?)? = nil, oldPhase: (option: String, value: String?)? = nil,
        warn: (String) -> Void = AblationVocabulary.warn
    ) throws -> (method: AblationMethod, phase: InterventionPhase) {
        var m = method, p = phase
        if let old = oldMethod, let v = old.value {
            warn("\(old.option) is deprecated; use --ablate-method (same values)")
            if let m, m != v {
                throw ValidationError("\(old.option) \(v) and --ablate-method \(m) disagree; give only --ablate-method")
            }
            m = v
        }
        if let old = oldPhase, let v = old.value {
            warn("\(old.option) is deprecated; use --ablate-phase (same values)")
            if let p, p != v {
                throw ValidationError("\(old.option) \(v) and --ablate-phase \(p) disagree; give only --ablate-phase")
            }
            p = v
        }
        if p == "all" {
            warn("--ablate-phase all is deprecated; it means both (every position)")
            p = "both"
        }
        let method = try AblationMethod(parsing: m ?? Self.defaultMethod)
        guard let phase = InterventionPhase(rawValue: p ?? Self.defaultPhase.rawValue) else {
            throw ValidationError("--ablate-phase must be both, prefill or decode (got \(p ?? ""))")
        }
        return (method, phase)
    }

    static func warn(_ message: String) {
        FileHandle.standardError.write(Data("headlight: warning: \(message)\n".utf8))
    }
}
