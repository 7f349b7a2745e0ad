"""The scan behind ``ds.search``: refs of a version as numpy arrays, chunks read one at a time, scored
and cut to the best ``k`` per query (``search_topk.py``), merged into the running top-k.

Only chunks holding candidate rows are read. A local chunk file is memory-mapped (no copy: its pages are
the OS page cache's) and verified (checksum, shapes) when mapped. The version's ``RefColumns`` keeps up
to ``MAPPED_BYTES`` of mappings of uncompressed chunks for the next searches (LZ4 ones are decompressed by
every search), each reused only while its file keeps the size, modification time, inode and change time it had
when verified (the sample reader's chunk cache likewise trusts a chunk it has verified). A remote chunk (S3)
is read and verified every time, the next one fetched while the current one is scored.
"""

from __future__ import annotations

import mmap
import os
import threading
import weakref
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from stat import S_ISREG
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deeplake_spark.dataset.reader import check_spec_shapes
from deeplake_spark.dataset.refs import chunk_relpath
from deeplake_spark.dataset.search_topk import TopK, best, refine_l2, score_block, squared_norms
from deeplake_spark.errors import ChunkNotFoundError, CorruptChunkError, InvalidOptionError, SchemaError, StorageError
from deeplake_spark.format.chunk_reader import ChunkReader
from deeplake_spark.format.header import check_chunk_identity
from deeplake_spark.format.spec import TensorSpec

if TYPE_CHECKING:
    from deeplake_spark.dataset.dataset import Dataset


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
        #: chunk code -> (file identity, verified reader over its mapping), least recently used first
        self.mapped: OrderedDict[int, tuple[tuple[int, int, int], ChunkReader]] = OrderedDict()
        self.mapped_bytes = 0
        self.lock = threading.Lock()

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


#: bytes of local chunk files a version's RefColumns keeps mapped between searches (page cache pages,
#: which the OS may drop and read again under memory pressure; no process memory is allocated for them)
MAPPED_BYTES = 1 << 30


def _identity(stat: os.stat_result) -> tuple[int, int, int, int]:
    """What must not change for a verified mapping to be reused: size, mtime, inode and ctime (``os.utime``
    can put a rewritten file's mtime back, but not its ctime)."""
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns)


def read_chunk(ds: Dataset, column: str, spec: TensorSpec, refs: RefColumns, code: int) -> ChunkReader:
    """Chunk ``code`` of ``refs``, checked (checksum, shapes against the spec) as ``SampleReader`` does;
    a local file memory-mapped (see the module docstring)."""
    chunk_id = refs.chunk_ids[code]
    relpath = chunk_relpath(column, chunk_id, where=f"dataset {ds.path}, tensor {column!r}")
    where = f"dataset {ds.path}, tensor {column!r}, chunk file {relpath}"
    local = ds.storage.is_local
    try:
        if not local:
            data: bytes | memoryview = ds.storage.read(relpath)
        else:
            path = ds.storage.full_path(relpath)
            stat = os.stat(path)
            if not S_ISREG(stat.st_mode):  # opening a FIFO would block forever; a folder cannot be mapped
                raise CorruptChunkError(f"{where}: the chunk file is not a regular file")
            identity = _identity(stat)
            with refs.lock:
                kept = refs.mapped.get(code)
                if kept is not None and kept[0] == identity:
                    refs.mapped.move_to_end(code)
                    return kept[1]
            with open(path, "rb") as f:
                stat = os.fstat(f.fileno())  # of the file mapped, not of whatever the path names later
                identity = _identity(stat)
                data = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)) if stat.st_size else b""
    except FileNotFoundError as e:
        raise ChunkNotFoundError(f"{where}: chunk file is missing (vacuumed or deleted?)") from e
    except OSError as e:
        if isinstance(e, StorageError):
            raise
        raise StorageError(f"{where}: reading failed: {e}") from e
    reader = ChunkReader(data, where=where)
    check_chunk_identity(reader.header, chunk_id, where=where)
    check_spec_shapes(reader.header, spec, where)
    # an LZ4 chunk's reader holds its decompressed payload in process memory: not kept
    if local and 0 < len(data) <= MAPPED_BYTES and reader.header.compression != "lz4":
        with refs.lock:
            old = refs.mapped.pop(code, None)
            refs.mapped_bytes += len(data) - (len(old[1].data) if old is not None else 0)
            refs.mapped[code] = (identity, reader)
            while refs.mapped_bytes > MAPPED_BYTES:
                _, (_, dropped) = refs.mapped.popitem(last=False)
                refs.mapped_bytes -= len(dropped.data)
    return reader


def scan(ds: Dataset, column: str, spec: TensorSpec, positions: np.ndarray | None, queries: np.ndarray,
         metric: str, tops: list[TopK], where: str) -> None:
    """Score the candidates (every row when ``positions`` is None) chunk by chunk into ``tops``."""
    refs = ref_columns(ds, column)
    rows = check_dims(refs, positions, queries.shape[1], where)
    groups = refs.groups(rows, every_row=positions is None)
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
        for code, group in groups:
            score(read_chunk(ds, column, spec, refs, code), code, group)
        return
    # the next chunk is fetched while this one is scored: at most two chunks held at once
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="deeplake-search") as pool:
        ahead = pool.submit(read_chunk, ds, column, spec, refs, groups[0][0])
        for n, (code, group) in enumerate(groups):
            chunk = ahead.result()
            if n + 1 < len(groups):
                ahead = pool.submit(read_chunk, ds, column, spec, refs, groups[n + 1][0])
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
