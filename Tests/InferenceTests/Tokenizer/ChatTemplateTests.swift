// Chat templates against jinja2.
//
// Tests/Fixtures/tokenizer/chat_templates.json (make_fixtures.py) holds the default model's own
// template plus hand-written templates in the style of the official ChatML / Qwen / Llama 2 /
// Llama 3 / Llama 3.1 / Mistral / Gemma 2 / Gemma 3 ones, 13 conversations, and what jinja2 renders for each with and
// without a generation prompt (or the error the template raises). ChatTemplate must detect the
// family and render exactly the same text, or throw where Jinja throws.

import Foundation
import XCTest
@testable import GGUF
@testable import Inference

final class ChatTemplateTests: XCTestCase {
    struct Message: Decodable {
        let role: String
        let content: String
    }

    struct Conversation: Decodable {
        let name: String
        let messages: [Message]
    }

    struct Render: Decodable {
        let conversation: String
        let add_generation_prompt: Bool
        let expected: String?
        let error: String?
    }

    struct Template: Decodable {
        let name: String
        let template: String
        let bos_token: String
        let eos_token: String
        let family: String?
        let renders: [Render]
    }

    struct Fixture: Decodable {
        let jinja2_version: String
        let conversations: [Conversation]
        let templates: [Template]
    }

    static func fixture() throws -> Fixture {
        let url = TokenizerTests.fixtures.appendingPathComponent("chat_templates.json")
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    func testRendersLikeJinja() throws {
        let f = try Self.fixture()
        let conversations = Dictionary(
            uniqueKeysWithValues: f.conversations.map {
                ($0.name, $0.messages.map { ChatMessage(role: $0.role, content: $0.content) })
            })
        var total = 0, matched = 0
        var firstFailure: String?
        for t in f.templates {
            guard let family = t.family else {
                // Not a family Headlight renders: the error must point at --no-chat.
                XCTAssertThrowsError(
                    try ChatTemplate(template: t.template, bosToken: t.bos_token, eosToken: t.eos_token)
                ) {
                    XCTAssertTrue("\($0)".contains("--no-chat"), "\($0)")
                }
                continue
            }
            let tmpl = try ChatTemplate(template: t.template, bosToken: t.bos_token, eosToken: t.eos_token)
            XCTAssertEqual(tmpl.family.rawValue, family, "family of template \(t.name)")
            for r in t.renders {
                total += 1
                let messages = conversations[r.conversation]!
                let label = "\(t.name) / \(r.conversation) / gen=\(r.add_generation_prompt)"
                do {
                    let got = try tmpl.apply(messages: messages, addGenerationPrompt: r.add_generation_prompt)
                    if let want = r.expected, got == want {
                        matched += 1
                    } else if firstFailure == nil {
                        firstFailure =
                            "\(label):\n  expected \(r.expected.map { String(reflecting: $0) } ?? "error \(r.error!)")"
                            + "\n  got      \(String(reflecting: got))"
                    }
                } catch {
                    if r.error != nil {
                        matched += 1
                    } else if firstFailure == nil {
                        firstFailure = "\(label): threw \(error), expected \(String(reflecting: r.expected!))"
                    }
                }
            }
        }
        print("[chat] jinja2 \(f.jinja2_version): \(matched)/\(total) renders identical (errors where Jinja raises)")
        if let firstFailure { print("[chat] first mismatch: \(firstFailure)") }
        XCTAssertEqual(matched, total)
    }

    func testSmolLM2DefaultSystemPrompt() throws {
        let f = try Self.fixture()
        let gguf = f.templates.first { $0.name == "gguf" }!
        let t = try ChatTemplate(template: gguf.template, bosToken: gguf.bos_token, eosToken: gguf.eos_token)
        XCTAssertEqual(t.family, .chatml)
        XCTAssertEqual(t.defaultSystemPrompt, "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        XCTAssertFalse(t.defaultSystemOutsideLoop)
        XCTAssertEqual(
            try t.apply(messages: [.user("Hi")], addGenerationPrompt: true),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
                + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    }

    func testDetectionByName() throws {
        XCTAssertEqual(try ChatTemplate(template: "chatml").family, .chatml)
        XCTAssertEqual(try ChatTemplate(template: "llama3").family, .llama3)
        XCTAssertEqual(try ChatTemplate(template: "mistral-v7").family, .mistralV7)
        XCTAssertEqual(try ChatTemplate(template: "llama2-sys").family, .llama2)
        XCTAssertEqual(try ChatTemplate(template: "gemma").family, .gemma)
        XCTAssertEqual(try ChatTemplate(template: "{{ '<start_of_turn>user' }}").family, .gemma)
        // Known to llama.cpp but not rendered here (Phi-3, Zephyr-like): clear error.
        for t in ["{{ '<|user|>' }}{{ '<|assistant|>' }}{{ '<|end|>' }}", "{{ x }}"] {
            XCTAssertThrowsError(try ChatTemplate(template: t)) { XCTAssertTrue("\($0)".contains("--no-chat")) }
        }
    }

    /// With the default model: the template from the GGUF, and encodeChat's ids.
    func testFromModel() throws {
        let t = try TokenizerTests.smolTokenizer.get()
        let file = try GGUFFile(url: TokenizerTests.defaultModelPath)
        let tmpl = try ChatTemplate(gguf: file)
        XCTAssertEqual(tmpl.family, .chatml)
        XCTAssertEqual(tmpl.bosToken, "<|im_start|>")
        XCTAssertEqual(tmpl.eosToken, "<|im_end|>")
        let text = try tmpl.apply(messages: [.system("Be brief."), .user("Hi")], addGenerationPrompt: true)
        let ids = t.encodeChat(text, template: tmpl)
        // add_bos is false for SmolLM2, so nothing is stripped and no BOS is added.
        XCTAssertEqual(ids, t.encode(text, addSpecial: true, parseSpecial: true))
        XCTAssertEqual(ids.first, 1)
        XCTAssertEqual(ids.filter { $0 == 1 }.count, 3) // three <|im_start|>
        XCTAssertEqual(t.decode(ids), text)
    }

    /// A template that emits the BOS text, with a tokenizer that adds BOS: no double BOS.
    func testEncodeChatDropsTemplateBOS() throws {
        let f = try TokenizerTests.load("spm.json", as: TokenizerTests.SPMFixture.self)
        let t = try Tokenizer(gguf: TokenizerTests.spmGGUF(f))
        let tmpl = try ChatTemplate(template: "llama2", bosToken: "<s>", eosToken: "</s>")
        let text = try tmpl.apply(messages: [.user("Hello")], addGenerationPrompt: true)
        XCTAssertEqual(text, "<s>[INST] Hello [/INST]")
        let ids = t.encodeChat(text, template: tmpl)
        XCTAssertEqual(ids.filter { $0 == t.bos }.count, 1)
        XCTAssertEqual(ids.first, t.bos)
    }

    func testPythonStrip() {
        XCTAssertEqual(ChatTemplate.pythonStrip("  \n\t x y \u{3000}\u{85}"), "x y")
        XCTAssertEqual(ChatTemplate.pythonStrip("\u{1C}a\u{1F}"), "a")
        XCTAssertEqual(ChatTemplate.pythonStrip("\u{200B}a"), "\u{200B}a") // ZWSP is not whitespace
        XCTAssertEqual(ChatTemplate.pythonStrip("   "), "")
    }
}
