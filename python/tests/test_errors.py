"""Incomplete and malformed run files: RunFileError naming the file and the key, never a bare
KeyError/OSError from h5py."""
from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

import headlight
from headlight import IncompleteRunError, RunFileError


def copy(src, dst):
    shutil.copyfile(src, dst)
    return dst


def test_partial_file_of_a_stopped_sweep(runs):
    path = runs["partial"].path
    assert str(path).endswith(".h5.partial") and path.exists()
    with pytest.raises(IncompleteRunError) as err:
        headlight.open(path)
    e = err.value
    assert e.path == str(path) and e.key == "/@complete" and "allow_incomplete=True" in str(e)
    assert "retrieval-heads" in str(e)
    run = headlight.open(path, allow_incomplete=True)
    assert not run.complete and "INCOMPLETE" in repr(run) and "NO (interrupted" in run._repr_html_()
    rh = run.retrieval_heads
    assert not rh.finished and rh.scores is None and rh.threshold_heads == []
    with h5py.File(path, "r") as f:
        n = min(ds.shape[0] for ds in f["retrieval_heads/trials"].values())
        assert n == len(rh.trials) == 1            # --stop-after 1
        np.testing.assert_array_equal(rh.trials["head_scores"], f["retrieval_heads/trials/head_scores"][:n])
    with pytest.raises(RunFileError, match="did not finish"):
        rh.top(3)
    assert rh.scores_from_trials().shape == (run.config["n_layers"], run.config["n_heads"])


def test_unequal_record_columns_are_cut_to_the_shortest(runs, tmp_path):
    """A kill between two column appends leaves columns of unequal length."""
    path = copy(runs["partial"].path, tmp_path / "cut.h5.partial")
    with h5py.File(path, "a") as f:
        ds = f["retrieval_heads/trials/rouge1_recall"]
        ds.resize((ds.shape[0] + 1,))
    rh = headlight.open(path, allow_incomplete=True).retrieval_heads
    assert len(rh.trials) == 1 and rh.trials.truncated_from == 2


def test_killed_trace_leftover(killed_trace):
    if killed_trace is None:
        pytest.skip("the trace finished before it could be killed")
    assert ".tmp-" in killed_trace.name
    with pytest.raises(RunFileError) as err:        # complete = 0, or unreadable if killed mid-flush
        headlight.open(killed_trace)
    assert err.value.path == str(killed_trace)


def test_truncated_copy(runs, tmp_path):
    src = runs["rh"].path
    data = src.read_bytes()
    path = tmp_path / "truncated.h5"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RunFileError) as err:
        headlight.open(path)
    assert err.value.path == str(path) and "not a readable HDF5 file" in str(err.value)


def test_not_hdf5_and_missing(tmp_path):
    p = tmp_path / "notes.h5"
    p.write_text("hello")
    with pytest.raises(RunFileError, match="not a readable HDF5 file"):
        headlight.open(p)
    with pytest.raises(RunFileError, match="no such file"):
        headlight.open(tmp_path / "absent.h5")
    with pytest.raises(RunFileError, match="is a directory"):
        headlight.open(tmp_path)


def test_corrupted_superblock(runs, tmp_path):
    path = copy(runs["rows"].path, tmp_path / "bad-signature.h5")
    with open(path, "r+b") as f:
        f.write(b"\x00" * 8)
    with pytest.raises(RunFileError, match="not a readable HDF5 file"):
        headlight.open(path)


def test_corrupted_object_header_names_the_dataset(runs, tmp_path):
    path = copy(runs["rows"].path, tmp_path / "bad-header.h5")
    key = "/captures/blocks.3.attn.hook_pattern"
    with h5py.File(path, "r") as f:
        addr = h5py.h5o.get_info(f[key].id).addr
    with open(path, "r+b") as f:
        f.seek(addr)
        f.write(bytes(range(7, 7 + 64)))
    with pytest.raises(RunFileError) as err:
        run = headlight.open(path)
        run.cache["blocks.3.attn.hook_pattern"]
    assert err.value.key is not None and "blocks.3.attn.hook_pattern" in err.value.key


def test_corrupted_compressed_chunk_names_the_dataset(runs, tmp_path):
    """head_scores is gzip-compressed: damaged chunk bytes fail to inflate, on read."""
    path = copy(runs["rh"].path, tmp_path / "bad-chunk.h5")
    key = "/retrieval_heads/trials/head_scores"
    with h5py.File(path, "r") as f:
        ds = f[key]
        assert ds.compression == "gzip"
        info = ds.id.get_chunk_info(0)
    with open(path, "r+b") as f:
        f.seek(info.byte_offset)
        f.write(b"\xff" * min(info.size, 64))
    run = headlight.open(path)                     # the metadata is intact
    with pytest.raises(RunFileError) as err:
        run.retrieval_heads
    assert err.value.key == key and "cannot be read" in str(err.value)
    with pytest.raises(RunFileError) as err:
        run.verify()
    assert err.value.key == key


@pytest.mark.parametrize("delete,expect_key,at_open", [
    ("retrieval_heads", "/retrieval_heads", True),
    ("retrieval_heads/trials", "/retrieval_heads/trials", False),
])
def test_missing_groups_of_an_analysis(runs, tmp_path, delete, expect_key, at_open):
    path = copy(runs["rh"].path, tmp_path / "missing.h5")
    with h5py.File(path, "a") as f:
        del f[delete]
    with pytest.raises(RunFileError) as err:
        run = headlight.open(path)
        assert not at_open
        run.retrieval_heads
    assert err.value.key == expect_key and "missing" in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize("name,delete", [
    ("ablate", "ablation/records"), ("cite", "citation/items"), ("membership", "membership/documents"),
    ("composition", "composition/q_comp"), ("attention", "needle_attention/weights"),
])
def test_missing_parts_of_other_analyses(runs, tmp_path, name, delete):
    path = copy(runs[name].path, tmp_path / f"{name}.h5")
    with h5py.File(path, "a") as f:
        del f[delete]
    with pytest.raises(RunFileError) as err:
        headlight.open(path).analysis()
    assert err.value.key == "/" + delete


def test_missing_trace_parts(runs, tmp_path):
    path = copy(runs["rows"].path, tmp_path / "no-tokens.h5")
    with h5py.File(path, "a") as f:
        del f["tokens"]
    with pytest.raises(RunFileError) as err:
        headlight.open(path)
    assert err.value.key == "/tokens"
    path = copy(runs["rows"].path, tmp_path / "no-axes.h5")
    with h5py.File(path, "a") as f:
        del f["captures/blocks.3.attn.hook_pattern"].attrs["axes"]
    run = headlight.open(path)
    with pytest.raises(RunFileError) as err:
        run.cache["blocks.3.attn.hook_pattern"]
    assert err.value.key == "/captures/blocks.3.attn.hook_pattern@axes"
    path = copy(runs["topk"].path, tmp_path / "no-indices.h5")
    with h5py.File(path, "a") as f:
        del f["captures/blocks.3.attn.hook_pattern.topk_indices"]
    with pytest.raises(RunFileError) as err:
        headlight.open(path).cache["blocks.3.attn.hook_pattern"]
    assert err.value.key == "/captures/blocks.3.attn.hook_pattern.topk_indices"
    with pytest.raises(KeyError, match="no capture"):
        headlight.open(runs["rows"].path).cache["blocks.9.attn.hook_pattern"]


@pytest.mark.parametrize("attr,value,message", [
    ("format", None, "missing root attribute 'format'"),
    ("format", "something-else", "not a Headlight run file"),
    ("format_version", 2, "format_version 2 is not supported"),
    ("complete", None, "missing root attribute 'complete'"),
])
def test_bad_root_attributes(runs, tmp_path, attr, value, message):
    path = copy(runs["rows"].path, tmp_path / "root.h5")
    with h5py.File(path, "a") as f:
        if value is None:
            del f.attrs[attr]
        else:
            f.attrs[attr] = value
    with pytest.raises(RunFileError, match=message) as err:
        headlight.open(path)
    assert err.value.key == f"/@{attr}"


def test_inconsistent_capture_attributes(runs, tmp_path):
    path = copy(runs["rows"].path, tmp_path / "heads.h5")
    with h5py.File(path, "a") as f:
        f["captures/blocks.3.attn.hook_pattern"].attrs["heads"] = np.array([0, 4, 8], dtype=np.int64)
    with pytest.raises(RunFileError, match="3 heads listed for an axis of 2") as err:
        headlight.open(path).cache["blocks.3.attn.hook_pattern"]
    assert err.value.key == "/captures/blocks.3.attn.hook_pattern@heads"
