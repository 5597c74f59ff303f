import Foundation
import Notebooks
import XCTest

/// The notebook launchers: stdout and stderr collected whole, exit codes, and the echo of
/// stderr lines (latest state of a \r-redrawn bar, blank lines dropped, "done" at the end).
final class ProgressEchoLauncherTests: XCTestCase {
    final class Lines: @unchecked Sendable {
        let lock = NSLock()
        var text = ""
        func add(_ s: String) {
            lock.lock()
            text += s
            lock.unlock()
        }
    }

    let script =
        "printf 'bar 1/3\\rbar 3/3\\n\\n' >&2; echo out; printf 'note: %s' \"$HEADLIGHT_PROGRESS_INTERVAL\" >&2; exit 3"

    func testEchoesStderrLinesAndCollectsEverything() throws {
        let lines = Lines()
        let r = try ProgressEchoLauncher(indent: "> ", sink: { lines.add($0) })
            .run(
                executable: "/bin/sh", arguments: ["-c", script],
                workingDirectory: FileManager.default.temporaryDirectory, environment: ["PATH": "/usr/bin:/bin"])
        XCTAssertEqual(r.exitCode, 3)
        XCTAssertEqual(String(decoding: r.stdout, as: UTF8.self), "out\n")
        XCTAssertEqual(String(decoding: r.stderr, as: UTF8.self), "bar 1/3\rbar 3/3\n\nnote: 15")
        XCTAssertEqual(lines.text, "\n> bar 3/3\n> note: 15\n> done")
    }

    func testPlainLauncherCollectsWithoutEcho() throws {
        let r = try FoundationProcessLauncher()
            .run(
                executable: "/bin/sh", arguments: ["-c", script],
                workingDirectory: FileManager.default.temporaryDirectory, environment: ["PATH": "/usr/bin:/bin"])
        XCTAssertEqual(r.exitCode, 3)
        XCTAssertEqual(String(decoding: r.stdout, as: UTF8.self), "out\n")
        XCTAssertEqual(String(decoding: r.stderr, as: UTF8.self), "bar 1/3\rbar 3/3\n\nnote: ")
    }
}
