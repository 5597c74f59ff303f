import Foundation
import XCTest

@testable import HeadlightCLI

/// Notebook executables and nesting (issue 17 item 6): `--headlight` accepts only a binary whose
/// `--version` identifies Headlight, so a cell can never become a shell command; and a cell
/// cannot run a notebook (a notebook that runs itself used to recurse until the process limit).
/// None of these tests needs the model.
final class NotebookSafetyCLITests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("hl-nb-safety-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    private func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// Writes a notebook whose only cell is `cell`.
    private func notebook(_ name: String, cell: String) throws {
        let text = "# Notebook\n\n```headlight\n\(cell)\n```\n"
        try Data(text.utf8).write(to: dir.appendingPathComponent(name))
    }

    /// An executable shell script at `name` that runs `version` for `--version` and otherwise
    /// executes its arguments (what a cell would then do).
    private func impostor(_ name: String, version: String) throws -> String {
        try script(name, "if [ \"$1\" = --version ]; then \(version); fi; exec \"$@\"")
    }

    /// An executable shell script at `name`.
    private func script(_ name: String, _ body: String) throws -> String {
        let p = path(name)
        try Data(("#!/bin/sh\n" + body + "\n").utf8).write(to: URL(fileURLWithPath: p))
        XCTAssertEqual(chmod(p, 0o755), 0)
        return p
    }

    private var pwned: Bool { FileManager.default.fileExists(atPath: path("PWNED")) }

    /// The report of the issue: /usr/bin/env's `--version` succeeds, and with it as the binary
    /// the cell `sh -c "id > PWNED"` ran a shell. Now it is refused before any cell runs.
    func testEnvAsHeadlightIsRefusedAndRunsNothing() throws {
        try notebook("nb.md", cell: "sh -c \"id > PWNED\"")
        let r = try HeadlightProcess.run(
            ["notebook", "run", "nb.md", "--headlight", "/usr/bin/env", "--output-dir", "out"],
            currentDirectory: dir)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("--headlight /usr/bin/env is not a Headlight binary"), r.stderr)
        XCTAssertTrue(r.stderr.contains("env (GNU coreutils)"), "names what it printed: \(r.stderr)")
        XCTAssertFalse(pwned, "the cell ran a shell")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("out/index.html")))
    }

    /// Programs that answer `--version` almost like Headlight are refused too: a bare version
    /// (what Headlight itself printed before), the right line followed by more, a failing or
    /// hanging `--version`, a directory, a missing file.
    func testLookalikesAreRefused() throws {
        try notebook("nb.md", cell: "sh -c \"id > PWNED\"")
        let candidates: [(String, String)] = [
            (try impostor("bare.sh", version: "echo 0.1.0; exit 0"), "printed \"0.1.0\""),
            (try impostor("extra.sh", version: "echo 'headlight 0.1.0'; echo more; exit 0"), "not a Headlight binary"),
            (try impostor("name.sh", version: "echo 'Headlight 0.1.0'; exit 0"), "not a Headlight binary"),
            (try impostor("fails.sh", version: "echo 'headlight 0.1.0'; exit 3"), "failed with exit code 3"),
            (try impostor("silent.sh", version: "exit 0"), "printed nothing"),
            (dir.path, "is not an executable file"),
            (path("missing"), "is not an executable file")
        ]
        for (binary, message) in candidates {
            let r = try HeadlightProcess.run(
                ["notebook", "run", "nb.md", "--headlight", binary, "--output-dir", "out"], currentDirectory: dir)
            XCTAssertEqual(r.status, 1, "\(binary): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(message), "\(binary): \(r.stderr)")
            XCTAssertFalse(pwned, "\(binary) ran the cell")
        }
    }

    /// A `--version` that never ends is killed after the timeout and refused.
    func testHangingVersionTimesOut() throws {
        let hang = try script("hang.sh", "sleep 60")
        let start = Date()
        XCTAssertThrowsError(try NotebookCommand.versionOutput(of: hang, timeout: 0.5)) { error in
            XCTAssertTrue("\(error)".contains("did not finish within"), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
    }

    /// The real binary is accepted (its cells run), and the version it reports is this build's.
    func testHeadlightBinaryIsAccepted() throws {
        let binary = try XCTUnwrap(InspectTests.binary, "headlight binary not found").path
        XCTAssertEqual(
            NotebookCommand.headlightVersion(fromVersionOutput: try NotebookCommand.versionOutput(of: binary)),
            Headlight.version)
        try FileManager.default.createDirectory(
            at: dir.appendingPathComponent("nbs"), withIntermediateDirectories: true)
        try notebook("nb.md", cell: "notebook list --dir nbs")
        let r = try HeadlightProcess.run(
            ["notebook", "run", "nb.md", "--headlight", binary, "--output-dir", "out"], currentDirectory: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path("out/index.html")))
    }

    func testVersionLineParsing() {
        XCTAssertEqual(
            NotebookCommand.headlightVersion(fromVersionOutput: Headlight.versionLine + "\n"), Headlight.version)
        XCTAssertEqual(NotebookCommand.headlightVersion(fromVersionOutput: "headlight 0.1.0"), "0.1.0")
        XCTAssertEqual(NotebookCommand.headlightVersion(fromVersionOutput: "headlight 12.0.3-rc.1\n"), "12.0.3-rc.1")
        XCTAssertEqual(
            NotebookCommand.headlightVersion(fromVersionOutput: "headlight 1.2.3+git.abc\n"), "1.2.3+git.abc")
        for bad in [
            "", "\n", "0.1.0\n", "headlight\n", "headlight 0.1\n", "headlight 0.1.0.4\n", "headlight v0.1.0\n",
            "Headlight 0.1.0\n", " headlight 0.1.0\n", "headlight  0.1.0\n", "headlight 0.1.0 \n",
            "headlight 0.1.0\n\n", "headlight 0.1.0\nenv\n", "headlight 0.1.0-\n", "headlight 0.1.0-a b\n",
            "headlight 0.1.0;id\n", "headlight ٠.١.٠\n",
            "env (GNU coreutils) 9.1\nCopyright (C) 2022 Free Software Foundation, Inc.\n"
        ] {
            XCTAssertNil(NotebookCommand.headlightVersion(fromVersionOutput: bad), bad.debugDescription)
        }
    }

    /// A notebook whose cell runs the same notebook: the inner run is refused at once (exit 1),
    /// so the outer run fails at that cell instead of recursing.
    func testNotebookRunningItselfIsRefused() throws {
        try notebook("self.md", cell: "notebook run self.md --output-dir inner")
        let start = Date()
        let r = try HeadlightProcess.run(["notebook", "run", "self.md", "--output-dir", "out"], currentDirectory: dir)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("cell 1 (self.md:4) failed with exit code 1"), r.stderr)
        XCTAssertTrue(r.stderr.contains("notebook run refused inside a notebook cell (self.md:4)"), r.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(start), 60)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("inner")), "the nested run started")
    }

    /// Started from a cell's environment, `notebook run` is refused before anything else runs,
    /// even `--headlight PATH --version`.
    func testNestedEnvironmentIsRefusedUpFront() throws {
        try notebook("nb.md", cell: "notebook list")
        let probe = try script("probe.sh", "touch PWNED; echo 'headlight 0.1.0'")
        let r = try HeadlightProcess.run(
            ["notebook", "run", "nb.md", "--headlight", probe], currentDirectory: dir,
            environment: ["HEADLIGHT_NOTEBOOK_CELL": "outer.md:7"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("refused inside a notebook cell (outer.md:7)"), r.stderr)
        XCTAssertFalse(pwned)
    }
}
