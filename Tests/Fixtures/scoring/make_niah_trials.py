#!/usr/bin/env python3
"""Reference NIAH trials for the default model, for
Tests/AnalysisTests/NIAH/NIAHRealTokenizerTests.swift.

    pip install llama-cpp-python
    python3 Tests/Fixtures/scoring/make_niah_trials.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]

Restates Wu et al.'s trial construction (nightdessert/Retrieval_Head,
retrieval_head_detection.py: read_context_files, encode_and_trim,
insert_needle with period_tokens = encode('.'), find_needle_idx) in plain
Python on llama.cpp's tokenizer (llama-cpp-python, vocab only), with the
choices Headlight documents: the haystack and the needle are encoded without
special tokens, the prompt with the model's specials (plain form) or as a
rendered chat text with special-token parsing and no added specials (chat
form). The chat wrapper here is a fixed SmolLM2-style string so the test does
not depend on chat-template rendering.

Writes niah_trials_smollm2.json: per trial the counts, insertion point, the
needle span and a checksum of the prompt ids.
"""
import json
import os
import sys

from llama_cpp import Llama

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
PROBES = os.path.join(ROOT, "probes", "niah")
CHAT_PREFIX = "<|im_start|>user\n"
CHAT_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n"


def model_path():
    if len(sys.argv) > 1:
        return sys.argv[1]
    if os.environ.get("HEADLIGHT_MODEL"):
        return os.environ["HEADLIGHT_MODEL"]
    cache = os.environ.get("HEADLIGHT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "headlight")
    return os.path.join(cache, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")


class Tok:
    def __init__(self, path):
        self.llm = Llama(model_path=path, vocab_only=True, verbose=False)

    def encode(self, text, add_special):
        return self.llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=True)

    def decode(self, ids):
        return self.llm.detokenize(ids, special=True).decode("utf-8", errors="replace")


def checksum(ids):
    h = 0
    for i, t in enumerate(ids):
        h = (h * 1000003 + t + i) % (1 << 61)
    return h


def main():
    tok = Tok(model_path())
    suite = json.load(open(os.path.join(PROBES, "default.json")))
    needles = {json.loads(l)["id"]: json.loads(l) for l in open(os.path.join(PROBES, suite["needles"])) if l.strip()}
    haystack_file = os.path.join(PROBES, suite["haystack"])
    buffer = suite["buffer"]
    lengths = [500, 1000, 2000, 4000]
    depths = [0, 10, 25, 50, 75, 90, 100]
    template = suite["template"]

    # read_context_files: repeat until max(lengths) words.
    once = open(haystack_file, "r").read()
    context = ""
    while len(context.split()) < max(lengths):
        context += once
    all_tokens = tok.encode(context, False)
    period = tok.encode(".", False)

    trials = []
    for nid in suite["needle_ids"]:
        n = needles[nid]
        needle_tokens = tok.encode(n["needle"], False)
        for length in lengths:
            # encode_and_trim
            trimmed = tok.decode(all_tokens[:length]) if len(all_tokens) > length else context
            for depth in depths:
                # insert_needle
                tc = tok.encode(trimmed, False)
                budget = length - buffer
                if len(tc) + len(needle_tokens) > budget:
                    tc = tc[: budget - len(needle_tokens)]
                if depth == 100:
                    requested = point = len(tc)
                    new = tc + needle_tokens
                else:
                    requested = point = int(len(tc) * (depth / 100))
                    head = tc[:point]
                    while head and head[-1] not in period:
                        point -= 1
                        head = tc[:point]
                    new = head + needle_tokens + tc[point:]
                ctx_text = tok.decode(new)
                for chat in (False, True):
                    body = template if chat else "{context}Based on the content of the book, Question: {question}\nAnswer:"
                    body = body.replace("{context}", ctx_text, 1).replace("{question}", n["question"], 1)
                    if chat:
                        prompt = tok.encode(CHAT_PREFIX + body + CHAT_SUFFIX, False)
                    else:
                        prompt = tok.encode(body, True)
                    # find_needle_idx
                    answer = tok.encode(n["real_needle"], False)
                    s, e = -1, -1
                    for i in range(len(prompt)):
                        window = set(prompt[i:i + len(answer)])
                        if len(window & set(answer)) / len(set(answer)) > 0.9:
                            s, e = i, i + len(answer)
                            break
                    trials.append({
                        "needle_id": nid, "length": length, "depth": depth, "chat": chat,
                        "haystack_tokens": len(tc), "needle_tokens": len(needle_tokens),
                        "context_tokens": len(new), "requested": requested, "insertion": point,
                        "prompt_tokens": len(prompt), "prompt_checksum": str(checksum(prompt)),
                        "answer_tokens": len(answer), "span": [s, e],
                    })
    out = os.path.join(HERE, "niah_trials_smollm2.json")
    with open(out, "w") as f:
        json.dump({"model": os.path.basename(model_path()), "haystack_total_tokens": len(all_tokens),
                   "period_tokens": period, "chat_prefix": CHAT_PREFIX, "chat_suffix": CHAT_SUFFIX,
                   "trials": trials}, f, indent=1)
        f.write("\n")
    found = sum(1 for t in trials if t["span"][0] >= 0)
    print(f"{out}: {len(trials)} trials, needle span found in {found}; haystack {len(all_tokens)} tokens")


if __name__ == "__main__":
    main()
