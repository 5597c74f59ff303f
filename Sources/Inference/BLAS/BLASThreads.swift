import CNative

extension BLASRuntime {
    /// Sets the number of threads OpenBLAS uses for each call (`threads` reads it back).
    public static func setThreads(_ n: Int) {
        hl_blas_set_num_threads(Int32(n))
    }
}
