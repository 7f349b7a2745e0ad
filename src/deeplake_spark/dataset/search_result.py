"""``SearchResult``: the rows a vector search found, best first, with their scores."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from deeplake_spark.dataset.view import DatasetView, RowKey

#: name of the score column in ``SearchResult.table()`` (``"_score"`` when the dataset has a ``score`` column)
SCORE_COLUMN = "score"


class SearchResult:
    """The hits of one query: a :class:`DatasetView` of the rows in rank order and their scores.

    ``scores[i]`` belongs to ``view[i]`` (row ``indices[i]`` of the version): cosine similarity or
    inner product (descending) or Euclidean distance (ascending), per ``metric``.

    >>> hits = ds.search(q, k=5)
    >>> hits.indices, hits.scores       # row positions, best first
    >>> hits.table()                    # tabular columns + "score"
    >>> hits[0]                         # the best row as {column: value}
    >>> hits["embedding"]               # (k, d) vectors of the hits
    >>> hits.view.pytorch(batch_size=5)
    """

    def __init__(self, view: DatasetView, scores: np.ndarray, *, metric: str, column: str,
                 columns: Sequence[str] | None = None) -> None:
        self.view = view
        self.scores: np.ndarray = np.asarray(scores, dtype=np.float64)
        self.scores.setflags(write=False)
        #: the metric the scores are in: "cosine", "l2" or "dot"
        self.metric = metric
        #: the tensor searched
        self.column = column
        self._columns = tuple(columns) if columns is not None else None

    @property
    def indices(self) -> np.ndarray:
        """Row positions of the hits in the dataset version, best first."""
        return self.view.indices

    @property
    def version(self) -> int:
        return self.view.version

    def __len__(self) -> int:
        return len(self.view)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The hits as rows ({column: value}), best first."""
        for i in range(len(self)):
            yield self.view[i]

    def __getitem__(self, key: RowKey | str) -> Any:
        """As on the view: ``hits[i]`` one row, ``hits["col"]`` a column's values, ``hits[a:b]`` a view."""
        return self.view[key]

    def __repr__(self) -> str:
        return (f"SearchResult(path={self.view.path!r}, version={self.version}, column={self.column!r}, "
                f"metric={self.metric!r}, rows={self.indices.tolist()}, scores={np.round(self.scores, 6).tolist()})")

    def _names(self, columns: Sequence[str] | None) -> list[str]:
        if columns is not None:
            return self.view._columns(columns)
        if self._columns is not None:
            return list(self._columns)
        schema = self.view.schema
        return [name for name in schema.order if name not in schema.chunked]

    def score_column(self) -> str:
        """The name of the score column of :meth:`table` / :meth:`numpy`."""
        return "_" + SCORE_COLUMN if SCORE_COLUMN in self.view.schema.order else SCORE_COLUMN

    def table(self, columns: Sequence[str] | None = None) -> pa.Table:
        """The hits as an Arrow table, best first: ``columns`` (default: those given to ``search``,
        else every tabular column and scalar tensor) plus the score column (``score``). A chunked
        tensor asked for comes as its values (lists), not as refs."""
        names = self._names(columns)
        chunked = self.view.schema.chunked
        plain = [n for n in names if n not in chunked]
        values: dict[str, Any] = {}
        if plain:
            rows = self.view.table(plain)
            values.update((n, rows.column(n)) for n in plain)
        if len(plain) < len(names):
            samples = self.view.numpy([n for n in names if n in chunked])
            values.update((n, _arrow(v)) for n, v in samples.items())
        values = {n: values[n] for n in names}
        values[self.score_column()] = pa.array(self.scores, type=pa.float64())
        return pa.table(values)

    def numpy(self, columns: Sequence[str] | None = None) -> dict[str, Any]:
        """{column: values} of the hits (as ``DatasetView.numpy``, default columns as :meth:`table`)
        plus the scores."""
        values = self.view.numpy(self._names(columns))
        values[self.score_column()] = self.scores
        return values


def _arrow(values: Any) -> pa.Array:
    """Samples of a chunked tensor as an Arrow array: fixed-size lists for a stack of 1-d vectors,
    nested lists otherwise (None for a null sample)."""
    if isinstance(values, np.ndarray) and values.ndim == 2 and values.dtype.kind in "biuf":
        flat = pa.array(np.ascontiguousarray(values).reshape(-1))
        return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
    return pa.array([None if v is None else (v if isinstance(v, str) else v.tolist()) for v in values])
