#!/usr/bin/env python3
"""Regenerates Tests/Fixtures/bm25/bm25.json: BM25 scores from the PyPI package rank-bm25
(0.2.2, `BM25Okapi`, k1 = 1.5, b = 0.75, epsilon = 0.25), the reference for Headlight's BM25
(Sources/Analysis/QueryHeads/BM25.swift).

    pip install rank-bm25==0.2.2 numpy
    python3 Tests/Fixtures/bm25/make_fixtures.py      # from the repository root

Cases: the first 6 items of probes/qr/default.jsonl (each item's passages are one corpus, the
question the query, as `headlight query-heads` ranks them), plus hand-made corpora that reach the
corner cases: a term in more than half of the documents (negative idf, floored at
epsilon x mean idf), a term in exactly half (idf 0), repeated query terms (counted each time, as
rank-bm25 does), a query term in no document, an empty document, and non-ASCII letters.
Tokens: the text lowercased, split into maximal runs of Unicode letters and digits (regex
[^\\W_]+), the rule BM25.tokenize implements; the fixture stores them so tokenizer and scorer are
checked separately.
"""
import json
import re
from pathlib import Path

import rank_bm25
from rank_bm25 import BM25Okapi

ROOT = Path(__file__).resolve().parents[3]


def tokenize(text):
    return re.findall(r"[^\W_]+", text.lower())


def case(name, docs, query):
    corpus = [tokenize(d) for d in docs]
    q = tokenize(query)
    bm = BM25Okapi(corpus)
    return {
        "name": name, "documents": docs, "query": query, "document_tokens": corpus, "query_tokens": q,
        "scores": [float(s) for s in bm.get_scores(q)],
        "idf": {w: float(v) for w, v in sorted(bm.idf.items())}, "average_idf": float(bm.average_idf),
    }


def main():
    cases = []
    lines = (ROOT / "probes/qr/default.jsonl").read_text(encoding="utf-8").splitlines()
    for line in lines[:6]:
        it = json.loads(line)
        cases.append(case(it["id"], it["passages"], it["question"]))
    cases.append(case("negative-idf", [
        "the cat sat on the mat", "the dog sat on the log", "the bird flew over the house",
        "a fish swam in the pond", "the cat and the dog are friends"], "the cat sat the dog"))
    cases.append(case("zero-idf", ["apple pie", "apple tart", "pear pie", "plum jam"], "apple pie"))
    cases.append(case("missing-term", ["red car", "blue car", "green bus"], "yellow submarine car car"))
    cases.append(case("empty-document", ["alpha beta", "", "beta gamma delta", "alpha"], "alpha delta"))
    cases.append(case("unicode", ["Überlingen liegt am Bodensee", "Ærø is an island; Ærøskøbing its town",
                                  "Naïve café owners"], "ærø café über_lingen"))
    out = {"generator": "Tests/Fixtures/bm25/make_fixtures.py", "rank_bm25": getattr(rank_bm25, "__version__", "0.2.2"),
           "k1": 1.5, "b": 0.75, "epsilon": 0.25, "cases": cases}
    path = Path(__file__).with_name("bm25.json")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    print("wrote %s (%d cases)" % (path, len(cases)))


if __name__ == "__main__":
    main()
