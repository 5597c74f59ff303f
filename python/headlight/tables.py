"""`Table`: parallel columns of a run-file group (a record table or a one-row-per-item group)."""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional

import h5py
import numpy as np

from ._h5 import guard, read_attrs, read_dataset


class Table:
    """Columns of equal length, one row per record (trial, statement, document, ...).

    ``table["rouge1_recall"]`` is a column (numpy array; strings as an object array of str; a
    block column such as ``head_scores`` is ``[row, ...]``). ``len(table)`` is the row count,
    iterating yields one dict per row, ``table.sorted_by("trial_index")`` reorders every column.
    ``column_attrs[name]`` holds a column's attributes (``axes``, ``names``...).

    Record tables of a stopped run can have columns of unequal length (a kill between two column
    appends); reading cuts every column to the shortest, as Headlight does on resume, and
    ``truncated_from`` records the longest length seen (None when all were equal).
    """

    def __init__(self, name: str, columns: Dict[str, np.ndarray],
                 column_attrs: Optional[Dict[str, Dict[str, Any]]] = None,
                 attrs: Optional[Dict[str, Any]] = None, truncated_from: Optional[int] = None):
        self.name = name
        self.columns = columns                          # column -> [row, ...]
        self.column_attrs = column_attrs or {}
        self.attrs = attrs or {}
        self.truncated_from = truncated_from
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"{name}: columns of unequal length {sorted(lengths)}")
        self.n_rows = lengths.pop() if lengths else 0

    @classmethod
    def read(cls, path: str, group: h5py.Group) -> "Table":
        """Reads every dataset of `group` as a column (cut to the shortest first axis)."""
        with guard(path, group.name):
            names = [n for n in group.keys() if isinstance(group[n], h5py.Dataset)]
            lengths = {n: (group[n].shape[0] if group[n].shape else 1) for n in names}
        n = min(lengths.values()) if lengths else 0
        longest = max(lengths.values()) if lengths else 0
        columns = {name: read_dataset(path, group[name], rows=n) for name in names}
        column_attrs = {name: read_attrs(path, group[name], group[name].name) for name in names}
        return cls(group.name, columns, column_attrs, read_attrs(path, group, group.name),
                   truncated_from=longest if longest != n else None)

    def __len__(self) -> int:
        return self.n_rows

    def __getitem__(self, column: str) -> np.ndarray:
        try:
            return self.columns[column]
        except KeyError:
            raise KeyError(f"{self.name} has no column {column!r} (columns: {', '.join(self.columns)})") from None

    def __contains__(self, column: object) -> bool:
        return column in self.columns

    def get(self, column: str, default: Any = None) -> Any:
        return self.columns.get(column, default)

    def keys(self) -> List[str]:
        return list(self.columns)

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        for i in range(self.n_rows):
            yield self.row(i)

    def row(self, i: int) -> Dict[str, Any]:
        out = {}
        for k, v in self.columns.items():
            x = v[i]
            out[k] = x.item() if isinstance(x, np.generic) else x
        return out

    def sorted_by(self, column: str) -> "Table":
        """The rows ordered by `column` (stable), e.g. execution order -> grid order."""
        order = np.argsort(self[column], kind="stable")
        return self.take(order)

    def take(self, rows: Any) -> "Table":
        """The rows selected by an index array or boolean mask."""
        return Table(self.name, {k: v[rows] for k, v in self.columns.items()}, self.column_attrs, self.attrs)

    def to_dict(self) -> Dict[str, np.ndarray]:
        return dict(self.columns)

    def to_pandas(self) -> Any:
        """A pandas DataFrame of the 1-D columns (pandas is optional)."""
        import pandas as pd  # noqa: PLC0415 - optional dependency
        return pd.DataFrame({k: v for k, v in self.columns.items() if v.ndim == 1})

    def __repr__(self) -> str:
        cols = ", ".join(f"{k}{list(v.shape[1:]) if v.ndim > 1 else ''}" for k, v in self.columns.items())
        return f"Table({self.name}, {self.n_rows} rows: {cols})"
