import ArgumentParser
import Foundation
import GGUF
import Inference

/// `headlight tokenize`: a model's token ids and pieces for some text.
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the token ids and pieces of a text, as llama.cpp tokenizes it.",
        discussion: """
            Reads the text from --text, else from standard input (kept byte for byte, including a final \
            newline; bytes that are not valid UTF-8 stay those bytes, shown as <0xXX>, except with \
            --chat, where the template needs text and they become U+FFFD). Special-token text such as <|im_start|> becomes its token unless --no-special; \
            BOS/EOS are added as the model asks (tokenizer.ggml.add_bos_token / add_eos_token). \
            With --chat the text is sent as one user message through the model's chat template, \
            followed by the assistant prompt.
            """)

    @Option(
        name: [.customShort("m"), .long],
        help: "Path to a .gguf file (default: $HEADLIGHT_MODEL or the cached SmolLM2-135M-Instruct).")
    var model: String?

    @Option(help: "The text to tokenize (default: read standard input).")
    var text: String?

    @Flag(help: "Print one JSON object {ids, pieces, count} instead of a table.")
    var json = false

    @Flag(name: .customLong("no-special"), help: "Tokenize special-token text (e.g. <|im_start|>) as plain text.")
    var noSpecial = false

    @Flag(help: "Wrap the text in the model's chat template as a user message, with the assistant prompt.")
    var chat = false

    func validate() throws {
        if chat && noSpecial {
            throw ValidationError("--chat needs special tokens; drop --no-special")
        }
    }

    func run() throws {
        let source = try ModelFile.open(model)
        let file = source.gguf
        let tokenizer = try source.tokenizer()
        let stdinBytes: [UInt8]? = text == nil ? Array(FileHandle.standardInput.readDataToEndOfFile()) : nil
        let input = text ?? String(decoding: stdinBytes!, as: UTF8.self)

        let ids: [Int32]
        if chat {
            let template: ChatTemplate
            do {
                template = try ChatTemplate(gguf: file)
            } catch let e as ChatTemplateError {
                throw CLIError(
                    e.message.replacingOccurrences(of: "; pass --no-chat to use the raw prompt text instead", with: ""),
                    hint: "omit --chat to tokenize the text as it is")
            }
            let rendered = try template.apply(messages: [.user(input)], addGenerationPrompt: true)
            ids = tokenizer.encodeChat(rendered, template: template)
        } else {
            // Standard input is tokenized as the bytes it holds (invalid UTF-8 included).
            ids =
                stdinBytes.map { tokenizer.encode(bytes: $0, addSpecial: true, parseSpecial: !noSpecial) }
                ?? tokenizer.encode(input, addSpecial: true, parseSpecial: !noSpecial)
        }
        let pieces = ids.map { Self.display(tokenizer.pieceBytes($0, special: true)) }
        if let bytes = stdinBytes, !chat, let lost = Self.unrepresentableByte(bytes, tokenizer: tokenizer) {
            FileHandle.standardError.write(
                Data(
                    (String(
                        format: "warning: byte 0x%02X (at offset %d) is not valid UTF-8 and ", lost.byte, lost.offset)
                        + "the model's vocabulary has no token for it: such bytes are left out\n").utf8))
        }

        if json {
            let object: [String: Any] = ["ids": ids.map { Int($0) }, "pieces": pieces, "count": ids.count]
            let data = try JSONSerialization.data(
                withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let idWidth = max(2, String(tokenizer.vocabSize - 1).count)
        let posWidth = max(1, String(max(ids.count - 1, 0)).count)
        var out = ""
        for (i, (id, piece)) in zip(ids, pieces).enumerated() {
            let pos = Self.pad(String(i), posWidth)
            let idText = Self.pad(String(id), idWidth)
            var line = "\(pos)  \(idText)  \(Self.quoted(piece))"
            if tokenizer.isSpecial(id) { line += "  (special)" }
            out += line + "\n"
        }
        out += "\(ids.count) token\(ids.count == 1 ? "" : "s")"
        print(out)
    }

    /// The first byte outside valid UTF-8 that the vocabulary cannot represent (no byte token; a
    /// byte-level vocabulary may lack 0xFE/0xFF, which never occur in UTF-8), or nil.
    static func unrepresentableByte(_ bytes: [UInt8], tokenizer: Tokenizer) -> (byte: UInt8, offset: Int)? {
        var i = 0
        var known: [UInt8: Bool] = [:]
        while i < bytes.count {
            let n = validSequenceLength(bytes, i)
            if n > 0 {
                i += n
                continue
            }
            let b = bytes[i]
            if known[b] == nil {
                known[b] = !tokenizer.encode(bytes: [b], addSpecial: false, parseSpecial: false).isEmpty
            }
            if known[b] == false { return (b, i) }
            i += 1
        }
        return nil
    }

    /// A piece as text; bytes that are not part of valid UTF-8 (a character split across tokens)
    /// are shown as <0xXX>, as llama.cpp names byte tokens.
    static func display(_ bytes: [UInt8]) -> String {
        var out = ""
        var i = 0
        while i < bytes.count {
            let n = validSequenceLength(bytes, i)
            if n > 0 {
                out += String(decoding: bytes[i..<(i + n)], as: UTF8.self)
                i += n
            } else {
                out += String(format: "<0x%02X>", bytes[i])
                i += 1
            }
        }
        return out
    }

    /// Length of the valid UTF-8 sequence starting at `i`, or 0 (the tokenizer's own check).
    static func validSequenceLength(_ b: [UInt8], _ i: Int) -> Int {
        b.withUnsafeBufferPointer { Tokenizer.validUTF8Length($0, i, end: $0.count) }
    }

    static func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }

    /// Single-quoted with escapes for quotes, backslashes and invisible characters.
    static func quoted(_ s: String) -> String {
        var out = "'"
        for u in s.unicodeScalars {
            switch u {
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "\\": out += "\\\\"
            case "'": out += "\\'"
            default:
                let v = u.value
                if v < 0x20 || v == 0x7F || (0x80...0x9F).contains(v) || v == 0xFEFF || (0x200B...0x200F).contains(v)
                    || (0x2028...0x202E).contains(v) || (0x2060...0x2064).contains(v)
                {
                    out += String(format: "\\u{%X}", v)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "'"
    }
}
