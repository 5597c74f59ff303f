#!/usr/bin/env python3
"""Build the citation probe sets probes/citation/default.jsonl and smoke.jsonl.

Every item is a list of numbered passages cut from the public-domain haystack
(probes/niah/haystack/jargon-file-4.4.7.txt, the Jargon File 4.4.7), a question
whose answer is a short span copied verbatim from exactly one of them (the
source), and a teacher-forced answer "SPAN [k]." citing it. The other passages
are distractors drawn from other paragraphs of the File. A share of the items
(--wrong, 15% by default) cite a distractor instead of the source on purpose;
`source` always names the true one, so attention faithfulness can be measured.

Passages: 1-3 consecutive sentences of one haystack paragraph, 200-500 UTF-8
bytes (about 40-120 tokens: the haystack averages 4.2 bytes per token under the
default model's tokenizer; --check-tokens prints the real distribution).
Passages holding "[", "]", "{" or "}" are not used (they could be mistaken for
citation markers), nor are passages of fewer than 8 words.

Questions, two kinds (alternating by a seeded coin):
- cloze: 'Fill in the blank with the exact words from the passages: "... ____ ..."'
  (the sentence around the span, cut to 14 words either side);
- continuation: 'In the passages, which words come right after "PREFIX"?'
  (PREFIX = the 4-8 words before the span in its sentence).
The span is 3-6 words from one sentence, with at least one word that occurs at
most 5 times in the whole haystack (so it is distinctive), no stopword at
either end, and plain word characters only.

Checks made for every item (the script stops if one fails): the span occurs,
after normalization (NFKC, lowercase, whitespace collapsed), in exactly one
passage of the item, exactly once there, and not in the question; the
question's context (cloze: the 4 words left of the blank; continuation: the
prefix) occurs in no distractor; passages are distinct; 5-20 passages.

Output: JSONL, one item per line, fields documented in probes/README.md
("Citation set"): id, passages, question, answer, gold, source,
wrong_citation, meta.

Usage:
  python3 probes/citation/make_citation_probes.py              # default.jsonl and smoke.jsonl
  python3 probes/citation/make_citation_probes.py --check-tokens [MODEL.gguf]
Deterministic for a given haystack (Python's random.Random, seeded).
"""
import argparse
import collections
import json
import os
import random
import re
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
HAYSTACK = os.path.join(HERE, "..", "niah", "haystack", "jargon-file-4.4.7.txt")
DEFAULT_MODEL = os.path.expanduser("~/.cache/headlight/models/SmolLM2-135M-Instruct.Q4_1.gguf")

MIN_BYTES, MAX_BYTES = 200, 500
STOP = set("""a an the and or but if of to in on at by for with from as is are was were be been being it its this that
these those there their they them he she his her we you your i me my our not no so than then too very can could
would should will shall may might must do does did done has have had into onto over under about after before
which who whom whose what when where why how all any some such one two also just only more most other out up
down off own same both each few nor until while again further once here""".split())
WORD = re.compile(r"^[A-Za-z][A-Za-z0-9'’\-]*$")
SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z“\"(])")


def norm(s):
    return " ".join(unicodedata.normalize("NFKC", s).lower().split())


def paragraphs(text):
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def candidate_passages(paras):
    """(paragraph index, passage text, sentence list) for every usable passage: 1-3 consecutive
    sentences, greedily grouped from the start of each paragraph."""
    out = []
    for pi, p in enumerate(paras):
        sents = SENT_SPLIT.split(p)
        i = 0
        while i < len(sents):
            group = [sents[i]]
            j = i + 1
            while j < len(sents) and len(group) < 3 and len(" ".join(group).encode()) < MIN_BYTES:
                group.append(sents[j])
                j += 1
            text = " ".join(group)
            n = len(text.encode())
            if MIN_BYTES <= n <= MAX_BYTES and not any(c in text for c in "[]{}") and len(text.split()) >= 8:
                out.append((pi, text, group))
            i = j
    return out


def word_counts(text):
    c = collections.Counter()
    for w in re.findall(r"[A-Za-z][A-Za-z0-9'’\-]*", text):
        c[w.lower()] += 1
    return c


def clean_word(w):
    """A span word without trailing punctuation, or None if it is not a plain word."""
    core = w.rstrip(".,;:!?")
    if not WORD.match(core) or core.endswith(("-", "'", "’")):
        return None
    return core


def spans_of(sentence, counts):
    """Candidate answer spans of one sentence: (start word, end word, span text)."""
    words = sentence.split()
    out = []
    for a in range(1, len(words)):              # never the sentence's first word
        for n in range(3, 7):
            b = a + n
            if b > len(words):
                break
            ws = words[a:b]
            # inner words must be plain; only the last may carry trailing punctuation
            if any(clean_word(w) != w for w in ws[:-1]):
                break
            last = clean_word(ws[-1])
            if last is None:
                break
            core = ws[:-1] + [last]
            if core[0].lower() in STOP or core[-1].lower() in STOP:
                if last != ws[-1]:
                    break
                continue
            if not any(counts[w.lower()] <= 5 for w in core):
                if last != ws[-1]:
                    break
                continue
            out.append((a, b, " ".join(core)))
            if last != ws[-1]:
                break                          # punctuation ends the phrase
    return out


def make_question(kind, sentence, a, b, span):
    words = sentence.split()
    if kind == "continuation":
        pre = words[max(0, a - 8):a]
        if len(pre) < 4:
            return None, None
        prefix = " ".join(pre)
        return f"In the passages, which words come right after \"{prefix}\"?", prefix
    left = words[max(0, a - 14):a]
    last = words[b - 1]
    tail = last[len(last.rstrip(".,;:!?")):]
    right = words[b:b + 14]
    text = " ".join(left) + " ____" + tail + (" " + " ".join(right) if right else "")
    if a - 14 > 0:
        text = "... " + text
    if b + 14 < len(words):
        text = text + " ..."
    context = " ".join(words[max(0, a - 4):a])
    return f"Fill in the blank with the exact words from the passages: \"{text}\"", context


def build(paras, count, seed, min_p, max_p, wrong_share, no_answer, prefix):
    text = "\n\n".join(paras)
    counts = word_counts(text)
    cands = candidate_passages(paras)
    normed = [norm(t) for _, t, _ in cands]
    # distinct passages only
    seen, keep = set(), []
    for i, n in enumerate(normed):
        if n not in seen:
            seen.add(n)
            keep.append(i)
    cands = [cands[i] for i in keep]
    normed = [normed[i] for i in keep]
    rng = random.Random(seed)
    order = list(range(len(cands)))
    rng.shuffle(order)
    items, used_paras = [], set()
    for ti in order:
        if len(items) == count:
            break
        pi, ptext, sents = cands[ti]
        if pi in used_paras:
            continue
        kind = "cloze" if rng.random() < 0.5 else "continuation"
        options = []
        for s in sents:
            if len(s.split()) < 8:
                continue
            for a, b, span in spans_of(s, counts):
                options.append((s, a, b, span))
        rng.shuffle(options)
        chosen = None
        for s, a, b, span in options:
            if norm(ptext).count(norm(span)) != 1:
                continue
            q, ctx = make_question(kind, s, a, b, span)
            if q is None or norm(span) in norm(q):
                continue
            chosen = (s, a, b, span, q, ctx)
            break
        if chosen is None:
            continue
        s, a, b, span, q, ctx = chosen
        n = rng.randint(min_p, max_p)
        pool = [i for i in range(len(cands))
                if cands[i][0] != pi and norm(span) not in normed[i] and norm(ctx) not in normed[i]]
        distract = rng.sample(pool, n - 1)
        pos = rng.randint(1, n)
        ids = distract[:pos - 1] + [ti] + distract[pos - 1:]
        passages = [cands[i][1] for i in ids]
        items.append({"target": ti, "pi": pi, "passages": passages, "source": pos, "span": span,
                      "question": q, "kind": kind, "context": ctx})
        used_paras.add(pi)
    if len(items) < count:
        sys.exit(f"only {len(items)} items could be built (asked for {count})")
    n_wrong = round(wrong_share * count) if wrong_share < 1 else int(wrong_share)
    wrong = set(rng.sample(range(count), n_wrong))
    remaining = [i for i in range(count) if i not in wrong]
    blank = set(rng.sample(remaining, no_answer)) if no_answer else set()
    out = []
    for i, it in enumerate(items):
        n = len(it["passages"])
        cite = it["source"]
        if i in wrong:
            cite = rng.choice([k for k in range(1, n + 1) if k != it["source"]])
        rec = {"id": f"{prefix}-{i:03d}", "passages": it["passages"], "question": it["question"]}
        if i not in blank:
            rec["answer"] = f"{it['span']} [{cite}]."
        rec["gold"] = it["span"]
        rec["source"] = it["source"]
        rec["wrong_citation"] = i in wrong
        rec["meta"] = {"kind": it["kind"], "haystack_paragraph": it["pi"], "cited": None if i in blank else cite}
        check(rec, it["context"])
        out.append(rec)
    return out


def check(rec, context):
    ps = [norm(p) for p in rec["passages"]]
    g = norm(rec["gold"])
    holding = [k + 1 for k, p in enumerate(ps) if g in p]
    assert holding == [rec["source"]], (rec["id"], holding)
    assert ps[rec["source"] - 1].count(g) == 1, rec["id"]
    assert g not in norm(rec["question"]), rec["id"]
    assert len(set(ps)) == len(ps), rec["id"]
    assert 5 <= len(ps) <= 20, rec["id"]
    c = norm(context)
    assert [k + 1 for k, p in enumerate(ps) if c in p] == [rec["source"]], (rec["id"], "context")
    if "answer" in rec:
        cites = [int(x) for x in re.findall(r"\[(\d+)\]", rec["answer"])]
        assert len(cites) == 1 and 1 <= cites[0] <= len(ps), rec["id"]
        assert (cites[0] != rec["source"]) == rec["wrong_citation"], rec["id"]


def write(path, items):
    with open(path, "w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps(it, ensure_ascii=False) + "\n")


def check_tokens(paths, model):
    from llama_cpp import Llama
    llm = Llama(model_path=model, vocab_only=True, verbose=False)
    for path in paths:
        lens = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                for p in json.loads(line)["passages"]:
                    lens.append(len(llm.tokenize(p.encode(), add_bos=False, special=False)))
        lens.sort()
        q = lambda x: lens[min(len(lens) - 1, int(x * len(lens)))]
        print(f"{os.path.basename(path)}: {len(lens)} passages, tokens min {lens[0]} p5 {q(.05)} "
              f"median {q(.5)} p95 {q(.95)} max {lens[-1]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--haystack", default=HAYSTACK)
    ap.add_argument("--out-dir", default=HERE)
    ap.add_argument("--check-tokens", nargs="?", const=DEFAULT_MODEL, default=None, metavar="MODEL",
                    help="print passage token counts under MODEL's tokenizer (needs llama-cpp-python)")
    a = ap.parse_args()
    with open(a.haystack, encoding="utf-8") as f:
        paras = paragraphs(f.read())
    default = build(paras, count=120, seed=20240601, min_p=5, max_p=20, wrong_share=0.15, no_answer=0,
                    prefix="cite")
    # smoke: small (tests), 2 wrong citations and 1 item without an answer (generated)
    smoke = build(paras, count=6, seed=7, min_p=5, max_p=6, wrong_share=2, no_answer=1, prefix="smoke")
    dp, sp = os.path.join(a.out_dir, "default.jsonl"), os.path.join(a.out_dir, "smoke.jsonl")
    write(dp, default)
    write(sp, smoke)
    for name, items in (("default.jsonl", default), ("smoke.jsonl", smoke)):
        ns = [len(it["passages"]) for it in items]
        print(f"{name}: {len(items)} items, {sum(it['wrong_citation'] for it in items)} wrong citations, "
              f"{sum('answer' not in it for it in items)} without answer, passages {min(ns)}-{max(ns)} "
              f"(total {sum(ns)})")
    if a.check_tokens:
        check_tokens([dp, sp], a.check_tokens)


if __name__ == "__main__":
    main()
