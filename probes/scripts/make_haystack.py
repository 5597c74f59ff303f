#!/usr/bin/env python3
"""Build the NIAH haystack probes/niah/haystack/jargon-file-4.4.7.txt.

Source: the Jargon File, version 4.4.7 (29 Dec 2003), as shipped by the Debian
package `jargon-text` (/usr/share/doc/jargon-text/jargon.txt.gz). The Jargon
File is in the public domain (see probes/README.md for the notice).

What is kept: the prose paragraphs of the glossary entries, in file order
(alphabetical), until --max-bytes is reached (cut at an entry boundary).
What is dropped: the front matter, the chapters and appendices, the tables of
contents and the per-letter headword lists, the headword lines themselves
(":word: /pronunciation/, n."), indented examples and ASCII art (lines
indented deeper than the 3-space body margin), box-drawing tables, and the
"(The next cartoon in the Crunchly saga is ...)" navigation notes.
Each kept paragraph has its wrapped lines joined with single spaces, runs of
whitespace collapsed, the cross-reference braces of "{bit bucket}" removed,
and Unicode normalized to NFC; punctuation is kept as it is. Paragraphs are
separated by one blank line; the file ends with a newline.

Usage:
  python3 probes/scripts/make_haystack.py                       # defaults
  python3 probes/scripts/make_haystack.py --source jargon.txt.gz --out x.txt
  python3 probes/scripts/make_haystack.py --count-tokens MODEL.gguf
The output is deterministic for a given source file.
"""
import argparse
import gzip
import os
import re
import sys
import unicodedata

DEFAULT_SOURCE = "/usr/share/doc/jargon-text/jargon.txt.gz"
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "niah", "haystack", "jargon-file-4.4.7.txt")
DEFAULT_MODEL = os.path.expanduser("~/.cache/headlight/models/SmolLM2-135M-Instruct.Q4_1.gguf")

BOX = re.compile(r"[\u2500-\u257f]")          # box-drawing characters (tables)
ENTRY_HEAD = re.compile(r"^   :[^ ].*?:")     # ":headword: ..." starts an entry
LETTER_HEAD = re.compile(r"^  [^ ]")          # "  A": a letter section (2-space indent)
BODY_LINE = re.compile(r"^   [^ ]")           # body text sits at a 3-space margin


def read_source(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def glossary_lines(lines):
    """The lines of the glossary proper: after the second 'Glossary' heading
    (the first is in the chapter-12 table of contents) up to Appendix A (its heading uses a no-break space)."""
    starts = [i for i, l in enumerate(lines) if l == "Glossary"]
    if not starts:
        sys.exit("no 'Glossary' heading found: is this the Jargon File 4.4.7 text?")
    start = starts[-1] + 1
    end = next((i for i in range(start, len(lines)) if re.match(r"Appendix\s+A\.", lines[i])), None)
    if end is None:
        sys.exit("no 'Appendix A.' heading after the glossary")
    return lines[start:end]


def blocks(lines):
    """Blank-line separated blocks of raw lines."""
    cur = []
    for l in lines:
        if l.strip():
            cur.append(l)
        elif cur:
            yield cur
            cur = []
    if cur:
        yield cur


def clean(text):
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r"\{([^{}]*)\}", r"\1", text)   # {cross reference} -> cross reference
    return re.sub(r"\s+", " ", text).strip()


def entries(lines):
    """Yield (headword, [paragraph, ...]) for each glossary entry."""
    head, paras = None, []
    for b in blocks(lines):
        first = b[0]
        if LETTER_HEAD.match(first):               # new letter section: headword list follows
            if head is not None:
                yield head, paras
            head, paras = None, []
            continue
        m = ENTRY_HEAD.match(first)
        if m:
            if head is not None:
                yield head, paras
            head, paras = m.group(0).strip()[1:-1], []
            continue
        if head is None:                           # headword list of a letter section
            continue
        if not all(BODY_LINE.match(l) for l in b):  # examples, ASCII art, code
            continue
        if any(BOX.search(l) for l in b):          # tables
            continue
        text = clean(" ".join(l.strip() for l in b))
        if text.startswith("(The next cartoon in the Crunchly saga") or \
           text.startswith("(The previous cartoon in the Crunchly saga"):
            continue
        paras.append(text)
    if head is not None:
        yield head, paras


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default=DEFAULT_SOURCE)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--max-bytes", type=int, default=300_000,
                    help="stop after the entry that reaches this many UTF-8 bytes (0: whole glossary)")
    ap.add_argument("--count-tokens", nargs="?", const=DEFAULT_MODEL, default=None, metavar="GGUF",
                    help="print the token count under this model's tokenizer (needs llama-cpp-python)")
    args = ap.parse_args()

    out, size, n_entries = [], 0, 0
    for _, paras in entries(glossary_lines(read_source(args.source))):
        if not paras:
            continue
        for p in paras:
            out.append(p)
            size += len(p.encode("utf-8")) + 2
        n_entries += 1
        if args.max_bytes and size >= args.max_bytes:
            break
    text = "\n\n".join(out) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(f"{args.out}: {n_entries} entries, {len(out)} paragraphs, "
          f"{len(text.encode('utf-8'))} bytes, {len(text.split())} words")
    if args.count_tokens:
        from llama_cpp import Llama
        llm = Llama(model_path=args.count_tokens, vocab_only=True, verbose=False)
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        print(f"tokens ({os.path.basename(args.count_tokens)}, no BOS): {len(ids)}")


if __name__ == "__main__":
    main()
