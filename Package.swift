// swift-tools-version:6.0
// Headlight — a native workbench for mechanistic interpretability of GGUF language models.
import PackageDescription

// Hot numeric code is compiled with bounds checks off in release builds only.
let fast: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))]

let package = Package(
    name: "Headlight",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "headlight", targets: ["headlight"]),
        .library(
            name: "Headlight",
            targets: ["GGUF", "Inference", "TraceStore", "RunRecording", "Analysis", "Reports", "Notebooks"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
    ],
    targets: [
        // System libraries, located through pkg-config (Debian: libopenblas-dev, libhdf5-dev, libgraphviz-dev).
        .systemLibrary(
            name: "COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CHDF5", pkgConfig: "hdf5",
            providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(
            name: "CGraphviz", pkgConfig: "libgvc",
            providers: [.apt(["libgraphviz-dev"])]),
        // Small C shims over the three libraries: macros Swift cannot import, status codes, CPU probing.
        .target(
            name: "CNative", dependencies: ["COpenBLAS", "CHDF5", "CGraphviz"],
            cSettings: [.unsafeFlags(["-O2"])],
            linkerSettings: [.linkedLibrary("z")]),
        .target(name: "GGUF", swiftSettings: fast),
        .target(name: "Inference", dependencies: ["GGUF", "CNative"], swiftSettings: fast),
        .target(name: "TraceStore", dependencies: ["CNative"], swiftSettings: fast),
        // The bridge from hooks to run files: streams captures (CaptureSink) into HDF5 and builds the
        // root header from a loaded model. Separate so TraceStore stays free of the model and
        // Inference free of HDF5.
        .target(name: "RunRecording", dependencies: ["Inference", "TraceStore"]),
        .target(name: "Analysis", dependencies: ["Inference", "TraceStore"], swiftSettings: fast),
        // Charts, report documents and the figures drawn from run files (no model code).
        .target(name: "Reports", dependencies: ["Analysis", "TraceStore", "RunRecording", "CNative"]),
        // Literate CLI notebooks: parsing, the cell runner (subprocesses), cache and rendering.
        .target(name: "Notebooks", dependencies: ["Reports", "TraceStore"]),
        .target(
            name: "HeadlightCLI",
            dependencies: [
                "GGUF", "Inference", "TraceStore", "RunRecording", "Analysis", "Reports", "Notebooks",
                .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]),
        .executableTarget(name: "headlight", dependencies: ["HeadlightCLI", "Inference"]),
        .testTarget(name: "GGUFTests", dependencies: ["GGUF"]),
        .testTarget(name: "InferenceTests", dependencies: ["Inference", "GGUF", "CNative"]),
        .testTarget(name: "TraceStoreTests", dependencies: ["TraceStore"]),
        .testTarget(name: "RunRecordingTests", dependencies: ["RunRecording", "Inference", "TraceStore"]),
        // Notebook tests live in ReportsTests/Notebooks: they share its chart and XML test helpers.
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "Notebooks"]),
        .testTarget(name: "AnalysisTests", dependencies: ["Analysis", "Inference", "GGUF"]),
        .testTarget(name: "CLITests", dependencies: ["HeadlightCLI", "RunRecording"])
    ],
    swiftLanguageModes: [.v5]
)
