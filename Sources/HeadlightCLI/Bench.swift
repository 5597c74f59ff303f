import ArgumentParser
import CNative
import Foundation
import GGUF
import Inference

/// `headlight bench`: one timed measurement, for `bench/bench.py` (which runs it
/// side by side with llama.cpp and transformers). Prints one JSON line.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time one prefill or decode measurement (used by bench/bench.py).",
        discussion: """
            Prefill: runs N pseudo-random token ids (the same ids bench/bench.py gives every engine) \
            through a fresh session and reports tokens/s. Decode: prefills --context tokens, then \
            decodes N tokens greedily, one at a time, and reports decode tokens/s. Peak RSS is the \
            process's high-water mark (VmHWM), model loading included. Bandwidth: the rate at which \
            the kernel pool streams a buffer of N MiB from memory (GB/s, median of 5 passes), the \
            bound of decoding in bench/roofline.py; no model is loaded.
            """)

    @Option(name: [.short, .long], help: "GGUF model (default: $HEADLIGHT_MODEL or the cached default model).")
    var model: String?

    @Option(help: "Prefill this many tokens.")
    var prefill: Int?

    @Option(help: "Decode this many tokens after a prefill of --context tokens.")
    var decode: Int?

    @Option(help: "Measure streaming-read memory bandwidth over a buffer of this many MiB (no model).")
    var bandwidth: Int?

    @Option(help: "Context length before decoding.")
    var context: Int = 1024

    @Option(help: "Threads (OpenBLAS and the native kernels' pool).")
    var threads: Int = 2

    @Option(
        name: .customLong("decode-batch"),
        help: "Decode: run B sessions (each prefilled with the --context tokens) through batched steps (DecodeBatch).")
    var decodeBatch: Int = 1

    @Flag(help: "Add a per-kernel timing breakdown (seconds in sgemm, attention, ...) to the JSON.")
    var profile = false

    @Flag(help: "Use Float32 sgemv for decoding instead of the quantized kernels (comparison).")
    var noQuantized = false

    @Option(
        help: "Prefill's weights: quantized (kept in the GGUF mapping, decoded in panels) or f32 (copies made at load)."
    )
    var weights: String = KernelConfig.weights.rawValue

    @Flag(help: "Let OpenBLAS thread each sgemm itself instead of splitting it over the kernel pool (comparison).")
    var openblasThreading = false

    @Flag(help: "Use the materializing per-head attention for prefill instead of the blocked kernel (comparison).")
    var referenceAttention = false

    @Flag(help: "Print JSON (always on; kept for symmetry with other commands).")
    var json = false

    @OptionGroup var kvCache: KVCacheOption

    func validate() throws {
        guard [prefill, decode, bandwidth].compactMap({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --prefill N, --decode N or --bandwidth MiB")
        }
        if let n = bandwidth, n < 1 || n > 65536 {
            throw ValidationError("--bandwidth must be 1...65536 MiB (got \(n))")
        }
        if let n = prefill, n < 1 { throw ValidationError("--prefill must be at least 1 (got \(n))") }
        if let n = decode, n < 1 { throw ValidationError("--decode must be at least 1 (got \(n))") }
        guard context >= 1 else { throw ValidationError("--context must be at least 1 (got \(context))") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1 (got \(threads))") }
        guard (1...64).contains(decodeBatch) else { throw ValidationError("--decode-batch must be in 1...64") }
        guard WeightFormat(rawValue: weights) != nil else {
            throw ValidationError("--weights must be f32 or quantized (got \(weights))")
        }
    }

    func run() throws {
        let kv = try kvCache.apply()
        BLASRuntime.setThreads(threads)
        KernelConfig.threads = threads
        if noQuantized { KernelConfig.quantizedMaxRows = 0 }
        if referenceAttention { KernelConfig.blockedAttention = false }
        if openblasThreading { KernelConfig.poolSgemm = false }
        KernelConfig.weights = WeightFormat(rawValue: weights) ?? .quantized
        if let mib = bandwidth {
            let rate = hl_read_bandwidth(mib * 1_048_576, 5)
            guard rate > 0 else {
                throw CLIError("could not measure bandwidth over \(mib) MiB (no memory?)", hint: "lower --bandwidth")
            }
            let out: [String: Any] = [
                "engine": "headlight", "mode": "bandwidth", "mib": mib, "threads": threads, "gb_per_s": rate,
                "kernels": KernelConfig.level
            ]
            let data = try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let loadStart = Date()
        let m = try Model(gguf: ModelFile.open(model).gguf)
        let loadSeconds = Date().timeIntervalSince(loadStart)
        let vocab = m.config.vocabSize
        if let n = prefill { try CommandChecks.context(n, m, "--prefill \(n)", hint: "lower --prefill") }
        if let n = decode {
            try CommandChecks.context(
                context + n, m, "--context \(context) + --decode \(n)", hint: "lower --context or --decode")
        }
        var result: [String: Any] = [
            "engine": "headlight", "load_seconds": loadSeconds,
            "blas_kernel": BLASRuntime.corename,
            "kernels": KernelConfig.level, "threads": threads, "weights": weights, "kv_cache": kv.rawValue,
            "quantized_products": KernelConfig.quantizedProducts.rawValue
        ]
        if let n = prefill {
            let session = m.makeSession(maxContext: max(n, 1))
            let ids = Self.tokenIDs(n, vocab: vocab)
            Self.startProfile(profile)
            let t = Date(), c = Self.cpuSeconds()
            try session.prefill(tokens: ids)
            let dt = Date().timeIntervalSince(t)
            result["kv_cache_mb"] = Double(session.cache.byteCount) / 1_048_576
            result["cpu_seconds"] = Self.cpuSeconds() - c
            if profile { result["profile"] = Self.profileJSON(total: dt) }
            result.merge(["mode": "prefill", "tokens": n, "seconds": dt]) { $1 }
        } else if let n = decode, decodeBatch > 1 {
            // B sessions with the same context; tokens/s counts every session's tokens.
            let sessions = (0..<decodeBatch).map { _ in m.makeSession(maxContext: context + n + 1) }
            result["kv_cache_mb"] = Double(sessions[0].cache.byteCount) / 1_048_576 * Double(decodeBatch)
            let ids = Self.tokenIDs(context, vocab: vocab)
            var logits = try sessions.map { try $0.prefill(tokens: ids) }
            let stepper = DecodeBatch(model: m, maxBatch: decodeBatch)
            Self.startProfile(profile)
            let t = Date(), c = Self.cpuSeconds()
            for _ in 0..<n {
                logits = try stepper.step(sessions, tokens: logits.map { Int32(Sampler.argmax($0)) })
            }
            let dt = Date().timeIntervalSince(t)
            result["cpu_seconds"] = Self.cpuSeconds() - c
            if profile { result["profile"] = Self.profileJSON(total: dt) }
            result.merge([
                "mode": "decode", "tokens": n * decodeBatch, "context": context, "seconds": dt,
                "decode_batch": decodeBatch
            ]) { $1 }
        } else if let n = decode {
            let session = m.makeSession(maxContext: context + n + 1)
            result["kv_cache_mb"] = Double(session.cache.byteCount) / 1_048_576
            let ids = Self.tokenIDs(context, vocab: vocab)
            var logits = try session.prefill(tokens: ids)
            Self.startProfile(profile)
            let t = Date(), c = Self.cpuSeconds()
            for _ in 0..<n {
                let next = Int32(Sampler.argmax(logits))
                logits = try session.step(token: next)
            }
            let dt = Date().timeIntervalSince(t)
            result["cpu_seconds"] = Self.cpuSeconds() - c
            if profile { result["profile"] = Self.profileJSON(total: dt) }
            result.merge(["mode": "decode", "tokens": n, "context": context, "seconds": dt]) { $1 }
        }
        result["peak_rss_mb"] = Self.peakRSSMegabytes()
        let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    /// User + system CPU time of the process so far (all threads): with `seconds`, shows how much
    /// of the machine the run got (cpu_seconds / seconds <= threads).
    static func cpuSeconds() -> Double {
        var u = rusage()
        getrusage(0, &u) // RUSAGE_SELF
        return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) * 1e-6
            + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) * 1e-6
    }

    static func startProfile(_ on: Bool) {
        KernelProfile.reset()
        KernelProfile.enabled = on
    }

    /// Seconds per kernel category, "other" (the rest of the timed span: embedding, copies, the
    /// sampler, Swift glue), and GFLOP/s of the matrix products and attention.
    static func profileJSON(total: Double) -> [String: Any] {
        KernelProfile.enabled = false
        var out: [String: Any] = [:]
        var accounted = 0.0
        for e in KernelProfile.snapshot() where e.calls > 0 {
            var entry: [String: Any] = [
                "seconds": e.seconds, "cpu_seconds": e.cpuSeconds, "calls": e.calls,
                "share": e.seconds / total
            ]
            if e.flops > 0 {
                entry["gflops"] = e.flops / e.seconds / 1e9
                entry["gflops_per_cpu_second"] = e.flops / e.cpuSeconds / 1e9
            }
            out[e.category.name] = entry
            accounted += e.seconds
        }
        out["other"] = ["seconds": total - accounted, "share": (total - accounted) / total]
        return out
    }

    /// The same pseudo-random ids as bench/bench.py's `token_ids` (a 64-bit LCG), skipping the
    /// first 100 ids, where special tokens live.
    static func tokenIDs(_ n: Int, vocab: Int, seed: UInt64 = 1234) -> [Int32] {
        var x = seed
        var out: [Int32] = []
        out.reserveCapacity(n)
        let span = UInt64(max(vocab - 100, 1))
        for _ in 0..<n {
            x = x &* 6364136223846793005 &+ 1442695040888963407
            out.append(Int32(100 + (x >> 33) % span))
        }
        return out
    }

    /// VmHWM from /proc/self/status, in MiB (nan where unavailable).
    static func peakRSSMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return .nan }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kb = Double(parts[1]) { return kb / 1024 }
        }
        return .nan
    }
}
