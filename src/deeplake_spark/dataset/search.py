"""Exact vector similarity search over an embedding tensor, without Spark: ``ds.search(query, k=10)``.

The search streams the tensor's chunks: only chunks holding candidate rows are read, one at a time
(from remote storage the next one is fetched while the current one is scored), each scored by one float32 matrix product
against every query and cut to its best ``k`` before the next; memory stays at about two chunks plus
``k`` rows per query (local chunk files are memory-mapped: their pages are the OS page cache's, shared
by later searches). The refs of a version are turned into numpy arrays once per dataset snapshot.
Metrics, NULL handling and tie order: ``dataset/search_topk.py``.

>>> hits = ds.search(query_vector, k=10, filter="split = 'train'")
>>> hits.indices, hits.scores          # row positions in the version and their scores, best first
>>> hits.table()                        # tabular columns of the hits plus a ``score`` column
>>> hits.view.pytorch(batch_size=10)    # the hits are a DatasetView: read or train on them
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deeplake_spark.dataset.reader import check_spec_shapes
from deeplake_spark.dataset.refs import chunk_relpath
from deeplake_spark.dataset.search_result import SearchResult
from deeplake_spark.dataset.search_topk import METRICS, TopK, best, refine_l2, score_block, squared_norms
from deeplake_spark.dataset.view import DatasetView
from deeplake_spark.errors import ChunkNotFoundError, CorruptChunkError, InvalidOptionError, SchemaError, StorageError
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


def candidate_rows(rows: Dataset | DatasetView, filter: str | pc.Expression | None) -> np.ndarray | None:
    """Sorted distinct row positions (in the version) that the search scores; None for every row."""
    if isinstance(rows, DatasetView):
        view = rows.filter(filter) if filter is not None else rows
    elif filter is None:
        return None
    else:
        view = rows.filter(filter)
    return np.unique(view.indices)


class RefColumns:
    """The refs of one tensor column of a version as numpy arrays, by row position: chunk code
    (-1: no sample), sample index, rank and first dimension (-1 unless 1-d) of the sample."""

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
        self._all_groups: list[tuple[int, np.ndarray]] | None = None
        #: chunk code -> squared norms of the vectors of its group in the search over every row: derived
        #: from immutable chunk bytes, 1/d of their size, and saves one pass over the vectors per search
        self.squares: dict[int, np.ndarray] = {}

    def groups(self, rows: np.ndarray, *, every_row: bool) -> list[tuple[int, np.ndarray]]:
        """(chunk code, sorted row positions) per chunk holding some of ``rows`` (which hold samples), in
        the order chunks first appear in the version; kept for the search over every row."""
        if every_row and self._all_groups is not None:
            return self._all_groups
        codes = self.codes[rows]
        order = np.argsort(codes, kind="stable")
        counts = np.bincount(codes, minlength=len(self.chunk_ids))
        pieces = np.split(rows[order], np.cumsum(counts)[:-1])
        groups = [(code, piece) for code, piece in enumerate(pieces) if len(piece)]
        if every_row:
            self._all_groups = groups
        return groups


#: id of a version snapshot (``Dataset.table()``, rebuilt when the handle moves) -> (weak ref to it,
#: {tensor: RefColumns}); an entry goes when its snapshot is collected
_REFS: dict[int, tuple[weakref.ref[pa.Table], dict[str, RefColumns]]] = {}
_REFS_LOCK = threading.Lock()


def ref_columns(ds: Dataset, column: str) -> RefColumns:
    """The refs of ``column`` for every row of ``ds``'s version, built once per version snapshot."""
    snapshot = ds.table()
    key = id(snapshot)
    with _REFS_LOCK:
        entry = _REFS.get(key)
        if entry is None or entry[0]() is not snapshot:
            def forget(gone: weakref.ref[pa.Table], key: int = key) -> None:
                with _REFS_LOCK:
                    if key in _REFS and _REFS[key][0] is gone:
                        del _REFS[key]

            entry = (weakref.ref(snapshot, forget), {})
            _REFS[key] = entry
        refs = entry[1].get(column)
    if refs is None:
        refs = RefColumns(snapshot.column(column).combine_chunks())
        with _REFS_LOCK:
            entry[1][column] = refs
    return refs


def check_dims(refs: RefColumns, positions: np.ndarray | None, dim: int, where: str) -> np.ndarray:
    """The candidate rows holding a vector (sorted positions); refuses samples that are not 1-d and
    vectors whose dimension is not the query's (checked on the refs, before any chunk is read)."""
    rows = np.arange(len(refs.codes), dtype=np.int64) if positions is None else positions
    codes, ndim, dims = (refs.codes, refs.ndim, refs.dim) if positions is None else \
        (refs.codes[rows], refs.ndim[rows], refs.dim[rows])
    present = codes >= 0
    not_vector = present & (ndim != 1)
    if not_vector.any():
        i = int(np.flatnonzero(not_vector)[0])
        raise SchemaError(f"{where}: row {int(rows[i])} holds a sample of rank {int(ndim[i])}; "
                          "search needs 1-d vectors")
    vectors = present & (dims > 0)  # an empty sample holds no vector
    if not vectors.any():
        return rows[vectors]
    found = dims[vectors]
    low, high = int(found.min()), int(found.max())
    if low != high:
        first = int(np.flatnonzero(vectors & (dims == low))[0])
        other = int(np.flatnonzero(vectors & (dims == high))[0])
        first, other = sorted((first, other))
        raise SchemaError(f"{where}: the tensor holds vectors of mixed dimensions (row {int(rows[first])} has "
                          f"{int(dims[first])}, row {int(rows[other])} has {int(dims[other])}); search rows of one "
                          "dimension (filter=) or store one dimension per tensor")
    if low != dim:
        raise InvalidOptionError(f"{where}: the tensor holds vectors of dimension {low}, the query has "
                                 f"dimension {dim}")
    return rows[vectors]


def read_chunk(ds: Dataset, column: str, spec: TensorSpec, chunk_id: str) -> ChunkReader:
    """One chunk of ``column``, checked (checksum, shapes against the spec) as ``SampleReader`` does. A
    local file is memory-mapped: its bytes stay in the OS page cache, shared by later searches, and
    no copy is made (a search over a tensor larger than memory stays bounded)."""
    relpath = chunk_relpath(column, chunk_id, where=f"dataset {ds.path}, tensor {column!r}")
    where = f"dataset {ds.path}, tensor {column!r}, chunk file {relpath}"
    try:
        if ds.storage.is_local:
            with pa.memory_map(ds.storage.full_path(relpath)) as mapped:
                data: bytes | memoryview = memoryview(mapped.read_buffer())
        else:
            data = ds.storage.read(relpath)
    except FileNotFoundError as e:
        raise ChunkNotFoundError(f"{where}: chunk file is missing (vacuumed or deleted?)") from e
    except OSError as e:
        if isinstance(e, StorageError):
            raise
        raise StorageError(f"{where}: reading failed: {e}") from e
    reader = ChunkReader(data, where=where)
    check_spec_shapes(reader.header, spec, where)
    return reader


def scan(ds: Dataset, column: str, spec: TensorSpec, positions: np.ndarray | None, queries: np.ndarray,
         metric: str, tops: list[TopK], where: str) -> None:
    """Score the candidates (every row when ``positions`` is None) chunk by chunk into ``tops``."""
    refs = ref_columns(ds, column)
    rows = check_dims(refs, positions, queries.shape[1], where)
    groups = refs.groups(rows, every_row=positions is None)
    chunk_ids = [refs.chunk_ids[code] for code, _ in groups]
    every_row = positions is None
    k = tops[0].k

    def score(chunk: ChunkReader, code: int, rows: np.ndarray) -> None:
        block = chunk_vectors(chunk, refs.index[rows], refs.dim[rows], rows, spec, queries.dtype)
        squares = refs.squares.get(code) if every_row else None
        if squares is None:
            squares = squared_norms(block)
            if every_row:
                refs.squares[code] = squares
        scores = score_block(block, queries, metric, squares)
        for q, top in enumerate(tops):
            if metric != "l2":
                top.offer(scores[:, q], rows)
                continue
            # the expansion's rounding may reorder near-equal distances: keep a margin, rank exactly
            scored = np.flatnonzero(~np.isnan(scores[:, q]))
            keep = scored[best(scores[scored, q], rows[scored], 2 * k, False)]
            top.offer(refine_l2(block[keep], queries[q]), rows[keep])

    if not groups:
        return
    if ds.storage.is_local or len(groups) == 1:  # mapping a local file is instant: nothing to overlap
        for chunk_id, (code, group) in zip(chunk_ids, groups):
            score(read_chunk(ds, column, spec, chunk_id), code, group)
        return
    # the next chunk is fetched while this one is scored: at most two chunks held at once
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="deeplake-search") as pool:
        ahead = pool.submit(read_chunk, ds, column, spec, chunk_ids[0])
        for n, (code, group) in enumerate(groups):
            chunk = ahead.result()
            if n + 1 < len(groups):
                ahead = pool.submit(read_chunk, ds, column, spec, chunk_ids[n + 1])
            score(chunk, code, group)
            del chunk


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
