import Foundation
import GGUF

/// One chat turn.
public struct ChatMessage: Sendable, Equatable, Codable {
    public var role: String
    public var content: String
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
    public static func system(_ s: String) -> ChatMessage { ChatMessage(role: "system", content: s) }
    public static func user(_ s: String) -> ChatMessage { ChatMessage(role: "user", content: s) }
    public static func assistant(_ s: String) -> ChatMessage { ChatMessage(role: "assistant", content: s) }
}

/// A chat template could not be recognized, or refused a conversation (as the Jinja template's
/// `raise_exception` would).
public struct ChatTemplateError: Error, LocalizedError, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorDescription: String? { message }
}

/// A model's chat format, recognized from its Jinja `tokenizer.chat_template` the way llama.cpp's
/// `llm_chat_detect_template` (src/llama-chat.cpp) does, and rendered natively.
///
/// Unlike llama.cpp's built-in renderer, `apply` reproduces what the template itself renders with
/// Jinja (Hugging Face settings) for the official templates of each family, including details such
/// as a default system prompt (SmolLM2, Qwen2), content trimming (Llama 3, Mistral v3), where
/// Mistral v3 puts the system prompt (in the last user turn), and the errors the templates raise
/// for conversations they reject (roles not alternating, roles they do not know).
///
/// The rendered text contains the template's special-token text (e.g. `<|im_start|>`, or `<s>`
/// when the template emits `bos_token`); tokenize it with special parsing. `Tokenizer.encodeChat`
/// drops a leading BOS text when the tokenizer adds BOS itself, as llama.cpp does.
public struct ChatTemplate: Sendable, Equatable {
    public enum Family: String, Sendable, CaseIterable {
        /// `<|im_start|>role\ncontent<|im_end|>\n` (SmolLM, Qwen, Hermes, ...).
        case chatml
        /// Meta's Llama-2-chat: `<s>[INST] <<SYS>>\n...\n<</SYS>>\n\nuser [/INST] answer </s>`.
        case llama2
        /// Mistral v0.1/v0.2 (`[INST] user [/INST]answer</s>`, no system role).
        case mistralLegacy = "mistral-legacy"
        /// Llama 3: `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>`.
        case llama3
        /// Llama 3.1 / 3.2: Llama 3 plus a system header with "Cutting Knowledge Date" / "Today Date".
        case llama31 = "llama3.1"
        /// Mistral "v1": ` [INST] user [/INST] answer</s>`.
        case mistralV1 = "mistral-v1"
        /// Mistral "v3": `[INST] user[/INST] answer</s>`, system prompt in the last user turn.
        case mistralV3 = "mistral-v3"
        /// Mistral "v3-tekken": as v3 without the spaces.
        case mistralV3Tekken = "mistral-v3-tekken"
        /// Mistral "v7": `[SYSTEM_PROMPT] ...[/SYSTEM_PROMPT][INST] user[/INST] answer</s>`.
        case mistralV7 = "mistral-v7"
        /// Gemma 2 / Gemma 3: `<bos><start_of_turn>user\ncontent<end_of_turn>\n<start_of_turn>model\n`;
        /// Gemma 3 puts a system prompt in front of the first user turn, Gemma 2 rejects it.
        case gemma
    }

    public let family: Family
    /// The Jinja source (or the family name it was created from).
    public let source: String
    public let bosToken: String
    public let eosToken: String
    /// ChatML templates that add a system turn when the conversation has none.
    public let defaultSystemPrompt: String?
    /// The default system turn is added even to an empty conversation (Qwen2.5 style: it sits
    /// before the message loop), rather than only before a first non-system message (SmolLM2).
    public let defaultSystemOutsideLoop: Bool
    /// Gemma 3: a system message becomes a prefix of the first turn (`first_user_prefix`); Gemma 2's
    /// template has no system role and raises instead.
    public let systemAsFirstUserPrefix: Bool
    /// Llama 3.1/3.2's `date_string` ("26 Jul 2024" unless the template uses `strftime_now`, then today).
    public var dateString: String

    /// Recognizes `template`: Jinja source, or a family name ("chatml", "llama2", "llama3",
    /// "mistral-v1", ...). Throws when the family is not one Headlight renders.
    public init(template: String, bosToken: String = "", eosToken: String = "") throws {
        source = template
        self.bosToken = bosToken
        self.eosToken = eosToken
        guard let family = Self.detect(template) else {
            throw ChatTemplateError(
                "unsupported chat template (Headlight renders ChatML, Llama 2, Llama 3, Mistral, Gemma); "
                    + "pass --no-chat to use the raw prompt text instead")
        }
        self.family = family
        if family == .chatml, let (prompt, outside) = Self.defaultSystem(in: template) {
            defaultSystemPrompt = prompt
            defaultSystemOutsideLoop = outside
        } else {
            defaultSystemPrompt = nil
            defaultSystemOutsideLoop = false
        }
        systemAsFirstUserPrefix = family == .gemma && (template == "gemma" || template.contains("first_user_prefix"))
        if template.contains("strftime_now") {
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.dateFormat = "dd MMM yyyy"
            dateString = f.string(from: Date())
        } else {
            dateString = "26 Jul 2024"
        }
    }

    /// The template in a GGUF file's `tokenizer.chat_template`, with its BOS/EOS token text.
    public init(gguf: GGUFFile) throws {
        guard let v = gguf.metadata["tokenizer.chat_template"] else {
            throw ChatTemplateError(
                "\(gguf.url.lastPathComponent) has no tokenizer.chat_template; "
                    + "pass --no-chat to use the raw prompt text instead")
        }
        guard let t = v.stringValue else {
            throw ChatTemplateError("'tokenizer.chat_template' should be a string, found \(v.typeName)")
        }
        var bos = "", eos = ""
        if let tokens = gguf.metadata["tokenizer.ggml.tokens"]?.arrayValue {
            func text(_ key: String) -> String {
                guard let i = gguf.metadata[key]?.intValue, i >= 0, i < tokens.count else { return "" }
                return tokens[i].stringValue ?? ""
            }
            bos = text("tokenizer.ggml.bos_token_id")
            eos = text("tokenizer.ggml.eos_token_id")
        }
        try self.init(template: t, bosToken: bos, eosToken: eos)
    }

    // MARK: - Detection

    /// llama.cpp's `llm_chat_detect_template`, restricted to the families rendered here.
    static func detect(_ t: String) -> Family? {
        switch t {
        case "chatml": return .chatml
        case "llama2", "llama2-sys", "llama2-sys-bos", "llama2-sys-strip": return .llama2
        case "llama3": return .llama3
        case "mistral-v1": return .mistralV1
        case "mistral-v3": return .mistralV3
        case "mistral-v3-tekken": return .mistralV3Tekken
        case "mistral-v7", "mistral-v7-tekken": return .mistralV7
        case "gemma": return .gemma
        default: break
        }
        if t.contains("<|im_start|>") {
            if t.contains("<|im_sep|>") || t.contains("<end_of_utterance>") { return nil } // phi4, smolvlm
            return .chatml
        }
        if t.hasPrefix("mistral") || t.contains("[INST]") {
            if t.contains("[SYSTEM_PROMPT]") { return .mistralV7 }
            if t.contains("' [INST] ' + system_message") || t.contains("[AVAILABLE_TOOLS]") {
                if t.contains(" [INST]") { return .mistralV1 }
                if t.contains("\"[INST]\"") { return .mistralV3Tekken }
                return .mistralV3
            }
            return t.contains("<<SYS>>") ? .llama2 : .mistralLegacy
        }
        // llama.cpp checks these families first; none of them is rendered here.
        if (t.contains("<|assistant|>") && t.contains("<|end|>")) || t.contains("[gMASK]<sop>")
            || (t.contains("<|assistant|>") && t.contains("<|user|>"))
        {
            return nil
        }
        if t.contains("<start_of_turn>") { return .gemma }
        if t.contains("<|start_header_id|>") && t.contains("<|end_header_id|>") {
            return t.contains("Cutting Knowledge Date") ? .llama31 : .llama3
        }
        return nil
    }

    /// A ChatML default system prompt: a string literal `'<|im_start|>system\n...<|im_end|>\n'` whose
    /// text is fixed (not built from a message). Also reports whether it sits before the message loop.
    static func defaultSystem(in t: String) -> (String, Bool)? {
        let marker = "<|im_start|>system"
        var searchStart = t.startIndex
        while let r = t.range(of: marker, range: searchStart..<t.endIndex) {
            searchStart = r.upperBound
            guard r.lowerBound > t.startIndex else { continue }
            let quote = t[t.index(before: r.lowerBound)]
            guard quote == "'" || quote == "\"" else { continue }
            guard let end = t.range(of: "<|im_end|>", range: r.upperBound..<t.endIndex) else { continue }
            let raw = t[r.upperBound..<end.lowerBound]
            guard !raw.contains(quote) else { continue } // built from a message, not a fixed prompt
            var body = unescapeJinja(String(raw))
            guard body.hasPrefix("\n") else { continue }
            body.removeFirst()
            let forLoop = t.range(of: "for message in messages") ?? t.range(of: "for message in loop_messages")
            let outside = forLoop.map { r.lowerBound < $0.lowerBound } ?? false
            return (body, outside)
        }
        return nil
    }

    private static func unescapeJinja(_ s: String) -> String {
        var out = ""
        var it = s.makeIterator()
        while let c = it.next() {
            guard c == "\\" else {
                out.append(c)
                continue
            }
            guard let n = it.next() else {
                out.append(c)
                break
            }
            switch n {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            default: out.append(n)
            }
        }
        return out
    }

    // MARK: - Rendering

    /// Renders the conversation as the model's template does.
    /// - Parameter addGenerationPrompt: end with the header of an assistant turn (ignored by
    ///   templates without one: Llama 2 and Mistral prompts already end ready for the answer).
    public func apply(messages: [ChatMessage], addGenerationPrompt: Bool) throws -> String {
        switch family {
        case .chatml: return try chatml(messages, addGenerationPrompt)
        case .llama2: return try llama2(messages)
        case .mistralLegacy: return try mistralLegacy(messages)
        case .llama3: return llama3(messages, addGenerationPrompt)
        case .llama31: return try llama31(messages, addGenerationPrompt)
        case .mistralV1: return try mistralV1(messages)
        case .mistralV3: return try mistralV3(messages, tekken: false)
        case .mistralV3Tekken: return try mistralV3(messages, tekken: true)
        case .mistralV7: return try mistralV7(messages)
        case .gemma: return try gemma(messages, addGenerationPrompt)
        }
    }

    private static let alternate = "Conversation roles must alternate user/assistant/user/assistant/..."
    private static let alternateAfterSystem =
        "After the optional system message, conversation roles must alternate user/assistant/user/assistant/..."
    private static let emptyConversation = "the template needs at least one message (it reads messages[0])"

    private func chatml(_ messages: [ChatMessage], _ gen: Bool) throws -> String {
        var out = ""
        if let prompt = defaultSystemPrompt {
            if defaultSystemOutsideLoop {
                guard let first = messages.first else { throw ChatTemplateError(Self.emptyConversation) }
                if first.role != "system" { out += "<|im_start|>system\n\(prompt)<|im_end|>\n" }
            } else if let first = messages.first, first.role != "system" {
                out += "<|im_start|>system\n\(prompt)<|im_end|>\n"
            }
        }
        for m in messages { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
        if gen { out += "<|im_start|>assistant\n" }
        return out
    }

    private func llama2(_ messages: [ChatMessage]) throws -> String {
        let (system, turns) = try Self.splitSystem(messages)
        var out = ""
        for (i, m) in turns.enumerated() {
            if (m.role == "user") != (i % 2 == 0) { throw ChatTemplateError(Self.alternate) }
            var content = m.content
            if i == 0, let system { content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + m.content }
            if m.role == "user" {
                out += bosToken + "[INST] " + Self.pythonStrip(content) + " [/INST]"
            } else if m.role == "assistant" {
                out += " " + Self.pythonStrip(content) + " " + eosToken
            }
        }
        return out
    }

    private func mistralLegacy(_ messages: [ChatMessage]) throws -> String {
        var out = bosToken
        for (i, m) in messages.enumerated() {
            if (m.role == "user") != (i % 2 == 0) { throw ChatTemplateError(Self.alternate) }
            switch m.role {
            case "user": out += "[INST] " + m.content + " [/INST]"
            case "assistant": out += m.content + eosToken
            default: throw ChatTemplateError("Only user and assistant roles are supported!")
            }
        }
        return out
    }

    private func llama3(_ messages: [ChatMessage], _ gen: Bool) -> String {
        var out = ""
        for (i, m) in messages.enumerated() {
            if i == 0 { out += bosToken }
            out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + Self.pythonStrip(m.content) + "<|eot_id|>"
        }
        if gen { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
        return out
    }

    private func llama31(_ messages: [ChatMessage], _ gen: Bool) throws -> String {
        let (leading, rest) = try Self.splitSystem(messages)
        let system = leading.map(Self.pythonStrip) ?? ""
        var out = bosToken + "<|start_header_id|>system<|end_header_id|>\n\n"
        out += "Cutting Knowledge Date: December 2023\nToday Date: " + dateString + "\n\n"
        out += system + "<|eot_id|>"
        for m in rest {
            if m.role == "tool" || m.role == "ipython" {
                throw ChatTemplateError("tool messages are not supported by Headlight's Llama 3.1 renderer")
            }
            out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + Self.pythonStrip(m.content) + "<|eot_id|>"
        }
        if gen { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
        return out
    }

    private func mistralV1(_ messages: [ChatMessage]) throws -> String {
        let (system, turns) = try Self.splitSystem(messages)
        var out = bosToken
        for (i, m) in turns.enumerated() {
            if (m.role == "user") != (i % 2 == 0) { throw ChatTemplateError(Self.alternateAfterSystem) }
            switch m.role {
            case "user":
                if i == 0, let system {
                    out += " [INST] " + system + "\n\n" + m.content + " [/INST]"
                } else {
                    out += " [INST] " + m.content + " [/INST]"
                }
            case "assistant":
                out += " " + m.content + eosToken
            default:
                throw ChatTemplateError(
                    "Only user and assistant roles are supported, "
                        + "with the exception of an initial optional system message!")
            }
        }
        return out
    }

    private func mistralV3(_ messages: [ChatMessage], tekken: Bool) throws -> String {
        let (system, rest) = try Self.splitSystem(messages)
        let turns = Array(rest)
        for (i, m) in turns.filter({ $0.role != "tool" && $0.role != "tool_results" }).enumerated() {
            if (m.role == "user") != (i % 2 == 0) { throw ChatTemplateError(Self.alternateAfterSystem) }
        }
        let sp = tekken ? "" : " "
        var out = bosToken
        for (i, m) in turns.enumerated() {
            switch m.role {
            case "user":
                if i == turns.count - 1, let system {
                    out += "[INST]" + sp + system + "\n\n" + m.content + "[/INST]"
                } else {
                    out += "[INST]" + sp + m.content + "[/INST]"
                }
            case "assistant":
                out += tekken ? m.content + eosToken : " " + Self.pythonStrip(m.content) + eosToken
            default:
                throw ChatTemplateError(
                    "Only user and assistant roles are supported, "
                        + "with the exception of an initial optional system message!")
            }
        }
        return out
    }

    private func mistralV7(_ messages: [ChatMessage]) throws -> String {
        var out = bosToken
        for m in messages {
            switch m.role {
            case "user": out += "[INST] " + m.content + "[/INST]"
            case "system": out += "[SYSTEM_PROMPT] " + m.content + "[/SYSTEM_PROMPT]"
            case "assistant": out += " " + m.content + eosToken
            default: throw ChatTemplateError("Only user, system and assistant roles are supported!")
            }
        }
        return out
    }

    /// Gemma 2 / 3: roles alternate user/model after an optional system message; "assistant" is
    /// written as "model"; content is trimmed; the BOS text leads.
    private func gemma(_ messages: [ChatMessage], _ gen: Bool) throws -> String {
        let (system, turns) = try Self.splitSystem(messages)
        if system != nil, !systemAsFirstUserPrefix { throw ChatTemplateError("System role not supported") }
        let prefix = system.map { $0 + "\n\n" } ?? ""
        var out = bosToken
        for (i, m) in turns.enumerated() {
            if (m.role == "user") != (i % 2 == 0) { throw ChatTemplateError(Self.alternate) }
            let role = m.role == "assistant" ? "model" : m.role
            out += "<start_of_turn>" + role + "\n" + (i == 0 ? prefix : "")
            out += Self.pythonStrip(m.content) + "<end_of_turn>\n"
        }
        if gen { out += "<start_of_turn>model\n" }
        return out
    }

    /// The content of a leading system message (nil without one) and the messages after it; an
    /// empty conversation is an error, as in the templates.
    static func splitSystem(_ messages: [ChatMessage]) throws -> (String?, ArraySlice<ChatMessage>) {
        guard let first = messages.first else { throw ChatTemplateError(Self.emptyConversation) }
        if first.role == "system" { return (first.content, messages.dropFirst()) }
        return (nil, messages[...])
    }

    /// Python's `str.strip()` (Jinja's `trim` filter): removes leading/trailing `str.isspace()` characters.
    static func pythonStrip(_ s: String) -> String {
        let scalars = s.unicodeScalars
        guard let start = scalars.firstIndex(where: { !isPythonSpace($0) }) else { return "" }
        let end = scalars.lastIndex(where: { !isPythonSpace($0) })!
        return String(scalars[start...end])
    }

    static func isPythonSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }
}

extension Tokenizer {
    /// Tokenizes a rendered chat prompt: special tokens parsed, BOS/EOS added as the model asks,
    /// and a leading BOS text from the template dropped when BOS is added anyway (as llama.cpp
    /// does), so the prompt never starts with two BOS tokens.
    public func encodeChat(_ rendered: String, template: ChatTemplate) -> [Int32] {
        var text = rendered
        if addBOS, let b = bos, !template.bosToken.isEmpty, template.bosToken == tokenString(b),
            text.hasPrefix(template.bosToken)
        {
            text.removeFirst(template.bosToken.count)
        }
        return encode(text, addSpecial: true, parseSpecial: true)
    }
}
