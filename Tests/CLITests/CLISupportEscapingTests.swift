import TraceStore
import XCTest

@testable import HeadlightCLI

/// The shared helpers of issue 17 items 8 and 11: terminal escaping, negative numbers reaching
/// `validate()`, byte sizes for --max-output. In-process, no model needed.
final class CLISupportEscapingTests: XCTestCase {
    func testTerminalTextEscapesControlAndBidiCharacters() {
        let hostile = "suite\u{1B}]0;pwned\u{07}\u{1B}[2J\u{202E}cba\u{200B}\u{9B}31m\u{2066}x\u{7F}"
        let out = TerminalText.escape(hostile)
        XCTAssertFalse(out.unicodeScalars.contains { TerminalText.needsEscape($0) }, out)
        XCTAssertEqual(
            out, "suite\\u{1B}]0;pwned\\u{7}\\u{1B}[2J\\u{202E}cba\\u{200B}\\u{9B}31m\\u{2066}x\\u{7F}")
        XCTAssertEqual(TerminalText.escape("plain text, é 中文 ✓"), "plain text, é 中文 ✓")
        XCTAssertEqual(TerminalText.escape("a\nb"), "a\\u{A}b")
        XCTAssertEqual(TerminalText.escape("a\nb\u{1B}", allowNewlines: true), "a\nb\\u{1B}")
        // A backslash in the input cannot pose as an escape.
        XCTAssertEqual(TerminalText.escape("\\u{1B}\u{1B}"), "\\\\u{1B}\\u{1B}")
    }

    func testNegativeNumbersAreAttachedToTheirOption() {
        XCTAssertEqual(
            NegativeNumberArguments.attach(["generate", "--max-tokens", "-5", "hi"]),
            ["generate", "--max-tokens=-5", "hi"])
        XCTAssertEqual(NegativeNumberArguments.attach(["x", "--top-p", "-0.5"]), ["x", "--top-p=-0.5"])
        XCTAssertEqual(NegativeNumberArguments.attach(["x", "--a=1", "-5"]), ["x", "--a=1", "-5"])
        XCTAssertEqual(NegativeNumberArguments.attach(["x", "-m", "-5"]), ["x", "-m", "-5"])
        XCTAssertEqual(NegativeNumberArguments.attach(["x", "--", "--n", "-5"]), ["x", "--", "--n", "-5"])
        XCTAssertEqual(NegativeNumberArguments.attach(["x", "--n", "-v"]), ["x", "--n", "-v"])
    }

    func testByteSizes() {
        XCTAssertEqual(CommandChecks.parseByteSize("10GB"), 10_000_000_000)
        XCTAssertEqual(CommandChecks.parseByteSize("10g"), 10_000_000_000)
        XCTAssertEqual(CommandChecks.parseByteSize("1.5 MiB"), 1_572_864)
        XCTAssertEqual(CommandChecks.parseByteSize("4096"), 4096)
        XCTAssertNil(CommandChecks.parseByteSize("-1GB"))
        XCTAssertNil(CommandChecks.parseByteSize("10 parsecs"))
        XCTAssertNil(CommandChecks.parseByteSize(""))
        XCTAssertNil(CommandChecks.parseByteSize("1e30TB"))
    }
}

extension CLISupportEscapingTests {
    /// `-o x` (a one-character path) crashed inside Foundation's deletingLastPathComponent.
    func testParentDirectoryOfShortPaths() {
        XCTAssertEqual(RunFileWriter.parentDirectory(of: "x"), "")
        XCTAssertEqual(RunFileWriter.parentDirectory(of: "a/x"), "a")
        XCTAssertEqual(RunFileWriter.parentDirectory(of: "/x"), "/")
        XCTAssertEqual(RunFileWriter.parentDirectory(of: "a//b/c.h5"), "a//b")
        XCTAssertEqual(RunFileWriter.parentDirectory(of: "dir/"), "")
    }
}
