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
}
