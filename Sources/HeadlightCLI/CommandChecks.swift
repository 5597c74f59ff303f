import Analysis
import ArgumentParser
import Foundation
import Inference
import TraceStore

/// Argument checks shared by the commands, each turning a problem into a `ValidationError`
/// (usage error, exit code 2) that names the option: output paths (called from `validate()`,
/// before the model is loaded), lengths against the model's context (called as soon as the
/// length is known, before any session exists) and text that cannot be stored.
enum CommandChecks {
    /// A run file's output path (`RunFileWriter.checkOutputPath`): not empty, not a directory,
    /// its directory exists and is writable.
    static func outputFile(_ path: String, option: String = "-o") throws {
        do { try RunFileWriter.checkOutputPath(path) } catch let e as TraceStoreError {
            throw ValidationError("\(option): \(e.errorDescription ?? "\(e)")")
        }
    }

    /// A report directory: not empty, not an existing file, and either an existing writable
    /// directory or creatable (its nearest existing ancestor is a writable directory; the
    /// report creates the missing levels).
    static func outputDirectory(_ path: String, option: String = "-o") throws {
        guard !path.isEmpty else { throw ValidationError("\(option): the output directory is empty") }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
            guard isDir.boolValue else {
                throw ValidationError("\(option): \"\(path)\" is a file, not a directory")
            }
            guard FileManager.default.isWritableFile(atPath: path) else {
                throw ValidationError("\(option): the directory \"\(path)\" is not writable")
            }
            return
        }
        // Nearest existing ancestor (plain string steps: NSString.deletingLastPathComponent
        // traps on some one-character paths in this Foundation).
        var components = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let absolute = path.hasPrefix("/")
        while !components.isEmpty {
            components.removeLast()
            let p = (absolute ? "/" : "") + components.joined(separator: "/")
            let candidate = p.isEmpty ? "." : p
            guard FileManager.default.fileExists(atPath: candidate, isDirectory: &isDir) else { continue }
            guard isDir.boolValue else {
                throw ValidationError("\(option): cannot create \"\(path)\": \(candidate) is not a directory")
            }
            guard FileManager.default.isWritableFile(atPath: candidate) else {
                throw ValidationError("\(option): cannot create \"\(path)\": \(candidate) is not writable")
            }
            return
        }
    }

    /// `needed` positions against the model's context length, as a usage error naming `what`.
    static func context(_ needed: Int, _ model: Model, _ what: @autoclosure () -> String, hint: String? = nil) throws {
        do { try model.checkContext(needed, for: what()) } catch let e as ContextLengthError {
            throw ValidationError((e.errorDescription ?? "\(e)") + (hint.map { "; \($0)" } ?? ""))
        }
    }

    /// Text that will be tokenized and stored must not contain NUL (HDF5 strings end at NUL, and
    /// a C-string tokenizer would cut there): rejected naming the option or file and the offset.
    static func noNUL(_ text: String, source: String) throws {
        guard let i = text.utf8.firstIndex(of: 0) else { return }
        let offset = text.utf8.distance(from: text.utf8.startIndex, to: i)
        throw ValidationError("\(source) contains a NUL byte (at byte \(offset)); prompts must be text")
    }

    /// "10GB", "10G", "500 MiB", "1.5T", "1000000" (bytes) -> bytes; decimal units (k = 1000)
    /// and binary ones (KiB = 1024), case-insensitive; nil when not a non-negative size.
    static func parseByteSize(_ text: String) -> Int? {
        let s = text.trimmingCharacters(in: .whitespaces).lowercased()
        let digits = s.prefix { $0.isNumber || $0 == "." }
        guard !digits.isEmpty, let v = Double(digits), v >= 0 else { return nil }
        let unit = s.dropFirst(digits.count).trimmingCharacters(in: .whitespaces)
        let scale: Double
        switch unit {
        case "", "b": scale = 1
        case "k", "kb": scale = 1e3
        case "m", "mb": scale = 1e6
        case "g", "gb": scale = 1e9
        case "t", "tb": scale = 1e12
        case "kib": scale = 1024
        case "mib": scale = 1024 * 1024
        case "gib": scale = 1024 * 1024 * 1024
        case "tib": scale = 1024 * 1024 * 1024 * 1024
        default: return nil
        }
        let bytes = v * scale
        guard bytes.isFinite, bytes < Double(Int.max) else { return nil }
        return Int(bytes)
    }

    /// "35.2 GB", "812.0 MB", "4.0 kB", "512 B".
    static func formatBytes(_ n: Int) -> String {
        let x = Double(n)
        if x >= 1e9 { return String(format: "%.1f GB", x / 1e9) }
        if x >= 1e6 { return String(format: "%.1f MB", x / 1e6) }
        if x >= 1e3 { return String(format: "%.1f kB", x / 1e3) }
        return "\(n) B"
    }

    /// Bytes available to this user on the file system holding `path` (its directory). A
    /// file-size limit (ulimit -f) is not counted: the writer turns hitting it into a clean
    /// disk-full error (issue 17 item 1), and its tests rely on reaching that path.
    static func freeBytes(near path: String) -> Int? {
        let dir = RunFileWriter.parentDirectory(of: path)
        var vfs = statvfs()
        guard statvfs(dir.isEmpty ? "." : dir, &vfs) == 0 else { return nil }
        let (p, o) = Int(vfs.f_bavail).multipliedReportingOverflow(by: Int(vfs.f_frsize))
        return o ? Int.max : p
    }
}

extension CommandChecks {
    /// The longest NIAH trial prompt (as built: template, needle and question included) plus
    /// the decoding budget against the model's context, naming --lengths and --max-new-tokens.
    static func niahTrials(_ trials: [NIAHTrial], maxNewTokens: Int, model: Model) throws {
        guard let longest = trials.max(by: { $0.promptTokens.count < $1.promptTokens.count }) else { return }
        let p = longest.promptTokens.count
        let ctx = model.config.contextLength
        let room = ctx - maxNewTokens - 1 + (longest.cell.length - p)
        try context(
            p + maxNewTokens + 1, model,
            "length \(longest.cell.length) (--lengths; a prompt of \(p) tokens once built) + --max-new-tokens "
                + "\(maxNewTokens) + 1",
            hint: room > 0 ? "use lengths up to about \(room)" : "lower --max-new-tokens")
    }
}
