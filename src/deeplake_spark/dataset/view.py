"""``DatasetView``: rows of one dataset version picked by position or predicate, to read or train on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deeplake_spark.dataset.inline import inline_sample
from deeplake_spark.dataset.predicate import expression_positions
from deeplake_spark.dataset.query import SqlRows, filter_positions, query_positions, sql_table
from deeplake_spark.errors import InvalidOptionError, SchemaError

if TYPE_CHECKING:
    from deeplake_spark.dataset.dataset import Dataset
    from deeplake_spark.dataset.schema import DatasetSchema

#: What ``ds[...]`` / ``view[...]`` accept to pick rows.
RowKey = int | slice | Sequence[int] | np.ndarray


def pick_positions(key: slice | Sequence[int] | np.ndarray, n: int, where: str,
                   indices: np.ndarray | None = None) -> np.ndarray:
    """Row positions picked by ``key`` out of ``indices`` (``0..n-1`` when None, without building it
    for a slice): a slice, integer positions (negative ones count from the end) or a boolean mask of
    length ``n``. Raises ``IndexError`` naming ``where`` and the first position out of range."""
    if isinstance(key, slice):
        if indices is not None:
            return indices[key]
        picked_range = range(n)[key]
        return np.arange(picked_range.start, picked_range.stop, picked_range.step, dtype=np.int64)
    picked = np.asarray(key)
    if picked.dtype == bool:
        if picked.shape != (n,):
            raise IndexError(f"{where}: a boolean mask of shape {picked.shape} for {n} rows")
        found = np.flatnonzero(picked)
        return found.astype(np.int64) if indices is None else indices[found]
    if picked.size == 0:
        return np.zeros(0, dtype=np.int64)
    if picked.ndim != 1 or not np.issubdtype(picked.dtype, np.integer):
        raise IndexError(f"{where}: row positions must be a 1-d list of integers, got {picked.dtype} of shape "
                         f"{picked.shape}")
    if picked.min() < -n or picked.max() >= n:
        bad = int(picked[(picked < -n) | (picked >= n)][0])
        raise IndexError(f"{where}: index {bad} out of range for {n} rows")
    picked = picked.astype(np.int64) % n
    return picked if indices is None else indices[picked]


class DatasetView:
    """Rows of a dataset at one version, by their positions in that version (``ds[0:1000]``,
    ``ds[[5, 2, 9]]``, ``ds.filter("label = 3 and split = 'train'")``), in the order picked.

    A view is pinned to the version it was made from: rows appended, deleted or updated later (by
    this handle or anyone else) never change what it holds. Reading it after the dataset handle
    moved on opens that version read-only; once the version is vacuumed, reads raise
    ``VersionNotFound``. A view reads nothing until asked for values, so ``ds[:].pytorch()`` streams
    a big dataset without loading its samples first.

    >>> view = ds.filter("split = 'train'")[0:1000]
    >>> len(view), view[0]["label"], view["embedding"].shape
    >>> loader = view.pytorch(batch_size=64, num_workers=2)
    """

    def __init__(self, dataset: Dataset, indices: np.ndarray | None = None) -> None:
        """``indices``: row positions in ``dataset``'s version, non-negative and in range (all rows, in
        order, when None). Get views from ``ds[...]`` and ``ds.filter(...)`` rather than directly."""
        self._dataset = dataset
        self.version: int = dataset.version
        self.path: str = dataset.path
        self._whole = indices is None  # every row in order: filter() needs no take
        n = len(dataset)
        rows = np.arange(n, dtype=np.int64) if indices is None else np.array(indices, dtype=np.int64)
        if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= n)):
            raise IndexError(f"{self._where()}: a view takes a 1-d array of row positions in 0..{n - 1}")
        rows.setflags(write=False)
        self._indices = rows

    # ----------------------------------------------------------------- state
    @property
    def dataset(self) -> Dataset:
        """The dataset at the view's version (reopened read-only at it once the original handle moved on)."""
        if self._dataset.version != self.version:
            from deeplake_spark.dataset.dataset import open as open_dataset  # dataset.py imports this module

            self._dataset = open_dataset(self.path, version=self.version,
                                         storage_options=self._dataset.storage_options)
        return self._dataset

    @property
    def indices(self) -> np.ndarray:
        """Row positions in the dataset version, in view order (read-only int64 array)."""
        return self._indices

    @property
    def schema(self) -> DatasetSchema:
        """The dataset's ``DatasetSchema`` at the view's version."""
        return self.dataset.schema

    def __len__(self) -> int:
        return len(self._indices)

    def __repr__(self) -> str:
        return (f"DatasetView(path={self.path!r}, version={self.version}, rows={len(self)}, "
                f"columns={list(self.dataset.schema.order)})")

    # ------------------------------------------------------------- selection
    def _where(self) -> str:
        return f"dataset {self.path} (version {self.version})"

    def positions(self, key: slice | Sequence[int] | np.ndarray) -> np.ndarray:
        """Row positions in the dataset version for ``key``, a selection of this view's rows (see
        :func:`pick_positions`)."""
        return pick_positions(key, len(self), self._where(), self._indices)

    def __getitem__(self, key: RowKey | str) -> Any:
        """``view[i]`` -> {column: value} of one row; ``view["column"]`` -> that column's values
        (a stacked numpy array when shapes allow, else a list); ``view[a:b]``, ``view[[i, j]]``,
        ``view[mask]`` -> a view of those rows."""
        if isinstance(key, str):
            return self.numpy([key])[key]
        if isinstance(key, (int, np.integer)):
            n, i = len(self), int(key)
            if not -n <= i < n:
                raise IndexError(f"{self._where()}: index {i} out of range for {n} rows")
            return self._row(int(self._indices[i % n]))
        return DatasetView(self.dataset, self.positions(key))

    def _row(self, position: int) -> dict[str, Any]:
        ds = self.dataset
        values = ds._rows(np.array([position], dtype=np.int64), ds.schema.order)
        return {name: inline_sample(col, 0) if name in ds.schema.inline else col[0] for name, col in values.items()}

    def filter(self, predicate: str | pc.Expression) -> DatasetView:
        """The rows of this view for which ``predicate`` is true, in view order.

        ``predicate``: the text of a SQL ``WHERE`` clause (``"label = 3 and split = 'train'"``), run by
        DuckDB over the rows as :meth:`query` runs it, with the same columns (tabular columns, scalar
        tensors stored inline, chunked tensors' metadata: ``ndim(mask) = 2``); or a
        ``pyarrow.compute.Expression`` (``pc.field("label") == 3``), evaluated by Arrow over the
        tabular columns and inline tensors. No Spark, no chunk read. NULL follows SQL: a row whose
        predicate is NULL is not selected. Bad syntax, a non-boolean predicate or a tensor stored in
        chunks compared as a value raise ``InvalidOptionError``, an unknown column ``SchemaError``,
        each naming the dataset, version, predicate and the column or position at fault.
        """
        where = f"{self._where()}: filter({predicate!r})"
        if isinstance(predicate, str):
            return DatasetView(self.dataset, self._indices[filter_positions(self._sql_rows(), predicate,
                                                                            where=where)])
        if not isinstance(predicate, pc.Expression):
            raise InvalidOptionError(f"{where}: expected a SQL text or a pyarrow.compute.Expression")
        ds = self.dataset
        schema = ds.schema
        filterable = [name for name in schema.order if name not in schema.chunked]
        rows = ds.table().select(filterable)
        if not self._whole:
            rows = rows.take(pa.array(self._indices, type=pa.int64()))
        positions = expression_positions(rows, predicate, list(schema.chunked), where=where)
        return DatasetView(ds, self._indices[positions])

    def query(self, sql: str) -> DatasetView:
        """The rows a SQL ``SELECT`` picks out of this view, in the query's order, as a view (pinned to
        its version, like every view).

        ``sql`` reads the table ``ds`` (this view's rows, in view order) through DuckDB:
        ``"SELECT * FROM ds WHERE split = 'train' AND ndim(mask) = 2 ORDER BY id DESC LIMIT 100"``.
        ``ds`` holds the tabular columns, the scalar tensors stored inline and, for each tensor
        stored in chunks, its metadata (``img.shape``, ``img.ndim``, ``img.nbytes``; no chunk is read).
        The result must be rows of ``ds``: WHERE, ORDER BY, LIMIT/OFFSET, QUALIFY, window functions
        and DISTINCT ON are fine; GROUP BY, aggregates, plain DISTINCT, joins, set operations and
        WITH are refused (use :meth:`sql`). The select list does not narrow the view: it holds
        every column of the selected rows. Ties of ORDER BY, and a query without one, keep view
        order. See ``deeplake_spark.dataset.query`` for what is refused as unsafe.
        """
        return DatasetView(self.dataset, self._indices[query_positions(self._sql_rows(), sql)])

    def sql(self, sql: str) -> pa.Table:
        """The result of any one SQL ``SELECT`` over the table ``ds`` (this view's rows; see
        :meth:`query` for its columns) as an Arrow table, through DuckDB: aggregates, GROUP BY,
        DISTINCT, subqueries, self-joins and WITH over ``ds`` included
        (``"SELECT split, count(*) AS n, avg(img.shape[1]) FROM ds GROUP BY split"``).
        Chunked tensors come out as their metadata structs."""
        return sql_table(self._sql_rows(), sql)

    def _sql_rows(self) -> SqlRows:
        ds = self.dataset
        schema = ds.schema

        def fetch(columns: Sequence[str]) -> pa.Table:
            rows = ds.table().select(list(columns))
            return rows if self._whole else rows.take(pa.array(self._indices, type=pa.int64()))

        names = {c: spec.class_names for c, spec in schema.tensors.items() if spec.class_names}
        return SqlRows(tuple(schema.order), frozenset(schema.chunked), fetch, self._where(), names)

    # ------------------------------------------------------------------ read
    def numpy(self, columns: Sequence[str] | None = None) -> dict[str, Any]:
        """{column: values} of the view's rows (all columns when None): tabular columns and inline
        tensors as numpy arrays, chunked tensors stacked into one array when every sample has the
        same shape and dtype, else a list of arrays (None for a null sample)."""
        ds = self.dataset
        names = self._columns(columns)
        return ds._rows(self._indices, names)

    def table(self, columns: Sequence[str] | None = None) -> pa.Table:
        """The view's rows as an Arrow table, as ``Dataset.table`` gives them (chunked tensors as refs)."""
        ds = self.dataset
        return ds._take(self._indices, self._columns(columns))

    def _columns(self, columns: Sequence[str] | None) -> list[str]:
        order = list(self.dataset.schema.order)
        if columns is None:
            return order
        if isinstance(columns, str):
            columns = [columns]
        unknown = [c for c in columns if c not in order]
        if unknown:
            raise SchemaError(f"{self._where()}: unknown column(s) {unknown}; has {order}")
        return list(columns)

    def pytorch(self, **loader_options: Any) -> Any:
        """A streaming torch ``DataLoader`` over exactly the view's rows (options as for
        ``Dataset.pytorch``). Only chunks holding view rows are read; unshuffled it yields rows in
        view order, shuffled it groups them by chunk like a whole dataset."""
        from deeplake_spark.dataset.dataset import torch_loader  # dataset.py imports this module

        return torch_loader(self, **loader_options)

    def search(self, query: Any, k: int = 10, *, column: str | None = None, metric: str = "cosine",
               filter: str | pc.Expression | None = None, columns: Sequence[str] | None = None) -> Any:
        """The ``k`` rows of this view nearest to ``query`` in an embedding tensor, best first: a
        ``SearchResult`` (a list of them for a ``(q, d)`` batch of queries); see
        :func:`deeplake_spark.dataset.search.search`."""
        from deeplake_spark.dataset.search import search  # search.py imports this module

        return search(self, query, k, column=column, metric=metric, filter=filter, columns=columns)
