#!/usr/bin/env python3
"""Writes the tokenizer and chat-template fixtures used by Tests/InferenceTests/Tokenizer/TokenizerTests.swift
and ChatTemplateTests.swift.

  smollm2.json         llama.cpp's token ids for >= 300 strings with the default model's vocab
                       (SmolLM2-135M-Instruct: byte-level BPE, pre-tokenizer "smollm"), with and
                       without special-token parsing, plus llama.cpp's detokenization and token pieces.
  pretokenizers.json   llama.cpp's ids for the same strings with the default model's vocab and merges but
                       other pre-tokenizers (tokenizer.ggml.pre = llama-bpe, qwen2, gpt-2, default, starcoder),
                       written into a vocab-only GGUF: covers the Llama 3 / Qwen2 / GPT-2 / default scanners,
                       ignore_merges and clean_spaces without those models.
  spm.json             a small SentencePiece BPE vocab (trained here with the `sentencepiece` pip
                       package, byte fallback on) written as a Llama-style GGUF (tokenizer.ggml.model =
                       "llama"), and llama.cpp's ids / detokenization for a set of strings with it.
  gemma3.json          llama.cpp's ids, detokenization and pieces for the same strings (plus Gemma-specific
                       ones) with Gemma 3 270M's 262,144-token SentencePiece vocabulary
                       (`scripts/fetch-model.sh gemma3-270m`; skipped when the model is not cached).
  chat_templates.json  chat templates (the default model's own, plus hand-written templates in the
                       style of the official Llama-2 / Llama-3 / Mistral / Qwen ones), conversations,
                       and what jinja2 renders, with Hugging Face's settings (trim_blocks, lstrip_blocks).

Reference implementation: llama.cpp through llama-cpp-python (pip), loading vocabularies with
vocab_only=True and calling the C API (llama_tokenize, llama_detokenize, llama_token_to_piece)
directly. Deterministic: re-running with the same llama-cpp-python reproduces the files.

Usage: python3 Tests/Fixtures/tokenizer/make_fixtures.py [MODEL.gguf] [--only NAME,...]
       (default: $HEADLIGHT_MODEL, else ~/.cache/headlight/models/SmolLM2-135M-Instruct.Q4_1.gguf;
        NAME: smollm2, pretokenizers, chat, spm, gemma3 — default all)
"""

import ctypes
import hashlib
import importlib.metadata
import json
import os
import sys
import tempfile
import unicodedata
from pathlib import Path

import jinja2
try:
    import llama_cpp
except ImportError:  # only chat_templates.json can be written without it (metadata read with gguf-py)
    llama_cpp = None
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = Path(__file__).resolve().parent


def positional_args() -> list:
    args, skip = [], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
        elif a == "--only":
            skip = True
        elif not a.startswith("--only="):
            args.append(a)
    return args


def only() -> set:
    names = {"smollm2", "pretokenizers", "chat", "spm", "gemma3"}
    for i, a in enumerate(sys.argv[1:], start=1):
        if a == "--only" and i + 1 < len(sys.argv):
            return set(sys.argv[i + 1].split(","))
        if a.startswith("--only="):
            return set(a.split("=", 1)[1].split(","))
    return names


def cache_dir() -> Path:
    if os.environ.get("HEADLIGHT_CACHE"):
        return Path(os.environ["HEADLIGHT_CACHE"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "headlight"
    return Path.home() / ".cache/headlight"


GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"


def default_model() -> Path:
    if positional_args():
        return Path(positional_args()[0])
    if os.environ.get("HEADLIGHT_MODEL"):
        return Path(os.environ["HEADLIGHT_MODEL"])
    return Path.home() / ".cache/headlight/models/SmolLM2-135M-Instruct.Q4_1.gguf"


# --------------------------------------------------------------------------------------------
# Test strings
# --------------------------------------------------------------------------------------------

def test_strings() -> list:
    s = []
    # English prose
    s += [
        "Hello world",
        "Hello, world!",
        "The quick brown fox jumps over the lazy dog.",
        "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness.",
        "Call me Ishmael. Some years ago—never mind how long precisely—having little or no money in my purse, "
        "and nothing particular to interest me on shore, I thought I would sail about a little.",
        "In 1492, Columbus sailed the ocean blue.",
        "Mechanistic interpretability tries to reverse-engineer neural networks into human-understandable algorithms.",
        "She said, \"I'm not sure.\" Then she left.",
        "e.g. i.e. etc. Mr. Smith vs. Dr. Jones",
        "U.S.A. and U.K. are abbreviations.",
        "What?! No way... Really?",
        "A sentence with a trailing space ",
        " A sentence with a leading space",
        "Hello World",
        "HELLO WORLD",
        "hello world",
        "hElLo WoRlD",
        "The end.",
        "a",
        "I",
        " ",
        "",
        "Supercalifragilisticexpialidocious",
        "antidisestablishmentarianism",
        "Pneumonoultramicroscopicsilicovolcanoconiosis is a long word.",
        "The cat sat on the mat. The dog sat on the log.",
        "Tokenization is the first step; detokenization is the last.",
        "To be, or not to be, that is the question:",
        "Alice's Adventures in Wonderland",
        "Once upon a time, there was a little robot named Pip.",
    ]
    # contractions
    s += [
        "don't", "Don't", "DON'T", "I'm", "I'M", "i'm", "we'll", "We'LL", "they've", "THEY'VE", "you're",
        "YOU'RE", "he'd", "she's", "It's", "it'S", "can't won't shouldn't", "y'all", "rock 'n' roll",
        "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "''", "'", "'hello'", "\"quoted\"", "o'clock",
        "The students' books", "James's car", "’s curly apostrophe", "don’t (curly)", "' s", "'S", "'LL",
        "we 'll see", "l'homme", "aujourd'hui",
    ]
    # code
    s += [
        "def foo(x):\n    return x + 1\n",
        "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
        "import numpy as np\nx = np.zeros((3, 4), dtype=np.float32)\nprint(x.shape)",
        "class Foo(object):\n\tdef __init__(self):\n\t\tself.x = 1\n",
        "for i in range(10):\n    print(f\"{i:02d}\")",
        "lambda x, y: x ** 2 + y // 3 - (x % y)",
        "#include <stdio.h>\n\nint main(int argc, char **argv) {\n    printf(\"Hello, world!\\n\");\n    return 0;\n}\n",
        "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
        "static inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }",
        "x->next = NULL; p = &q; *p++ = 0;",
        "#define MAX(a, b) ((a) > (b) ? (a) : (b))",
        "{\"name\": \"headlight\", \"version\": \"0.1.0\", \"tags\": [\"gguf\", \"llm\"], \"n\": 42, \"ok\": true}",
        "{\n  \"a\": 1,\n  \"b\": [1, 2, 3],\n  \"c\": {\"d\": null}\n}",
        "[]{}()<>",
        "SELECT * FROM users WHERE id = 1 AND name LIKE '%bob%';",
        "<html><body><p class=\"x\">Hi</p></body></html>",
        "let xs = [1, 2, 3].map { $0 * 2 }",
        "fn main() { println!(\"{}\", 1 + 1); }",
        "if (a && b || !c) { x ^= y; } else if (a != b) { x |= 0xFF; }",
        "console.log(`template ${literal}`);",
        "$ ls -la | grep '.swift' > out.txt 2>&1",
        "https://github.com/ggml-org/llama.cpp/blob/master/src/llama-vocab.cpp",
        "user@example.com",
        "C:\\Windows\\System32\\drivers\\etc\\hosts",
        "path/to/some_file-name.v2.tar.gz",
        "snake_case_identifier camelCaseIdentifier PascalCase SCREAMING_CASE kebab-case",
        "a=b+c*d/e-f%g",
        "x<=y>=z==w!=v",
        "// comment\n/* block */\n# hash comment",
        "    indented with four spaces",
        "\tindented with a tab",
        "\t\ttwo tabs",
        "    \n    \n",
        "end of line    \nnext",
        "@decorator\ndef f(): pass",
        "0x1F 0b1010 0o777 1e-9 6.02e23",
    ]
    # whitespace runs
    s += [
        "\n", "\n\n", "\n\n\n", "\n\n\n\n\n\n\n\n", "\r\n", "\r\n\r\n", "\r", "\t", "\t\t\t", "  ", "   ",
        "          ", "  x", "   x", "x  ", "x   ", "x\n", "\nx", "x\n\ny", "x \n y", "x\t\ty", "x \t y",
        " \n \n ", "a  b   c    d", "trailing spaces   ", "   leading spaces", "a\u00a0b", "a\u3000b",
        "a\u2003b", "a\u2028b", "a\u0085b", "a\x0bb", "a\x0cb", " \u00a0 ", "\u00a0\u00a0x", "line1\nline2\nline3",
        "para1\n\npara2\n\n\npara3", "  \t  \n\t", "x \u00a0y", "\n \n", " \n", "\n ", "  \n  x",
    ]
    # digits and numbers
    s += [
        "0", "1", "12", "123", "1234", "12345", "123456", "1234567", "1234567890", "12345678901234567890",
        "3.14159", "3.14159265358979323846", "1,000,000", "1 000 000", "-42", "+42", "$100", "100%", "50/50",
        "2024-01-15", "12:34:56", "v1.2.3", "ISBN 978-3-16-148410-0", "007", "1st 2nd 3rd 4th", "a1b2c3",
        "x = 10 ** 9 + 7", "phone: +1 (555) 123-4567", "٣٤٥ Arabic-Indic digits", "१२३ Devanagari digits",
        "①②③ circled", "Ⅻ roman numeral", "½ ¾ ⅓", "²³ superscripts", "１２３ fullwidth", "1.5e-10",
        " 123", "  123", "abc123def456", "9999999999999999999999999999",
    ]
    # punctuation clusters
    s += [
        "!!!", "???", "...", "!?!?", "?!", "—", "–", "--", "---", "***", "###", "@@@", "$$$", "%%%", "^^^",
        "&&&", "|||", "~~~", "```", "```python\nprint(1)\n```", "<<>>", ":-)", ";-)", ":D", "(:", "¯\\_(ツ)_/¯",
        "«quotes» „German“ “curly” ‘single’", "…", "•bullet", "§ 1", "©®™", "←→↑↓", "∀x∈ℝ: x²≥0",
        "a.b,c;d:e!f?g", "(nested (parens [and {braces}]))", ".,;:!?", " .", " ,", " !", " ?", "hello ,world",
        "hello . world", "' ' '", "a ' b", "wait -- what", "=>", "->", "::", "#!/usr/bin/env python3",
    ]
    # accents and Latin scripts
    s += [
        "café", "naïve", "résumé", "façade", "coöperate", "jalapeño", "Zürich", "Ærøskøbing", "Łódź",
        "İstanbul", "straße", "STRASSE", "Crème brûlée", "Ελληνικά", "déjà vu", "e\u0301",  # decomposed é
        "cafe\u0301", "ñ vs n\u0303", "Å vs A\u030a", "ǅ ǈ ǋ titlecase", "ﬁ ligature", "Ｈｅｌｌｏ fullwidth",
        "Vietnamese: Tiếng Việt có dấu", "Polish: Zażółć gęślą jaźń", "Turkish: ıiİI", "Icelandic: Þórður",
    ]
    # CJK
    s += [
        "你好", "你好，世界！", "我爱自然语言处理。", "日本語のテキスト", "こんにちは世界", "カタカナ",
        "한국어 텍스트", "안녕하세요", "中文 English 混合 mixed", "漢字かな交じり文", "㐀㐁 ext-A", "𠀀𠀁 ext-B",
        "東京都渋谷区", "「引用」『二重』", "全角スペース　あり", "1月2日3時",
    ]
    # emoji
    s += [
        "😀", "😀😃😄", "👍", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇺🇸", "🇯🇵🇫🇷", "❤️", "♥", "☃", "⭐ star",
        "I ❤️ NY", "emoji at end 🎉", "🎉 emoji at start", "mixed😀text", "👩🏾‍💻 coder", "🧑‍🚀", "1️⃣2️⃣",
        "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "🫠🫡", "🤷‍♂️", "✌🏻", "🐍🦀🐹",
    ]
    # other scripts
    s += [
        "مرحبا بالعالم", "السلام عليكم ورحمة الله", "العربية ١٢٣", "שלום עולם", "नमस्ते दुनिया", "हिन्दी भाषा",
        "Привет, мир!", "Съешь же ещё этих мягких французских булок", "ПРИВЕТ", "Українська мова", "Ελλάδα",
        "ქართული", "Հայերեն", "ภาษาไทย", "ᐃᓄᒃᑎᑐᑦ", "አማርኛ", "தமிழ்", "বাংলা", "ਪੰਜਾਬੀ", "ગુજરાતી", "ꦧꦱꦗꦮ",
        "Ṁöṫöṙḧëäḋ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math", "𝐛𝐨𝐥𝐝", "ℌ𝔢𝔩𝔩𝔬",
    ]
    # unusual / invalid-looking / control characters
    s += [
        "\ufffd", "a\ufffdb", "\ufffd\ufffd\ufffd", "\u0301", "\u0301\u0301", " \u0301", "a\u0300\u0301\u0302",
        "\x00", "a\x00b", "\x01\x02\x03", "\x1b[31mred\x1b[0m", "\x7f", "\u200b", "a\u200bb", "\u200d", "\ufeff",
        "\ufeffBOM", "\u2060", "\u00ad soft hyphen", "\u202eRTL override", "\U0001F600\u200d", "\ue000 private use",
        "\U000F0000", "\u0378 unassigned", "\ufffe", "\uffff", "\U0010FFFF", "\u1680", "\u180e", "x\u034fy",
        "\u3164", "\u2800 braille", "ÿ", "\u0100", "\u00ff\u0100\u0101", "\u0080\u0081\u009f", "\u00a0",
    ]
    # special-token text
    s += [
        "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user", "<|im_start|>user\nHello<|im_end|>\n",
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
        "text<|endoftext|>more text", "Hello<|endoftext|>", "<|endoftext|>Hello", " <|endoftext|> ",
        "<|endoftext|><|endoftext|>", "<|im_start|><|im_end|>", "<|im_start", "im_start|>", "< |im_start|>",
        "<|IM_START|>", "<|im_start|> user", "<reponame>x<file_sep>y", "<jupyter_code>print(1)<jupyter_output>",
        "<filename>main.py", "<issue_start>bug<issue_comment>fix<issue_closed>", "<gh_stars>100",
        "<empty_output>", "<|endoftext|>\n\n", "a<|im_end|>b<|im_start|>c", "<s></s>", "[INST]", "<unk>",
        "<|eot_id|>", "<|start_header_id|>user<|end_header_id|>",
    ]
    # long repeated characters
    s += [
        "a" * 100, "a" * 1000, "ab" * 300, " " * 100, " " * 1000, "\n" * 200, "\t" * 50, "!" * 200, "0" * 300,
        "1234567890" * 30, "😀" * 100, "é" * 200, "你" * 200, "-" * 500, "=" * 80, "_" * 64, ". " * 100,
        "aaaa bbbb " * 50, "x" * 10000,
    ]
    # a longer mixed document
    s += [
        "# Headlight\n\nHeadlight is a **native** workbench for mechanistic interpretability of GGUF models.\n\n"
        "## Usage\n\n```sh\nheadlight tokenize -m model.gguf --text \"Hello\"\n```\n\n- item one\n- item two\n"
        "  - nested item\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n> quote\n\nLink: [docs](https://example.com/docs?q=1&r=2#x).\n",
        "Dear Sir/Madam,\n\nI am writing to inform you that your order #12345 has shipped on 2024-03-01.\n"
        "Total: $1,234.56 (incl. 20% VAT).\n\nRegards,\nJ. Doe\n",
        "Q: What's 2+2?\nA: 4.\nQ: And 10*10?\nA: 100!",
        "Mixed: English, Français, Deutsch, 日本語, Русский, العربية, हिन्दी, 한국어, emoji 🚀, math ∑ᵢ xᵢ².",
    ]
    # de-duplicate, keep order
    seen = set()
    out = []
    for x in s:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


# --------------------------------------------------------------------------------------------
# llama.cpp through llama-cpp-python's C bindings
# --------------------------------------------------------------------------------------------

class Vocab:
    def __init__(self, path: Path):
        llama_cpp.llama_backend_init()
        self.llm = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
        self.vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        self.n = llama_cpp.llama_vocab_n_tokens(self.vocab)

    def tokenize(self, text: str, add_special: bool, parse_special: bool) -> list:
        data = text.encode("utf-8")
        cap = len(data) + 16
        buf = (llama_cpp.llama_token * cap)()
        n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, parse_special)
        assert n >= 0, n
        return list(buf[:n])

    def detokenize(self, ids: list, remove_special: bool, unparse_special: bool) -> bytes:
        arr = (llama_cpp.llama_token * max(len(ids), 1))(*ids)
        cap = 64 + 64 * len(ids)
        buf = ctypes.create_string_buffer(cap)
        n = llama_cpp.llama_detokenize(self.vocab, arr, len(ids), buf, cap, remove_special, unparse_special)
        assert n >= 0, n
        return buf.raw[:n]

    def piece(self, token: int, special: bool) -> bytes:
        buf = ctypes.create_string_buffer(256)
        n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, 256, 0, special)
        assert n >= 0, n
        return buf.raw[:n]

    def info(self) -> dict:
        v = self.vocab
        def tid(x):
            return None if x < 0 else x
        return {
            "n_tokens": self.n,
            "bos": tid(llama_cpp.llama_vocab_bos(v)),
            "eos": tid(llama_cpp.llama_vocab_eos(v)),
            "eot": tid(llama_cpp.llama_vocab_eot(v)),
            "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(v)),
            "add_eos": bool(llama_cpp.llama_vocab_get_add_eos(v)),
            "eog": [i for i in range(self.n) if llama_cpp.llama_vocab_is_eog(v, i)],
            "control": [i for i in range(self.n) if llama_cpp.llama_vocab_is_control(v, i)],
        }


def text_or_hex(b: bytes) -> dict:
    try:
        return {"text": b.decode("utf-8")}
    except UnicodeDecodeError:
        return {"hex": b.hex()}


def cases_for(vocab: Vocab, strings: list) -> list:
    cases = []
    for text in strings:
        ids = vocab.tokenize(text, add_special=False, parse_special=True)
        ids_plain = vocab.tokenize(text, add_special=False, parse_special=False)
        ids_add = vocab.tokenize(text, add_special=True, parse_special=True)
        case = {
            "text": text,
            "ids": ids,
            "ids_no_special": ids_plain,
            "ids_add_special": ids_add,
        }
        # llama_detokenize(remove_special=false, unparse_special=true): what decode(ids) must return
        d = vocab.detokenize(ids, False, True)
        case["detok"] = text_or_hex(d)
        # llama_detokenize(remove_special=true, unparse_special=false) of ids_add: decode(skipSpecial: true)
        case["detok_skip"] = text_or_hex(vocab.detokenize(ids_add, True, False))
        cases.append(case)
    return cases


def fnv1a64(data: bytes, h: int = 0xCBF29CE484222325) -> int:
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def piece_digest(vocab: Vocab) -> dict:
    """All token pieces (special=true): FNV-1a 64 over (4-byte little-endian length, bytes) per token,
    plus an explicit sample for diagnostics."""
    h = 0xCBF29CE484222325
    sample = {}
    for i in range(vocab.n):
        p = vocab.piece(i, True)
        h = fnv1a64(len(p).to_bytes(4, "little") + p, h)
        if i < 400 or i % 97 == 0 or i >= vocab.n - 50:
            sample[str(i)] = p.hex()
    return {"fnv1a64": f"{h:016x}", "sample_hex": sample}


def gemma_strings() -> list:
    """Extra strings for Gemma's vocabulary: its control tokens, turn markers, whitespace runs and
    HTML-like user-defined tokens."""
    return [
        "<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>",
        "<start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\n",
        "<bos><start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n",
        "<start_of_image>", "<end_of_image>", "<image_soft_token>", "<unused0>", "<unused99>",
        "text<end_of_turn>more", "<start_of_turn", "start_of_turn>", "< start_of_turn>",
        "a  b   c    d     e", "\t\t\tindent", "line\n\n\nbreaks", "  leading two", "trailing two  ",
        "<table><tr><td>1</td></tr></table>", "<h1>Title</h1><p>para</p>", "<br>", "</div>",
        "[multimodal]", "<escape>", "**bold** and __underline__", "    four-space code", "\u00a0nbsp",
    ]


def gemma_fixture(model: Path, strings: list) -> dict:
    vocab = Vocab(model)
    cases = cases_for(vocab, strings + [x for x in gemma_strings() if x not in strings])
    info = vocab.info()
    h = 0xCBF29CE484222325
    sample = {}
    for i in range(vocab.n):
        p = vocab.piece(i, True)
        h = fnv1a64(len(p).to_bytes(4, "little") + p, h)
        if i < 300 or i % 1009 == 0 or i >= vocab.n - 20:
            sample[str(i)] = p.hex()
    return {
        "generator": "Tests/Fixtures/tokenizer/make_fixtures.py",
        "llama_cpp_python": importlib.metadata.version("llama-cpp-python"),
        "model": model.name,
        "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "info": info,
        "pieces": {"fnv1a64": f"{h:016x}", "sample_hex": sample},
        "cases": cases,
    }


# --------------------------------------------------------------------------------------------
# SentencePiece vocab -> Llama-style GGUF
# --------------------------------------------------------------------------------------------

SPM_CORPUS_EXTRA = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello world! Hello there, hello again.",
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, "
    "must be in want of a wife.",
    "Tokenizers split text into pieces; pieces map to ids.",
    "numbers like 1234 and 56.78 appear in text",
    "Mechanistic interpretability studies circuits in transformers.",
]


def spm_fixture(strings: list) -> dict:
    import sentencepiece as spm
    import gguf

    corpus_lines = []
    lic = Path("/usr/share/common-licenses")
    for name in ["Apache-2.0", "GPL-3", "Artistic", "MPL-2.0", "LGPL-2.1"]:
        p = lic / name
        if p.exists():
            corpus_lines += [ln.strip() for ln in p.read_text(errors="ignore").splitlines() if ln.strip()]
    corpus_lines += SPM_CORPUS_EXTRA * 20

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "corpus.txt").write_text("\n".join(corpus_lines))
        spm.SentencePieceTrainer.train(
            input=str(tmp / "corpus.txt"), model_prefix=str(tmp / "m"), vocab_size=800, model_type="bpe",
            byte_fallback=True, split_digits=True, normalization_rule_name="identity",
            add_dummy_prefix=True, remove_extra_whitespaces=False, character_coverage=1.0,
            bos_id=1, eos_id=2, unk_id=0, pad_id=-1, num_threads=1, minloglevel=2,
            allow_whitespace_only_pieces=True, split_by_whitespace=True,
        )
        sp = spm.SentencePieceProcessor(model_file=str(tmp / "m.model"))
        tokens, scores, types = [], [], []
        for i in range(sp.get_piece_size()):
            tokens.append(sp.id_to_piece(i))
            scores.append(float(sp.get_score(i)))
            if sp.is_unknown(i):
                types.append(2)
            elif sp.is_control(i):
                types.append(3)
            elif sp.is_byte(i):
                types.append(6)
            elif sp.is_unused(i):
                types.append(5)
            else:
                types.append(1)

        path = tmp / "spm.gguf"
        w = gguf.GGUFWriter(str(path), "llama")
        w.add_context_length(128)
        w.add_embedding_length(8)
        w.add_block_count(1)
        w.add_feed_forward_length(8)
        w.add_head_count(1)
        w.add_head_count_kv(1)
        w.add_layer_norm_rms_eps(1e-5)
        w.add_tokenizer_model("llama")
        w.add_token_list(tokens)
        w.add_token_scores(scores)
        w.add_token_types(types)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_unk_token_id(0)
        w.add_add_bos_token(True)
        w.add_add_eos_token(False)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()

        vocab = Vocab(path)
        spm_strings = [x for x in strings if len(x) <= 400]
        cases = cases_for(vocab, spm_strings)
        # sentencepiece's own ids, for information (normalization differs from llama.cpp on some inputs)
        for c in cases:
            c["sentencepiece_ids"] = sp.encode(c["text"])
        info = vocab.info()
        pieces = piece_digest(vocab)
        del vocab

    return {
        "tokens": tokens, "scores": scores, "token_types": types,
        "bos": 1, "eos": 2, "unk": 0, "add_bos": True, "add_eos": False,
        "info": info, "pieces": pieces, "cases": cases,
    }


PRETOKENIZERS = ["llama-bpe", "qwen2", "gpt-2", "default", "starcoder"]


def pretokenizer_fixture(model: Path, strings: list) -> dict:
    """The default model's vocab and merges under other pre-tokenizers."""
    import gguf

    reader = gguf.GGUFReader(str(model))

    def field_strings(name):
        f = reader.fields[name]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    tokens = field_strings("tokenizer.ggml.tokens")
    merges = field_strings("tokenizer.ggml.merges")
    tt = reader.fields["tokenizer.ggml.token_type"]
    types = [int(tt.parts[i][0]) for i in tt.data]

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pre in PRETOKENIZERS:
            path = Path(tmp) / f"{pre}.gguf"
            w = gguf.GGUFWriter(str(path), "llama")
            w.add_context_length(128)
            w.add_embedding_length(8)
            w.add_block_count(1)
            w.add_feed_forward_length(8)
            w.add_head_count(1)
            w.add_head_count_kv(1)
            w.add_layer_norm_rms_eps(1e-5)
            w.add_tokenizer_model("gpt2")
            w.add_tokenizer_pre(pre)
            w.add_token_list(tokens)
            w.add_token_types(types)
            w.add_token_merges(merges)
            w.add_bos_token_id(1)
            w.add_eos_token_id(2)
            w.add_add_bos_token(False)
            w.write_header_to_file()
            w.write_kv_data_to_file()
            w.write_tensors_to_file()
            w.close()
            vocab = Vocab(path)
            cases = []
            for text in strings:
                ids = vocab.tokenize(text, add_special=False, parse_special=True)
                cases.append({
                    "ids": ids,
                    "ids_no_special": vocab.tokenize(text, add_special=False, parse_special=False),
                    "detok": text_or_hex(vocab.detokenize(ids, False, True)),
                })
            out[pre] = {"info": vocab.info(), "cases": cases}
            del vocab
    return out


# --------------------------------------------------------------------------------------------
# Chat templates rendered with jinja2 (Hugging Face's settings)
# --------------------------------------------------------------------------------------------

# Hand-written templates in the style of the official ones (same structure and detection markers).
CHATML_PLAIN = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
QWEN2_STYLE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
QWEN25_STYLE = (
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "{%- else %}\n"
    "    {{- '<|im_start|>system\\nYou are Qwen, a helpful assistant.<|im_end|>\\n' }}\n"
    "{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or (message.role == \"assistant\") %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n"
)
LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}"
    "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
MISTRAL_LEGACY = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
MISTRAL_V1 = (
    "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content'] %}\n"
    "    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n\n"
    "{{- bos_token }}\n{%- for message in loop_messages %}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n"
    "        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}\n"
    "    {%- endif %}\n    {%- if message['role'] == 'user' %}\n"
    "        {%- if loop.first and system_message is defined %}\n"
    "            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n"
    "        {%- else %}\n            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n        {%- endif %}\n"
    "    {%- elif message['role'] == 'assistant' %}\n        {{- ' ' + message['content'] + eos_token}}\n"
    "    {%- else %}\n        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}\n"
    "    {%- endif %}\n{%- endfor %}\n"
)


def mistral_v3(tekken: bool) -> str:
    sp = "" if tekken else " "
    assistant = 'message["content"] + eos_token' if tekken else '" " + message["content"]|trim + eos_token'
    return (
        "{%- if messages[0][\"role\"] == \"system\" %}\n    {%- set system_message = messages[0][\"content\"] %}\n"
        "    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n"
        "{%- if not tools is defined %}\n    {%- set tools = none %}\n{%- endif %}\n"
        "{%- set user_messages = loop_messages | selectattr(\"role\", \"equalto\", \"user\") | list %}\n\n"
        "{%- for message in loop_messages | rejectattr(\"role\", \"equalto\", \"tool\") | rejectattr(\"role\", \"equalto\", \"tool_results\") | selectattr(\"tool_calls\", \"undefined\") %}\n"
        "    {%- if (message[\"role\"] == \"user\") != (loop.index0 % 2 == 0) %}\n"
        "        {{- raise_exception(\"After the optional system message, conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
        "    {%- endif %}\n{%- endfor %}\n\n"
        "{{- bos_token }}\n{%- for message in loop_messages %}\n    {%- if message[\"role\"] == \"user\" %}\n"
        "        {%- if tools is not none and (message == user_messages[-1]) %}\n"
        f"            {{{{- \"[AVAILABLE_TOOLS]{sp}[\" }}}}\n            {{{{- \"[/AVAILABLE_TOOLS]\" }}}}\n        {{%- endif %}}\n"
        "        {%- if loop.last and system_message is defined %}\n"
        f"            {{{{- \"[INST]{sp}\" + system_message + \"\\n\\n\" + message[\"content\"] + \"[/INST]\" }}}}\n"
        "        {%- else %}\n"
        f"            {{{{- \"[INST]{sp}\" + message[\"content\"] + \"[/INST]\" }}}}\n"
        "        {%- endif %}\n    {%- elif message[\"role\"] == \"assistant\" %}\n"
        f"        {{{{- {assistant}}}}}\n"
        "    {%- else %}\n        {{- raise_exception(\"Only user and assistant roles are supported, with the exception of an initial optional system message!\") }}\n"
        "    {%- endif %}\n{%- endfor %}\n"
    )


MISTRAL_V7 = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + '[/INST]' }}"
    "{% elif message['role'] == 'system' %}{{ '[SYSTEM_PROMPT] ' + message['content'] + '[/SYSTEM_PROMPT]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + eos_token }}"
    "{% else %}{{ raise_exception('Only user, system and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
LLAMA31 = (
    "{{- bos_token }}\n{%- if not date_string is defined %}\n    {%- set date_string = \"26 Jul 2024\" %}\n{%- endif %}\n"
    "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content']|trim %}\n"
    "    {%- set messages = messages[1:] %}\n{%- else %}\n    {%- set system_message = \"\" %}\n{%- endif %}\n"
    "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n"
    "{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n"
    "{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n"
    "{{- system_message }}\n{{- \"<|eot_id|>\" }}\n"
    "{%- for message in messages %}\n"
    "    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n{%- endif %}\n"
)
# Gemma 3's official template (google/gemma-3-*-it tokenizer_config.json), text parts only.
GEMMA3 = (
    "{{ bos_token }}\n{%- if messages[0]['role'] == 'system' -%}\n"
    "    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}\n"
    "    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}\n"
    "    {%- endif -%}\n    {%- set loop_messages = messages[1:] -%}\n{%- else -%}\n"
    "    {%- set first_user_prefix = \"\" -%}\n    {%- set loop_messages = messages -%}\n{%- endif -%}\n"
    "{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
    "    {%- endif -%}\n    {%- if (message['role'] == 'assistant') -%}\n        {%- set role = \"model\" -%}\n"
    "    {%- else -%}\n        {%- set role = message['role'] -%}\n    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n        {%- endfor -%}\n    {%- else -%}\n"
    "        {{ raise_exception(\"Invalid content type\") }}\n    {%- endif -%}\n"
    "    {{ '<end_of_turn>\n' }}\n{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n    {{'<start_of_turn>model\n'}}\n{%- endif -%}\n"
)
# Gemma 2's official template (google/gemma-2-*-it): no system role.
GEMMA2 = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)
UNKNOWN = "{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"


def conversations() -> list:
    sys_msg = {"role": "system", "content": "You are a terse assistant."}
    u1 = {"role": "user", "content": "Hello!"}
    a1 = {"role": "assistant", "content": "Hi there. How can I help?"}
    u2 = {"role": "user", "content": "What is 2+2?"}
    a2 = {"role": "assistant", "content": "4"}
    spaced = {"role": "user", "content": "  padded with spaces and a newline \n"}
    spaced_a = {"role": "assistant", "content": "\n  answer with padding  "}
    multiline = {"role": "user", "content": "Line one\nLine two\n\n```python\nprint('hi')\n```"}
    unicode_u = {"role": "user", "content": "café 日本語 😀 <|im_start|> [INST]"}
    return [
        {"name": "user", "messages": [u1]},
        {"name": "system_user", "messages": [sys_msg, u1]},
        {"name": "user_assistant_user", "messages": [u1, a1, u2]},
        {"name": "system_multi_turn", "messages": [sys_msg, u1, a1, u2, a2]},
        {"name": "ends_with_assistant", "messages": [u1, a1]},
        {"name": "whitespace", "messages": [sys_msg, spaced, spaced_a, spaced]},
        {"name": "multiline", "messages": [multiline]},
        {"name": "unicode", "messages": [unicode_u]},
        {"name": "empty_system", "messages": [{"role": "system", "content": ""}, u1]},
        {"name": "system_only", "messages": [sys_msg]},
        {"name": "two_users", "messages": [u1, u2]},
        {"name": "assistant_first", "messages": [a1, u1]},
        {"name": "empty", "messages": []},
    ]


def render_all(gguf_template: str, bos: str, eos: str) -> dict:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env.globals["raise_exception"] = raise_exception
    templates = [
        {"name": "gguf", "template": gguf_template, "bos_token": bos, "eos_token": eos, "family": "chatml"},
        {"name": "chatml", "template": CHATML_PLAIN, "bos_token": bos, "eos_token": eos, "family": "chatml"},
        {"name": "qwen2", "template": QWEN2_STYLE, "bos_token": "", "eos_token": "<|im_end|>", "family": "chatml"},
        {"name": "qwen2.5", "template": QWEN25_STYLE, "bos_token": "", "eos_token": "<|im_end|>", "family": "chatml"},
        {"name": "llama2", "template": LLAMA2, "bos_token": "<s>", "eos_token": "</s>", "family": "llama2"},
        {"name": "llama3", "template": LLAMA3, "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "family": "llama3"},
        {"name": "llama3.1", "template": LLAMA31, "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "family": "llama3.1"},
        {"name": "mistral-legacy", "template": MISTRAL_LEGACY, "bos_token": "<s>", "eos_token": "</s>", "family": "mistral-legacy"},
        {"name": "mistral-v1", "template": MISTRAL_V1, "bos_token": "<s>", "eos_token": "</s>", "family": "mistral-v1"},
        {"name": "mistral-v3", "template": mistral_v3(False), "bos_token": "<s>", "eos_token": "</s>", "family": "mistral-v3"},
        {"name": "mistral-v3-tekken", "template": mistral_v3(True), "bos_token": "<s>", "eos_token": "</s>", "family": "mistral-v3-tekken"},
        {"name": "mistral-v7", "template": MISTRAL_V7, "bos_token": "<s>", "eos_token": "</s>", "family": "mistral-v7"},
        {"name": "gemma3", "template": GEMMA3, "bos_token": "<bos>", "eos_token": "<eos>", "family": "gemma"},
        {"name": "gemma2", "template": GEMMA2, "bos_token": "<bos>", "eos_token": "<eos>", "family": "gemma"},
        {"name": "unknown", "template": UNKNOWN, "bos_token": "<s>", "eos_token": "</s>", "family": None},
    ]
    convs = conversations()
    for t in templates:
        tmpl = env.from_string(t["template"])
        renders = []
        for conv in convs:
            for gen in (False, True):
                r = {"conversation": conv["name"], "add_generation_prompt": gen}
                try:
                    r["expected"] = tmpl.render(messages=conv["messages"], add_generation_prompt=gen,
                                                bos_token=t["bos_token"], eos_token=t["eos_token"])
                except Exception as e:  # raise_exception, or an undefined messages[0] on an empty list
                    r["error"] = f"{type(e).__name__}: {e}"
                renders.append(r)
        t["renders"] = renders
    return {"jinja2_version": jinja2.__version__, "conversations": convs, "templates": templates}


# --------------------------------------------------------------------------------------------

def main():
    model = default_model()
    if not model.exists():
        sys.exit(f"model not found: {model}")
    which = only()
    strings = test_strings()
    print(f"{len(strings)} strings")
    if llama_cpp is None:
        if which - {"chat"}:
            sys.exit("llama-cpp-python is needed for " + ", ".join(sorted(which - {"chat"}))
                     + " (pip install llama-cpp-python); --only chat works without it")
        version = None
        vocab = info = None
    else:
        version = importlib.metadata.version("llama-cpp-python")
        vocab = Vocab(model)
        info = vocab.info()
    if "smollm2" in which:
        cases = cases_for(vocab, strings)
        pieces = piece_digest(vocab)
        out = {
            "generator": "Tests/Fixtures/tokenizer/make_fixtures.py",
            "llama_cpp_python": version,
            "model": model.name,
            "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
            "info": info,
            "pieces": pieces,
            "cases": cases,
        }
        (HERE / "smollm2.json").write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
        print(f"smollm2.json: {len(cases)} cases")

    if "pretokenizers" in which:
        pre = pretokenizer_fixture(model, strings)
        (HERE / "pretokenizers.json").write_text(json.dumps(
            {"llama_cpp_python": importlib.metadata.version("llama-cpp-python"),
             "strings": "smollm2.json cases, same order", "pretokenizers": pre}, ensure_ascii=False) + "\n")
        print(f"pretokenizers.json: {', '.join(pre)}")

    if "chat" in which:
        if vocab is not None:
            meta = vocab.llm.metadata
            template = meta.get("tokenizer.chat_template", "")
            bos_text = llama_cpp.llama_vocab_get_text(vocab.vocab, info["bos"]).decode() if info["bos"] is not None else ""
            eos_text = llama_cpp.llama_vocab_get_text(vocab.vocab, info["eos"]).decode() if info["eos"] is not None else ""
        else:
            import gguf
            fields = gguf.GGUFReader(str(model)).fields
            template = fields["tokenizer.chat_template"].contents() if "tokenizer.chat_template" in fields else ""
            tokens = fields["tokenizer.ggml.tokens"]

            def text(key):
                return tokens.contents(int(fields[key].contents())) if key in fields else ""
            bos_text, eos_text = text("tokenizer.ggml.bos_token_id"), text("tokenizer.ggml.eos_token_id")
        chat = render_all(template, bos_text, eos_text)
        if version is not None:
            chat["llama_cpp_python"] = version
        (HERE / "chat_templates.json").write_text(json.dumps(chat, ensure_ascii=False, indent=1) + "\n")
        print(f"chat_templates.json: {len(chat['templates'])} templates")

    if "spm" in which:
        spm_out = spm_fixture(strings)
        spm_out["llama_cpp_python"] = version
        spm_out["sentencepiece"] = importlib.metadata.version("sentencepiece")
        (HERE / "spm.json").write_text(json.dumps(spm_out, ensure_ascii=False, indent=1) + "\n")
        print(f"spm.json: {len(spm_out['tokens'])} tokens, {len(spm_out['cases'])} cases")

    if "gemma3" in which:
        gemma = cache_dir() / "models" / GEMMA_FILE
        if gemma.exists():
            g = gemma_fixture(gemma, strings)
            (HERE / "gemma3.json").write_text(json.dumps(g, ensure_ascii=False, indent=1) + "\n")
            print(f"gemma3.json: {len(g['cases'])} cases")
        else:
            print(f"{gemma} not found (scripts/fetch-model.sh gemma3-270m): gemma3.json left unchanged")


if __name__ == "__main__":
    main()
