"""`Capture`: one captured hook (a dataset under /captures) with its named axes and selections."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import h5py
import numpy as np

from ._h5 import guard, read_attrs, read_dataset, require_attr
from .errors import RunFileError

#: Axes whose positions are absolute query positions (listed by the `queries` attribute).
QUERY_AXES = ("query", "pos")
#: Axes whose positions are heads (listed by the `heads` attribute).
HEAD_AXES = ("head", "kv_head")


@dataclass(frozen=True)
class Span:
    """A labelled token span [start, end) of a `span_mass` capture."""
    label: str
    start: int
    end: int


class Capture:
    """A captured tensor and what its axes mean.

    ``values`` is the stored array (float16 stays float16); ``axes`` names its axes in order
    (``("head", "query", "key")``). Selections are mapped honestly: ``heads[i]`` is the model's
    head index of position i along the head axis, ``queries[j]`` the absolute token position of
    position j along the query/pos axis (``arange`` for the full form). Use ``sel(head=4,
    query=12)`` to index by model head and absolute position instead of by storage position.

    ``form`` is ``full``, ``rows``, ``topk`` or ``span_mass``; top-k captures also have
    ``indices`` (key positions, -1 for padding) and ``k``; span-mass captures ``spans``.
    A Capture behaves like its array: ``np.asarray(c)``, ``c[0, -1]``, ``c.shape``.
    """

    def __init__(self, hook: str, values: np.ndarray, axes: Sequence[str], attrs: Dict[str, Any],
                 queries: Optional[np.ndarray] = None, indices: Optional[np.ndarray] = None, path: str = ""):
        self.hook = hook
        self.values = values                         # the dataset, axes as in `axes`
        self.axes: Tuple[str, ...] = tuple(axes)
        self.attrs = attrs
        self.path = path
        self.form: str = attrs.get("form", "full")
        self.layer: Optional[int] = attrs.get("layer")
        self.key_length: Optional[int] = attrs.get("key_length")
        self.k: Optional[int] = attrs.get("k")
        self.dtype_source: Optional[str] = attrs.get("dtype_source")
        self.indices = indices                       # topk: int32, same shape as values
        self.query_heads = _ints(attrs.get("query_heads"))
        self.heads = _ints(attrs.get("heads"))
        head_axis = self._axis_of(HEAD_AXES)
        if self.heads is None and head_axis is not None:
            self.heads = np.arange(values.shape[head_axis], dtype=np.int64)
        q_axis = self._axis_of(QUERY_AXES)
        if queries is None and q_axis is not None:
            queries = np.arange(values.shape[q_axis], dtype=np.int64)
        self.queries = queries
        self.spans: Optional[List[Span]] = None
        if "span_labels" in attrs:
            self.spans = [Span(str(lab), int(s), int(e)) for lab, s, e in
                          zip(attrs["span_labels"], attrs.get("span_starts", []), attrs.get("span_ends", []))]
        self._check(head_axis, q_axis)

    def _check(self, head_axis: Optional[int], q_axis: Optional[int]) -> None:
        if len(self.axes) != self.values.ndim:
            raise RunFileError(self.path, f"axes {list(self.axes)} do not match the shape {self.values.shape}",
                               key=f"/captures/{self.hook}@axes")
        if head_axis is not None and len(self.heads) != self.values.shape[head_axis]:
            raise RunFileError(self.path,
                               f"{len(self.heads)} heads listed for an axis of {self.values.shape[head_axis]}",
                               key=f"/captures/{self.hook}@heads")
        if q_axis is not None and len(self.queries) != self.values.shape[q_axis]:
            raise RunFileError(self.path, f"{len(self.queries)} queries listed for an axis of "
                               f"{self.values.shape[q_axis]}", key=f"/captures/{self.hook}@queries")
        if self.indices is not None and self.indices.shape != self.values.shape:
            raise RunFileError(self.path, f"indices shape {self.indices.shape} differs from values {self.values.shape}",
                               key=f"/captures/{self.hook}.topk_indices")

    def _axis_of(self, names: Sequence[str]) -> Optional[int]:
        for i, a in enumerate(self.axes):
            if a in names:
                return i
        return None

    # numpy-like behaviour
    @property
    def shape(self) -> Tuple[int, ...]:
        return self.values.shape

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    @property
    def ndim(self) -> int:
        return self.values.ndim

    @property
    def dims(self) -> Dict[str, int]:
        """Axis name -> length, in axis order."""
        return dict(zip(self.axes, self.values.shape))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.values
        return a.astype(dtype) if dtype is not None else a

    def __getitem__(self, item: Any) -> Any:
        return self.values[item]

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        extra = []
        if self.heads is not None:
            extra.append(f"heads={_short(self.heads)}")
        if self.form != "full" and self.queries is not None:
            extra.append(f"queries={_short(self.queries)}")
        if self.k is not None:
            extra.append(f"k={self.k}")
        if self.spans:
            extra.append("spans=" + ",".join(s.label for s in self.spans))
        dims = ", ".join(f"{a}={n}" for a, n in self.dims.items())
        text = f"<Capture {self.hook} [{dims}] {self.values.dtype} form={self.form} {' '.join(extra)}"
        return text.rstrip() + ">"

    # selection by meaning
    def index(self, axis: str, value: Any) -> Union[int, np.ndarray]:
        """Storage position(s) along `axis` of a model head / absolute position / span label."""
        if axis not in self.axes:
            raise KeyError(f"{self.hook} has no axis {axis!r} (axes: {', '.join(self.axes)})")
        if isinstance(value, (list, tuple, np.ndarray)):
            return np.array([self.index(axis, v) for v in value], dtype=np.int64)
        if axis in HEAD_AXES:
            return _position(self.heads, int(value), f"{self.hook}: head {value} was not captured "
                             f"(captured: {_short(self.heads)})")
        if axis in QUERY_AXES:
            return _position(self.queries, int(value), f"{self.hook}: position {value} was not captured "
                             f"(captured: {_short(self.queries)})")
        if axis == "span" and self.spans is not None and isinstance(value, str):
            labels = [s.label for s in self.spans]
            if value not in labels:
                raise KeyError(f"{self.hook}: no span {value!r} (spans: {', '.join(labels)})")
            return labels.index(value)
        return int(value)

    def sel(self, **selection: Any) -> np.ndarray:
        """Values indexed by meaning: ``sel(head=4, query=12)`` picks model head 4 and absolute
        position 12 whatever was stored; a span axis takes labels; other axes take plain indices."""
        idx: List[Any] = [slice(None)] * self.values.ndim
        for axis, value in selection.items():
            idx[self.axes.index(axis) if axis in self.axes else self._missing(axis)] = self.index(axis, value)
        # numpy applies several index arrays jointly; select one axis at a time instead.
        out = self.values
        for ax in reversed(range(len(idx))):
            if not (isinstance(idx[ax], slice) and idx[ax] == slice(None)):
                out = np.take(out, idx[ax], axis=ax)
        return out

    def _missing(self, axis: str) -> int:
        raise KeyError(f"{self.hook} has no axis {axis!r} (axes: {', '.join(self.axes)})")

    def dense(self) -> np.ndarray:
        """A `topk` attention capture scattered back to ``[head, query, key]`` (key_length keys):
        the kept values at their key positions, 0 elsewhere (-inf for scores)."""
        if self.form != "topk" or self.indices is None:
            raise ValueError(f"{self.hook}: dense() needs a topk capture (form is {self.form})")
        fill = -np.inf if self.hook.endswith("hook_attn_scores") else 0.0
        out = np.full(self.values.shape[:-1] + (int(self.key_length),), fill, dtype=np.float32)   # [head, query, key]
        h, q, j = np.nonzero(self.indices >= 0)
        out[h, q, self.indices[h, q, j]] = self.values[h, q, j]
        return out

    def to_xarray(self) -> Any:
        """An ``xarray.DataArray`` with the axes as dims and heads / positions / span labels as
        coordinates (xarray is optional: ImportError if it is not installed)."""
        try:
            import xarray as xr  # noqa: PLC0415 - optional dependency
        except ImportError as e:
            raise ImportError("Capture.to_xarray() needs xarray: pip install xarray") from e
        coords: Dict[str, Any] = {}
        for i, a in enumerate(self.axes):
            if a in HEAD_AXES:
                coords[a] = self.heads
            elif a in QUERY_AXES:
                coords[a] = self.queries
            elif a == "span" and self.spans is not None:
                coords[a] = [s.label for s in self.spans]
            else:
                coords[a] = np.arange(self.values.shape[i])
        return xr.DataArray(self.values, dims=self.axes, coords=coords, name=self.hook,
                            attrs={k: v for k, v in self.attrs.items() if isinstance(v, (str, int, float))})


def _ints(v: Any) -> Optional[np.ndarray]:
    return None if v is None else np.asarray(v, dtype=np.int64)


def _short(a: np.ndarray) -> str:
    a = list(np.asarray(a).tolist())
    return str(a) if len(a) <= 8 else f"[{', '.join(map(str, a[:3]))}, ..., {', '.join(map(str, a[-2:]))}] ({len(a)})"


def _position(listed: np.ndarray, value: int, message: str) -> int:
    hits = np.nonzero(listed == value)[0]
    if len(hits) == 0:
        raise KeyError(message)
    return int(hits[0])


class Cache(Mapping[str, Capture]):
    """The captures of one input: hook name -> `Capture`, read from the file on first access.

    Keys are the hook datasets under ``captures/`` (sibling ``.topk_indices`` / ``.queries``
    datasets belong to their hook's Capture and are not keys).
    """

    def __init__(self, path: str, group_path: str, names: List[str], opener: Any):
        self._path = path
        self._group_path = group_path                # e.g. "/captures" or "/inputs/a/captures"
        self._names = names
        self._open = opener
        self._loaded: Dict[str, Capture] = {}

    @staticmethod
    def hook_names(path: str, group: Optional[h5py.Group]) -> List[str]:
        if group is None:
            return []
        names = []
        with guard(path, group.name):
            for name, obj in group.items():
                if not isinstance(obj, h5py.Dataset):
                    continue
                if obj.attrs.get("form") == "topk_indices":
                    continue
                if "hook" not in obj.attrs and name.endswith(".queries"):
                    continue
                names.append(name)
        return names

    def __getitem__(self, hook: str) -> Capture:
        if hook not in self._loaded:
            if hook not in self._names:
                close = [n for n in self._names if hook in n][:5]
                hint = f"; similar: {', '.join(close)}" if close else ""
                raise KeyError(f"no capture {hook!r} in {self._path}{hint} (captured: {len(self._names)} hooks)")
            self._loaded[hook] = self._read(hook)
        return self._loaded[hook]

    def _read(self, hook: str) -> Capture:
        with self._open() as f:
            return self._capture(f, hook, lazy=False)

    def _capture(self, f: h5py.File, hook: str, lazy: bool) -> Capture:
        """The Capture of `hook`; with `lazy`, its ``values`` is the open h5py dataset (valid
        while `f` is open) and top-k indices are not read."""
        key = f"{self._group_path}/{hook}"
        with guard(self._path, key):
            g = f[self._group_path]
            ds = g[hook]
        attrs = read_attrs(self._path, ds, key)
        axes = require_attr(self._path, ds, "axes")
        values = ds if lazy else read_dataset(self._path, ds)
        queries = None
        if "queries" in attrs:
            queries = np.asarray(attrs["queries"], dtype=np.int64)
        elif "queries_dataset" in attrs:
            qname = attrs["queries_dataset"]
            with guard(self._path, f"{self._group_path}/{qname}"):
                qds = g[qname]
            queries = read_dataset(self._path, qds).astype(np.int64)
        indices = None
        if attrs.get("form") == "topk" and not lazy:
            iname = hook + ".topk_indices"
            with guard(self._path, f"{self._group_path}/{iname}"):
                ids = g[iname]
            indices = read_dataset(self._path, ids)
        return Capture(hook, values, axes, attrs, queries=queries, indices=indices, path=self._path)

    def read(self, hook: str, **selection: Any) -> np.ndarray:
        """``cache[hook].sel(**selection)`` reading only the selected block from disk, for
        captures too large to load whole (a long prompt's full patterns): ``read(hook, head=4,
        query=[100, 200])`` reads the hyperslab spanning the selection, then picks from it."""
        if hook in self._loaded:
            return self._loaded[hook].sel(**selection)
        if hook not in self._names:
            raise KeyError(f"no capture {hook!r} in {self._path}")
        with self._open() as f:
            cap = self._capture(f, hook, lazy=True)
            for axis in selection:
                if axis not in cap.axes:
                    raise KeyError(f"{hook} has no axis {axis!r} (axes: {', '.join(cap.axes)})")
            region: List[Any] = []
            picks: List[Optional[np.ndarray]] = []
            for name in cap.axes:
                if name not in selection:
                    region.append(slice(None))
                    picks.append(None)
                    continue
                idx = cap.index(name, selection[name])
                if isinstance(idx, np.ndarray):
                    lo = int(idx.min()) if idx.size else 0
                    hi = int(idx.max()) + 1 if idx.size else 0
                    region.append(slice(lo, hi))
                    picks.append(idx - lo)
                else:
                    region.append(int(idx))
                    picks.append(None)
            with guard(self._path, f"{self._group_path}/{hook}"):
                block = np.asarray(cap.values[tuple(region)])
        axis = 0
        for r, pick in zip(region, picks):
            if isinstance(r, int):
                continue
            if pick is not None:
                block = np.take(block, pick, axis=axis)
            axis += 1
        return block

    def __contains__(self, hook: object) -> bool:
        return hook in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def shapes(self) -> Dict[str, Tuple[int, ...]]:
        """Hook -> stored shape, without reading the data."""
        out = {}
        with self._open() as f:
            for n in self._names:
                with guard(self._path, f"{self._group_path}/{n}"):
                    out[n] = tuple(f[self._group_path][n].shape)
        return out

    def info(self) -> Dict[str, Dict[str, Any]]:
        """Hook -> {shape, dtype, axes, form, heads?, queries?} without reading the data."""
        out = {}
        with self._open() as f:
            for n in self._names:
                key = f"{self._group_path}/{n}"
                with guard(self._path, key):
                    ds = f[self._group_path][n]
                    shape, dtype = tuple(ds.shape), str(ds.dtype)
                a = read_attrs(self._path, ds, key)
                out[n] = {"shape": shape, "dtype": dtype, "axes": a.get("axes", []), "form": a.get("form", "full"),
                          "heads": a.get("heads"), "queries": a.get("queries")}
        return out

    def __repr__(self) -> str:
        more = ", ..." if len(self._names) > 6 else ""
        return f"<Cache {len(self._names)} hooks: {', '.join(self._names[:6])}{more}>"
