"""headlight.trace(): the CLI called from Python, compared with the same trace run directly."""
from __future__ import annotations

import os

import numpy as np
import pytest

import headlight
from conftest import PROMPT


def test_trace_matches_the_cli_run(runs, binary):
    run = headlight.trace(None, PROMPT, hooks=["pattern", "resid_post", "hook_k"], layers="2,3", heads=[0, 4],
                          queries="last:3", binary=binary)
    cli = headlight.open(runs["rows"].path)
    assert run.command == "trace" and run.complete
    for flag, value in (("--layers", "2,3"), ("--heads", "0,4"), ("--queries", "last:3"), ("--prompt", PROMPT)):
        assert run.command_line[run.command_line.index(flag) + 1] == value
    np.testing.assert_array_equal(run.tokens, cli.tokens)
    assert set(run.cache) == set(cli.cache)
    for hook in cli.cache:                       # the same forward pass, bit for bit
        a, b = run.cache[hook], cli.cache[hook]
        assert a.axes == b.axes and a.form == b.form
        assert (a.heads is None and b.heads is None) or a.heads.tolist() == b.heads.tolist()
        np.testing.assert_array_equal(a.values, b.values)
    assert "capture datasets" in run.cli_stderr
    tmp = os.path.dirname(run.path)
    assert os.path.exists(run.path)
    del run, a
    import gc
    gc.collect()
    assert not os.path.exists(tmp)              # the temporary directory goes with the Run


def test_trace_to_output_with_options(runs, binary, tmp_path, monkeypatch):
    monkeypatch.setenv("HEADLIGHT_BIN", binary)  # found through the environment this time
    out = tmp_path / "spans.h5"
    run = headlight.trace(None, PROMPT, hooks="blocks.3.attn.hook_pattern", spans=["first=1:4", "rug=rug"],
                          output=str(out), quiet=True)
    assert run.path == str(out) and out.exists()
    assert run.cli_stderr == ""                  # --quiet
    assert "--quiet" in run.command_line and run.command_line.count("--spans") == 2
    ref = headlight.open(runs["spans"].path).cache["blocks.3.attn.hook_pattern"]
    np.testing.assert_array_equal(run.cache["blocks.3.attn.hook_pattern"].values, ref.values)


def test_trace_error_carries_the_cli_stderr(binary):
    with pytest.raises(headlight.HeadlightCommandError) as err:
        headlight.trace(None, PROMPT, hooks="blocks.99.attn.hook_pattern", binary=binary)
    e = err.value
    assert e.returncode != 0 and "99" in e.stderr and e.stderr.strip() in str(e)
    with pytest.raises(headlight.HeadlightCommandError, match="top-k"):
        headlight.trace(None, PROMPT, hooks="pattern", top_k=0, binary=binary)


def test_binary_not_found(tmp_path, monkeypatch):
    monkeypatch.delenv("HEADLIGHT_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(headlight.HeadlightNotFoundError, match="not found"):
        headlight.trace(None, "x", hooks="pattern")
    with pytest.raises(headlight.HeadlightNotFoundError, match="not an executable"):
        headlight.trace(None, "x", hooks="pattern", binary=str(tmp_path / "nope"))
    monkeypatch.setenv("HEADLIGHT_BIN", str(tmp_path / "missing"))
    with pytest.raises(headlight.HeadlightNotFoundError, match="HEADLIGHT_BIN"):
        headlight.find_binary()


def test_trace_args_mapping():
    args = headlight.trace_args("p", ["pattern", "z"], "o.h5", model="m.gguf", layers=[0, 5], top_k=4, float16=True,
                                gzip=None, chat=False, spans={"a": "x,y"})
    assert args == ["trace", "-m", "m.gguf", "--prompt", "p", "--hooks", "pattern,z", "--layers", "0,5",
                    "--top-k", "4", "--float16", "--spans", "a=x,y", "-o", "o.h5"]
