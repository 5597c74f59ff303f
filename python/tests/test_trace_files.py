"""Trace run files written by `headlight trace`: captures, tokens and meta, checked against
h5py reads of the same files and against the CLI's own output (its stderr summary and the
relations between runs of the same prompt captured in different forms)."""
from __future__ import annotations

import re

import h5py
import numpy as np
import pytest

import headlight
from conftest import PROMPT


def h5(path, key):
    with h5py.File(path, "r") as f:
        obj = f[key]
        return obj[()] if isinstance(obj, h5py.Dataset) else None


def summary_counts(stderr: str):
    """`trace: N tokens (P prompt + G generated), C capture datasets, ...` -> (N, P, G, C)."""
    m = re.search(r"trace: (\d+) tokens \((\d+) prompt \+ (\d+) generated\), (\d+) capture datasets", stderr)
    assert m, stderr
    return tuple(int(x) for x in m.groups())


def test_meta_tokens_and_strings(runs):
    r = runs["rows"]
    run = headlight.open(r.path)
    n, p, g, _ = summary_counts(r.stderr)
    assert run.command == "trace" and run.complete
    assert run.command_line[1:] == r.args[1:]
    assert run.meta["format"] == "headlight-run" and run.meta["format_version"] == 1
    with h5py.File(r.path, "r") as f:
        assert run.sha256 == f.attrs["model_sha256"] and len(run.sha256) == 64
        assert run.config["n_heads"] == f.attrs["n_heads"]
        np.testing.assert_array_equal(run.tokens, f["tokens"][()])
        assert run.token_strings == list(f["token_strings"].asstr()[()])
    assert len(run.tokens) == n == p and g == 0
    assert run.tokens.dtype == np.int32
    assert run.prompt == PROMPT and run.prompt_length == p
    assert "".join(run.token_strings).endswith("The cat")
    assert run.captures_attrs["query_selection"] == "last:3"


def test_rows_capture_maps_heads_and_queries(runs):
    r = runs["rows"]
    run = headlight.open(r.path)
    n, _, _, ndatasets = summary_counts(r.stderr)
    # pattern, resid_post and hook_k for 2 layers; hook_k's extra attributes do not add keys
    assert len(run.cache) == ndatasets == 6
    assert set(run.cache) == {f"blocks.{l}.{h}" for l in (2, 3)
                              for h in ("attn.hook_pattern", "hook_resid_post", "attn.hook_k")}
    pat = run.cache["blocks.3.attn.hook_pattern"]
    assert pat.axes == ("head", "query", "key") and pat.form == "rows" and pat.layer == 3
    assert pat.heads.tolist() == [0, 4]                 # --heads 0,4
    assert pat.queries.tolist() == [n - 3, n - 2, n - 1]  # --queries last:3
    assert pat.dims == {"head": 2, "query": 3, "key": n} and pat.key_length == n
    raw = h5(r.path, "captures/blocks.3.attn.hook_pattern")
    np.testing.assert_array_equal(np.asarray(pat), raw)
    np.testing.assert_array_equal(pat.sel(head=4, query=n - 1), raw[1, 2])
    np.testing.assert_array_equal(pat.sel(head=[4, 0]), raw[[1, 0]])
    np.testing.assert_allclose(pat.values.sum(axis=-1), 1.0, atol=1e-5)  # softmax rows
    with pytest.raises(KeyError, match="head 5 was not captured"):
        pat.sel(head=5)
    with pytest.raises(KeyError, match="position 0 was not captured"):
        pat.sel(query=0)
    resid = run.cache["blocks.2.hook_resid_post"]
    assert resid.axes == ("pos", "d_model") and resid.queries.tolist() == pat.queries.tolist()
    assert resid.shape == (3, run.config["d_model"])
    k = run.cache["blocks.2.attn.hook_k"]
    assert k.axes[1] == "kv_head"
    # KV heads read by query heads 0 and 4 (GQA: h // (n_heads / n_kv_heads))
    group = run.config["n_heads"] // run.config["n_key_value_heads"]
    assert k.heads.tolist() == sorted({0 // group, 4 // group})
    assert k.query_heads.tolist() == [0, 4]


def test_full_form_and_generated_tokens(runs):
    r = runs["full"]
    run = headlight.open(r.path)
    n, p, g, _ = summary_counts(r.stderr)
    assert (len(run.tokens), run.prompt_length, run.token_attrs["generated"]) == (n, p, 3) and g == 3
    assert run.generated_text and isinstance(run.generated_text, str)
    pat = run.cache["blocks.3.attn.hook_pattern"]
    assert pat.form == "full" and pat.queries.tolist() == list(range(n))
    assert pat.heads.tolist() == list(range(run.config["n_heads"]))
    raw = h5(r.path, "captures/blocks.3.attn.hook_pattern")
    np.testing.assert_array_equal(pat.values, raw)
    assert np.all(np.triu(pat.values[0], k=1) == 0)          # causal: keys after the query are 0
    z = run.cache["blocks.3.attn.hook_z"]
    assert z.axes == ("pos", "head", "d_head") and z.shape == (n, run.config["n_heads"], run.config["d_head"])


def test_topk_agrees_with_full_pattern_of_same_prompt(runs):
    full = headlight.open(runs["full"].path).cache["blocks.3.attn.hook_pattern"].values   # float32
    cap = headlight.open(runs["topk"].path).cache["blocks.3.attn.hook_pattern"]
    assert cap.form == "topk" and cap.k == 3 and cap.axes == ("head", "query", "k")
    assert cap.dtype == np.float16
    with h5py.File(runs["topk"].path, "r") as f:
        np.testing.assert_array_equal(cap.indices, f["captures/blocks.3.attn.hook_pattern.topk_indices"][()])
    # row 0 has one key: padded with -1 / 0
    assert cap.indices[0, 0].tolist() == [0, -1, -1] and cap.values[0, 0, 1:].tolist() == [0, 0]
    for h in range(cap.shape[0]):
        for q in range(1, cap.shape[1]):
            kept = cap.indices[h, q]
            np.testing.assert_allclose(cap.values[h, q].astype(np.float32), full[h, q, kept], rtol=2e-3, atol=1e-4)
            top = np.sort(full[h, q])[::-1][:3]
            np.testing.assert_allclose(np.sort(full[h, q, kept])[::-1], top, rtol=1e-6)
    dense = cap.dense()
    assert dense.shape == full.shape
    mask = dense > 0
    np.testing.assert_allclose(dense[mask], full[mask], rtol=2e-3, atol=1e-4)


def test_span_mass_is_the_sum_of_the_pattern_over_the_span(runs):
    full_run = headlight.open(runs["full"].path)
    full = full_run.cache["blocks.3.attn.hook_pattern"].values
    cap = headlight.open(runs["spans"].path).cache["blocks.3.attn.hook_pattern"]
    assert cap.form == "span_mass" and cap.axes == ("head", "query", "span")
    assert [s.label for s in cap.spans] == ["first", "rug"]
    assert (cap.spans[0].start, cap.spans[0].end) == (1, 4)
    rug = cap.spans[1]
    assert "rug" in "".join(full_run.token_strings[rug.start:rug.end])
    for j, s in enumerate(cap.spans):
        expect = full[:, :cap.shape[1], s.start:s.end].sum(axis=-1)
        np.testing.assert_allclose(cap.values[:, :, j], expect, atol=1e-5)
    np.testing.assert_array_equal(cap.sel(span="rug", head=2), cap.values[2, :, 1])


def test_inputs_groups_are_iterated(runs, tmp_path):
    """docs/run-file.md reserves /inputs/<name>/ (no command writes it yet): build one from two
    real trace files with h5py and read both inputs back."""
    path = tmp_path / "inputs.h5"
    with h5py.File(runs["rows"].path, "r") as a, h5py.File(runs["spans"].path, "r") as b, h5py.File(path, "w") as out:
        for k, v in a.attrs.items():
            out.attrs[k] = v
        for name, src in (("first", a), ("second", b)):
            g = out.create_group(f"inputs/{name}")
            for key in ("tokens", "token_strings", "captures"):
                src.copy(src[key], g, name=key)
    run = headlight.open(path)
    assert list(run.inputs) == ["first", "second"]
    got = {inp.name: inp for inp in run}
    np.testing.assert_array_equal(got["first"].tokens, headlight.open(runs["rows"].path).tokens)
    assert got["second"].cache["blocks.3.attn.hook_pattern"].form == "span_mass"
    assert len(got["first"].cache) == 6 and got["first"].prompt == PROMPT
    assert "input first" in run._repr_html_() and "input second" in run._repr_html_()


def test_xarray_conversion(runs):
    """With xarray installed: a DataArray with heads/positions as coordinates; without it, the
    ImportError says so (xarray is optional)."""
    pat = headlight.open(runs["rows"].path).cache["blocks.3.attn.hook_pattern"]
    try:
        import xarray as xr
    except ImportError:
        with pytest.raises(ImportError, match="xarray"):
            pat.to_xarray()
        return
    da = pat.to_xarray()
    assert isinstance(da, xr.DataArray) and da.dims == pat.axes
    assert da.coords["head"].values.tolist() == [0, 4]
    assert float(da.sel(head=4, query=pat.queries[-1], key=0)) == float(pat.sel(head=4, query=pat.queries[-1])[0])


def test_partial_reads_match_whole_reads(runs):
    """cache.read() reads only a block from disk; it must agree with cache[hook].sel()."""
    path = runs["full"].path
    lazy = headlight.open(path).cache                    # nothing loaded yet
    whole = headlight.open(path).cache["blocks.3.attn.hook_pattern"]
    n = whole.shape[1]
    cases = [dict(head=4), dict(head=4, query=n - 1), dict(query=[n - 1, 2, 5]), dict(head=[7, 1], query=[3, 0]),
             dict(key=[0, 2]), dict(head=[])]
    for sel in cases:
        np.testing.assert_array_equal(lazy.read("blocks.3.attn.hook_pattern", **sel), whole.sel(**sel))
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(lazy.read("blocks.3.attn.hook_pattern", head=7, query=[3, 0]),
                                      f["captures/blocks.3.attn.hook_pattern"][7][[3, 0]])
    rows = headlight.open(runs["rows"].path).cache
    last = int(rows["blocks.3.attn.hook_pattern"].queries[-1])         # rows form: absolute position
    fresh = headlight.open(runs["rows"].path).cache
    np.testing.assert_array_equal(fresh.read("blocks.3.attn.hook_pattern", head=4, query=last),
                                  rows["blocks.3.attn.hook_pattern"].values[1, -1])
    with pytest.raises(KeyError, match="head 5 was not captured"):
        headlight.open(runs["rows"].path).cache.read("blocks.3.attn.hook_pattern", head=5)
    with pytest.raises(KeyError, match="no axis 'span'"):
        lazy.read("blocks.3.attn.hook_pattern", span="x")


def test_queries_listed_in_a_sibling_dataset(runs, tmp_path):
    """Above 4096 positions `queries` moves to a sibling int64 dataset named by
    `queries_dataset` (docs/run-file.md); rewrite a real top-k file that way and read it."""
    import shutil
    path = tmp_path / "queries-dataset.h5"
    shutil.copyfile(runs["topk"].path, path)
    hook = "blocks.3.attn.hook_pattern"
    with h5py.File(path, "a") as f:
        ds = f[f"captures/{hook}"]
        queries = ds.attrs["queries"]
        del ds.attrs["queries"]
        ds.attrs["queries_dataset"] = f"{hook}.queries"
        f["captures"].create_dataset(f"{hook}.queries", data=queries.astype(np.int64))
    run = headlight.open(path)
    assert list(run.cache) == [hook]                       # the sibling is not a hook
    cap = run.cache[hook]
    np.testing.assert_array_equal(cap.queries, queries)
    np.testing.assert_array_equal(run.cache.read(hook, query=int(queries[-1])), cap.values[:, -1])
