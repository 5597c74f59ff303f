/// A vocabulary string as a dictionary key compared byte for byte.
///
/// Swift's `String` equality is Unicode canonical equivalence: U+037E GREEK QUESTION MARK equals
/// ";" and a precomposed "é" equals "e" + U+0301. llama.cpp's `token_to_id` map compares bytes, and
/// real vocabularies hold such pairs as distinct tokens (Gemma 3: ";" is 236793, U+037E is 248374),
/// so a `[String: Int32]` map would send one of them to the other's id.
struct TokenText: Hashable {
    let bytes: [UInt8]

    init(_ text: String) { bytes = Array(text.utf8) }

    init<S: Sequence>(bytes: S) where S.Element == UInt8 { self.bytes = Array(bytes) }
}
