import XCTest
@testable import Notebooks
@testable import Reports

/// A launcher that runs nothing: it records each call, writes every `-o` file (content depends
/// only on the arguments), prints its arguments, and fails for arguments containing `failOn`.
final class FakeLauncher: NotebookProcessLauncher {
    var calls: [[String]] = []
    var failOn: String?
    var stdoutFor: ([String]) -> String = { "ran " + $0.joined(separator: " ") + " <b>bold?</b>\n" }

    func run(
        executable: String, arguments: [String], workingDirectory: URL, environment: [String: String]
    ) throws -> NotebookProcessResult {
        calls.append(arguments)
        if let f = failOn, arguments.contains(f) {
            let err = (1...30).map { "err line \($0)" }.joined(separator: "\n") + "\n"
            return NotebookProcessResult(exitCode: 3, stdout: Data("partial\n".utf8), stderr: Data(err.utf8))
        }
        for o in NotebookKey.outputPaths(arguments) {
            try Data("output of \(arguments)".utf8).write(to: NotebookKey.resolve(o, in: workingDirectory))
        }
        return NotebookProcessResult(
            exitCode: 0, stdout: Data(stdoutFor(arguments).utf8), stderr: Data("progress 1/1\n".utf8))
    }
}

/// A temporary work directory holding a notebook, with helpers to run it.
final class NotebookFixture {
    let root: URL
    let launcher = FakeLauncher()
    var env: [String: String] = ["PATH": "/usr/bin"]
    var notebookURL: URL { root.appendingPathComponent("notebooks-cli/nb.md") }
    var outputDir: URL { root.appendingPathComponent("reports/nb") }

    static let text = """
        # Test notebook

        Intro prose.

        ```headlight
        inspect --json
        ```

        ## Step two

        Analyse the probes.

        ```headlight
        analyze --probes probes.json -o runs/a.h5
        ```

        ```headlight
        headlight report runs/a.h5 -o runs/b.txt
        ```
        """

    init(_ test: XCTestCase, text: String = NotebookFixture.text) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("hl-nb-\(UUID().uuidString)")
        let r = root
        test.addTeardownBlock { try? FileManager.default.removeItem(at: r) }
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent("notebooks-cli"), withIntermediateDirectories: true)
        try write(text)
        try Data("{\"probes\": 1}".utf8).write(to: root.appendingPathComponent("probes.json"))
    }

    func write(_ text: String) throws { try Data(text.utf8).write(to: notebookURL) }

    func options(force: Bool = false) -> NotebookRunOptions {
        NotebookRunOptions(
            executable: "/nonexistent/headlight", headlightVersion: "0.1.0-test", workingDirectory: root,
            outputDirectory: outputDir, environment: env, force: force)
    }

    /// Runs the notebook; returns the new launcher calls and the written index.html.
    @discardableResult
    func run(
        force: Bool = false, provider: NotebookFigureProvider = RunFileSummaryProvider(),
        events: ((NotebookProgress) -> Void)? = nil
    ) throws -> (calls: [[String]], html: String) {
        let before = launcher.calls.count
        let index = try NotebookSession.run(
            notebookURL: notebookURL, displayPath: "notebooks-cli/nb.md",
            options: options(force: force), launcher: launcher, figureProvider: provider,
            progress: events)
        XCTAssertEqual(index, outputDir.appendingPathComponent("index.html"))
        let html = try String(contentsOf: index, encoding: .utf8)
        return (Array(launcher.calls[before...]), html)
    }

    var cacheFiles: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: outputDir.appendingPathComponent(".cache").path)) ?? [])
            .filter { $0.hasSuffix(".json") }
    }
}

final class CacheNotebookTests: XCTestCase {
    let cell1 = ["inspect", "--json"]
    let cell2 = ["analyze", "--probes", "probes.json", "-o", "runs/a.h5"]
    let cell3 = ["report", "runs/a.h5", "-o", "runs/b.txt"]

    func testSecondRunSkipsEveryCell() throws {
        let f = try NotebookFixture(self)
        XCTAssertEqual(try f.run().calls, [cell1, cell2, cell3])
        XCTAssertEqual(f.cacheFiles.count, 3)
        var events: [String] = []
        let second = try f.run { events.append($0.text) }
        XCTAssertEqual(second.calls, [])
        XCTAssertEqual(
            events.joined(),
            "[1/3] headlight inspect --json (cached)\n"
                + "[2/3] headlight analyze --probes probes.json -o runs/a.h5 (cached)\n"
                + "[3/3] headlight report runs/a.h5 -o runs/b.txt (cached)\n")
        XCTAssertEqual(second.html.components(separatedBy: "<span class=\"cached\">cached</span>").count - 1, 3)
    }

    func testChangingACellRerunsItAndEverythingDownstream() throws {
        let f = try NotebookFixture(self)
        try f.run()
        try f.write(NotebookFixture.text.replacingOccurrences(of: "-o runs/a.h5", with: "--seed 7 -o runs/a.h5"))
        let r = try f.run()
        XCTAssertEqual(r.calls, [["analyze", "--probes", "probes.json", "--seed", "7", "-o", "runs/a.h5"], cell3])
        XCTAssertEqual(f.cacheFiles.count, 3, "stale entries are pruned")
        // Changing the last cell re-runs only it.
        try f.write(
            NotebookFixture.text.replacingOccurrences(of: "-o runs/a.h5", with: "--seed 7 -o runs/a.h5")
                .replacingOccurrences(of: "report runs/a.h5", with: "report --top 3 runs/a.h5"))
        XCTAssertEqual(try f.run().calls, [["report", "--top", "3", "runs/a.h5", "-o", "runs/b.txt"]])
    }

    func testEditingOnlyProseRunsNothingAndRerenders() throws {
        let f = try NotebookFixture(self)
        let first = try f.run()
        XCTAssertFalse(first.html.contains("Brand new"))
        try f.write(
            NotebookFixture.text.replacingOccurrences(
                of: "Intro prose.", with: "Brand new **prose**.\n\nAnd a <script>x</script> paragraph."
            )
            .replacingOccurrences(of: "## Step two", with: "## Step 2 renamed"))
        let r = try f.run()
        XCTAssertEqual(r.calls, [])
        XCTAssertTrue(r.html.contains("Brand new <strong>prose</strong>."))
        XCTAssertTrue(r.html.contains("Step 2 renamed"))
        XCTAssertTrue(r.html.contains("&lt;script&gt;x&lt;/script&gt;"))
        XCTAssertFalse(Hostile.hasRawScript(r.html))
    }

    func testReformattingACommandDoesNotInvalidateIt() throws {
        let f = try NotebookFixture(self)
        try f.run()
        try f.write(
            NotebookFixture.text.replacingOccurrences(
                of: "analyze --probes probes.json -o runs/a.h5",
                with: "# a comment\nheadlight analyze \\\n  --probes 'probes.json' \\\n  -o \"runs/a.h5\""))
        XCTAssertEqual(try f.run().calls, [])
    }

    func testMissingOutputFileRerunsTheCell() throws {
        let f = try NotebookFixture(self)
        try f.run()
        try FileManager.default.removeItem(at: f.root.appendingPathComponent("runs/b.txt"))
        XCTAssertEqual(try f.run().calls, [cell3])
        // Cell 2's output is rebuilt with the same content, so cell 3 (which reads it) stays cached.
        try FileManager.default.removeItem(at: f.root.appendingPathComponent("runs/a.h5"))
        XCTAssertEqual(try f.run().calls, [cell2])
    }

    func testChangedInputFileRerunsTheCellAndDownstream() throws {
        let f = try NotebookFixture(self)
        try f.run()
        try Data("{\"probes\": 2}".utf8).write(to: f.root.appendingPathComponent("probes.json"))
        XCTAssertEqual(try f.run().calls, [cell2, cell3])
        XCTAssertEqual(try f.run().calls, [])
    }

    func testForceAndEnvironment() throws {
        let f = try NotebookFixture(self)
        try f.run()
        XCTAssertEqual(try f.run(force: true).calls.count, 3)
        f.env["UNRELATED"] = "1"
        XCTAssertEqual(try f.run().calls, [])
        f.env["HEADLIGHT_MODEL"] = "/models/other.gguf"
        XCTAssertEqual(try f.run().calls.count, 3)
    }

    func testFailingCellStopsWithItsNumberLineAndStderrTail() throws {
        let f = try NotebookFixture(self)
        f.launcher.failOn = "analyze"
        var events: [String] = []
        XCTAssertThrowsError(try f.run { events.append($0.text) }) { error in
            guard case let .cellFailed(path, cell, line, command, code, tail)? = error as? NotebookError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(path, "notebooks-cli/nb.md")
            XCTAssertEqual(cell, 2)
            XCTAssertEqual(line, 14)
            XCTAssertEqual(command, "headlight analyze --probes probes.json -o runs/a.h5")
            XCTAssertEqual(code, 3)
            XCTAssertTrue(tail.hasPrefix("err line 11\n") && tail.hasSuffix("err line 30"), tail)
            let message = (error as? LocalizedError)?.errorDescription ?? ""
            XCTAssertTrue(
                message.hasPrefix("cell 2 (notebooks-cli/nb.md:14) failed with exit code 3: headlight analyze"), message
            )
            XCTAssertTrue(message.contains("  | err line 30"), message)
        }
        XCTAssertEqual(
            f.launcher.calls, [cell1, ["analyze", "--probes", "probes.json", "-o", "runs/a.h5"]],
            "nothing after the failure runs")
        XCTAssertTrue(events.last?.hasPrefix(" FAILED, exit code 3") ?? false, "\(events)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.outputDir.appendingPathComponent("index.html").path))
        // Fixed: the cell before the failure is cached.
        f.launcher.failOn = nil
        XCTAssertEqual(try f.run().calls, [cell2, cell3])
    }

    func testRealProcessesEchoAndFalse() throws {
        let f = try NotebookFixture(self, text: "# Echo\n\n```headlight\nheadlight hello '<world>' \"a  b\"\n```\n")
        var opts = f.options()
        opts.executable = "/bin/echo"
        let runner = NotebookRunner(options: opts)
        let nb = try Notebook.load(f.notebookURL, displayPath: "nb.md")
        let results = try runner.run(nb)
        XCTAssertEqual(results.count, 1)
        XCTAssertEqual(results[0].stdout, "hello <world> a  b\n")
        XCTAssertEqual(results[0].exitCode, 0)
        XCTAssertFalse(results[0].cached)
        XCTAssertEqual(try runner.run(nb).map(\.cached), [true])

        opts.executable = "/bin/false"
        opts.force = true
        XCTAssertThrowsError(try NotebookRunner(options: opts).run(nb)) { error in
            guard case let .cellFailed(_, cell, line, _, code, _)? = error as? NotebookError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual([cell, line], [1, 4])
            XCTAssertEqual(code, 1)
            XCTAssertTrue(error.localizedDescription.contains("printed nothing on stderr"))
        }
        opts.executable = "/nonexistent/headlight"
        XCTAssertThrowsError(try NotebookRunner(options: opts).run(nb)) { error in
            guard case .launch(_, 1, 4, _, _)? = error as? NotebookError else { return XCTFail("\(error)") }
        }
    }

    func testStderrAndLargeOutputsAreCaptured() throws {
        let f = try NotebookFixture(self, text: "```headlight\nbig\n```\n")
        var opts = f.options()
        opts.executable = "/bin/sh"
        // Not a notebook feature: the test runs sh directly to produce lots of output on both pipes.
        let cell = NotebookCell(
            number: 1, fenceLine: 1, line: 2, source: "",
            arguments: [
                "-c",
                "i=0; while [ $i -lt 20000 ]; do echo \"line $i of stdout\"; echo \"err $i\" >&2; i=$((i+1)); done"
            ])
        let nb = Notebook(path: "x.md", source: "", items: [.cell(cell)])
        let r = try NotebookRunner(options: opts).run(nb)[0]
        XCTAssertEqual(r.stdoutBytes, r.stdout.utf8.count)
        XCTAssertTrue(r.stdout.hasSuffix("line 19999 of stdout\n"))
        XCTAssertTrue(r.stderr.hasSuffix("err 19999\n"))
    }

    func testKeyInputsAndOutputs() throws {
        XCTAssertEqual(
            NotebookKey.outputPaths(["a", "-o", "x.h5", "--output=y.h5", "--output", "z", "-o=w"]),
            ["x.h5", "y.h5", "z", "w"])
        XCTAssertEqual(
            NotebookKey.inputCandidates(["cmd", "--json", "--probes=p.json", "-o", "out.h5", "m.gguf", "m.gguf"]),
            ["cmd", "p.json", "m.gguf"])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hl-key-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("d"), withIntermediateDirectories: true)
        try Data("x".utf8).write(to: dir.appendingPathComponent("p.json"))
        try Data("y".utf8).write(to: dir.appendingPathComponent("d/q.json"))
        let fps = try NotebookKey.inputFingerprints(
            ["run", "--probes=p.json", "d", "missing.json", "-o", "p.json"],
            workingDirectory: dir, hasher: .fnv1a128)
        XCTAssertEqual(fps.map(\.0), ["p.json", "d"])
        XCTAssertTrue(fps[0].1.hasPrefix("fnv1a128:"))
        XCTAssertTrue(fps[1].1.hasPrefix("dir:"))
        // A big file is fingerprinted by size and mtime.
        let big = dir.appendingPathComponent("big.gguf")
        FileManager.default.createFile(atPath: big.path, contents: nil)
        let h = try FileHandle(forWritingTo: big)
        try h.truncate(atOffset: UInt64(NotebookKey.contentHashLimit + 1))
        try h.close()
        let bigFP = try NotebookKey.inputFingerprints(["big.gguf"], workingDirectory: dir, hasher: .fnv1a128)
        XCTAssertTrue(bigFP[0].1.hasPrefix("size=\(NotebookKey.contentHashLimit + 1) mtime="), bigFP[0].1)
        // The previous key is part of the key.
        let cell = NotebookCell(number: 1, fenceLine: 1, line: 2, source: "", arguments: ["x"])
        let k1 = try NotebookKey.key(
            for: cell, headlightVersion: "1", environment: [:], workingDirectory: dir, previousKey: nil,
            hasher: .fnv1a128
        ).key
        let k2 = try NotebookKey.key(
            for: cell, headlightVersion: "1", environment: [:], workingDirectory: dir, previousKey: "abc",
            hasher: .fnv1a128
        ).key
        let k3 = try NotebookKey.key(
            for: cell, headlightVersion: "2", environment: [:], workingDirectory: dir, previousKey: nil,
            hasher: .fnv1a128
        ).key
        XCTAssertEqual(Set([k1, k2, k3]).count, 3)
    }

    func testFNV1a128KnownValues() {
        func fnv(_ s: String) -> String { NotebookHasher.fnv1a128.hashData(Data(s.utf8)) }
        XCTAssertEqual(fnv(""), "6c62272e07bb014262b821756295c58d")
        XCTAssertEqual(fnv("a"), "d228cb696f1a8caf78912b704e4a8964")
        XCTAssertEqual(fnv("foobar"), "343e1662793c64bf6f0d3597ba446f18")
    }

    func testCorruptCacheEntryIsIgnored() throws {
        let f = try NotebookFixture(self)
        try f.run()
        for name in f.cacheFiles {
            try Data("not json".utf8).write(to: f.outputDir.appendingPathComponent(".cache/" + name))
        }
        XCTAssertEqual(try f.run().calls.count, 3)
    }
}
