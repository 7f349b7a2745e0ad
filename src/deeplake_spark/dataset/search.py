"""Exact vector similarity search over an embedding tensor, without Spark: ``ds.search(query, k=10)``.

The search streams the tensor's chunks: only chunks holding candidate rows are read, one at a time
(the next one is read while the current one is scored), each scored by one float32 matrix product
against every query and cut to its best ``k`` before the next; memory stays at about two chunks plus
``k`` rows per query. Metrics, NULL handling and tie order: ``dataset/search_topk.py``.

>>> hits = ds.search(query_vector, k=10, filter="split = 'train'")
>>> hits.indices, hits.scores          # row positions in the version and their scores, best first
>>> hits.table()                        # tabular columns of the hits plus a ``score`` column
>>> hits.view.pytorch(batch_size=10)    # the hits are a DatasetView: read or train on them
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deeplake_spark.dataset.reader import ChunkCache, SampleReader
from deeplake_spark.dataset.search_result import SearchResult
from deeplake_spark.dataset.search_topk import METRICS, TopK, best, refine_l2, score_block
from deeplake_spark.dataset.view import DatasetView
from deeplake_spark.errors import CorruptChunkError, InvalidOptionError, SchemaError
from deeplake_spark.format.chunk_reader import ChunkReader
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
    if len(queries) and len(positions):
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
    queries = np.ascontiguousarray(values.reshape(1, -1) if single else values, dtype=dtype)
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


def candidate_rows(rows: Dataset | DatasetView, filter: str | pc.Expression | None) -> np.ndarray:
    """Sorted distinct row positions (in the version) that the search scores."""
    if isinstance(rows, DatasetView):
        view = rows.filter(filter) if filter is not None else rows
    else:
        if filter is None:
            return np.arange(len(rows), dtype=np.int64)
        view = rows.filter(filter)
    return np.unique(view.indices)


class RefColumns:
    """The refs of the candidate rows as numpy arrays: chunk code, sample index, ref shape."""

    def __init__(self, refs: pa.Array) -> None:
        chunk, index, shape = refs.flatten()[:3]  # REF_TYPE: chunk, index, shape, nbytes
        encoded = pc.dictionary_encode(chunk)
        self.chunk_ids: list[str] = encoded.dictionary.to_pylist()
        present = refs.is_valid().to_numpy(zero_copy_only=False) & chunk.is_valid().to_numpy(zero_copy_only=False)
        self.codes = np.where(present, encoded.indices.fill_null(0).to_numpy(zero_copy_only=False), -1)
        self.index = index.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        self.ndim = pc.list_value_length(shape).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        flat = shape.flatten().to_numpy(zero_copy_only=False)
        starts = np.concatenate([[0], np.cumsum(self.ndim)[:-1]]).astype(np.int64)
        one = self.ndim == 1
        self.dim = np.full(len(self.ndim), -1, dtype=np.int64)
        self.dim[one] = flat[starts[one]]


def ref_columns(ds: Dataset, column: str, positions: np.ndarray) -> RefColumns:
    cells = ds.table().column(column)
    if len(positions) != len(cells):
        cells = cells.take(pa.array(positions, type=pa.int64()))
    return RefColumns(cells.combine_chunks())


def check_dims(refs: RefColumns, positions: np.ndarray, dim: int, where: str) -> np.ndarray:
    """Mask of the candidates holding a vector; refuses samples that are not 1-d and vectors whose
    dimension is not the query's (checked on the refs, before any chunk is read)."""
    present = refs.codes >= 0
    not_vector = present & (refs.ndim != 1)
    if not_vector.any():
        i = int(np.flatnonzero(not_vector)[0])
        raise SchemaError(f"{where}: row {int(positions[i])} holds a sample of rank {int(refs.ndim[i])}; "
                          "search needs 1-d vectors")
    vectors = present & (refs.dim > 0)  # an empty sample holds no vector
    dims = np.unique(refs.dim[vectors])
    if len(dims) > 1:
        first = int(np.flatnonzero(vectors & (refs.dim == dims[0]))[0])
        other = int(np.flatnonzero(vectors & (refs.dim == dims[1]))[0])
        raise SchemaError(f"{where}: the tensor holds vectors of mixed dimensions (row {int(positions[first])} has "
                          f"{int(dims[0])}, row {int(positions[other])} has {int(dims[1])}); search rows of one "
                          "dimension (filter=) or store one dimension per tensor")
    if len(dims) == 1 and int(dims[0]) != dim:
        raise InvalidOptionError(f"{where}: the tensor holds vectors of dimension {int(dims[0])}, the query has "
                                 f"dimension {dim}")
    return vectors


def scan(ds: Dataset, column: str, spec: TensorSpec, positions: np.ndarray, queries: np.ndarray, metric: str,
         tops: list[TopK], where: str) -> None:
    """Score the candidates chunk by chunk into ``tops`` (one per query)."""
    refs = ref_columns(ds, column, positions)
    vectors = check_dims(refs, positions, queries.shape[1], where)
    candidates = np.flatnonzero(vectors)
    groups = np.split(candidates[np.argsort(refs.codes[candidates], kind="stable")],
                      np.cumsum(np.bincount(refs.codes[candidates], minlength=len(refs.chunk_ids)))[:-1])
    groups = [g for g in groups if len(g)]
    # a reader of its own holding one chunk: a search over a tensor larger than memory stays bounded
    reader = SampleReader(ds.storage, {column: spec}, dataset=ds.path, cache=ChunkCache(1))
    k = tops[0].k if tops else 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="deeplake-search") as pool:
        chunk_ids = [refs.chunk_ids[refs.codes[group[0]]] for group in groups]
        ahead = pool.submit(reader.chunk, column, chunk_ids[0]) if groups else None
        for n, group in enumerate(groups):
            chunk = ahead.result()  # type: ignore[union-attr]
            if n + 1 < len(groups):
                ahead = pool.submit(reader.chunk, column, chunk_ids[n + 1])
            rows = positions[group]
            block = chunk_vectors(chunk, refs.index[group], refs.dim[group], rows, spec, queries.dtype)
            scores = score_block(block, queries, metric)
            for q, top in enumerate(tops):
                if metric != "l2":
                    top.offer(scores[:, q], rows)
                    continue
                # the expansion's rounding may reorder near-equal distances: keep a margin, rank exactly
                scored = np.flatnonzero(~np.isnan(scores[:, q]))
                keep = scored[best(scores[scored, q], rows[scored], 2 * k, False)]
                top.offer(refine_l2(block[keep], queries[q]), rows[keep])


def chunk_vectors(chunk: ChunkReader, index: np.ndarray, dims: np.ndarray, positions: np.ndarray,
                  spec: TensorSpec, dtype: np.dtype) -> np.ndarray:
    """The ``(n, d)`` vectors of samples ``index`` of ``chunk`` (a view when they lie in a row),
    after checking the refs against the chunk header."""
    header = chunk.header
    if header.dtype != spec.dtype:
        raise CorruptChunkError(f"{chunk.where}: the chunk holds {header.dtype}, tensor {spec.name!r} is "
                                f"{spec.dtype} (damaged or foreign chunk file)")
    bad = (index < 0) | (index >= header.sample_count)
    if not bad.any():
        bad = (header.ndims[index] != 1) | (header.dims[header.dim_offsets[index]] != dims)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CorruptChunkError(f"{chunk.where}: the ref of row {int(positions[i])} (sample {int(index[i])}, shape "
                                f"[{int(dims[i])}]) does not match the chunk header (refs damaged or hostile)")
    itemsize = np.dtype(spec.dtype).itemsize
    dim = int(dims[0])
    starts = header.byte_positions[index].astype(np.int64)
    if ((header.byte_positions[index + 1] - starts) != dim * itemsize).any() or (starts % itemsize).any():
        raise CorruptChunkError(f"{chunk.where}: byte positions do not match the sample shapes (damaged chunk)")
    payload = chunk.raw_payload
    values = np.frombuffer(payload[: len(payload) - len(payload) % itemsize],
                           dtype=np.dtype(spec.dtype).newbyteorder("<"))
    first = int(starts[0]) // itemsize
    if len(index) == 1 or (np.diff(starts) == dim * itemsize).all():
        block = values[first : first + len(index) * dim].reshape(len(index), dim)
    else:
        block = values[(starts // itemsize)[:, None] + np.arange(dim)]
    return block.astype(dtype, copy=False)
