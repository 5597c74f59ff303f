import Foundation

/// Streaming SHA-256 (FIPS 180-4), for checking downloaded models (no CryptoKit on Linux).
/// Written over raw pointers so it stays usable in debug builds (~100 MB model in seconds).
///
///     let h = SHA256(); h.update(data); let hex = h.finalizeHex()
///     let hex = try SHA256.hashFile(at: url)
public final class SHA256 {
    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
    ]
    private static let initial: [UInt32] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
    ]

    // One allocation: 8 state words, 64 round constants, 64 schedule words.
    private let words = UnsafeMutablePointer<UInt32>.allocate(capacity: 8 + 64 + 64)
    private let pending = UnsafeMutablePointer<UInt8>.allocate(capacity: 64)
    private var pendingCount = 0
    private var byteCount: UInt64 = 0
    private var finished = false

    public init() {
        for i in 0..<8 { words[i] = SHA256.initial[i] }
        for i in 0..<64 { words[8 + i] = SHA256.k[i] }
    }

    deinit {
        words.deallocate()
        pending.deallocate()
    }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        precondition(!finished, "SHA256.update after finalize")
        guard var p = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count > 0 else { return }
        var n = bytes.count
        byteCount &+= UInt64(n)
        if pendingCount > 0 {
            let take = min(64 - pendingCount, n)
            (pending + pendingCount).update(from: p, count: take)
            pendingCount += take
            p += take
            n -= take
            if pendingCount < 64 { return }
            compress(UnsafePointer(pending))
            pendingCount = 0
        }
        while n >= 64 {
            compress(p)
            p += 64
            n -= 64
        }
        if n > 0 {
            pending.update(from: p, count: n)
            pendingCount = n
        }
    }

    public func update(_ data: Data) { data.withUnsafeBytes { update($0) } }
    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// The 32-byte digest. The hasher cannot be updated afterwards.
    public func finalize() -> [UInt8] {
        if !finished {
            let bits = byteCount &* 8
            var tail = [UInt8](repeating: 0, count: pendingCount < 56 ? 64 : 128)
            for i in 0..<pendingCount { tail[i] = pending[i] }
            tail[pendingCount] = 0x80
            for i in 0..<8 { tail[tail.count - 1 - i] = UInt8(truncatingIfNeeded: bits >> (8 * UInt64(i))) }
            tail.withUnsafeBufferPointer { t in
                for offset in stride(from: 0, to: t.count, by: 64) { compress(t.baseAddress! + offset) }
            }
            finished = true
        }
        var digest = [UInt8](repeating: 0, count: 32)
        for i in 0..<8 {
            for j in 0..<4 { digest[4 * i + j] = UInt8(truncatingIfNeeded: words[i] >> (24 - 8 * UInt32(j))) }
        }
        return digest
    }

    public func finalizeHex() -> String { SHA256.hex(finalize()) }

    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Hex digest of `data`.
    public static func hash(_ data: Data) -> String {
        let h = SHA256()
        h.update(data)
        return h.finalizeHex()
    }

    /// Hex digest of a file, read in `chunkSize` pieces.
    public static func hashFile(at url: URL, chunkSize: Int = 1 << 20) throws -> String {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        let h = SHA256()
        while let chunk = try handle.read(upToCount: chunkSize), !chunk.isEmpty { h.update(chunk) }
        return h.finalizeHex()
    }

    // Plain while loops and a transparent rotate: debug (-Onone) builds would otherwise spend
    // most of their time in range iterators and out-of-line calls.
    private func compress(_ block: UnsafePointer<UInt8>) {
        let k = words + 8, w = words + 72
        var i = 0
        while i < 16 {
            let b = block + 4 &* i
            w[i] = UInt32(b[0]) &<< 24 | UInt32(b[1]) &<< 16 | UInt32(b[2]) &<< 8 | UInt32(b[3])
            i &+= 1
        }
        while i < 64 {
            let x = w[i &- 15], y = w[i &- 2]
            let s0 = rotr(x, 7) ^ rotr(x, 18) ^ (x &>> 3)
            let s1 = rotr(y, 17) ^ rotr(y, 19) ^ (y &>> 10)
            w[i] = w[i &- 16] &+ s0 &+ w[i &- 7] &+ s1
            i &+= 1
        }
        var a = words[0], b = words[1], c = words[2], d = words[3]
        var e = words[4], f = words[5], g = words[6], h = words[7]
        i = 0
        while i < 64 {
            let s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
            let t1 = h &+ s1 &+ ((e & f) ^ (~e & g)) &+ k[i] &+ w[i]
            let s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
            let t2 = s0 &+ ((a & b) ^ (a & c) ^ (b & c))
            h = g
            g = f
            f = e
            e = d &+ t1
            d = c
            c = b
            b = a
            a = t1 &+ t2
            i &+= 1
        }
        words[0] &+= a
        words[1] &+= b
        words[2] &+= c
        words[3] &+= d
        words[4] &+= e
        words[5] &+= f
        words[6] &+= g
        words[7] &+= h
    }
}

@_transparent private func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x &>> n) | (x &<< (32 &- n)) }
