"""Batch trace files written by `headlight trace --prompts FILE.jsonl`: prompts in the prompts
file's order under /inputs/<name>, each equal to the single-prompt trace of the same prompt; an
interrupted batch (its `.partial`); malformed batch files (clear RunFileErrors naming the key);
and the report of a batch file (a part and a viewer per prompt)."""
from __future__ import annotations

import shutil
import subprocess

import h5py
import numpy as np
import pytest

import headlight
from conftest import BATCH_LINES, IOI, PROMPT, REPO


def test_prompts_in_file_order_with_their_options(batch):
    run = headlight.open(batch["done"].path)
    assert run.is_batch and run.command == "trace" and run.complete
    assert [p.name for p in run.prompts] == ["cat", "0001", "chat-1"] == list(run.inputs)
    with h5py.File(batch["done"].path, "r") as f:
        assert list(f["inputs"].attrs["names"]) == ["cat", "0001", "chat-1"]
        assert f["inputs"].attrs["prompts_file"] == "prompts.jsonl"
        assert "tokens" not in f and "captures" not in f
    cat, ioi, chat = run.prompts
    assert cat.prompt == PROMPT and ioi.prompt == IOI and chat.prompt == BATCH_LINES[2]["prompt"]
    assert [p.attrs["line"] for p in run.prompts] == [1, 2, 3]
    assert [p.attrs["index"] for p in run.prompts] == [0, 1, 2]
    assert all(p.complete for p in run.prompts)
    assert ioi.token_attrs["generated"] == 2 and len(ioi.tokens) == ioi.prompt_length + 2
    assert cat.token_attrs["generated"] == 0
    assert chat.token_attrs["chat"] == 1 and cat.token_attrs["chat"] == 0
    assert "<|im_start|>" in "".join(chat.token_strings)          # the chat template was applied
    for p in run.prompts:                                       # the same hooks for every prompt
        assert set(p.cache) == {f"blocks.{l}.{h}" for l in (2, 3)
                                for h in ("attn.hook_pattern", "hook_resid_post", "attn.hook_k")}
        pat = p.cache["blocks.3.attn.hook_pattern"]
        n = len(p.tokens)
        assert pat.queries.tolist() == [p.prompt_length - 3 + i for i in range(3)] and n >= p.prompt_length
        assert pat.heads.tolist() == [0, 4] and pat.key_length == n
    assert run.input("chat-1") is chat
    assert "3 prompts" in run._repr_html_()


def test_a_batch_prompt_equals_the_single_prompt_trace(batch, runs):
    """The "cat" prompt with the hooks of the "rows" fixture: the same bytes."""
    single = headlight.open(runs["rows"].path)
    got = headlight.open(batch["done"].path).input("cat")
    np.testing.assert_array_equal(got.tokens, single.tokens)
    assert got.token_strings == single.token_strings
    assert set(got.cache) == set(single.cache)
    for hook in single.cache:
        a, b = got.cache[hook], single.cache[hook]
        assert a.values.dtype == b.values.dtype and a.axes == b.axes
        assert a.values.tobytes() == b.values.tobytes(), hook
        assert {k: str(v) for k, v in a.attrs.items()} == {k: str(v) for k, v in b.attrs.items()}
    assert got.captures_attrs == single.captures_attrs


def test_batch_and_single_files_differ_only_where_documented(batch, runs):
    run = headlight.open(batch["done"].path)
    with pytest.raises(headlight.HeadlightError, match=r"batch of 3 prompts.*run.input\('cat'\)"):
        run.cache
    with pytest.raises(KeyError, match="no input 'dog'.*3 inputs: cat, 0001, chat-1"):
        run.input("dog")
    assert run.tokens is None
    single = headlight.open(runs["rows"].path)
    assert not single.is_batch and single.prompts == [single] and list(single) == [single]


def test_interrupted_batch(batch):
    path = batch["stopped"].path
    assert path.name.endswith(".h5.partial") and path.exists()
    with pytest.raises(headlight.IncompleteRunError, match="complete = 0"):
        headlight.open(path)
    run = headlight.open(path, allow_incomplete=True)
    assert [p.name for p in run.prompts] == ["cat"] and run.prompts[0].complete
    done = headlight.open(batch["done"].path).input("cat")
    for hook in done.cache:
        assert run.input("cat").cache[hook].values.tobytes() == done.cache[hook].values.tobytes()


def _copy(batch, tmp_path, name):
    dst = tmp_path / name
    shutil.copy(batch["done"].path, dst)
    return dst


def test_malformed_batch_files(batch, tmp_path):
    p = _copy(batch, tmp_path, "missing.h5")
    with h5py.File(p, "a") as f:
        del f["inputs/0001"]
    with pytest.raises(headlight.RunFileError, match="/inputs/0001: missing") as e:
        headlight.open(p)
    assert e.value.key == "/inputs/0001"

    p = _copy(batch, tmp_path, "no-tokens.h5")
    with h5py.File(p, "a") as f:
        del f["inputs/chat-1/tokens"]
    with pytest.raises(headlight.RunFileError, match="/inputs/chat-1/tokens: missing"):
        headlight.open(p)

    p = _copy(batch, tmp_path, "extra.h5")
    with h5py.File(p, "a") as f:
        f.create_group("inputs/stray")
    with pytest.raises(headlight.RunFileError, match="'stray' is not listed in /inputs@names"):
        headlight.open(p)

    p = _copy(batch, tmp_path, "twice.h5")
    with h5py.File(p, "a") as f:
        f["inputs"].attrs["names"] = ["cat", "cat", "0001", "chat-1"]
    with pytest.raises(headlight.RunFileError, match="/inputs@names: lists a name twice"):
        headlight.open(p)

    p = _copy(batch, tmp_path, "not-strings.h5")
    with h5py.File(p, "a") as f:
        f["inputs"].attrs["names"] = np.arange(3)
    with pytest.raises(headlight.RunFileError, match="/inputs@names: is not a list of strings"):
        headlight.open(p)

    p = _copy(batch, tmp_path, "bad-capture.h5")
    with h5py.File(p, "a") as f:
        f["inputs/cat/captures/blocks.3.attn.hook_pattern"].attrs["axes"] = ["head", "query"]
    run = headlight.open(p)
    with pytest.raises(headlight.RunFileError, match="axes"):
        run.input("cat").cache["blocks.3.attn.hook_pattern"]


def test_report_has_a_part_and_a_viewer_per_prompt(batch, binary, tmp_path):
    out = tmp_path / "report"
    proc = subprocess.run([binary, "report", str(batch["done"].path), "-o", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    html = (out / "index.html").read_text(encoding="utf-8")
    for name in ("cat", "0001", "chat-1"):
        assert f"Prompt {name}" in html
        assert f'id="hl-viewer-batch-in-{name}"' in html
    assert html.count('class="hl-viewer"') == 3
    assert "batch of 3 prompts" in html
