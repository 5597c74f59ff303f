/// GPT-2 byte-level BPE (`tokenizer.ggml.model = gpt2`), as llama.cpp's `llm_tokenizer_bpe_session`.
///
/// Every byte of a word is first mapped to a printable character (`ByteEncoding`), giving one
/// symbol per byte. Adjacent symbols are then merged, lowest merge rank first (leftmost on ties),
/// until no adjacent pair has a rank; each final symbol is looked up in the vocabulary, and a
/// symbol that is not a token falls back to its single-character (ASCII) pieces.
///
/// Symbols are interned strings: every string that appears in `tokenizer.ggml.merges` (both
/// sides and the concatenation) gets an integer id, so a merge is a dictionary lookup keyed by
/// a pair of ints. This gives the same result as llama.cpp's string-keyed ranks: a symbol's
/// text only changes by merging, and merging never produces a string outside the table.
final class ByteLevelBPE {
    /// UTF-8 of each interned symbol (byte-encoded form, as in the vocabulary).
    private(set) var symbolText: [[UInt8]] = []
    /// Vocabulary id of each symbol, or -1.
    private var symbolToken: [Int32] = []
    /// (left << 32 | right) -> (rank << 32 | merged symbol); the first rank of a duplicate pair wins.
    private var merges: [UInt64: UInt64] = [:]
    /// Symbol of each raw byte.
    private var byteSymbol = [Int32](repeating: -1, count: 256)
    /// Vocabulary id of each one-character ASCII string (the fallback for unknown symbols), or -1.
    private var asciiToken = [Int32](repeating: -1, count: 128)
    private let tokenToID: [TokenText: Int32]
    private let ignoreMerges: Bool

    // Scratch buffers, reused across words (callers serialize access).
    private var sym: [Int32] = []
    private var next: [Int32] = []
    private var prev: [Int32] = []
    private var heap: [HeapEntry] = []

    private struct HeapEntry {
        var key: UInt64 // rank << 32 | left: smaller is better
        var right: Int32
        var leftSymbol: Int32
        var rightSymbol: Int32
        var merged: Int32
    }

    init(merges mergeLines: [String], tokenToID: [TokenText: Int32], ignoreMerges: Bool) throws {
        self.tokenToID = tokenToID
        self.ignoreMerges = ignoreMerges
        var intern: [TokenText: Int32] = [:]
        intern.reserveCapacity(mergeLines.count * 2 + 256)
        func id(_ s: String) -> Int32 {
            let key = TokenText(s)
            if let i = intern[key] { return i }
            let i = Int32(symbolText.count)
            intern[key] = i
            symbolText.append(Array(s.utf8))
            symbolToken.append(tokenToID[TokenText(s)] ?? -1)
            return i
        }
        for b in 0..<256 { byteSymbol[b] = id(ByteEncoding.character(forByte: UInt8(b))) }
        merges.reserveCapacity(mergeLines.count)
        for (rank, line) in mergeLines.enumerated() {
            // llama.cpp splits at the first space after the first character.
            let u = Array(line.utf8)
            guard u.count > 1, let sp = u[1...].firstIndex(of: 0x20) else { continue }
            let left = String(decoding: u[..<sp], as: UTF8.self)
            let right = String(decoding: u[(sp + 1)...], as: UTF8.self)
            if left.isEmpty || right.isEmpty { continue }
            let l = id(left), r = id(right)
            let key = UInt64(UInt32(bitPattern: l)) << 32 | UInt64(UInt32(bitPattern: r))
            if merges[key] != nil { continue }
            let m = id(left + right)
            merges[key] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: m))
        }
        for b in 0..<128 { asciiToken[b] = tokenToID[TokenText(bytes: [UInt8(b)])] ?? -1 }
    }

    var mergeCount: Int { merges.count }

    /// Tokenizes one pre-tokenized word given as raw UTF-8 bytes.
    func encode(word: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) {
        let n = word.count
        if n == 0 { return }
        if ignoreMerges {
            var encoded: [UInt8] = []
            encoded.reserveCapacity(n * 2)
            for b in word { encoded.append(contentsOf: symbolText[Int(byteSymbol[Int(b)])]) }
            if let t = tokenToID[TokenText(bytes: encoded)] {
                out.append(t)
                return
            }
        }
        if n == 1 {
            emit(byteSymbol[Int(word[0])], into: &out)
            return
        }
        if sym.count < n {
            sym = [Int32](repeating: 0, count: n)
            next = [Int32](repeating: 0, count: n)
            prev = [Int32](repeating: 0, count: n)
        }
        heap.removeAll(keepingCapacity: true)
        for i in 0..<n {
            sym[i] = byteSymbol[Int(word[i])]
            next[i] = i + 1 < n ? Int32(i + 1) : -1
            prev[i] = Int32(i - 1)
        }
        for i in 1..<n { addPair(Int32(i - 1), Int32(i)) }
        while !heap.isEmpty {
            let e = popMin()
            let l = Int(UInt32(truncatingIfNeeded: e.key)), r = Int(e.right)
            // Skip pairs whose symbols changed since they were queued.
            guard sym[l] == e.leftSymbol, sym[r] == e.rightSymbol else { continue }
            sym[l] = e.merged
            sym[r] = -1
            let nr = next[r]
            next[l] = nr
            if nr >= 0 { prev[Int(nr)] = Int32(l) }
            addPair(prev[l], Int32(l))
            addPair(Int32(l), next[l])
        }
        var i: Int32 = 0
        while i >= 0 {
            emit(sym[Int(i)], into: &out)
            i = next[Int(i)]
        }
    }

    @inline(__always)
    private func emit(_ s: Int32, into out: inout [Int32]) {
        let t = symbolToken[Int(s)]
        if t >= 0 {
            out.append(t)
            return
        }
        // llama.cpp looks up each byte of the symbol's text as a one-byte token.
        for b in symbolText[Int(s)] where b < 0x80 {
            let a = asciiToken[Int(b)]
            if a >= 0 { out.append(a) }
        }
    }

    @inline(__always)
    private func addPair(_ l: Int32, _ r: Int32) {
        if l < 0 || r < 0 { return }
        let ls = sym[Int(l)], rs = sym[Int(r)]
        let key = UInt64(UInt32(bitPattern: ls)) << 32 | UInt64(UInt32(bitPattern: rs))
        guard let v = merges[key] else { return }
        let rank = v >> 32
        push(
            HeapEntry(
                key: rank << 32 | UInt64(UInt32(bitPattern: l)), right: r, leftSymbol: ls, rightSymbol: rs,
                merged: Int32(bitPattern: UInt32(truncatingIfNeeded: v))))
    }

    private func push(_ e: HeapEntry) {
        heap.append(e)
        var i = heap.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if heap[p].key <= e.key { break }
            heap[i] = heap[p]
            i = p
        }
        heap[i] = e
    }

    private func popMin() -> HeapEntry {
        let top = heap[0]
        let last = heap.removeLast()
        let n = heap.count
        if n > 0 {
            var i = 0
            while true {
                let a = 2 * i + 1
                if a >= n { break }
                let b = a + 1
                let c = (b < n && heap[b].key < heap[a].key) ? b : a
                if heap[c].key >= last.key { break }
                heap[i] = heap[c]
                i = c
            }
            heap[i] = last
        }
        return top
    }
}

/// GPT-2's reversible byte <-> printable-character mapping (unicode.cpp's `unicode_byte_to_utf8_map`).
enum ByteEncoding {
    /// The character standing for each byte.
    static let characters: [String] = {
        var map = [UInt32](repeating: 0, count: 256)
        var assigned = [Bool](repeating: false, count: 256)
        for b in 0x21...0x7E {
            map[b] = UInt32(b)
            assigned[b] = true
        }
        for b in 0xA1...0xAC {
            map[b] = UInt32(b)
            assigned[b] = true
        }
        for b in 0xAE...0xFF {
            map[b] = UInt32(b)
            assigned[b] = true
        }
        var n: UInt32 = 0
        for b in 0..<256 where !assigned[b] {
            map[b] = 256 + n
            n += 1
        }
        return map.map { String(Character(Unicode.Scalar($0)!)) }
    }()

    static func character(forByte b: UInt8) -> String { characters[Int(b)] }

    /// Code point -> byte, for code points below 0x144 (the largest one used); -1 elsewhere.
    static let byteForScalar: [Int16] = {
        var t = [Int16](repeating: -1, count: 0x144)
        for (b, s) in characters.enumerated() { t[Int(s.unicodeScalars.first!.value)] = Int16(b) }
        return t
    }()
}
