#!/usr/bin/env python3
"""Regenerates probes/qr/default.jsonl: the labelled multi-passage set of `headlight query-heads`.

Synthetic facts about invented towns, so no passage is a copy of text the model was trained on
(names are built from syllables; each (town, attribute) value is drawn at random). Deterministic:
a fixed seed and Python's `random.Random` (Mersenne Twister, stable across CPython versions for
`random()`, `randrange`, `shuffle` and `choice`), no other input. Run from the repository root:

    python3 probes/qr/make_qr_probes.py            # writes probes/qr/default.jsonl
    python3 probes/qr/make_qr_probes.py --check    # exits 1 if the committed file differs

Each item: a question about one attribute of one town, 8 passages, exactly one of which (the gold
passage, `source`, 1-based) states that attribute of that town. Distractors (see probes/README.md,
"Query-focused retrieval set"): 2 passages about the same town stating other attributes (share the
town's name), 3 passages stating the same attribute of other towns (share the relation words),
2 passages about other towns and attributes. In half the items ("paraphrase") the gold passage
words the relation differently from the question while the same-attribute distractors use the
question's words: lexical matching (BM25) is led astray there by design; in the other half
("lexical") every passage uses the question's wording.

The output is in the citation probe format (probes/README.md, "Citation set"), so `headlight cite`
reads it too: `answer` is the gold text followed by the gold passage's marker.
"""
import argparse
import json
import random
import sys
from pathlib import Path

SEED = 20250516
N_TOWNS = 40
N_ITEMS = 80
N_PASSAGES = 8

ONSETS = ["b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kr", "l", "m", "n", "p", "pr", "r", "s", "st",
          "t", "tr", "v", "w", "z", "th", "sk"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ei", "ou", "y"]
CODAS = ["", "n", "r", "l", "s", "th", "m", "nd", "rk", "lt", "sh", "x"]
TOWN_ENDS = ["holt", "mere", "wick", "stead", "ford", "vale", "burg", "haven", "moor", "by"]

GOODS = ["copper kettles", "glass beads", "woollen blankets", "dried plums", "cedar barrels", "tin whistles",
         "salted herring", "clay tiles", "linen sails", "walnut oil", "iron nails", "honey cakes",
         "felt hats", "slate roofing", "rope ladders", "brass bells", "goat cheese", "paper lanterns",
         "oak chairs", "amber combs", "silk ribbons", "pickled onions", "leather boots", "wax candles"]
FESTIVAL_THEMES = ["lantern", "harvest", "kite", "river", "bread", "frost", "mask", "bell", "chestnut",
                   "sail", "candle", "orchard", "drum", "thistle", "moth", "ferry"]
ANIMALS = ["grey heron", "red fox", "otter", "kestrel", "badger", "white stork", "hedgehog", "raven",
           "lynx", "salamander", "barn owl", "ibex", "marten", "kingfisher", "hare", "beaver"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]

# attribute: question template, lexical fact template, paraphrased fact template, value maker.
# {t} = town, {v} = value. The lexical fact repeats the question's content words; the paraphrase
# avoids them.
ATTRIBUTES = {
    "export": ("What is the chief export of {t}?",
               "The chief export of {t} is {v}.",
               "Merchants who leave {t} by cart mostly carry {v} to sell in distant markets."),
    "founder": ("Who founded the town of {t}?",
                "The town of {t} was founded by {v}.",
                "Old records say the first houses at {t} were built by {v} and her kin."),
    "year": ("In what year was the bridge of {t} built?",
             "The bridge of {t} was built in the year {v}.",
             "Stonemasons finished the crossing over the water at {t} in {v}."),
    "festival": ("Which festival is held in {t} every spring?",
                 "Every spring {t} holds the {v}.",
                 "When the snow melts, people crowd the streets of {t} for the {v}."),
    "animal": ("What animal appears on the flag of {t}?",
               "The flag of {t} shows a {v}.",
               "Banners flown above the gates of {t} carry the image of a {v}."),
    "river": ("What is the name of the river that flows through {t}?",
              "The river that flows through {t} is named the {v}.",
              "Children in {t} learn to swim in the {v}, whose current runs past the market."),
    "market": ("On which day is the market of {t} held?",
               "The market of {t} is held every {v}.",
               "Stalls go up in the square of {t} each {v} and are gone by dusk."),
    "mountain": ("Which mountain can be seen from {t}?",
                 "From {t} one can see {v}.",
                 "On clear mornings the peak of {v} rises above the roofs of {t}."),
}

FILLERS = [
    "Visitors often remark on the narrow lanes and the smell of wood smoke.",
    "The local dialect is spoken mostly by the older residents.",
    "A small inn near the square offers rooms to travellers.",
    "Winters there are long, and the roads are often closed for weeks.",
    "Most families keep a vegetable garden behind their houses.",
    "The town council meets once a month in a hall beside the well.",
    "A carter's road links it with the villages further east.",
    "Its school has a single classroom and a bell on the roof.",
    "Many of the houses have red shutters and steep roofs.",
    "Fog settles in the valley on most autumn mornings.",
    "An old mill stands idle at the edge of the fields.",
    "The nearest city is two days away on foot.",
]

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def word(rng, syllables):
    s = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(syllables))
    return s.capitalize()


def unique(rng, make, used):
    while True:
        w = make()
        if w not in used:
            used.add(w)
            return w


def make_towns(rng):
    used = set()
    towns = []
    for _ in range(N_TOWNS):
        name = unique(rng, lambda: word(rng, 1) + rng.choice(TOWN_ENDS), used)
        values = {
            "export": rng.choice(GOODS),
            "founder": unique(rng, lambda: word(rng, 2) + " " + word(rng, 2), used),
            "year": str(rng.randrange(1120, 1890)),
            "festival": rng.choice(FESTIVAL_THEMES).capitalize() + " Festival of " + unique(
                rng, lambda: word(rng, 2), used),
            "animal": rng.choice(ANIMALS),
            "river": unique(rng, lambda: word(rng, 2), used),
            "market": rng.choice(WEEKDAYS),
            "mountain": "Mount " + unique(rng, lambda: word(rng, 2), used),
        }
        towns.append({"name": name, "values": values})
    return towns


def fact(town, attr, style):
    _, lexical, paraphrase = ATTRIBUTES[attr]
    tpl = paraphrase if style == "paraphrase" else lexical
    return tpl.format(t=town["name"], v=town["values"][attr])


def passage(rng, town, attr, style):
    """A fact sentence with two filler sentences around it (position of the fact varies)."""
    fill = rng.sample(FILLERS, 2)
    sentences = [fact(town, attr, style)] + [f.replace("there", "in " + town["name"], 1) if "there" in f else f
                                            for f in fill]
    order = [0, 1, 2]
    rng.shuffle(order)
    return " ".join(sentences[i] for i in order)


def make_items(rng, towns):
    attrs = sorted(ATTRIBUTES)
    items = []
    for i in range(N_ITEMS):
        town = towns[i % N_TOWNS]
        attr = attrs[(i * 3 + i // N_TOWNS) % len(attrs)]
        style = "paraphrase" if i % 2 == 1 else "lexical"
        others = [t for t in towns if t is not town]
        rng.shuffle(others)
        other_attrs = [a for a in attrs if a != attr]
        rng.shuffle(other_attrs)
        # (town, attribute, wording, kind)
        specs = [(town, attr, style, "gold")]
        specs += [(town, a, "lexical", "same_town") for a in other_attrs[:2]]
        specs += [(t, attr, "lexical", "same_attribute") for t in others[:3]]
        specs += [(t, rng.choice(other_attrs), rng.choice(["lexical", "paraphrase"]), "random") for t in others[3:5]]
        order = list(range(N_PASSAGES))
        rng.shuffle(order)
        texts = [passage(rng, *specs[j][:3]) for j in range(N_PASSAGES)]
        passages = [texts[j] for j in order]
        kinds = [specs[j][3] for j in order]
        gold_index = order.index(0)
        value = town["values"][attr]
        question = ATTRIBUTES[attr][0].format(t=town["name"])
        items.append({
            "id": "qr-%03d" % i,
            "passages": passages,
            "question": question,
            "answer": "%s [%d]." % (value, gold_index + 1),
            "gold": value,
            "source": gold_index + 1,
            "wrong_citation": False,
            "meta": {"kind": style, "attribute": attr, "town": town["name"], "passage_kinds": kinds},
        })
    return items


def render():
    rng = random.Random(SEED)
    towns = make_towns(rng)
    items = make_items(rng, towns)
    return "".join(json.dumps(it, ensure_ascii=False, sort_keys=False) + "\n" for it in items)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).with_name("default.jsonl")))
    ap.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    a = ap.parse_args()
    text = render()
    out = Path(a.out)
    if a.check:
        same = out.exists() and out.read_text(encoding="utf-8") == text
        print("%s: %s" % (out, "up to date" if same else "DIFFERS from the generator's output"))
        sys.exit(0 if same else 1)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    print("wrote %s (%d items)" % (out, text.count("\n")))


if __name__ == "__main__":
    main()
