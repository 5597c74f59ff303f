import Foundation
import XCTest

/// What a `headlight` subprocess printed and how it exited.
struct HeadlightRun {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs the `headlight` binary for the CLI tests.
enum HeadlightProcess {
    /// Runs `headlight args` with stdout and stderr going to files (no pipe can fill up), stdin
    /// empty, in `currentDirectory` when given, with `environment` added to this process's.
    /// Without the binary the test is skipped (and fails under CI).
    static func run(
        _ args: [String], currentDirectory: URL? = nil,
        environment: [String: String]? = nil
    ) throws -> HeadlightRun {
        guard let binary = InspectTests.binary else {
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("CI: headlight binary not found") }
            throw XCTSkip("headlight binary not found: run `swift build --product headlight` or set HEADLIGHT_BIN")
        }
        let io = FileManager.default.temporaryDirectory.appendingPathComponent("headlight-io-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: io, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: io) }
        let outURL = io.appendingPathComponent("stdout"), errURL = io.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        if let currentDirectory { p.currentDirectoryURL = currentDirectory }
        if let environment { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        try p.run()
        p.waitUntilExit()
        try out.close()
        try err.close()
        return HeadlightRun(
            status: p.terminationStatus, stdout: try String(contentsOf: outURL, encoding: .utf8),
            stderr: try String(contentsOf: errURL, encoding: .utf8))
    }
}
