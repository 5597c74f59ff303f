import Foundation
import XCTest

@testable import TraceStore

/// RunFileWriter against hostile or unlucky file-system states (issue 17 items 2-4 and 9):
/// planted symbolic links, partial files of other runs, header-less partial files, bad outputs.
final class RunFileSafetyTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("hl-safety-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    private func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    private func isSymlink(_ p: String) -> Bool {
        var st = stat()
        return lstat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
    }

    private let identity = ["command": "retrieval-heads", "model_sha256": "abc", "plan_sha256": "p1"]

    /// A link planted at `<out>.tmp-<pid>` is removed, not followed: its target keeps its bytes
    /// and the published output is a regular file.
    func testPlantedTemporaryLinkIsNotFollowed() throws {
        let out = path("run.h5")
        let victim = path("victim.txt")
        try Data("precious".utf8).write(to: URL(fileURLWithPath: victim))
        try FileManager.default.createSymbolicLink(
            atPath: RunFileWriter.temporaryPath(for: out, resumable: false),
            withDestinationPath: victim)
        let w = try RunFileWriter(path: out)
        try w.file.setAttribute("x", 1)
        try w.finalize()
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "precious")
        XCTAssertFalse(isSymlink(out), "the published run file must not be a link")
        XCTAssertEqual(try RunFile.open(out).attribute("x").intValue, 1)
    }

    /// A dangling `.partial` link must not make the writer create a file at its target.
    func testDanglingPartialLinkIsRefused() throws {
        let out = path("sweep.h5")
        let outside = path("elsewhere/created.h5")
        try FileManager.default.createDirectory(atPath: path("elsewhere"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: out + ".partial", withDestinationPath: outside)
        XCTAssertThrowsError(try RunFileWriter(path: out, resumable: true, identity: identity)) { e in
            guard case TraceStoreError.cannotResume(_, let detail, _) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(detail.contains("symbolic link"), detail)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: outside))
    }

    /// A `.partial` link to a finished run file is refused without touching the finished file.
    func testPartialLinkToFinishedRunLeavesItIntact() throws {
        let finished = path("done.h5")
        let w = try RunFileWriter(path: finished)
        try w.finalize()
        let before = try Data(contentsOf: URL(fileURLWithPath: finished))
        let out = path("sweep.h5")
        try FileManager.default.createSymbolicLink(atPath: out + ".partial", withDestinationPath: finished)
        XCTAssertThrowsError(try RunFileWriter(path: out, resumable: true, identity: identity))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: finished)), before)
        XCTAssertEqual(try RunFile.open(finished).attribute(RunFile.Attr.complete).intValue, 1)
    }

    /// A finished run file renamed to `.partial` (a regular file) is refused too.
    func testFinishedFileAsPartialIsRefused() throws {
        let out = path("sweep.h5")
        let w = try RunFileWriter(path: out + ".partial.src")
        try w.finalize()
        try FileManager.default.moveItem(atPath: out + ".partial.src", toPath: out + ".partial")
        XCTAssertThrowsError(try RunFileWriter(path: out, resumable: true, identity: identity)) { e in
            XCTAssertTrue("\(e.localizedDescription)".contains("finished"), "\(e)")
        }
    }

    /// Resuming checks every identity attribute before writing anything; a mismatch names the key
    /// and leaves the partial file byte for byte as it was.
    func testResumeOfAnotherCommandIsRefusedAndNothingWritten() throws {
        let out = path("x.h5")
        do {
            let w = try RunFileWriter(path: out, resumable: true, identity: identity)
            _ = try w.file.createGroup("retrieval_heads")
            try w.checkpoint()
            w.close()
        }
        let partial = out + ".partial"
        let before = try Data(contentsOf: URL(fileURLWithPath: partial))
        var other = identity
        other["command"] = "ablate"
        XCTAssertThrowsError(try RunFileWriter(path: out, resumable: true, identity: other)) { e in
            guard case TraceStoreError.cannotResume(_, let detail, let hint) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(
                detail.contains("command") && detail.contains("retrieval-heads") && detail.contains("ablate"),
                detail)
            XCTAssertTrue(hint.contains("--restart"), hint)
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: partial)), before)
        var otherPlan = identity
        otherPlan["plan_sha256"] = "p2"
        XCTAssertThrowsError(try RunFileWriter(path: out, resumable: true, identity: otherPlan)) { e in
            XCTAssertTrue(e.localizedDescription.contains("plan_sha256"), e.localizedDescription)
        }
        // The matching run resumes and sees its group.
        let w = try RunFileWriter(path: out, resumable: true, identity: identity)
        XCTAssertTrue(w.resumed)
        XCTAssertTrue(try w.file.exists("retrieval_heads"))
        try w.finalize()
        XCTAssertEqual(try RunFile.open(out).attribute("command").stringValue, "retrieval-heads")
    }

    /// A new `.partial` carries its header from the moment it exists (written under a staging
    /// name and renamed), and no staging file is left behind.
    func testNewPartialHasHeaderFromTheStart() throws {
        let out = path("y.h5")
        var header = RunFileHeader()
        header.command = "retrieval-heads"
        header.modelSHA256 = "abc"
        let w = try RunFileWriter(path: out, resumable: true, header: header, identity: ["plan_sha256": "p1"])
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        XCTAssertEqual(names, ["y.h5.partial"])
        XCTAssertEqual(try w.file.attribute("model_sha256").stringValue, "abc")
        XCTAssertEqual(try w.file.attribute("plan_sha256").stringValue, "p1")
        w.close()
    }

    /// A partial killed before its header existed (older Headlight: format attributes only, no
    /// records) is started over instead of refused.
    func testHeaderlessPartialStartsOver() throws {
        let out = path("z.h5")
        let f = try H5File.create(out + ".partial")
        try f.setAttribute(RunFile.Attr.format, RunFile.format)
        try f.setAttribute(RunFile.Attr.formatVersion, 1)
        try f.setAttribute(RunFile.Attr.complete, 0)
        try f.close()
        let w = try RunFileWriter(path: out, resumable: true, identity: identity)
        XCTAssertFalse(w.resumed)
        XCTAssertEqual(try w.file.attribute("command").stringValue, "retrieval-heads")
        w.close()
        // An empty (0-byte) partial too.
        try FileManager.default.removeItem(atPath: out + ".partial")
        FileManager.default.createFile(atPath: out + ".partial", contents: Data())
        let w2 = try RunFileWriter(path: out, resumable: true, identity: identity)
        XCTAssertFalse(w2.resumed)
        w2.close()
    }

    func testBadOutputPathsAreRefusedUpFront() throws {
        func refuse(_ p: String, _ fragment: String, line: UInt = #line) {
            XCTAssertThrowsError(try RunFileWriter.checkOutputPath(p), line: line) { e in
                guard case TraceStoreError.badOutputPath = e else { return XCTFail("\(e)", line: line) }
                XCTAssertTrue(e.localizedDescription.contains(fragment), e.localizedDescription, line: line)
            }
        }
        refuse("", "empty")
        refuse(dir.path, "is a directory")
        refuse(dir.path + "/", "directory")
        refuse(path("missing/run.h5"), "does not exist")
        let file = path("plain")
        FileManager.default.createFile(atPath: file, contents: Data())
        refuse(file + "/run.h5", "not a directory")
        XCTAssertNoThrow(try RunFileWriter.checkOutputPath(path("ok.h5")))
        XCTAssertThrowsError(try RunFileWriter(path: dir.path))
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: dir.path), ["plain"],
            "a refused output leaves nothing behind")
    }

    /// A second writer of the same resumable output (another process holds HDF5's lock on it)
    /// is told another process is writing it, and the partial file is left alone.
    func testConcurrentResumeNamesTheOtherWriter() throws {
        let out = path("busy.h5")
        do {
            let first = try RunFileWriter(path: out, resumable: true, identity: identity)
            first.close()
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/flock") else {
            throw XCTSkip("needs /usr/bin/flock (util-linux) to hold the lock from another process")
        }
        // HDF5 locks with flock(LOCK_EX); hold that lock from a child process.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        holder.arguments = ["-x", out + ".partial", "sleep", "20"]
        try holder.run()
        defer {
            holder.terminate()
            holder.waitUntilExit()
        }
        Thread.sleep(forTimeInterval: 0.5)
        let before = try Data(contentsOf: URL(fileURLWithPath: out + ".partial"))
        XCTAssertThrowsError(try RunFileWriter(path: out, resumable: true, identity: identity)) { e in
            XCTAssertTrue(e.localizedDescription.contains("busy.h5.partial"), e.localizedDescription)
            XCTAssertTrue(e.localizedDescription.contains("another process is writing"), e.localizedDescription)
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out + ".partial")), before)
    }
}
