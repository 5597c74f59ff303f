import Foundation
import XCTest

/// `headlight bench --bandwidth MiB`, the memory-bandwidth probe of bench/roofline.py: one JSON
/// line with a positive rate (the C probe checks that every word of the buffer was read, and
/// fails otherwise), and usage errors for a bad size or a second mode.
final class BenchBandwidthCLITests: XCTestCase {
    func testBandwidthProbePrintsARate() throws {
        let r = try HeadlightProcess.run(["bench", "--bandwidth", "64", "--threads", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let line = try XCTUnwrap(r.stdout.split(separator: "\n").last)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(json["mode"] as? String, "bandwidth")
        XCTAssertEqual(json["mib"] as? Int, 64)
        XCTAssertEqual(json["threads"] as? Int, 2)
        let rate = try XCTUnwrap(json["gb_per_s"] as? Double)
        // Any machine streams 64 MiB faster than 0.1 GB/s and slower than 10 TB/s.
        XCTAssertTrue(rate > 0.1 && rate < 10_000, "gb_per_s = \(rate)")
    }

    func testBandwidthUsageErrors() throws {
        for (args, fragment) in [
            (["bench", "--bandwidth", "0"], "--bandwidth must be 1...65536 MiB (got 0)"),
            (["bench", "--bandwidth", "99999"], "--bandwidth must be 1...65536 MiB"),
            (["bench", "--bandwidth", "8", "--decode", "4"], "exactly one of --prefill N, --decode N or --bandwidth")
        ] {
            let r = try HeadlightProcess.run(args)
            XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(fragment), "\(args): missing \"\(fragment)\" in \(r.stderr)")
        }
    }
}
