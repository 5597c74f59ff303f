#!/usr/bin/env python3
"""Regenerate the scoring fixtures that Tests/AnalysisTests/Scoring/ScoringTests.swift
compares against, from the reference Python packages.

    pip install rouge_score==0.1.2 nltk   # fixtures were made with nltk 3.10.4
    python3 Tests/Fixtures/scoring/make_fixtures.py

Writes, next to this script:
- porter_stems.tsv: word, then its stem under NLTK's PorterStemmer in the
  modes NLTK_EXTENSIONS (what rouge_score uses), MARTIN_EXTENSIONS and
  ORIGINAL_ALGORITHM. Words: a hand-made list of tricky cases (the Porter
  paper's examples, NLTK's irregular forms and special rules, y handling,
  double consonants, short words, digits, upper case) plus words of the
  NIAH haystack (probes/niah/haystack/jargon-file-4.4.7.txt).
- rouge_cases.json: target/prediction pairs with rouge_score's tokens
  (stemmed) and ROUGE-1 / ROUGE-2 precision, recall, F (use_stemmer=True),
  and ROUGE-1 recall without stemming.
- needlebench_cases.json: OpenCompass NeedleBench v1/v2 single-needle scores.
  OpenCompass itself is not installed here: the score is restated below from
  opencompass/datasets/needlebench/origin.py (NeedleBenchOriginEvaluator.score,
  _trim_prediction) and needlebench_v2/origin.py, and the Levenshtein distance
  is an independent textbook DP (full matrix), cross-checked with
  nltk.edit_distance.
All output is deterministic (fixed seeds, sorted sets).
"""
import collections
import json
import os
import random
import re
import sys

import nltk
from nltk.metrics.distance import edit_distance
from nltk.stem.porter import PorterStemmer
from rouge_score import rouge_scorer, tokenize

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
HAYSTACK = os.path.join(ROOT, "probes", "niah", "haystack", "jargon-file-4.4.7.txt")
NEEDLES = os.path.join(ROOT, "probes", "niah", "needles.jsonl")

TRICKY = """
caresses ponies ties caress cats feed agreed plastered bled motoring sing conflated troubled sized
hopping tanned falling hissing fizzed failing filing happy sky relational conditional rational
valenci hesitanci digitizer conformabli radicalli differentli vileli analogousli vietnamization
predication operator feudalism decisiveness hopefulness callousness formaliti sensitiviti
sensibiliti triplicate formative formalize electriciti electrical hopeful goodness revival
allowance inference airliner gyroscopic adjustable defensible irritant replacement adjustment
dependent adoption homologou communism activate angulariti homologous effective bowdlerize
probate rate cease controll roll generalizations oscillators generalization oscillator
skies dying lying tying news innings inning outings outing cannings canning howe proceed exceed
succeed proceeding exceeded succeeds proceeds
dies lies pies cries spies flies fries tries ties vies
died lied pied cried spied tied vied dried fried tried denied applied carried hurried studied
spy fly try dry cry shy enjoy enjoyment toy boy syzygy yyy yy y ay ey yay yes yellow
radically finally totally hopefully skillfully beautifully carefully archaeology analogy
apology theology etymologi biologi geology ecology
controlling rolling filling spilling killing dwelling telling selling stall install
feed bleed need speed indeed greed breed agreed disagreed refereed
thing string bring ring king wing spring sting ding
bed shed red fled sled wed
is as us ow a ox be at it on no go so by my hi
abc123ing 2000s mp3s x86 h2o 4ever 1st 2nd 3rd 10th
Caresses PONIES Generalizations HoPpInG TaNNed
ration nation station action fraction relation relations relational rationalization
conditionally sensationalism operationally
ably ably. ably's
misspelling spelling spelled spelt
hacker hackers hacking hacked hackish hackishness hackery
computer computers computing computation computational computationally
organization organizations organizing organized organize
universal universality universally university universities
electric electricity electrical electrically electrician
adjust adjusting adjustment adjustments adjustable
connect connected connecting connection connections connective connectivity
generate generates generated generating generation generations generator generators
argue argued argues arguing argument arguments argumentative
possible possibly possibility possibilities impossible
happiness happier happiest happily unhappy
""".split()


def words_for_stems():
    stems_words = []
    seen = set()
    for w in TRICKY:
        if w not in seen:
            seen.add(w)
            stems_words.append(w)
    text = open(HAYSTACK, encoding="utf-8").read().lower()
    counts = collections.Counter(re.findall(r"[a-z]+", text))
    by_freq = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    top = [w for w in by_freq[:1200] if w not in seen]
    rest = sorted(w for w in by_freq[1200:] if w not in seen)
    step = max(1, len(rest) // 550)
    sample = rest[::step][:550]
    for w in top + sample:
        if w not in seen:
            seen.add(w)
            stems_words.append(w)
    return stems_words


def make_stems():
    modes = [PorterStemmer.NLTK_EXTENSIONS, PorterStemmer.MARTIN_EXTENSIONS, PorterStemmer.ORIGINAL_ALGORITHM]
    stemmers = [PorterStemmer(mode=m) for m in modes]
    words = words_for_stems()
    path = os.path.join(HERE, "porter_stems.tsv")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("word\tNLTK_EXTENSIONS\tMARTIN_EXTENSIONS\tORIGINAL_ALGORITHM\n")
        for w in words:
            f.write("\t".join([w] + [s.stem(w) for s in stemmers]) + "\n")
    print(f"{path}: {len(words)} words")


def rouge_pairs():
    needles = [json.loads(l) for l in open(NEEDLES, encoding="utf-8") if l.strip()]
    pairs = []
    for n in needles:
        a = n["real_needle"]
        pairs += [
            (a, a),
            (a, n["needle"]),
            (a, " " + a.upper() + "\n"),
            (a, "The answer is: " + a + " I hope this helps."),
            (a, " ".join(a.split()[: max(1, len(a.split()) // 2)])),
            (a, " ".join(reversed(a.split()))),
            (a, "I don't know."),
            (a, ""),
            (a, a.replace(" ", "")),
        ]
    pairs += [
        ("", ""), ("", "something"), ("something", ""), ("!!!", "..."),
        ("The cat sat on the mat.", "the cat the cat the cat"),
        ("the the the the", "the"),
        ("running runner runs ran", "run running ran runner"),
        ("İstanbul KELVIN \u212a city", "istanbul k kelvin city"),
        ("Café naïve résumé façade", "caf na ve r sum fa ade"),
        ("e-mail, co-operate; well-known: 3.14 ... 2,000", "email cooperate wellknown 3 14 2 000"),
        ("skies dying lying news innings proceed", "sky die lie news inning proceed"),
        ("records were once again broken", "Records Were ONCE again BROKEN!!!"),
        ("can't won't shouldn't", "can t won t shouldn t"),
        ("tab\tseparated\nnew\u00a0line\u2003em", "tab separated new line em"),
        ("Ελληνικά текст 中文 العربية", "greek text"),
        ("walks walking walked walker", "walk"),
        ("generalizations oscillators", "generalize oscillate"),
    ]
    # Sentences of the haystack against perturbed copies of themselves.
    text = open(HAYSTACK, encoding="utf-8").read()
    sents = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if 20 < len(s.strip()) < 300]
    rng = random.Random(1234)
    for _ in range(150):
        t = rng.choice(sents)
        words = t.split()
        kind = rng.randrange(4)
        if kind == 0:
            p = " ".join(w for w in words if rng.random() > 0.4)
        elif kind == 1:
            p = rng.choice(sents)
        elif kind == 2:
            w2 = words[:]
            rng.shuffle(w2)
            p = " ".join(w2) + " " + rng.choice(sents)
        else:
            p = t.lower().replace(",", "").replace("the ", "")
        pairs.append((t, p))
    return pairs


def make_rouge():
    stem = rouge_scorer.RougeScorer(["rouge1", "rouge2"], use_stemmer=True)
    nostem = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=False)
    cases = []
    for t, p in rouge_pairs():
        s = stem.score(t, p)
        u = nostem.score(t, p)
        cases.append({
            "target": t,
            "prediction": p,
            "target_tokens": stem._tokenizer.tokenize(t),
            "prediction_tokens": stem._tokenizer.tokenize(p),
            "rouge1": [s["rouge1"].precision, s["rouge1"].recall, s["rouge1"].fmeasure],
            "rouge2": [s["rouge2"].precision, s["rouge2"].recall, s["rouge2"].fmeasure],
            "rouge1_recall_nostem": u["rouge1"].recall,
        })
    path = os.path.join(HERE, "rouge_cases.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{path}: {len(cases)} cases")


# --- NeedleBench, restated from OpenCompass (see the module docstring) ---

WS = re.compile(r"\s+")


def levenshtein_matrix(a, b):
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return d[len(a)][len(b)]


def trim_prediction(pred, ref):
    lo, hi = int(0.8 * len(ref)), int(1.2 * len(ref))
    cut = pred[:hi]
    if len(cut) > lo and ref[-1] in cut[lo:]:
        cut = cut[: lo + cut[lo:].index(ref[-1]) + 1]
    return cut


def needlebench_v1(prediction, reference, keyword, use_trim=False):
    raw = prediction
    pred = WS.sub("", prediction)
    ref = WS.sub("", "\n" + reference + "\n")
    if use_trim:
        pred = trim_prediction(pred, ref)
    dist = levenshtein_matrix(pred, ref)
    assert dist == edit_distance(pred, ref)
    m = max(len(pred), len(ref))
    score = 100 * (1 - dist / m) if m != 0 else 100
    score = 100 if keyword in raw else 0.2 * score
    return score, dist


def make_needlebench():
    needles = [json.loads(l) for l in open(NEEDLES, encoding="utf-8") if l.strip()]
    cases = []
    for n in needles:
        ref, kw, ans = n["needle"], n["keyword"], n["real_needle"]
        for pred in [ref, ans, ans.lower(), "The answer: " + ans, "I do not know.", "",
                     ref[: len(ref) // 2], ref.replace(kw, kw.upper()), "  " + kw + "  ",
                     ref + " " + ref, ans.replace(" ", "\n")]:
            v1, dist = needlebench_v1(pred, ref, kw)
            v1t, _ = needlebench_v1(pred, ref, kw, use_trim=True)
            cases.append({"prediction": pred, "reference": ref, "keyword": kw, "levenshtein": dist,
                          "v1": v1, "v1_trim": v1t, "v2": 100 if kw in pred else 0})
    extra = [("kitten", "sitting", "sit"), ("", "", ""), ("", "abc", "x"), ("abc", "", "x"),
             ("flaw", "lawn", "law"), ("a\u00a0b\u2003c", "abc", "q"), ("naïve café", "naive cafe", "café"),
             ("Kelvin \u212a", "Kelvin K", "K"), ("x" * 40, "y" * 35 + "x", "z")]
    for pred, ref, kw in extra:
        v1, dist = needlebench_v1(pred, ref, kw)
        v1t = needlebench_v1(pred, ref, kw, use_trim=True)[0] if WS.sub("", ref) else None
        cases.append({"prediction": pred, "reference": ref, "keyword": kw, "levenshtein": dist,
                      "v1": v1, "v1_trim": v1t, "v2": 100 if kw in pred else 0})
    path = os.path.join(HERE, "needlebench_cases.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{path}: {len(cases)} cases")


if __name__ == "__main__":
    print(f"nltk {nltk.__version__}, python {sys.version.split()[0]}")
    make_stems()
    make_rouge()
    make_needlebench()
