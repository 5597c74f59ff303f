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
public protocol TextTokenizer {
    func encode(_ text: String, addSpecial: Bool) -> [Int32]
    func decode(_ ids: [Int32]) -> String
}
