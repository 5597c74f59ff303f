import CNative
import Foundation
import GGUF
@testable import Inference
import XCTest

/// hl_qmatmul_rows (the products of a batched decode step) against hl_qmatmul with t == 1 (the
/// product of one decode step): every output row must be bit for bit the one-row product of its
/// activation row, at every kernel level the CPU supports, in the float, int8 and int16 modes,
/// for every quantized type, with odd row counts (the 4-row kernels' remainders) and matrices
/// large enough to be split over the kernel pool.
final class BatchedProductTests: XCTestCase {
    let initialQdot = hl_qdot_mode()

    override func tearDown() {
        _ = hl_kernels_set_level(hl_kernels_max_level())
        _ = hl_qdot_set_mode(initialQdot)
        super.tearDown()
    }

    var levels: [Int32] { (0..<Int32(HL_KERNELS_LEVELS)).filter { hl_kernels_level_supported($0) != 0 } }

    func testBatchedProductEqualsOneRowProductsBitForBit() throws {
        var rng = SeededGenerator(seed: 7)
        let modes: [(Int32, String)] = [
            (Int32(HL_QDOT_FLOAT), "float"), (Int32(HL_QDOT_INT8), "int8"), (Int32(HL_QDOT_INT16), "int16")
        ]
        print(
            "batched products tested at levels: "
                + levels.map { String(cString: hl_kernels_level_name($0)) }
                .joined(separator: ", "))
        var compared = 0
        for type in KernelTests.quantTypes {
            let cols = type.blockSize == 256 ? 768 : 224
            for rows in [5, 203, 611] {
                let blocks = KernelTests.randomBlocks(type, count: rows * cols / type.blockSize, rng: &rng)
                let w = blocks.withUnsafeBytes {
                    WeightMatrix(name: "w", rows: rows, cols: cols, type: type, blocks: $0)
                }
                let q = try XCTUnwrap(w.quantized)
                for t in [2, 3, 4, 5, 8, 9] {
                    // Activations of different scales per row, as decode steps of different trials.
                    var x = [Float](repeating: 0, count: t * cols) // [t, cols]
                    for i in 0..<t {
                        let scale = Float(i + 1) * 0.7
                        for c in 0..<cols { x[i * cols + c] = Float.random(in: -scale...scale, using: &rng) }
                    }
                    for (mode, modeName) in modes {
                        _ = hl_qdot_set_mode(mode)
                        for level in levels {
                            _ = hl_kernels_set_level(level)
                            var batched = [Float](repeating: .nan, count: t * rows) // [t, rows]
                            var single = [Float](repeating: .nan, count: t * rows) // [t, rows]
                            x.withUnsafeBufferPointer { xp in
                                batched.withUnsafeMutableBufferPointer { yp in
                                    hl_qmatmul_rows(
                                        Int32(type.rawValue), q.pointer, q.rowBytes, Int32(rows), Int32(cols),
                                        xp.baseAddress, cols, Int32(t), yp.baseAddress, rows)
                                }
                                single.withUnsafeMutableBufferPointer { yp in
                                    for i in 0..<t {
                                        hl_qmatmul(
                                            Int32(type.rawValue), q.pointer, q.rowBytes, Int32(rows), Int32(cols),
                                            xp.baseAddress! + i * cols, cols, 1, yp.baseAddress! + i * rows, rows)
                                    }
                                }
                            }
                            let bad = (0..<(t * rows)).first { batched[$0].bitPattern != single[$0].bitPattern }
                            let what = bad.map { "element \($0): batched \(batched[$0]) vs one row \(single[$0])" }
                            XCTAssertNil(
                                bad,
                                "\(type.name) \(modeName) rows \(rows) t \(t) level "
                                    + "\(String(cString: hl_kernels_level_name(level))): \(what ?? "")")
                            compared += 1
                        }
                    }
                }
            }
        }
        XCTAssertGreaterThan(compared, 0)
    }

    /// `Kernels.linearRows` equals `Kernels.linear` on one row at a time, for quantized weights
    /// (hl_qmatmul_rows, with a bias) and Float32 ones (row by row).
    func testLinearRowsEqualsOneRowLinear() throws {
        var rng = SeededGenerator(seed: 11)
        let rows = 37, cols = 96, t = 5
        let blocks = KernelTests.randomBlocks(.q4_1, count: rows * cols / 32, rng: &rng)
        let wq = blocks.withUnsafeBytes {
            WeightMatrix(name: "wq", rows: rows, cols: cols, type: .q4_1, blocks: $0)
        }
        let wfValues = (0..<(rows * cols)).map { _ in Float.random(in: -1...1, using: &rng) }
        let biasValues = (0..<rows).map { _ in Float.random(in: -1...1, using: &rng) }
        let wf = WeightMatrix(name: "wf", rows: rows, cols: cols, values: wfValues)
        let bias = WeightMatrix(name: "b", rows: rows, cols: 1, values: biasValues)
        let x = (0..<(t * cols)).map { _ in Float.random(in: -1...1, using: &rng) } // [t, cols]
        for (w, b) in [(wq, bias), (wf, nil), (wf, bias)] as [(WeightMatrix, WeightMatrix?)] {
            var batched = [Float](repeating: .nan, count: t * rows), single = batched // [t, rows]
            x.withUnsafeBufferPointer { xp in
                batched.withUnsafeMutableBufferPointer {
                    Kernels.linearRows(xp.baseAddress!, rows: t, weight: w, bias: b, into: $0.baseAddress!)
                }
                single.withUnsafeMutableBufferPointer { yp in
                    for i in 0..<t {
                        Kernels.linear(
                            xp.baseAddress! + i * cols, rows: 1, weight: w, bias: b, into: yp.baseAddress! + i * rows)
                    }
                }
            }
            XCTAssertEqual(batched.map(\.bitPattern), single.map(\.bitPattern), "\(w.name) bias \(b != nil)")
        }
    }
}
