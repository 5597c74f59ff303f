import CNative
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Optional wall-clock accounting of the forward pass's kernels (`headlight bench --profile`).
/// Off by default; when on, every `Kernels` call adds its duration (and, for matrix products,
/// its floating-point operations) to a category. Not thread-safe: profile one session at a time.
public enum KernelProfile {
    public enum Category: Int, CaseIterable, Sendable {
        /// Float32 linear layers through OpenBLAS (sgemm, or sgemv for one row).
        case sgemm
        /// Linear layers through the quantized matrix-vector kernel (decoding, short prompts).
        case quantizedLinear
        /// Causal attention (QKᵀ, softmax, PV), whatever the path.
        case attention
        case norm
        case rope
        /// SwiGLU, residual adds, biases.
        case elementwise

        public var name: String {
            switch self {
            case .sgemm: return "sgemm"
            case .quantizedLinear: return "quantized_linear"
            case .attention: return "attention"
            case .norm: return "rmsnorm"
            case .rope: return "rope"
            case .elementwise: return "elementwise"
            }
        }
    }

    public struct Entry: Sendable {
        public var category: Category
        public var seconds: Double
        /// Process CPU time (all threads) during the category's calls: on a busy machine,
        /// flops / cpuSeconds still shows the kernels' efficiency per core.
        public var cpuSeconds: Double
        public var calls: Int
        /// Floating-point operations counted for the category (matrix products and attention).
        public var flops: Double
    }

    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) private static let nanos = UnsafeMutablePointer<UInt64>.allocate(capacity: 8)
    nonisolated(unsafe) private static let cpuNanos = UnsafeMutablePointer<UInt64>.allocate(capacity: 8)
    nonisolated(unsafe) private static let counts = UnsafeMutablePointer<Int>.allocate(capacity: 8)
    nonisolated(unsafe) private static let flopCounts = UnsafeMutablePointer<Double>.allocate(capacity: 8)
    nonisolated(unsafe) private static var initialized = false

    public static func reset() {
        nanos.initialize(repeating: 0, count: 8)
        cpuNanos.initialize(repeating: 0, count: 8)
        counts.initialize(repeating: 0, count: 8)
        flopCounts.initialize(repeating: 0, count: 8)
        initialized = true
    }

    public static func snapshot() -> [Entry] {
        if !initialized { reset() }
        return Category.allCases.map {
            Entry(
                category: $0, seconds: Double(nanos[$0.rawValue]) * 1e-9,
                cpuSeconds: Double(cpuNanos[$0.rawValue]) * 1e-9, calls: counts[$0.rawValue],
                flops: flopCounts[$0.rawValue])
        }
    }

    @inline(__always)
    static func now(_ clock: clockid_t = CLOCK_MONOTONIC) -> UInt64 {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Start timestamps (wall, process CPU), or zeros when profiling is off.
    @inline(__always)
    static func start() -> (wall: UInt64, cpu: UInt64) {
        enabled ? (now(), now(CLOCK_PROCESS_CPUTIME_ID)) : (0, 0)
    }

    @inline(__always)
    static func stop(_ c: Category, _ t0: (wall: UInt64, cpu: UInt64), flops: Double = 0) {
        guard t0.wall != 0 else { return }
        if !initialized { reset() }
        nanos[c.rawValue] &+= now() &- t0.wall
        cpuNanos[c.rawValue] &+= now(CLOCK_PROCESS_CPUTIME_ID) &- t0.cpu
        counts[c.rawValue] += 1
        flopCounts[c.rawValue] += flops
    }
}

/// The native kernels' configuration (Sources/CNative/hl_kernels.c).
public enum KernelConfig {
    /// "avx512-vnni", "avx512", "avx2-vnni", "avx2", "neon-dotprod", "neon" or "generic": the
    /// instruction set the kernels run with (HEADLIGHT_KERNELS lowers it).
    public static var level: String { String(cString: hl_kernels_level_name(hl_kernels_level())) }
    /// Every level's name (HEADLIGHT_KERNELS accepts these; a level the CPU lacks falls back to the
    /// best one below it).
    public static var levelNames: [String] {
        (0..<Int32(HL_KERNELS_LEVELS)).map { String(cString: hl_kernels_level_name($0)) }
    }
    /// The active kernel set in one line (level, arithmetic of the quantized products, threads),
    /// for `headlight doctor`.
    public static var summary: String { String(cString: hl_kernels_summary()) }
    /// Arithmetic of the quantized products (HEADLIGHT_QDOT; see hl_qmatmul).
    public enum QuantizedProducts: String, CaseIterable, Sendable {
        /// Float32 activations times the exactly decoded weights: the reference.
        case float
        /// Activations quantized to 8 bits per 32-value block, integer dot products (llama.cpp's).
        case int8
        /// Activations quantized to 16 bits per 32-value block, as two int8 dot products.
        case int16

        var code: Int32 {
            switch self {
            case .float: Int32(HL_QDOT_FLOAT)
            case .int8: Int32(HL_QDOT_INT8)
            case .int16: Int32(HL_QDOT_INT16)
            }
        }
    }
    /// The active arithmetic of the quantized products.
    public static var quantizedProducts: QuantizedProducts {
        get { QuantizedProducts.allCases.first { $0.code == hl_qdot_mode() } ?? .float }
        set { _ = hl_qdot_set_mode(newValue.code) }
    }
    /// Threads of the kernel pool (the caller included).
    public static var threads: Int {
        get { Int(hl_kernels_threads()) }
        set { hl_kernels_set_threads(Int32(newValue)) }
    }
}

extension KernelConfig {
    /// See `Kernels.quantizedMaxRows` (0 disables the quantized kernels).
    public static var quantizedMaxRows: Int {
        get { Kernels.quantizedMaxRows }
        set { Kernels.quantizedMaxRows = newValue }
    }
    /// See `Kernels.poolSgemm`.
    public static var poolSgemm: Bool {
        get { Kernels.poolSgemm }
        set { Kernels.poolSgemm = newValue }
    }
    /// See `Kernels.weights` (set before loading a model: .f32 makes the Float32 copies at load).
    public static var weights: WeightFormat {
        get { Kernels.weights }
        set { Kernels.weights = newValue }
    }
    /// See `Kernels.panelRows`.
    public static var panelRows: Int {
        get { Kernels.panelRows }
        set { Kernels.panelRows = newValue }
    }
    /// See `Kernels.blockedAttention`.
    public static var blockedAttention: Bool {
        get { Kernels.blockedAttention }
        set { Kernels.blockedAttention = newValue }
    }
}
