#!/usr/bin/env python3
"""Regenerates the golden fixtures for Headlight's statistics and membership code
(Tests/AnalysisTests/Stats*Tests.swift) from numpy / scipy / scikit-learn / zlib.

    pip install numpy scipy scikit-learn
    python3 Tests/Fixtures/stats/make_fixtures.py

Writes stats.json next to this script. Non-finite numbers are written as the strings
"inf", "-inf" and "nan" (strict JSON has no literal for them).

Sections:
  descriptive   mean, var/std (ddof 0 and 1), numpy "linear" quantiles, scipy rankdata
  correlation   pearsonr / spearmanr / pointbiserialr (statistic and p-value), tied and untied
  betainc       scipy.special.betainc spot values
  roc           roc_auc_score and roc_curve(drop_intermediate=False) on tied scores
  prng          a Python re-implementation of SplitMix64 + xoshiro256** and of the helpers in
                Sources/Analysis/Stats/Random.swift (Lemire bounded ints, Fisher-Yates,
                partial Fisher-Yates sampling) - pins cross-platform determinism
  bootstrap     percentile CIs computed with that same PRNG (mean, stratified AUC, paired)
  membership    Meeus et al. normalizations, 14 aggregates, histogram features, min-max
                scaling (code paths copied from computationalprivacy/document-level-membership-
                inference), Min-K% prob and zlib ratio (from the Min-K% paper code)
  logreg        sklearn LogisticRegression probabilities (tight tolerance, and sklearn defaults)
"""
import json
import math
import os
import zlib

import numpy as np
import scipy
import scipy.special
import scipy.stats
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
M64 = (1 << 64) - 1


def clean(x):
    """JSON-safe: numpy -> python, non-finite -> strings."""
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return clean(x.tolist())
    if isinstance(x, (np.floating, float)):
        x = float(x)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    return x


# ---------------------------------------------------------------- PRNG (mirror of Swift)
class SeededGenerator:
    """xoshiro256** seeded by SplitMix64 (Inference/Model/Sampler.swift)."""

    def __init__(self, seed):
        x = seed & M64
        s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            s.append(z ^ (z >> 31))
        self.s = s

    def next(self):
        s0, s1, s2, s3 = self.s
        r = (s1 * 5) & M64
        r = ((r << 7) | (r >> 57)) & M64
        result = (r * 9) & M64
        t = (s1 << 17) & M64
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = ((s3 << 45) | (s3 >> 19)) & M64
        self.s = [s0, s1, s2, s3]
        return result


def uniform_int(n, g):
    m = g.next() * n
    low = m & M64
    if low < n:
        threshold = ((1 << 64) - n) % n
        while low < threshold:
            m = g.next() * n
            low = m & M64
    return m >> 64


def unit_double(g):
    return (g.next() >> 11) * 2.0 ** -53


def shuffle(a, g):
    i = len(a) - 1
    while i > 0:
        j = uniform_int(i + 1, g)
        a[i], a[j] = a[j], a[i]
        i -= 1


def sample_indices(n, k, g):
    displaced = {}
    out = []
    for i in range(k):
        j = i + uniform_int(n - i, g)
        vi = displaced.get(i, i)
        vj = displaced.get(j, j)
        displaced[j] = vi
        displaced[i] = vj
        out.append(vj)
    return out


def bootstrap_indices(n, g):
    return [uniform_int(n, g) for _ in range(n)]


def percentile_ci(values, level):
    a = 1 - level
    return [float(np.quantile(values, a / 2)), float(np.quantile(values, 1 - a / 2))]


# ---------------------------------------------------------------- sections
def descriptive(rng):
    arrays = {
        "small": [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0],
        "ties": [2.0, 2.0, 2.0, 1.0, 3.0, 3.0, 0.5],
        "random": rng.normal(size=37).round(6).tolist(),
        "single": [4.25],
    }
    qs = [0.0, 0.01, 0.05, 0.1, 0.25, 0.3, 0.5, 0.7, 0.75, 0.9, 0.95, 0.99, 1.0]
    out = {"qs": qs, "cases": []}
    for name, a in arrays.items():
        x = np.array(a)
        out["cases"].append({
            "name": name, "x": a,
            "mean": np.mean(x),
            "var0": np.var(x), "var1": np.var(x, ddof=1) if len(x) > 1 else float("nan"),
            "std0": np.std(x), "std1": np.std(x, ddof=1) if len(x) > 1 else float("nan"),
            "quantiles": [np.quantile(x, q) for q in qs],
            "ranks": scipy.stats.rankdata(x).tolist(),
        })
    return out


def correlation(rng):
    cases = []
    x = rng.normal(size=25).round(5)
    y = (0.6 * x + rng.normal(size=25)).round(5)
    cases.append(("untied", x.tolist(), y.tolist()))
    xt = [1, 2, 2, 3, 3, 3, 4, 5, 5, 6, 7, 7, 7, 7, 8]
    yt = [2, 1, 2, 2, 4, 3, 3, 5, 4, 6, 6, 6, 8, 7, 7]
    cases.append(("tied", [float(v) for v in xt], [float(v) for v in yt]))
    cases.append(("negative", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [6.1, 4.0, 4.0, 3.5, 1.0, 0.2]))
    out = []
    for name, a, b in cases:
        pr = scipy.stats.pearsonr(a, b)
        sr = scipy.stats.spearmanr(a, b)
        out.append({"name": name, "x": a, "y": b,
                    "pearson": [pr.statistic, pr.pvalue],
                    "spearman": [sr.statistic, sr.pvalue]})
    g = (rng.random(30) < 0.4)
    v = (rng.normal(size=30) + 0.8 * g).round(4)
    v[3] = v[4]  # a tie
    pb = scipy.stats.pointbiserialr(g.astype(int), v)
    return {"cases": out,
            "pointbiserial": {"group": g.tolist(), "x": v.tolist(),
                              "r": pb.statistic, "p": pb.pvalue}}


def betainc():
    pts = [(0.5, 0.5, 0.3), (2.0, 0.5, 0.9), (11.5, 0.5, 0.2), (11.5, 0.5, 0.97),
           (50.0, 0.5, 0.99), (3.0, 7.0, 0.25), (0.1, 10.0, 0.001), (200.0, 0.5, 0.995)]
    return [[a, b, x, float(scipy.special.betainc(a, b, x))] for a, b, x in pts]


def roc(rng):
    labels = [1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0, 1]
    scores = [0.9, 0.8, 0.8, 0.7, 0.7, 0.7, 0.6, 0.5, 0.5, 0.3, 0.2, 0.2, 0.1, 0.1, 0.05]
    cases = [("tied", labels, scores)]
    lab2 = (rng.random(40) < 0.5).astype(int).tolist()
    sc2 = (rng.normal(size=40) + np.array(lab2)).round(1).tolist()  # many ties after rounding
    cases.append(("rounded", lab2, sc2))
    out = []
    for name, l, s in cases:
        fpr, tpr, thr = roc_curve(l, s, drop_intermediate=False)
        out.append({"name": name, "labels": l, "scores": s,
                    "auc": roc_auc_score(l, s),
                    "fpr": fpr, "tpr": tpr, "thresholds": thr})
    return out


def prng():
    g = SeededGenerator(42)
    raw = [str(g.next()) for _ in range(8)]  # strings: > 2^53
    g = SeededGenerator(7)
    bounded = [[n, [uniform_int(n, g) for _ in range(12)]] for n in (1, 2, 3, 10, 1000, 2 ** 40 + 3)]
    g = SeededGenerator(7)
    doubles = [unit_double(g) for _ in range(5)]
    g = SeededGenerator(123)
    a = list(range(10))
    shuffle(a, g)
    g = SeededGenerator(123)
    sample = sample_indices(100, 10, g)
    g = SeededGenerator(99)
    boot = bootstrap_indices(9, g)
    return {"seed42_raw": raw, "seed7_bounded": bounded, "seed7_doubles": doubles,
            "seed123_shuffle10": a, "seed123_sample_100_10": sample, "seed99_bootstrap9": boot}


def bootstrap(rng):
    B = 500
    xs = rng.normal(loc=1.0, size=30).round(4)
    g = SeededGenerator(5)
    means = [float(np.mean(xs[bootstrap_indices(len(xs), g)])) for _ in range(B)]
    mean_ci = percentile_ci(means, 0.95)

    labels = (rng.random(40) < 0.45)
    scores = (rng.normal(size=40) + 1.2 * labels).round(3)
    pos = [i for i in range(40) if labels[i]]
    neg = [i for i in range(40) if not labels[i]]
    g = SeededGenerator(11)
    aucs = []
    for _ in range(B):
        sp = [scores[pos[uniform_int(len(pos), g)]] for _ in pos]
        sn = [scores[neg[uniform_int(len(neg), g)]] for _ in neg]
        aucs.append(roc_auc_score([1] * len(sp) + [0] * len(sn), sp + sn))
    auc_ci = percentile_ci(aucs, 0.95)

    a = rng.normal(size=25).round(4)
    b = (a - 0.3 + 0.5 * rng.normal(size=25)).round(4)
    d = a - b
    g = SeededGenerator(3)
    diffs = [float(np.mean(d[bootstrap_indices(len(d), g)])) for _ in range(B)]
    le = sum(v <= 0 for v in diffs)
    ge = sum(v >= 0 for v in diffs)
    p = min(1.0, 2 * min((le + 1) / (B + 1), (ge + 1) / (B + 1)))
    return {"resamples": B,
            "mean": {"x": xs.tolist(), "seed": 5, "estimate": float(np.mean(xs)), "ci": mean_ci},
            "auc": {"labels": labels.tolist(), "scores": scores.tolist(), "seed": 11,
                    "estimate": roc_auc_score(labels, scores), "ci": auc_ci},
            "paired": {"a": a.tolist(), "b": b.tolist(), "seed": 3,
                       "estimate": float(np.mean(d)), "ci": percentile_ci(diffs, 0.95), "p": p}}


# --- membership: the original code paths (document-level-membership-inference) ---
def get_norm_val(token, token_norm_dict):
    if token in token_norm_dict.keys():
        return token_norm_dict[token]
    return min(token_norm_dict.values()) / 2.0


def norm_ratio(tokens, nlls, token_norm):
    out = []
    for t, nll in zip(tokens, nlls):
        v = -np.log(np.exp(-nll) / get_norm_val(t, token_norm))
        if np.isnan(v) or np.isinf(v):
            v = 10e-6
        out.append(float(v))
    return out


def norm_max(tokens, nlls, pmax, token_norm):
    out = []
    for t, nll, pm in zip(tokens, nlls, pmax):
        v = -np.log((1 - (pm - np.exp(-nll))) / get_norm_val(t, token_norm))
        if np.isnan(v) or np.isinf(v):
            v = 10e-6
        out.append(float(v))
    return out


def simple_agg(nlls, percentiles=(1, 5, 10, 25, 50, 75, 90, 95, 99)):
    v = [np.mean(nlls), np.min(nlls), np.max(nlls), np.std(nlls), len(nlls)]
    v += [np.percentile(nlls, p) for p in percentiles]
    return [float(x) for x in v]


def histogram_feats(data, bins=None, n_bins=100):
    if bins is None:
        allv = []
        for nlls in data:
            allv += nlls
        bins = np.histogram(allv, bins=n_bins)[1]
    X = [np.histogram(nlls, bins, density=True)[0] for nlls in data]
    return X, bins


def scale_features(train, test):
    train = np.array(train, dtype=float)
    test = np.array(test, dtype=float)
    for c in range(train.shape[1]):
        mn, mx = train[:, c].min(), train[:, c].max()
        if mx == mn:
            train[:, c] = 0.0
            test[:, c] = 0.0
        else:
            train[:, c] = (train[:, c] - mn) / (mx - mn)
            test[:, c] = (test[:, c] - mn) / (mx - mn)
    return train, test


def min_k(all_prob, ratio):
    """Min-K% paper code (swj0419/detect-pretrain-code src/run.py); returns -mean."""
    k_length = int(len(all_prob) * ratio)
    topk = np.sort(all_prob)[:k_length]
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return -np.mean(topk).item(), k_length


def membership(rng):
    vocab = 50
    train_docs = [rng.integers(0, vocab - 5, size=int(rng.integers(20, 60))).tolist() for _ in range(6)]
    counts = {}
    for d in train_docs:
        for t in d:
            counts[t] = counts.get(t, 0) + 1
    total = sum(counts.values())
    tf = {t: c / total for t, c in counts.items()}

    docs = []
    for k in range(5):
        n = int(rng.integers(15, 45))
        toks = rng.integers(0, vocab, size=n).tolist()  # ids >= 45 are unseen
        nll = rng.gamma(2.0, 1.5, size=n).round(6)
        p = np.exp(-nll)
        pmax = np.minimum(1.0, p + rng.random(n) * (1 - p)).round(8)
        pmax = np.maximum(pmax, p)
        docs.append({"tokens": toks, "nll": nll.tolist(), "pmax": pmax.tolist(),
                     "ratio": norm_ratio(toks, nll.tolist(), tf),
                     "max": norm_max(toks, nll.tolist(), pmax.tolist(), tf)})
    for d in docs:
        d["agg_ratio"] = simple_agg(d["ratio"])
    train_vals = [d["ratio"] for d in docs[:3]]
    test_vals = [d["ratio"] for d in docs[3:]] + [[1e9, -1e9]]  # last: nothing in range
    import warnings
    hist = {}
    for nb in (10, 1000):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            xtr, bins = histogram_feats(train_vals, n_bins=nb)
            xte, _ = histogram_feats(test_vals, bins=bins, n_bins=nb)
        hist[str(nb)] = {"edges": bins.tolist(), "train": [x.tolist() for x in xtr],
                         "test": [x.tolist() for x in xte]}
    aggs_train = [simple_agg(v) for v in train_vals]
    aggs_test = [simple_agg(v) for v in test_vals[:2]]
    aggs_train.append(list(aggs_train[0]))
    aggs_train[-1][4] = aggs_train[0][4]  # keep count column varied by others
    # a constant column: overwrite column 4 (count) with a constant in train
    const_train = [list(r) for r in aggs_train]
    for r in const_train:
        r[4] = 7.0
    s_train, s_test = scale_features(const_train, aggs_test)

    # Min-K% and zlib
    texts = ["The quick brown fox jumps over the lazy dog.",
             "Ünïcödé — ✓ naïve café, 日本語のテキスト。",
             "abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabc" * 5,
             "",
             "It was the best of times, it was the worst of times, it was the age of wisdom, "
             "it was the age of foolishness, it was the epoch of belief, it was the epoch of "
             "incredulity, it was the season of Light, it was the season of Darkness."]
    ratios = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    mink = []
    for n in (3, 7, 19, 20, 64, 127):
        lp = (-rng.gamma(1.5, 2.0, size=n)).round(6).tolist()
        entries = []
        for r in ratios:
            neg_mean, k_len = min_k(lp, r)
            entries.append({"ratio": r, "k_length": k_len, "neg_mean": neg_mean})
        mink.append({"logprobs": lp, "entries": entries})
    zl = []
    for t in texts:
        n = len(zlib.compress(bytes(t, "utf-8")))
        nll = rng.gamma(2.0, 1.0, size=10).round(5)
        ppl = float(np.exp(np.mean(nll)))
        zl.append({"text": t, "zlib_len": n, "nll": nll.tolist(), "ppl": ppl,
                   "ratio": float(np.log(ppl) / n) if n else float("nan")})
    return {"tf": [[int(t), v] for t, v in sorted(tf.items())], "unseen": min(tf.values()) / 2,
            "docs": docs, "hist": hist,
            "scale": {"train": const_train, "test": aggs_test,
                      "train_scaled": s_train.tolist(), "test_scaled": s_test.tolist()},
            "mink": mink, "zlib": zl}


def logreg(rng):
    n, d = 80, 4
    X = rng.normal(size=(n, d)) * np.array([1.0, 3.0, 0.5, 10.0]) + np.array([0, 1, -2, 5])
    w = np.array([1.2, -0.4, 2.0, 0.05])
    logit = (X - X.mean(0)) @ w + 0.3
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    Xt = rng.normal(size=(15, d)) * np.array([1.0, 3.0, 0.5, 10.0]) + np.array([0, 1, -2, 5])
    cases = [{"C": C, "standardize": std} for C in (1.0, 0.1, 10.0) for std in (True, False)]
    return {"X": X.round(10).tolist(), "y": y.tolist(), "X_test": Xt.round(10).tolist(),
            "cases": cases}


def main():
    rng = np.random.default_rng(20240601)
    out = {
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__,
                     "sklearn": sklearn.__version__, "zlib": zlib.ZLIB_RUNTIME_VERSION},
        "descriptive": descriptive(rng),
        "correlation": correlation(rng),
        "betainc": betainc(),
        "roc": roc(rng),
        "prng": prng(),
        "bootstrap": bootstrap(rng),
        "membership": membership(rng),
    }
    # logreg: fit on exactly the (rounded) numbers that are written
    lr = logreg(rng)
    X = np.array(lr["X"]); y = np.array(lr["y"]); Xt = np.array(lr["X_test"])
    for case in lr["cases"]:
        C, std = case["C"], case["standardize"]
        def mk(tol, max_iter):
            m = LogisticRegression(C=C, tol=tol, max_iter=max_iter)
            return make_pipeline(StandardScaler(), m) if std else m
        tight = mk(1e-12, 100000).fit(X, y)
        default = mk(1e-4, 100).fit(X, y)
        m = tight[-1] if std else tight
        case.update({"proba_test": tight.predict_proba(Xt)[:, 1].tolist(),
                     "proba_train": tight.predict_proba(X)[:, 1].tolist(),
                     "proba_test_default_tol": default.predict_proba(Xt)[:, 1].tolist(),
                     "coef": m.coef_[0].tolist(), "intercept": float(m.intercept_[0])})
    out["logreg"] = lr
    path = os.path.join(HERE, "stats.json")
    with open(path, "w") as f:
        json.dump(clean(out), f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
