"""The loader's check of refs against the chunk they point to, once per chunk load.

The loader reads samples by (chunk, index) and takes their shapes from the chunk header, so a ref
that points past the end of its chunk or claims another shape is a damaged or hostile dataset: it
is refused with the same :class:`CorruptChunkError` that ``ds[i]`` raises (dataset layer,
``reader.check_ref``), never an ``IndexError`` or a silently wrong sample.

The check runs when a chunk is loaded (on the prefetch I/O thread), over every row that points to
that chunk. The claims are stored grouped by chunk, so those rows are one contiguous slice and the
check is a handful of whole-slice numpy comparisons; batch assembly, the hot path, pays nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deeplake_spark.errors import CorruptChunkError
from deeplake_spark.format.chunk_reader import ChunkReader
from deeplake_spark.format.header import MAX_NDIM

#: Rank of a ref without a usable shape (null, or more dims than a chunk can hold): it never equals
#: a chunk's rank, so the loader refuses the sample as the dataset layer does.
NO_SHAPE = 255


def ref_shapes(shape: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(rank per row as uint8, dims per row as an int64 matrix padded with -1) of a list column.

    Whole-column operations; null shapes and null dims never match a chunk (rank :data:`NO_SHAPE`,
    dim -1), nor do ranks above the format's limit.
    """
    if not pa.types.is_list(shape.type) or shape.type.value_type != pa.int64():
        shape = shape.cast(pa.list_(pa.int64()))
    n = len(shape)
    ranks = pc.list_value_length(shape).fill_null(NO_SHAPE).to_numpy(zero_copy_only=False).astype(np.int64)
    ranks[ranks > MAX_NDIM] = NO_SHAPE
    take = np.where(ranks == NO_SHAPE, 0, ranks)
    width = int(take.max()) if n else 0
    offsets = shape.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    values = shape.values
    if n and (take == width).all():
        # every ref has the same rank (the usual case): the values are already an (n, width) block
        start = int(offsets[0])
        block = values.slice(start, n * width)
        dims = block.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False).reshape(n, width)
        return ranks.astype(np.uint8), dims
    dims = np.full((n, width), -1, dtype=np.int64)
    total = int(take.sum())
    if total:
        offsets = offsets[:-1]
        values = values.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        rows = np.repeat(np.arange(n), take)
        cols = np.arange(total) - np.repeat(np.cumsum(take) - take, take)
        dims[rows, cols] = values[np.repeat(offsets, take) + cols]
    return ranks.astype(np.uint8), dims


@dataclass
class RefClaims:
    """What the refs of one tensor column claim, grouped by chunk.

    The rows of chunk code ``c`` are ``rows[starts[c]:starts[c + 1]]``; ``index``, ``ranks`` and
    ``dims`` (shape padded with -1) follow the same order. ``ranks``/``dims`` are None when the
    refs carry no shape.
    """

    rows: np.ndarray
    starts: np.ndarray
    index: np.ndarray
    ranks: np.ndarray | None = None
    dims: np.ndarray | None = None

    @classmethod
    def build(cls, chunk_codes: np.ndarray, num_chunks: int, sample_index: np.ndarray,
              ranks: np.ndarray | None = None, dims: np.ndarray | None = None) -> RefClaims:
        if len(chunk_codes) < 2 or bool((chunk_codes[1:] >= chunk_codes[:-1]).all()):
            # rows already in chunk order (a dataset read in row order): no copies
            starts = np.searchsorted(chunk_codes, np.arange(num_chunks + 1))
            return cls(np.arange(len(chunk_codes)), starts, sample_index, ranks, dims)
        order = np.argsort(chunk_codes, kind="stable")
        starts = np.searchsorted(chunk_codes[order], np.arange(num_chunks + 1))
        return cls(order, starts, sample_index[order], None if ranks is None else ranks[order],
                   None if dims is None else dims[order])

    def claimed_shape(self, pos: int) -> list[int] | None:
        if self.ranks is None or self.dims is None or int(self.ranks[pos]) == NO_SHAPE:
            return None
        return [int(d) for d in self.dims[pos, : int(self.ranks[pos])]]


def uniform_shape(reader: ChunkReader) -> tuple[int, ...] | None:
    """The shape every sample of the chunk has, or None when they differ (or it holds none)."""
    header = reader.header
    count = header.sample_count
    ndims = header.ndims[:count]
    if not count or not (ndims == ndims[0]).all():
        return None
    rank = int(ndims[0])
    dims = header.dims[: count * rank].reshape(count, rank)
    return tuple(int(d) for d in dims[0]) if (dims == dims[0]).all() else None


def _header_shapes(reader: ChunkReader, index: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(rank, dims padded with -1 to ``width`` columns) of samples ``index``, laid out like the claims."""
    header = reader.header
    ranks = header.ndims[index].astype(np.int64)
    dims = np.full((len(index), width), -1, dtype=np.int64)
    if width and len(header.dims):
        cols = np.arange(width)
        pos = np.minimum(header.dim_offsets[index].astype(np.int64)[:, None] + cols, len(header.dims) - 1)
        dims = np.where(cols < ranks[:, None], header.dims[pos].astype(np.int64), -1)
    return ranks, dims


def check_chunk_refs(claims: RefClaims, code: int, reader: ChunkReader, shape: tuple[int, ...] | None) -> None:
    """Refuse chunk ``code`` if a ref pointing to it names a sample it lacks or another shape.

    ``shape``: :func:`uniform_shape` of the chunk (the loader needs it anyway).
    """
    part = slice(int(claims.starts[code]), int(claims.starts[code + 1]))
    index = claims.index[part]
    if not len(index):
        return
    count = len(reader)
    if int(index.min()) < 0 or int(index.max()) >= count:
        bad = part.start + int(np.flatnonzero((index < 0) | (index >= count))[0])
        raise CorruptChunkError(f"{reader.where}: the ref of row {int(claims.rows[bad])} points to sample "
                                f"{int(claims.index[bad])} but the chunk holds {count} samples (chunk file replaced or "
                                "refs damaged)")
    if claims.ranks is None or claims.dims is None:
        return  # refs without a shape field claim nothing
    ranks, dims = claims.ranks[part], claims.dims[part]
    if shape is not None:
        # the common case, one shape for the whole chunk: compare the slice with it
        wrong_any = not (ranks == len(shape)).all() or (bool(shape) and not (dims[:, : len(shape)] == shape).all())
        if not wrong_any:
            return
    header_ranks, header_dims = _header_shapes(reader, index, dims.shape[1])
    wrong = ranks != header_ranks
    if dims.shape[1]:
        wrong |= (dims != header_dims).any(axis=1)
    if not wrong.any():
        return
    bad = part.start + int(np.flatnonzero(wrong)[0])
    sample = int(claims.index[bad])
    raise CorruptChunkError(f"{reader.where}, sample {sample}: the ref of row {int(claims.rows[bad])} says shape "
                            f"{claims.claimed_shape(bad)} but the chunk header says {list(reader.header.shape(sample))} "
                            "(refs damaged or hostile)")
