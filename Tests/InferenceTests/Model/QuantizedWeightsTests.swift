import CNative
import Foundation
import GGUF
@testable import Inference
import XCTest

/// Weights kept in ggml blocks (`WeightFormat.quantized`): prefill's products decode panels of
/// rows on the fly (hl_sgemm_nt_panels) instead of multiplying a Float32 copy made at load.
///
/// The panels hold exactly the values of `GGMLType.dequantize` (the Float32 copy's values), so
/// the two paths differ only if OpenBLAS sums an output element in a different order when the
/// weight rows come in different panels. Checked here for every type the loader decodes:
/// - panel = one block per thread (the split of hl_sgemm_nt): the same sgemm calls, bit-identical;
/// - smaller panels (16, 48 rows, the default <= 512 KB): OpenBLAS may take another kernel for a
///   narrow product with few activation rows (seen at T = 9 and 37), so the order of summation
///   can differ: |y - ref| <= 1e-5 * sum_c |W[r,c] x[c]| (an f32 dot product's rounding scale,
///   as KernelTests); in practice 1e-7 relative.
/// Then whole models: a tiny llama with its matrices re-encoded as F16, BF16 and Q8_0, and the
/// default model and Gemma 3 270M when cached: prefill (chunks of up to 512 rows) and decode
/// logits of both paths bit-identical.
final class QuantizedWeightsTests: XCTestCase {
    let initialWeights = Kernels.weights
    let initialPanelRows = Kernels.panelRows

    override func tearDown() {
        Kernels.weights = initialWeights
        Kernels.panelRows = initialPanelRows
        super.tearDown()
    }

    /// Every type `GGMLType.dequantize` supports, except F32 (kept as Float32 at load).
    static let blockTypes: [GGMLType] = [
        .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K
    ]

    /// Random blocks of `type` whose scales are finite and of typical size (the other bytes random).
    static func randomBlocks(_ type: GGMLType, count blocks: Int, rng: inout SeededGenerator) -> [UInt8] {
        let bb = type.bytesPerBlock
        var out = (0..<(blocks * bb)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        func put16(_ h: UInt16, _ at: Int) {
            out[at] = UInt8(h & 0xFF)
            out[at + 1] = UInt8(h >> 8)
        }
        func half(_ v: Float, _ at: Int) { put16(floatToHalf(v), at) }
        for b in 0..<blocks {
            let o = b * bb
            func scale(_ at: Int, _ r: ClosedRange<Float>) { half(Float.random(in: r, using: &rng), o + at) }
            switch type {
            case .f16: half(Float.random(in: -1...1, using: &rng), o)
            case .bf16: put16(UInt16(Float.random(in: -1...1, using: &rng).bitPattern >> 16), o)
            case .q4_0, .q5_0, .q8_0: scale(0, -0.05...0.05)
            case .q4_1, .q5_1:
                scale(0, 0.001...0.05)
                scale(2, -0.4...0)
            case .q2_K:
                scale(80, 0.0005...0.005)
                scale(82, 0.0005...0.005)
            case .q3_K: scale(108, -0.005...0.005)
            case .q4_K, .q5_K:
                scale(0, 0.0005...0.005)
                scale(2, 0.0005...0.005)
            case .q6_K: scale(208, -0.002...0.002)
            case .q8_K:
                let d = Float.random(in: 0.0001...0.001, using: &rng).bitPattern
                for i in 0..<4 { out[o + i] = UInt8((d >> (8 * UInt32(i))) & 0xFF) }
            default: XCTFail("no generator for \(type.name)")
            }
        }
        return out
    }

    /// The largest |a - b| and whether every element is bit-identical.
    static func compare(_ a: [Float], _ b: [Float]) -> (maxDiff: Float, identical: Bool) {
        precondition(a.count == b.count)
        var worst: Float = 0, same = true
        for (x, y) in zip(a, b) {
            if x.bitPattern != y.bitPattern { same = false }
            worst = max(worst, abs(x - y).isNaN ? .infinity : abs(x - y))
        }
        return (worst, same)
    }

    // MARK: - The product, every type

    func testPanelProductMatchesFloatProductForEveryType() throws {
        var rng = SeededGenerator(seed: 7)
        let threads = KernelConfig.threads
        for type in Self.blockTypes {
            XCTAssertTrue(type.canDequantize, type.name)
            let cols = 512, rows = 203
            let bytes = Self.randomBlocks(type, count: rows * cols / type.blockSize, rng: &rng)
            let w = bytes.withUnsafeBytes { WeightMatrix(name: "w", rows: rows, cols: cols, type: type, blocks: $0) }
            let b = try XCTUnwrap(w.blocks, type.name)
            XCTAssertTrue((0..<(rows * cols)).allSatisfy { w.data[$0].isFinite }, type.name)
            for t in [9, 37, 130] {
                let x = (0..<(t * cols)).map { _ in Float.random(in: -1...1, using: &rng) } // [T, cols]
                var ref = [Float](repeating: .nan, count: t * rows) // [T, rows]
                x.withUnsafeBufferPointer { xp in
                    ref.withUnsafeMutableBufferPointer { yp in
                        hl_sgemm_nt(
                            Int32(t), Int32(rows), Int32(cols), xp.baseAddress, Int32(cols), w.data, Int32(cols),
                            yp.baseAddress, Int32(rows))
                    }
                }
                func panels(_ panel: Int?) -> [Float] {
                    var y = [Float](repeating: .nan, count: t * rows) // [T, rows]
                    x.withUnsafeBufferPointer { xp in
                        y.withUnsafeMutableBufferPointer { yp in
                            Kernels.panelLinear(
                                xp.baseAddress!, rows: t, blocks: b, outputs: rows, inputs: cols,
                                into: yp.baseAddress!, panel: panel)
                        }
                    }
                    return y
                }
                let same = Self.compare(panels(0), ref)
                XCTAssertTrue(same.identical, "\(type.name) T=\(t) thread-block panels: max diff \(same.maxDiff)")
                // mag[i, r] = sum_c |W[r, c] x[i, c]|: the scale of an f32 dot product's rounding error.
                var worst = 0.0
                for panel in [16, 48, Kernels.defaultPanelRows(outputs: rows, inputs: cols)] {
                    let y = panels(panel)
                    for i in 0..<t {
                        for r in 0..<rows {
                            var mag = 0.0
                            for c in 0..<cols { mag += abs(Double(w.data[r * cols + c]) * Double(x[i * cols + c])) }
                            let e = abs(Double(y[i * rows + r]) - Double(ref[i * rows + r])) / max(mag, 1e-30)
                            worst = max(worst, e.isNaN ? .infinity : e)
                        }
                    }
                }
                XCTAssertLessThanOrEqual(worst, 1e-5, "\(type.name) T=\(t) (\(threads) threads)")
            }
        }
    }

    /// `Kernels.linear` takes the panel path for matrices in blocks only with `.quantized`, and
    /// leaves their Float32 copy unmade; one activation row on a type without a decoding kernel
    /// (F16) also goes through a panel.
    func testLinearUsesPanelsWithoutFloatCopy() throws {
        var rng = SeededGenerator(seed: 8)
        for type in [GGMLType.q4_1, .f16] {
            let rows = 96, cols = 256
            let bytes = Self.randomBlocks(type, count: rows * cols / type.blockSize, rng: &rng)
            let path = FileManager.default.temporaryDirectory.appendingPathComponent(
                "headlight-qw-\(type.name)-\(getpid()).gguf")
            var writer = GGUFWriter()
            writer.addTensor("w", dims: [cols, rows], type: type, bytes: bytes)
            try Data(writer.encoded()).write(to: path)
            defer { try? FileManager.default.removeItem(at: path) }
            let file = try GGUFFile(path: path.path)
            for t in [20, 1] {
                let w = try WeightMatrix(file, "w", dims: [cols, rows])
                XCTAssertNotNil(w.blocks)
                XCTAssertFalse(w.hasFloatValues, "a matrix in blocks has no Float32 copy at load")
                let x = (0..<(t * cols)).map { _ in Float.random(in: -1...1, using: &rng) } // [T, cols]
                func run(_ format: WeightFormat) -> [Float] {
                    Kernels.weights = format
                    var y = [Float](repeating: .nan, count: t * rows) // [T, rows]
                    x.withUnsafeBufferPointer { xp in
                        y.withUnsafeMutableBufferPointer { yp in
                            Kernels.linear(xp.baseAddress!, rows: t, weight: w, bias: nil, into: yp.baseAddress!)
                        }
                    }
                    return y
                }
                let q = run(.quantized)
                if t > Kernels.quantizedMaxRows || w.quantized == nil {
                    XCTAssertFalse(w.hasFloatValues, "\(type.name) T=\(t): the panel path made a Float32 copy")
                }
                let f = run(.f32)
                if t > Kernels.quantizedMaxRows || w.quantized == nil { XCTAssertTrue(w.hasFloatValues) }
                let r = Self.compare(q, f)
                // sgemv / one sgemm (f32) vs panels or the decoding kernel: the summation order may differ.
                var mag: Float = 0
                for v in f { mag = max(mag, abs(v)) }
                XCTAssertLessThanOrEqual(r.maxDiff, 1e-5 * max(mag, 1), "\(type.name) T=\(t)")
            }
            let w = try WeightMatrix(file, "w", dims: [cols, rows])
            // Row lookups (the token embedding) decode the same values.
            var row = [Float](repeating: .nan, count: cols)
            let fresh = try WeightMatrix(file, "w", dims: [cols, rows])
            row.withUnsafeMutableBufferPointer { fresh.copyRow(37, into: $0.baseAddress!) }
            XCTAssertFalse(fresh.hasFloatValues)
            XCTAssertEqual(row.map(\.bitPattern), (0..<cols).map { w.data[37 * cols + $0].bitPattern })
        }
    }

    // MARK: - Whole models

    /// Encodes `values` (a multiple of 32 for Q8_0) as `type`: F16, BF16 (truncation) or Q8_0
    /// (ggml's quantize_row_q8_0_ref: d = amax / 127, q = round(x / d)).
    static func encode(_ values: [Float], as type: GGMLType) -> [UInt8] {
        var out: [UInt8] = []
        func put16(_ h: UInt16) {
            out.append(UInt8(h & 0xFF))
            out.append(UInt8(h >> 8))
        }
        switch type {
        case .f16: for v in values { put16(floatToHalf(v)) }
        case .bf16: for v in values { put16(UInt16(v.bitPattern >> 16)) }
        case .q8_0:
            for b in 0..<(values.count / 32) {
                let blk = values[(b * 32)..<(b * 32 + 32)]
                let amax = blk.reduce(0) { max($0, abs($1)) }
                let d = amax / 127, id: Float = d != 0 ? 1 / d : 0
                put16(floatToHalf(d))
                for v in blk { out.append(UInt8(bitPattern: Int8((v * id).rounded()))) }
            }
        default: preconditionFailure("encode: \(type.name)")
        }
        return out
    }

    /// A copy of the GGUF at `path` with every 2-D tensor re-encoded as `type`.
    func reencode(_ path: String, as type: GGMLType) throws -> String {
        let src = try GGUFFile(path: path)
        var w = GGUFWriter()
        for key in src.metadataKeys { w.set(key, src.metadata[key]!) }
        for t in src.tensors {
            let raw = Array(src.data(of: t))
            if t.dims.count == 2 && t.type == .f32 && (type != .q8_0 || t.dims[0] % 32 == 0) {
                let values = try src.dequantize(t.name)
                w.addTensor(t.name, dims: t.dims, type: type, bytes: Self.encode(values, as: type))
            } else {
                w.addTensor(t.name, dims: t.dims, type: t.type, bytes: raw)
            }
        }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "headlight-reencoded-\(type.name)-\(getpid()).gguf")
        try Data(w.encoded()).write(to: url)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.path
    }

    /// Prefill logits at every position and three decode steps, with `format`, on a fresh model.
    func run(_ path: String, tokens: [Int32], format: WeightFormat) throws -> (model: Model, logits: [Float]) {
        Kernels.weights = format
        let model = try Model(path: path)
        let session = model.makeSession(maxContext: tokens.count + 4)
        var out: [Float] = []
        try session.prefill(tokens: tokens, logits: .all) { _, row in out.append(contentsOf: row) }
        var next = Int32(Sampler.argmax(Array(out.suffix(model.config.vocabSize))))
        for _ in 0..<3 {
            let row = try session.step(token: next)
            out.append(contentsOf: row)
            next = Int32(Sampler.argmax(row))
        }
        return (model, out)
    }

    /// `exact`: bit-identical logits (the large models: their products are wide enough that
    /// OpenBLAS takes the same kernels for panels as for the thread blocks); otherwise within 1e-4
    /// (tiny models, whose narrow products take OpenBLAS's small-matrix kernels), top-1 equal.
    func checkModel(
        _ path: String, tokens: [Int32], label: String, blockMatrices: Bool = true, exact: Bool = true
    ) throws {
        let (qm, q) = try run(path, tokens: tokens, format: .quantized)
        let (fm, f) = try run(path, tokens: tokens, format: .f32)
        let layer = qm.weights.layers[0]
        if blockMatrices {
            XCTAssertNotNil(layer.wq.blocks, label)
            XCTAssertFalse(layer.wq.hasFloatValues || layer.wDown.hasFloatValues, "\(label): Float32 copy made")
            XCTAssertFalse(qm.weights.tokenEmbedding.hasFloatValues, "\(label): embedding copy made")
            XCTAssertTrue(fm.weights.layers[0].wq.hasFloatValues, label)
        }
        let r = Self.compare(q, f)
        print("\(label): quantized vs f32 weights, logits max diff \(r.maxDiff), identical: \(r.identical)")
        if exact {
            XCTAssertTrue(r.identical, "\(label): quantized vs f32 weights, max diff \(r.maxDiff)")
        } else {
            XCTAssertLessThanOrEqual(r.maxDiff, 1e-4, label)
            let v = qm.config.vocabSize
            for row in 0..<(q.count / v) {
                let a = Array(q[(row * v)..<((row + 1) * v)]), b = Array(f[(row * v)..<((row + 1) * v)])
                XCTAssertEqual(Sampler.argmax(a), Sampler.argmax(b), "\(label): top-1 at row \(row)")
            }
        }
    }

    func testTinyModelReencodedMatchesFloatCopies() throws {
        let path = ForwardTests.fixtures.appendingPathComponent("tiny-llama.gguf").path
        let manifest = try JSONDecoder().decode(
            ForwardTests.TinyManifest.self,
            from: Data(contentsOf: ForwardTests.fixtures.appendingPathComponent("tiny-llama.json")))
        for type in [GGMLType.f16, .bf16, .q8_0] {
            let p = try reencode(path, as: type)
            let m = try GGUFFile(path: p)
            let wq = try XCTUnwrap(m.tensor(named: "blk.0.attn_q.weight"))
            if wq.type != type {
                print("tiny-llama: blk.0.attn_q.weight stays \(wq.type.name) (rows of \(wq.dims[0]) for \(type.name))")
            }
            try checkModel(
                p, tokens: manifest.tokens, label: "tiny-llama \(type.name)", blockMatrices: wq.type == type,
                exact: false)
        }
    }

    func testDefaultModelMatchesFloatCopies() throws {
        let path = ForwardTests.defaultModelPath.path
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("default model not cached") }
        let tokens = (0..<300).map { Int32(($0 * 7919 + 13) % 49_000) }
        try checkModel(path, tokens: tokens, label: "SmolLM2 Q4_1")
    }

    func testGemma3MatchesFloatCopies() throws {
        let path = FileManager.default.homeDirectoryForCurrentUser
            .appendingPathComponent(".cache/headlight/models/gemma-3-270m-q4_k_m.gguf").path
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("Gemma 3 270M not cached") }
        let tokens = (0..<200).map { Int32(($0 * 7919 + 13) % 200_000) }
        try checkModel(path, tokens: tokens, label: "Gemma 3 270M Q4_K_M")
    }
}
