import Analysis
import ArgumentParser

/// --seed and --bootstrap of the condition sweeps (`ablate`, `kv-policy`): the seed of the random
/// control sets and of the bootstrap, and the number of bootstrap resamples.
struct SeedBootstrapOptions: ParsableArguments {
    @Option(help: "Seed of the control sets and the bootstrap.")
    var seed: UInt64 = 0

    @Option(help: "Bootstrap resamples.")
    var bootstrap = Statistics.defaultBootstrapResamples

    func validate() throws {
        guard bootstrap >= 1 else { throw ValidationError("--bootstrap must be >= 1") }
    }
}
