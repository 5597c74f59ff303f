import Foundation
import XCTest
@testable import HeadlightCLI
import RunRecording
import TraceStore

/// The CLI's shared pieces: error wrapping, the progress line's text, JSON output.
final class CLISupportTests: XCTestCase {
    struct Described: LocalizedError { var errorDescription: String? { "bad thing in x.json" } }
    struct Plain: Error, CustomStringConvertible { var description: String { "plain failure" } }

    func testWrappedErrorKeepsTheDescriptionAndHint() {
        XCTAssertEqual(
            CLIError(wrapping: Described(), hint: "fix x.json").description,
            "bad thing in x.json\nhint: fix x.json")
        XCTAssertEqual(CLIError(wrapping: Described()).description, "bad thing in x.json")
        XCTAssertEqual(CLIError(wrapping: Plain()).description, "plain failure")
    }

    func testProgressClockAndBar() {
        XCTAssertEqual(ProgressBar.clock(59.4), "0:59")
        XCTAssertEqual(ProgressBar.clock(3725), "1:02:05")
        XCTAssertEqual(ProgressBar.clock(.nan), "--:--")
        XCTAssertEqual(ProgressBar.clock(-1), "--:--")
        XCTAssertEqual(ProgressBar.bar(fraction: 0), ">" + String(repeating: " ", count: 23))
        XCTAssertEqual(
            ProgressBar.bar(fraction: 0.5),
            String(repeating: "=", count: 12) + ">" + String(repeating: " ", count: 11))
        XCTAssertEqual(ProgressBar.bar(fraction: 1), String(repeating: "=", count: 24))
    }

    func testDisabledProgressIsNeverDue() {
        let bar = ProgressBar(enabled: false, interval: 0)
        XCTAssertFalse(bar.due(final: true))
        XCTAssertTrue(ProgressBar(enabled: true, interval: 0).due(final: false))
    }

    func testJSONOutputNullsNonFiniteNumbers() throws {
        XCTAssertEqual(
            try JSONOutput.object(["b": Double.nan, "a": [1.5, Double.infinity]]),
            #"{"a":[1.5,null],"b":null}"#)
        XCTAssertEqual(JSONOutput.string("say \"hi\""), #""say \"hi\"""#)
        XCTAssertEqual(Formatting.fixed(.nan, 2), "n/a")
        XCTAssertEqual(Formatting.fixed(0.126, 2), "0.13")
    }

    /// Reports show where a report was built with the BLAS kernel the CLI runs.
    func testMachineSummaryNamesTheBLASKernel() {
        XCTAssertTrue(RunProvenance.machineSummary().contains("OpenBLAS kernel"))
        XCTAssertTrue(RunProvenance.machineSummary().hasPrefix(RunFile.machineDescription()))
    }
}
