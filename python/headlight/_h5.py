"""Guarded h5py access: every failure becomes a `RunFileError` naming the file and the key."""
from __future__ import annotations

import contextlib
import os
from typing import Any, Dict, Iterator, Optional

import h5py
import numpy as np

from .errors import RunFileError


@contextlib.contextmanager
def guard(path: str, key: Optional[str]) -> Iterator[None]:
    """Turns h5py's KeyError/OSError/ValueError/RuntimeError inside the block into a RunFileError."""
    try:
        yield
    except RunFileError:
        raise
    except KeyError as e:
        raise RunFileError(path, f"missing ({_detail(e)})", key=key) from e
    except (OSError, ValueError, RuntimeError, TypeError) as e:
        raise RunFileError(path, f"cannot be read: {_detail(e)}", key=key,
                           hint="the file may be truncated or corrupted; rerun the command that wrote it") from e


def _detail(e: BaseException) -> str:
    text = str(e).strip().strip("\"'")
    return text or type(e).__name__


def open_file(path: str, locking: bool = True) -> h5py.File:
    """Opens `path` read-only, or raises a RunFileError saying why not."""
    if not os.path.exists(path):
        raise RunFileError(path, "no such file")
    if os.path.isdir(path):
        raise RunFileError(path, "is a directory, not a run file")
    try:
        if not locking:
            try:
                return h5py.File(path, "r", locking=False)
            except ValueError as e:                 # an HDF5 without the file-locking switch
                if "locking" not in str(e):
                    raise
        return h5py.File(path, "r")
    except (OSError, ValueError) as e:
        raise RunFileError(path, f"not a readable HDF5 file ({_detail(e)})",
                           hint="a truncated or corrupted file cannot be repaired; "
                                "rerun the command that wrote it") from e


def convert_attr(value: Any) -> Any:
    """h5py attribute -> plain Python: str, int, float, list of str, or a numeric numpy array."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in ("O", "S", "U"):
            return [v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v) for v in value.tolist()]
        return value.copy()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_attrs(path: str, obj: Any, key: str) -> Dict[str, Any]:
    """Every attribute of `obj`, converted."""
    out: Dict[str, Any] = {}
    with guard(path, key):
        for name in obj.attrs.keys():
            with guard(path, f"{key}@{name}"):
                out[name] = convert_attr(obj.attrs[name])
    return out


def is_string_dataset(ds: h5py.Dataset) -> bool:
    return h5py.check_string_dtype(ds.dtype) is not None


def read_dataset(path: str, ds: h5py.Dataset, rows: Optional[int] = None) -> np.ndarray:
    """The whole dataset (its first `rows` rows if given); strings as an object array of str."""
    with guard(path, ds.name):
        sel = slice(None) if rows is None else slice(0, rows)
        if is_string_dataset(ds):
            if ds.shape == ():
                return np.array(ds.asstr()[()], dtype=object)
            return np.asarray(ds.asstr()[sel], dtype=object)
        if ds.shape == ():
            return np.asarray(ds[()])
        return np.asarray(ds[sel])


def require(path: str, parent: h5py.Group, name: str, kind: type = h5py.Dataset, what: str = "") -> Any:
    """parent[name], which must exist and be a `kind` (h5py.Dataset or h5py.Group)."""
    key = f"{parent.name.rstrip('/')}/{name}"
    with guard(path, key):
        if name not in parent:
            raise RunFileError(path, "missing" + (f" ({what})" if what else ""), key=key)
        obj = parent[name]
    if not isinstance(obj, kind):
        noun = "dataset" if kind is h5py.Dataset else "group"
        raise RunFileError(path, f"is not a {noun}", key=key)
    return obj


def require_attr(path: str, obj: Any, name: str) -> Any:
    key = f"{obj.name}@{name}" if obj.name != "/" else f"/@{name}"
    with guard(path, key):
        if name not in obj.attrs:
            raise RunFileError(path, "missing attribute", key=key)
        return convert_attr(obj.attrs[name])
