import Analysis
import Foundation

/// A finished `retrieval-heads` run file given to another command (`ablate --scores`,
/// `kv-policy --full-heads-from`), checked against the model that command runs.
enum RetrievalScoresInput {
    /// Reads `path` (named by `option` in errors) and checks its head grid and model file against
    /// `env`; `modelHint` says what to do when the model file differs.
    static func read(
        _ path: String, option: String, for env: LoadedModel, modelHint: String
    ) throws -> RetrievalRunFile.Contents {
        let contents: RetrievalRunFile.Contents
        do { contents = try RetrievalRunFile.read(path: path) } catch {
            throw CLIError(
                "cannot read \(option): \(HeadlightMain.describe(error, file: path))",
                hint: "pass a finished run file of `headlight retrieval-heads`")
        }
        let c = env.model.config
        guard contents.scores.layers == c.nLayers && contents.scores.heads == c.nHeads else {
            throw CLIError(
                "\(path) has \(contents.scores.layers) x \(contents.scores.heads) heads; the model has \(c.nLayers) "
                    + "x \(c.nHeads)",
                hint: "use the retrieval-heads run of the same model")
        }
        if let sha = contents.modelSHA256, sha != (try env.sha256()) {
            throw CLIError(
                "\(path) was computed with another model file (\(contents.modelFile ?? "unknown"))", hint: modelHint)
        }
        return contents
    }
}
