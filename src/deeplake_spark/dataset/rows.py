"""Rows by position: the Arrow rows at given row positions of a dataset version, and their samples.

``ds[i]`` right after ``open`` and small views (``ds[[3, 9]]``) read just the data files that hold
the wanted rows, found through the add actions' row counts, instead of scanning every file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from deltalake import DeltaTable

from deeplake_spark.dataset import delta_log
from deeplake_spark.dataset.inline import inline_samples
from deeplake_spark.dataset.schema import DatasetSchema

#: Up to this many rows are read from their own data files while the whole version is not loaded.
FEW_ROWS = 64


def stack_samples(samples: Sequence[Any]) -> Any:
    """One numpy array when every sample has the same shape and dtype, else the list itself."""
    if samples and all(isinstance(s, str) for s in samples):
        return np.array(samples, dtype=object)
    if not samples or any(not isinstance(s, np.ndarray) for s in samples):  # None, str, VideoSample ...
        return list(samples)
    first = samples[0]
    if all(s.shape == first.shape and s.dtype == first.dtype for s in samples):
        return np.stack(samples)
    return list(samples)


class RowLocator:
    """Finds the data file holding each row of one Delta version and keeps the files it has read.

    Built from the add actions' row counts; ``None`` from :meth:`build` when a file has no count.
    """

    def __init__(self, fragments: list[Any], starts: np.ndarray, schema: pa.Schema) -> None:
        self.fragments = fragments
        self.starts = starts  # first row of each file, then the row count
        self.schema = schema
        self._tables: dict[int, pa.Table] = {}

    @classmethod
    def build(cls, dt: DeltaTable, schema: pa.Schema) -> RowLocator | None:
        dataset, counts = delta_log.ordered_fragments(dt, schema)
        if counts is None:
            return None
        starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(list(dataset.get_fragments()), starts, dataset.schema)

    @property
    def num_rows(self) -> int:
        return int(self.starts[-1])

    def take(self, indices: np.ndarray, columns: Sequence[str]) -> pa.Table:
        """``columns`` of the rows at ``indices`` (non-negative), in the order given."""
        owner = np.searchsorted(self.starts, indices, side="right") - 1
        pieces, order = [], []
        for f in np.unique(owner):
            f = int(f)
            if f not in self._tables:
                self._tables[f] = self.fragments[f].to_table(schema=self.schema)
            mine = np.nonzero(owner == f)[0]
            part = self._tables[f].select(list(columns))
            pieces.append(part.take(pa.array(indices[mine] - self.starts[f], type=pa.int64())))
            order.append(mine)
        if not pieces:
            return pa.table({name: pa.array([], type=self.schema.field(name).type) for name in columns})
        joined = pa.concat_tables(pieces)
        return joined.take(pa.array(np.argsort(np.concatenate(order), kind="stable"), type=pa.int64()))


def row_values(taken: pa.Table, schema: DatasetSchema, columns: Sequence[str],
               read_tensor: Callable[[str, list[Any]], list[Any]]) -> dict[str, Any]:
    """{column: values} of the Arrow rows ``taken``: tabular columns as numpy arrays, inline scalar
    tensors in their dtype, chunked tensors read through ``read_tensor(column, refs)`` and stacked
    (a list when shapes or dtypes differ or a sample is null)."""
    out: dict[str, Any] = {}
    for name in columns:
        col = taken.column(name)
        if name in schema.inline:
            out[name] = inline_samples(col, schema.tensors[name])
        elif name in schema.tensors:
            out[name] = stack_samples(read_tensor(name, col.to_pylist()))
        else:
            out[name] = col.to_numpy(zero_copy_only=False)
    return out
