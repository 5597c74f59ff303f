"""Readers of the analysis groups, checked against h5py reads of the same files and against
what the CLI printed (`--json` summaries, `report attention`'s lines)."""
from __future__ import annotations

import math
import re

import h5py
import numpy as np
import pytest

import headlight
from conftest import REPO


def close(a, b, tol=1e-9):
    """JSON value (None for NaN) vs float."""
    if a is None:
        return b is None or math.isnan(b)
    return abs(a - b) <= tol * max(1.0, abs(a))


def test_retrieval_heads_against_json(runs):
    r = runs["rh"]
    js = r.json
    run = headlight.open(r.path)
    rh = run.retrieval_heads
    assert isinstance(rh, headlight.RetrievalHeads) and run.analysis() is rh and rh.finished
    assert rh.scores.shape == (js["n_layers"], js["n_heads"])
    with h5py.File(r.path, "r") as f:
        np.testing.assert_array_equal(rh.scores, f["retrieval_heads/scores"][()])
        assert rh.attrs["suite"] == f["retrieval_heads"].attrs["suite"]
    # the heads above the threshold, highest first, with the scores the CLI printed
    listed = [(d["head"], d["score"]) for d in js["retrieval_heads"]]
    assert rh.threshold_heads == [h for h, _ in listed]
    top = rh.top(len(listed))
    assert [h for h, _ in top] == [h for h, _ in listed]
    assert [s for _, s in top] == pytest.approx([s for _, s in listed], rel=1e-12)
    assert [h for h, _ in rh.top(10)] == [d["head"] for d in js["top"]]
    assert [f"{l}.{h}" for l, h in rh.retrieval_heads] == [h for h, _ in listed]
    np.testing.assert_allclose(rh.retrieval_head_scores, [s for _, s in listed])
    assert rh.threshold == js["threshold"]
    t = rh.trials
    assert len(t) == js["trials"] == rh.attrs["trials"] == 2
    assert int(t["counted"].sum()) == js["counted"] and int(t["success"].sum()) == js["successful"]
    assert int((t["span_start"] >= 0).sum()) == js["located"]
    assert np.mean(t["rouge1_recall"]) == pytest.approx(js["mean_rouge1_recall"])
    assert t["head_scores"].shape == (2, js["n_layers"], js["n_heads"])
    assert t.column_attrs["head_scores"]["axes"] == ["trial", "layer", "head"]
    grid = t.sorted_by("trial_index")
    assert grid["trial_index"].tolist() == sorted(t["trial_index"].tolist())
    assert all(isinstance(s, str) for s in grid["response"]) and "Chaoyang" in " ".join(grid["response"])
    assert grid.row(0)["needle_id"] == "beijing"
    np.testing.assert_allclose(rh.scores_from_trials(), rh.scores, atol=1e-12)


def test_ablation_against_json(runs):
    r = runs["ablate"]
    js = r.json
    ab = headlight.open(r.path).ablation
    assert ab.finished and ab.causal is None
    assert ab.condition_names == [c["name"] for c in js["conditions"]] == ["baseline", "top_2", "control_1"]
    assert ab.condition_kinds == [c["kind"] for c in js["conditions"]]
    assert ab.condition_heads == [c["heads"] for c in js["conditions"]]
    ids = ab.condition_head_ids
    assert ids.shape == (3, 2, 2) and ids[0].tolist() == [[-1, -1], [-1, -1]]
    assert [f"{l}.{h}" for l, h in ids[1]] == js["conditions"][1]["heads"]
    summary = ab.summary()
    for c in js["conditions"]:
        for m, est in c["metrics"].items():
            got = summary[c["name"]][m]
            assert close(est["estimate"], got[0]) and close(est["lower"], got[1]) and close(est["upper"], got[2])
        assert close(c["perplexity"], float(ab.perplexity[ab.condition_names.index(c["name"])]))
    for j, m in enumerate(ab.metrics):
        cm = js["controls_mean"][m]
        assert [cm["estimate"], cm["lower"], cm["upper"]] == pytest.approx(ab.control_mean[j].tolist())
        for key, arr in (("target_minus_controls", ab.difference_target_vs_controls),
                         ("target_minus_baseline", ab.difference_target_vs_baseline)):
            d = js[key][m]
            assert [d["estimate"], d["lower"], d["upper"], d["p"]] == pytest.approx(arr[j].tolist())
    assert ab.trial_scores.shape == (3, js["trials"], 3)
    rec = ab.records
    assert len(rec) == 3 * js["trials"]
    # trial_scores is the records' metrics by (condition, grid index)
    for row in rec:
        assert ab.trial_scores[row["condition"], row["trial_index"], 0] == row["rouge1_recall_x100"]
    assert ab.cells.shape == (3, 3, 1, 2) and ab.lengths.tolist() == [300] and ab.depths.tolist() == [0.0, 100.0]
    ppl = ab.perplexity_records
    assert len(ppl) == 3
    np.testing.assert_allclose(np.exp(ppl.sorted_by("condition")["mean_nll"]), ab.perplexity)
    np.testing.assert_allclose(ab.perplexity_delta, ab.perplexity - ab.perplexity[0])


def test_kv_policy_against_json(runs):
    r = runs["kv"]
    js = r.json
    run = headlight.open(r.path)
    kv = run.kv_policy
    assert isinstance(kv, headlight.KVPolicy) and run.analysis() is kv and kv.finished
    names = [c["name"] for c in js["conditions"]]
    assert kv.condition_names == names == ["baseline", "uniform/window:32+2", "top2/window:32+2",
                                           "random2.1/window:32+2"]
    assert kv.condition_kinds == ["baseline", "uniform", "retrieval", "random"]
    assert kv.condition_rest == ["full", "window:32+2", "window:32+2", "window:32+2"]
    assert kv.condition_full_heads == [c["full_heads"] for c in js["conditions"]]
    assert kv.condition_n.tolist() == [0, 0, 2, 2]
    summary = kv.summary()
    for c in js["conditions"]:
        row = summary[c["name"]]
        for m, est in c["metrics"].items():
            got = row[m]
            assert close(est["estimate"], got[0]) and close(est["lower"], got[1]) and close(est["upper"], got[2])
        assert close(c["perplexity"], row["perplexity"][0])
        assert list(row["kv_bytes"].values()) == c["kv_bytes"]
    # memory: the baseline keeps everything; a window keeps W + S tokens per KV head at long contexts
    ctx = kv.memory_contexts
    assert ctx[0] == js["context_tokens"] and ctx[1:] == [32768, 131072]
    kb = kv.kv_bytes
    assert kb.shape == (4, 3) and kb.dtype == np.int64
    assert (kb[1] <= kb[2]).all() and (kb[2] <= kb[0]).all() and kb[1, 1] == kb[1, 2]
    # vs-random differences only for the top-N condition
    d = kv.difference_vs_random
    assert d.shape == (4, 3, 4) and np.isnan(d[[0, 1, 3]]).all() and np.isfinite(d[2, 0]).all()
    top = js["conditions"][2]["minus_random"]["rouge1_recall_x100"]
    assert [top["estimate"], top["lower"], top["upper"], top["p"]] == pytest.approx(d[2, 0].tolist())
    rec = kv.records
    assert len(rec) == 4 * 2
    for row in rec:
        assert kv.trial_scores[row["condition"], row["trial_index"], 0] == row["rouge1_recall_x100"]
    assert kv.cells.shape == (4, 3, 1, 2)
    ppl = kv.perplexity_records
    assert len(ppl) == 4 and ppl["block_nll"].shape == (4, 2)
    np.testing.assert_allclose(np.exp(ppl.sorted_by("condition")["mean_nll"]), kv.perplexity)


def test_causal_ablation_against_json(runs):
    r = runs["causal"]
    js = r.json
    ab = headlight.open(r.path).ablation
    g = ab.causal
    assert g is not None and ab.condition_kinds == ["baseline", "single", "single"]
    jc = js["causal"]
    assert g.targets == jc["targets"] == ab.attrs["causal_targets"]
    assert g.sources == [e["source"] for e in jc["edges"]]
    np.testing.assert_allclose(g.baseline_scores, jc["baseline_scores"])
    np.testing.assert_allclose(g.score_change, [e["score_change"] for e in jc["edges"]], atol=1e-12)
    # JSON lists the baseline's counted trials first, then each source's
    assert jc["counted_trials"][0] == g.attrs["baseline_counted_trials"]
    assert g.counted_trials.tolist() == jc["counted_trials"][1:]
    for (s, t), v in g.edges().items():
        i, j = g.sources.index(s), g.targets.index(t)
        assert s != t and v == pytest.approx(g.scores[i, j] - g.baseline_scores[j])
    rec = ab.records
    assert rec["target_scores"].shape == (len(rec), 2) and set(np.unique(rec["counted"])) <= {0, 1}
    with h5py.File(r.path, "r") as f:
        np.testing.assert_array_equal(g.scores, f["ablation/causal/scores"][()])
    assert ab.perplexity is None                  # --ppl-tokens 0


def test_citation_against_json(runs):
    r = runs["cite"]
    js = r.json
    c = headlight.open(r.path).citation
    assert len(c.items) == js["items"] == 3
    assert int(c.statements["scored"].sum()) == js["statements"] == c.attrs["n_statements"]
    assert len(c.statements) >= js["statements"]            # every statement, scored or not
    assert c.attrs["n_consistent"] == js["consistent"] and c.attrs["n_wrong_citations"] == js["wrong_citations"]
    ro = c.readouts
    for name in ("all_heads", "retrieval_heads", "best_head"):
        for m in ("agreement", "mean_spearman", "mean_point_biserial", "wrong_follows_citation",
                  "wrong_follows_true_source"):
            est = js[name][m]
            got = ro[name][m]
            assert close(est["estimate"], got[0]) and close(est["lower"], got[1]) and close(est["upper"], got[2])
        assert close(js[name]["agreement_all_statements"], ro[name]["agreement_all_statements"])
    assert c.retrieval_heads == js["retrieval_heads"]["heads"]
    assert f"{c.head_ranking[0][0]}.{c.head_ranking[0][1]}" == js["best_head_name"] == c.attrs["best_head"]
    for d in js["top_heads"]:
        assert close(d["agreement"], float(c.head_agreement[d["layer"], d["index"]]))
    sp = c.statement_passages
    assert sp["head_mass"].shape == (len(sp), c.attrs["n_layers"], c.attrs["n_heads"])
    np.testing.assert_allclose(sp["mass_all_heads"], sp["head_mass"].astype(np.float64).mean(axis=(1, 2)), rtol=1e-5)
    assert sp["statement"].max() < len(c.statements)
    assert [str(x) for x in c.items["id"]] == [f"smoke-{i:03d}" for i in range(3)]


def test_membership_against_json(runs):
    r = runs["membership"]
    js = r.json
    m = headlight.open(r.path).membership
    assert m.method_names == [d["name"] for d in js["methods"]]
    for d in js["methods"]:
        got = m.methods[d["name"]]
        assert got.label == d["label"] and got.kind == d["kind"]
        assert (got.auc, got.ci_lower, got.ci_upper) == pytest.approx((d["auc"], d["ci_lower"], d["ci_upper"]))
        assert got.fpr[0] == 0 and got.tpr[-1] == 1 and np.isposinf(got.thresholds[0])
        assert len(got.fpr) == len(got.tpr) == len(got.thresholds)
    docs = m.documents
    assert len(docs) == js["members"] + js["nonmembers"] == 12
    by_key = {(row["name"], row["label"]): row for row in docs}
    for d in js["documents"]:
        row = by_key[(d["name"], {"member": 1, "nonmember": 0}[d["label"]])]
        assert row["perplexity"] == pytest.approx(d["perplexity"]) and row["n_tokens"] == d["n_tokens"]
    assert docs["surface_features"].shape == (12, len(docs.column_attrs["surface_features"]["names"]))
    assert m.attrs["tokens_scored"] == js["tokens_scored"]


def test_composition_against_h5py_and_detect_run(runs):
    path = runs["composition"].path
    comp = headlight.open(path).composition
    rh = headlight.open(runs["rh"].path).retrieval_heads
    top4 = sorted((h for h, _ in rh.top(4)), key=lambda s: tuple(map(int, s.split("."))))
    assert comp.heads == top4                                   # --heads-from --top 4, sorted by (layer, head)
    layer = [int(h.split(".")[0]) for h in comp.heads]
    with h5py.File(path, "r") as f:
        for name in ("q_comp", "k_comp", "v_comp"):
            np.testing.assert_array_equal(getattr(comp, name), f[f"composition/{name}"][()])
            assert comp.axes(name) == ["writer", "reader"]
    for i in range(4):
        for j in range(4):
            assert np.isnan(comp.q_comp[i, j]) == (layer[i] >= layer[j])
    scores = dict(rh.top(270))
    np.testing.assert_allclose(comp.head_scores, [scores[h] for h in comp.heads])
    assert set(comp.baselines) == {"q", "k", "v"}


def test_needle_attention_against_cli_output(runs):
    r = runs["attention"]
    run = headlight.open(r.path)
    na = run.needle_attention
    m = re.search(r"trial (\d+) \(beijing, (\d+) tokens, depth [\d.]+%\): (\d+) prompt tokens, "
                  r"(\d+) answer tokens", r.stdout)
    assert m, r.stdout
    trial, length, p, g = map(int, m.groups())
    assert na.attrs["trial_index"] == trial and na.attrs["length"] == length
    assert na.prompt_length == p == run.prompt_length and len(na.tokens) == p + g
    assert na.query_positions.tolist() == [p - 1 + t for t in range(g)]
    assert na.weights.shape == (3, g, len(na.tokens))
    assert na.heads == [h for h, _ in headlight.open(runs["rh"].path).retrieval_heads.top(3)]
    mass = na.needle_mass()                                      # [head, step]
    assert na.chosen_step == int(np.argmax(mass.sum(axis=0)))
    m2 = re.search(r"attention on the needle at answer token (\d+) \(.*\): (.*)", r.stdout)
    assert m2 and int(m2.group(1)) == na.chosen_step
    printed = dict(x.rsplit(" ", 1) for x in m2.group(2).split(", "))
    for i, h in enumerate(na.heads):
        assert abs(float(printed[h].rstrip("%")) - 100 * mass[i, na.chosen_step]) <= 0.5 + 1e-9
    s, e = na.span
    assert 0 <= s < e <= p and "Chaoyang" in "".join(na.token_strings[s:e])


def test_lens_against_h5py_and_transformers_fixture(runs):
    """The lens reader on `headlight lens`'s IOI run: shapes and values as h5py reads them, the
    attribution adding up, and the logit difference of transformers on the same GGUF
    (Tests/Fixtures/lens/lens.json, written by make_lens.py)."""
    import json
    path = runs["lens"].path
    lens = headlight.open(path).lens
    assert headlight.open(path).analysis().name == "/lens"
    assert lens.positions == [11, 13] and lens.rows[-1] == "final" and len(lens.rows) == 31
    probs = lens.probabilities()
    assert probs.shape == (31, 2, 4)
    assert np.all(np.diff(probs, axis=2) <= 0) and np.all(probs.sum(axis=2) <= 1 + 1e-9)
    final = lens.top_tokens(13)[-1]
    assert final[0] == "final" and final[1] == " Mary"
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(lens.array("top_ids"), f["lens/top_ids"][()])
        assert lens.axes("top_ids") == ["row", "pos", "k"]
    heads = lens.head_attribution(13)
    assert heads.shape == (30, 9)
    d = lens.groups["dla"]
    p = lens.positions.index(13)
    parts = heads.sum() + d.array("mlp")[p].sum() + d.array("embed")[p] + d.array("attention_bias")[p].sum()
    total, model = lens.attribution_total(13)
    assert abs(parts - total) < 1e-9 and abs(total - model) < 1e-3
    ref = json.loads((REPO / "Tests/Fixtures/lens/lens.json").read_text())
    ioi = next(c for c in ref["cases"] if c["name"] == "ioi")
    assert abs(model - ioi["lens"][0]["dla"]["logit_diff"]) < 1e-3
    np.testing.assert_allclose(heads, np.array(ioi["lens"][0]["dla"]["heads"]), atol=1e-3)
    with pytest.raises(KeyError):
        lens.top_tokens(5)


def test_query_heads_against_json(runs):
    r = runs["qr"]
    js = r.json
    run = headlight.open(r.path)
    qh = run.query_heads
    assert isinstance(qh, headlight.QueryHeads) and run.analysis() is qh
    assert qh.top_heads == js["top_heads"]
    assert (qh.attrs["n_detect"], qh.attrs["n_eval"]) == (js["detect_items"], js["eval_items"]) == (2, 2)
    assert qh.methods == [m["name"] for m in js["rerankers"]] == ["qrhead", "wu_heads", "all_heads", "bm25",
                                                                  "answer_likelihood"]
    for m in js["rerankers"]:
        assert qh.recall(m["name"])[0] == pytest.approx(m["recall@1"], rel=1e-12)
        assert qh.ndcg(m["name"])[2] == pytest.approx(m["ndcg@3"], rel=1e-12)
        assert qh.mrr(m["name"]) == pytest.approx(m["mrr"], rel=1e-12)
        # the stored per-passage scores give the stored metrics back
        ranks = qh.gold_ranks(m["name"])
        assert np.mean(1.0 / ranks) == pytest.approx(m["mrr"], abs=0.02)  # ties: mean position vs mean 1/position
    by_kind = qh.array("recall_at_1_by_kind")
    kinds = list(qh.array_attrs["recall_at_1_by_kind"]["kinds"])
    assert kinds == sorted(js["recall_at_1_by_kind"]) == ["lexical", "paraphrase"]
    for i, k in enumerate(kinds):
        assert by_kind[i].tolist() == pytest.approx([js["recall_at_1_by_kind"][k][m] for m in qh.methods], rel=1e-12)
    with h5py.File(r.path, "r") as f:
        np.testing.assert_array_equal(qh.qr_scores, f["query_heads/qr_scores"][()])
        wu = f["query_heads/wu_scores"][()]
    # QRScore = mean over detection items of the gold passage's head_score
    p, it = qh.passages, qh.items
    det = [i for i in range(len(it)) if it["split"][i] == "detect"]
    gold = [np.flatnonzero((p["item"] == i) & (p["gold"] == 1))[0] for i in det]
    np.testing.assert_allclose(qh.qr_scores, p["head_score"][gold].astype(np.float64).mean(axis=0), rtol=1e-6,
                               atol=1e-9)
    x, y = qh.qr_scores.ravel(), wu.ravel()
    assert qh.attrs["spearman_wu"] == pytest.approx(np.corrcoef(_avg_ranks(x), _avg_ranks(y))[0, 1], abs=1e-9)
    dx, dy = np.sign(x[:, None] - x[None, :]), np.sign(y[:, None] - y[None, :])
    iu = np.triu_indices(len(x), 1)
    dx, dy = dx[iu], dy[iu]
    tau_b = np.sum(dx * dy) / np.sqrt(np.sum(dx != 0) * np.sum(dy != 0))   # scipy's tau-b
    assert qh.attrs["kendall_wu"] == pytest.approx(tau_b, abs=1e-9)
    # bootstrap CIs over the detection items: overlaps within 0..N, correlations within -1..1
    ov, ci = qh.overlap, qh.overlap_ci
    assert ci.shape == (len(ov), 2) and [o["n"] for o in js["overlap"]] == list(ov["n"])
    assert np.all(ci[:, 0] <= ci[:, 1]) and np.all(ci[:, 0] >= 0) and np.all(ci[:, 1] <= ov["n"])
    np.testing.assert_array_equal(ci, [[o["lower"], o["upper"]] for o in js["overlap"]])
    for name in ("spearman", "kendall"):
        lo, hi = qh.correlation_ci(name)
        assert -1 <= lo <= hi <= 1 and [lo, hi] == pytest.approx(js[f"{name}_wu_ci"], rel=1e-12)


def _avg_ranks(v):
    """Ranks 1..n, ties sharing their mean rank (scipy.stats.rankdata's default)."""
    order = np.argsort(v, kind="mergesort")
    r = np.empty(len(v))
    r[order] = np.arange(1, len(v) + 1)
    for u in np.unique(v):
        m = v == u
        r[m] = r[m].mean()
    return r


def test_sparsity_profile_against_json(runs):
    r = runs["profile"]
    js = r.json
    sp = headlight.open(r.path).sparsity_profile
    assert isinstance(sp, headlight.SparsityProfile)
    assert sp.lengths == js["lengths"] == [64, 128] and sp.ks == js["ks"]
    np.testing.assert_allclose(sp.median_over_heads("topk_share"), js["median_topk_share"], rtol=1e-12)
    np.testing.assert_allclose(sp.median_over_heads("sink_mass"), js["median_sink_mass"], rtol=1e-12)
    a = sp.array("topk_share")
    assert a.shape == (2, len(sp.ks), 30, 9)
    assert np.all(np.diff(a, axis=1) >= -1e-12) and np.all(a <= 1 + 1e-5)
    assert sp.topk_share(sp.ks[0], 64).shape == (30, 9)
    # bootstrap bounds over the two samples bracket the per-head means; the head-median table agrees
    for name in ("topk_share", "entropy", "sink_mass"):
        lo, hi = sp.bounds(name)
        m = sp.array(name)
        assert lo.shape == m.shape and np.all(lo <= m + 1e-12) and np.all(m <= hi + 1e-12)
    med, series = sp.median_head
    assert med.shape == (2, len(series), 3) and series[0] == f"top-{sp.ks[0]} share"
    np.testing.assert_allclose(med[:, : len(sp.ks), 0], sp.median_over_heads("topk_share"), rtol=1e-12)
    assert np.all(med[..., 1] <= med[..., 0] + 1e-12) and np.all(med[..., 0] <= med[..., 2] + 1e-12)
