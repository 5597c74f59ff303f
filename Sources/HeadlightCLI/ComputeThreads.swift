import ArgumentParser
import Foundation
import Inference

/// What `--threads N` means in every command: OpenBLAS's threads and Headlight's kernel pool
/// together, so N processes on one machine given `--threads cores/N` do not oversubscribe it.
enum ComputeThreads {
    /// Sets OpenBLAS and the kernel pool to `n` threads (n >= 1).
    static func apply(_ n: Int) {
        BLASRuntime.setThreads(n)
        KernelConfig.threads = n
    }

    /// The default for a process that shares its machine with `OMPI_COMM_WORLD_LOCAL_SIZE` (or
    /// `MPI_LOCALNRANKS`, `SLURM_NTASKS_PER_NODE`) ranks: the cores divided among them; nil when
    /// the environment names no local rank count (then the libraries' own default stands).
    static func sharedDefault(_ env: [String: String] = ProcessInfo.processInfo.environment) -> Int? {
        for key in ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"] {
            if let v = env[key].flatMap(Int.init), v > 1 {
                return max(1, ProcessInfo.processInfo.activeProcessorCount / v)
            }
        }
        return nil
    }

    /// Applies HEADLIGHT_THREADS (the default `--threads` of every command) and checks the other
    /// kernel variables, HEADLIGHT_QDOT (float|int8|int16) and HEADLIGHT_KERNELS (a level name),
    /// so that a mistyped value is an error naming the variable instead of a silent default.
    static func applyEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws {
        if let raw = env["HEADLIGHT_THREADS"], !raw.isEmpty {
            guard let n = Int(raw), n >= 1 else {
                throw ValidationError("HEADLIGHT_THREADS must be a whole number >= 1 (got '\(raw)')")
            }
            apply(n)
        }
        if let raw = env["HEADLIGHT_QDOT"], !raw.isEmpty,
            KernelConfig.QuantizedProducts(rawValue: raw) == nil
        {
            let names = KernelConfig.QuantizedProducts.allCases.map(\.rawValue).joined(separator: ", ")
            throw ValidationError("HEADLIGHT_QDOT must be one of \(names) (got '\(raw)')")
        }
        if let raw = env["HEADLIGHT_KERNELS"], !raw.isEmpty, !KernelConfig.levelNames.contains(raw), raw != "scalar" {
            throw ValidationError(
                "HEADLIGHT_KERNELS must be one of \(KernelConfig.levelNames.joined(separator: ", ")) (got '\(raw)')")
        }
    }
}
