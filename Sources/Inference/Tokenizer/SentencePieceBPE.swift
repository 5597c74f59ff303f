/// SentencePiece-style BPE (`tokenizer.ggml.model = llama`: Llama 1/2, Mistral v0.x, ...), as
/// llama.cpp's `llm_tokenizer_spm_session`.
///
/// The text (spaces already replaced by U+2581 "▁") starts as one symbol per UTF-8 character.
/// Every adjacent pair whose concatenation is a vocabulary entry is a candidate; the candidate
/// with the highest score (the leftmost on ties) is merged, and new candidates with its
/// neighbours are added, until none is left. A final symbol that is not a token is emitted as
/// byte-fallback tokens `<0xXX>`.
final class SentencePieceBPE {
    private let tokenToID: [TokenText: Int32]
    private let scores: [Float]
    /// Token of each byte: `<0xXX>`, else the one-byte string, else -1.
    private let byteTokens: [Int32]
    private let unknown: Int32?

    private struct Symbol {
        var start: Int
        var length: Int
        var prev: Int
        var next: Int
    }

    private struct Candidate {
        var score: Float
        var left: Int
        var right: Int
        var size: Int
    }

    init(tokenToID: [TokenText: Int32], scores: [Float], unknown: Int32?) {
        self.tokenToID = tokenToID
        self.scores = scores
        self.unknown = unknown
        let hex = Array("0123456789ABCDEF".utf8)
        byteTokens = (0..<256).map { b -> Int32 in
            let name = String(decoding: [0x3C, 0x30, 0x78, hex[b >> 4], hex[b & 15], 0x3E], as: UTF8.self)
            if let t = tokenToID[TokenText(name)] { return t }
            if b < 0x80, let t = tokenToID[TokenText(bytes: [UInt8(b)])] { return t }
            return -1
        }
    }

    /// Tokenizes `text` (already escaped: spaces as "▁") given as UTF-8 bytes.
    func encode(_ text: [UInt8], into out: inout [Int32]) {
        if text.isEmpty { return }
        var symbols: [Symbol] = []
        symbols.reserveCapacity(text.count)
        var offset = 0
        while offset < text.count {
            let len = min(Self.utf8Length(text[offset]), text.count - offset)
            let index = symbols.count
            symbols.append(
                Symbol(
                    start: offset, length: len, prev: index - 1,
                    next: offset + len == text.count ? -1 : index + 1))
            offset += len
        }
        var heap: [Candidate] = []
        func better(_ a: Candidate, _ b: Candidate) -> Bool {
            a.score > b.score || (a.score == b.score && a.left < b.left)
        }
        func push(_ c: Candidate) {
            heap.append(c)
            var i = heap.count - 1
            while i > 0 {
                let p = (i - 1) / 2
                if !better(c, heap[p]) { break }
                heap[i] = heap[p]
                i = p
            }
            heap[i] = c
        }
        func pop() -> Candidate {
            let top = heap[0]
            let last = heap.removeLast()
            if !heap.isEmpty {
                var i = 0
                let n = heap.count
                while true {
                    let a = 2 * i + 1
                    if a >= n { break }
                    let b = a + 1
                    let c = (b < n && better(heap[b], heap[a])) ? b : a
                    if !better(heap[c], last) { break }
                    heap[i] = heap[c]
                    i = c
                }
                heap[i] = last
            }
            return top
        }
        func tryAdd(_ l: Int, _ r: Int) {
            if l < 0 || r < 0 { return }
            let start = symbols[l].start
            let size = symbols[l].length + symbols[r].length
            guard let t = tokenToID[TokenText(bytes: text[start..<(start + size)])], Int(t) < scores.count else {
                return
            }
            push(Candidate(score: scores[Int(t)], left: l, right: r, size: size))
        }
        for i in 1..<symbols.count { tryAdd(i - 1, i) }
        while !heap.isEmpty {
            let c = pop()
            let l = c.left, r = c.right
            if symbols[l].length == 0 || symbols[r].length == 0 || symbols[l].length + symbols[r].length != c.size {
                continue
            }
            symbols[l].length += symbols[r].length
            symbols[r].length = 0
            symbols[l].next = symbols[r].next
            if symbols[r].next >= 0 { symbols[symbols[r].next].prev = l }
            tryAdd(symbols[l].prev, l)
            tryAdd(l, symbols[l].next)
        }
        var i = 0
        while i != -1 {
            let s = symbols[i]
            let bytes = text[s.start..<(s.start + s.length)]
            if let t = tokenToID[TokenText(bytes: bytes)] {
                out.append(t)
            } else {
                for b in bytes {
                    let t = byteTokens[Int(b)]
                    if t >= 0 { out.append(t) } else if let u = unknown { out.append(u) }
                }
            }
            i = s.next
        }
    }

    /// Length of a UTF-8 sequence from its first byte (unicode.cpp's `unicode_len_utf8`).
    @inline(__always) static func utf8Length(_ b: UInt8) -> Int {
        switch b >> 4 {
        case 0xC, 0xD: return 2
        case 0xE: return 3
        case 0xF: return 4
        default: return 1
        }
    }
}
