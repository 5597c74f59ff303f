/// The two tokenizer operations NIAH trial construction needs.
///
/// Kept minimal so Analysis does not depend on a concrete tokenizer: the real
/// `Inference.Tokenizer` conforms through an extension, tests use small fakes.
///
/// - `encode(_:addSpecial:)`: token ids of `text`; with `addSpecial` the
///   tokenizer adds the special tokens its model adds to a fresh prompt
///   (BOS for Llama-style vocabularies, nothing for SmolLM2), the way Hugging
///   Face's `tokenizer(text)` / `add_special_tokens=True` does. Text of
///   control tokens (e.g. "<|im_start|>") must become those tokens, as
///   llama.cpp's `parse_special` does: chat prompts are encoded from text.
/// - `decode(_:)`: the text of `ids`, the inverse used by Wu et al.'s
///   `decode_tokens`. Trial construction decodes only haystack and needle
///   tokens, so how special tokens render does not matter unless
///   `NIAHContextBuilder.addSpecialTokens` is on.
/// - `pieceBytes(of:)`: the bytes one token contributes to decoded text
///   (llama.cpp's `token_to_piece`, without stripping a leading space), used
///   to find which prompt tokens carry the needle's text when the token-set
///   rule finds no window (`locateNeedleText`). The default decodes the
///   single token, which is right for tokenizers whose tokens are whole
///   characters; `Tokenizer` returns its raw piece bytes (a byte-level BPE
///   token may hold part of a UTF-8 sequence).
public protocol TextTokenizer {
    func encode(_ text: String, addSpecial: Bool) -> [Int32]
    func decode(_ ids: [Int32]) -> String
    func pieceBytes(of id: Int32) -> [UInt8]
}

extension TextTokenizer {
    public func pieceBytes(of id: Int32) -> [UInt8] { Array(decode([id]).utf8) }
}
