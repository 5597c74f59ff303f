import Foundation
import XCTest

@testable import TraceStore

/// Reads that a damaged file can make absurd are refused before anything is allocated (issue 17
/// item 7: a corrupted run file made `report` abort allocating 103 GB). The shapes here are legal
/// HDF5 — an extendible dataset grown without writing, whose chunks are never allocated — so
/// they stand in for a damaged dataspace without byte surgery.
final class ReadSizeCheckTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("hl-readsize-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    private func fileWith(rows: Int, columns: Int, type: H5ElementType = .float32) throws -> String {
        let path = dir.appendingPathComponent("f.h5").path
        let f = try H5File.create(path)
        let d = try f.createDataset(
            "x", type: type, shape: [0, columns], chunks: [4, min(columns, 1024)], extendible: true)
        try d.resize(to: [rows, columns])
        try f.close()
        return path
    }

    /// 2^40 x 3 float32 claimed (12 TiB) by a file of a few KiB: a `.corruptFile` naming the
    /// dataset and the claim, not an allocation crash; a small block of it still reads (fill).
    func testHugeClaimedShapeIsRefused() throws {
        let f = try H5File.open(try fileWith(rows: 1 << 40, columns: 3))
        let d = try f.dataset("x")
        XCTAssertEqual(try d.count, 3 << 40)
        XCTAssertThrowsError(try d.read(Float.self)) { error in
            guard case TraceStoreError.corruptFile(_, let detail) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.hasPrefix("/x: claims 3298534883328 elements"), detail)
            XCTAssertTrue(detail.contains("more than the"), detail)
        }
        XCTAssertEqual(try d.read(Float.self, start: [5, 0], count: [2, 3]), [0, 0, 0, 0, 0, 0])
    }

    /// Strings too: the vlen reader checks before allocating its pointer array.
    func testHugeClaimedStringDatasetIsRefused() throws {
        let f = try H5File.open(try fileWith(rows: 1 << 36, columns: 1, type: .string))
        XCTAssertThrowsError(try f.dataset("x").readStrings()) { error in
            guard case TraceStoreError.corruptFile = error else { return XCTFail("\(error)") }
        }
    }

    /// A shape whose element count overflows 64 bits is `.corruptFile`, not an arithmetic trap.
    func testOverflowingShapeIsAnError() throws {
        let f = try H5File.open(try fileWith(rows: 1 << 40, columns: 1 << 30))
        let d = try f.dataset("x")
        XCTAssertThrowsError(try d.count) { error in
            guard case TraceStoreError.corruptFile(_, let detail) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("more elements than 64 bits count"), detail)
        }
        XCTAssertThrowsError(try d.read(Float.self))
    }

    /// Below the 1 GiB floor a read is allowed even where the file is far smaller (unallocated
    /// chunks of an interrupted run read as fill values).
    func testModerateUnwrittenReadIsAllowed() throws {
        let f = try H5File.open(try fileWith(rows: 1 << 16, columns: 4))
        XCTAssertEqual(try f.dataset("x").read(Float.self).count, 1 << 18)
    }
}
