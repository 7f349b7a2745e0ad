"""Exact vector similarity search over an embedding tensor, without Spark: ``ds.search(query, k=10)``.

This module checks the options (tensor, query, metric, k) and picks the candidate rows; the scan over the
chunks is ``dataset/search_scan.py`` (only chunks holding candidates are read, one at a time, each scored
against every query and cut to its best ``k``: memory stays at about two chunks plus ``k`` rows per
query), metrics, NULL handling and tie order are ``dataset/search_topk.py``, the result type
``dataset/search_result.py``.

>>> hits = ds.search(query_vector, k=10, filter="split = 'train'")
>>> hits.indices, hits.scores          # row positions in the version and their scores, best first
>>> hits.table()                        # tabular columns of the hits plus a ``score`` column
>>> hits.view.pytorch(batch_size=10)    # the hits are a DatasetView: read or train on them
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.compute as pc

from deeplake_spark.dataset.search_result import SearchResult
from deeplake_spark.dataset.search_scan import scan
from deeplake_spark.dataset.search_topk import METRICS, TopK
from deeplake_spark.dataset.view import DatasetView
from deeplake_spark.errors import InvalidOptionError, SchemaError
from deeplake_spark.format.spec import TensorSpec

if TYPE_CHECKING:
    from deeplake_spark.dataset.dataset import Dataset

__all__ = ["SearchResult", "search"]


def search(rows: Dataset | DatasetView, query: Any, k: int = 10, *, column: str | None = None,
           metric: str = "cosine", filter: str | pc.Expression | None = None,
           columns: Sequence[str] | None = None) -> SearchResult | list[SearchResult]:
    """The ``k`` rows of ``rows`` whose vectors in tensor ``column`` are nearest to ``query``, best first.

    ``query``: one vector (a list, numpy array or CPU torch tensor of ``d`` numbers) -> one
    :class:`SearchResult`; a ``(q, d)`` batch -> a list of ``q`` results, one per query, scored in the
    same pass over the chunks. ``column``: a tensor of 1-d numeric vectors; None picks the only tensor
    of htype ``embedding``. ``metric``: ``"cosine"`` (similarity, higher first), ``"l2"`` (Euclidean
    distance, smaller first) or ``"dot"`` (inner product, higher first). ``filter``: what
    ``ds.filter`` takes (SQL ``WHERE`` text or a pyarrow Expression); only matching rows are scored
    and only chunks holding them are read. ``columns``: the columns ``result.table()`` and
    ``result.numpy()`` give by default.

    Rows without a vector (a NULL sample, an empty one, or a zero vector for cosine, a vector with NaN
    or infinity) are skipped, so a result may hold fewer than ``k`` rows. Equal scores keep row order.
    A row picked twice by a view is scored once.
    """
    ds = rows.dataset if isinstance(rows, DatasetView) else rows
    where = f"dataset {ds.path} (version {ds.version}): search"
    if metric not in METRICS:
        raise InvalidOptionError(f"{where}: unknown metric {metric!r}; use one of {sorted(METRICS)}")
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidOptionError(f"{where}: k must be a positive integer, got {k!r}")
    name, spec = pick_column(ds, column, where)
    where = f"{where} over tensor {name!r}"
    queries, single = query_matrix(query, spec, metric, where)
    if columns is not None:
        columns = tuple(DatasetView(ds, np.zeros(0, dtype=np.int64))._columns(columns))
    positions = candidate_rows(rows, filter)
    tops = [TopK.empty(int(k), METRICS[metric]) for _ in range(len(queries))]
    if len(queries) and len(ds) and (positions is None or len(positions)):
        scan(ds, name, spec, positions, queries, metric, tops, where)
    results = [SearchResult(DatasetView(ds, top.positions), top.scores, metric=metric, column=name, columns=columns)
               for top in tops]
    return results[0] if single else results


def pick_column(ds: Dataset, column: str | None, where: str) -> tuple[str, TensorSpec]:
    """The tensor searched and its spec: ``column``, or the only embedding tensor when None."""
    schema = ds.schema
    if column is None:
        embeddings = [n for n, t in schema.tensors.items() if t.htype == "embedding"]
        if len(embeddings) != 1:
            found = f"tensors of htype 'embedding': {embeddings}" if embeddings else "no tensor of htype 'embedding'"
            raise InvalidOptionError(f"{where}: the dataset has {found}; pass column= one of its tensors "
                                     f"{list(schema.tensors)}")
        column = embeddings[0]
    if column not in schema.tensors:
        kind = "a tabular column, not a tensor" if column in schema.order else "not a column"
        raise SchemaError(f"{where}: {column!r} is {kind}; tensors: {list(schema.tensors)}")
    spec = schema.tensors[column]
    if spec.dtype in ("str", "bool") or spec.is_sample_compressed:
        stored = f"{spec.compression} images" if spec.is_sample_compressed else f"dtype {spec.dtype}"
        raise SchemaError(f"{where}: tensor {column!r} holds {stored}, not numeric vectors")
    if column in schema.inline or (spec.shape is not None and len(spec.shape) != 1):
        raise SchemaError(f"{where}: tensor {column!r} has sample shape {spec.shape}; search needs 1-d vectors")
    return column, spec


def query_matrix(query: Any, spec: TensorSpec, metric: str, where: str) -> tuple[np.ndarray, bool]:
    """The queries as a C-contiguous ``(q, d)`` float matrix (unit rows for cosine), and whether one
    vector was given."""
    try:
        values = np.asarray(query)
    except (TypeError, ValueError) as e:
        raise InvalidOptionError(f"{where}: the query is not a vector or a (q, d) matrix of numbers: {e}") from e
    if values.dtype == object or values.dtype.kind not in "biuf" or values.ndim not in (1, 2):
        raise InvalidOptionError(f"{where}: the query must be one vector or a (q, d) matrix of numbers, got "
                                 f"{values.dtype} of shape {values.shape}")
    single = values.ndim == 1
    dtype = np.float64 if spec.dtype == "float64" else np.float32
    matrix = values.reshape(1, -1) if single else values
    if matrix.size and matrix.dtype.kind == "f" and np.isfinite(matrix).all() \
            and np.abs(matrix).max() > np.finfo(dtype).max:
        raise InvalidOptionError(f"{where}: the query holds values outside the {np.dtype(dtype).name} range of "
                                 f"the tensor's vectors (largest magnitude {float(np.abs(matrix).max()):g})")
    queries = np.ascontiguousarray(matrix, dtype=dtype)
    dim = queries.shape[1]
    if dim == 0:
        raise InvalidOptionError(f"{where}: the query vector is empty")
    fixed = spec.shape[0] if spec.shape is not None else None
    if fixed is not None and fixed != dim:
        raise InvalidOptionError(f"{where}: the tensor holds vectors of dimension {fixed}, the query has "
                                 f"dimension {dim}")
    if not np.isfinite(queries).all():
        bad = int(np.flatnonzero(~np.isfinite(queries).all(axis=1))[0])
        raise InvalidOptionError(f"{where}: query {bad} holds NaN or infinity")
    if metric == "cosine" and len(queries):
        norms = np.linalg.norm(queries.astype(np.float64), axis=1)
        if (norms == 0).any():
            raise InvalidOptionError(f"{where}: query {int(np.flatnonzero(norms == 0)[0])} is a zero vector, "
                                     "which has no cosine similarity; use metric='l2' or 'dot'")
        queries = np.ascontiguousarray(queries / norms[:, None].astype(dtype), dtype=dtype)
    return queries, single


def candidate_rows(rows: Dataset | DatasetView, filter: str | pc.Expression | None) -> np.ndarray | None:
    """Sorted distinct row positions (in the version) that the search scores; None for every row."""
    if isinstance(rows, DatasetView):
        view = rows.filter(filter) if filter is not None else rows
    elif filter is None:
        return None
    else:
        view = rows.filter(filter)
    return np.unique(view.indices)
