"""Chunk header: fixed 64-byte prefix plus byte positions and sample shapes (docs/FORMAT.md)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import xxhash

from deeplake_spark.errors import CorruptChunkError, SchemaError, UnsupportedFormatVersion
from deeplake_spark.format.checksum import ALGORITHMS, CRC32C, WRITE_ALGORITHM, checksum
from deeplake_spark.format.limits import (
    MAX_HEADER_LEN,
    MAX_LZ4_RATIO,
    MAX_NDIM,
    MAX_SAMPLES,
    MAX_TOTAL_DIMS,
    shape_problem,
)
from deeplake_spark.format.spec import COMPRESSION_BY_CODE, COMPRESSIONS, DTYPE_BY_CODE, DTYPES

MAGIC = b"DLTC"
FORMAT_VERSION = 1
FIXED_HEADER_SIZE = 64
# magic, version, dtype, compression, checksum algo, 3 reserved, count, header_len, header_crc,
# payload_len, raw_payload_len, payload_checksum, total_dims, reserved(u32), chunk tag(u64)
_FIXED = struct.Struct("<4sHBBB3xIIIQQQIIQ")
assert _FIXED.size == FIXED_HEADER_SIZE  # layout constant, not input validation
_HEADER_CRC_OFFSET = 20
_CHECKSUM_CODES = frozenset(ALGORITHMS.values())

def chunk_tag(chunk_id: str) -> int:
    """The 64-bit tag a chunk's header records for the id it was written under (XXH64 of the id's
    UTF-8 bytes, seed 0; never 0, which means "not recorded": chunks written before the tag).

    A reader that opens chunk file ``<id>.dltc`` for a ref compares the two, so a chunk file renamed,
    copied or swapped with another one of the same shapes is refused instead of read as the wrong
    samples (the payload checksum only says the file is intact, not which chunk it is)."""
    return xxhash.xxh64_intdigest(chunk_id.encode("utf-8")) or 1


def _pad8(n: int) -> int:
    return (n + 7) & ~7


def header_len_for(count: int, total_dims: int) -> int:
    """Bytes of the header of a chunk of ``count`` samples with ``total_dims`` dims in all."""
    return FIXED_HEADER_SIZE + 8 * (count + 1) + _pad8(count) + _pad8(4 * total_dims)


@dataclass(frozen=True)
class ChunkHeader:
    """Parsed chunk header. ``byte_positions`` has ``sample_count + 1`` entries."""

    dtype: str
    compression: str
    checksum_algorithm: int
    sample_count: int
    header_len: int
    payload_len: int
    raw_payload_len: int
    payload_checksum: int
    byte_positions: np.ndarray
    ndims: np.ndarray
    dims: np.ndarray
    dim_offsets: np.ndarray
    #: ``chunk_tag`` of the id the chunk was written under; 0 when not recorded (older writers)
    tag: int = 0

    def shape(self, index: int) -> tuple[int, ...]:
        start = int(self.dim_offsets[index])
        return tuple(int(d) for d in self.dims[start : start + int(self.ndims[index])])

    @property
    def nbytes(self) -> int:
        return self.header_len + self.payload_len


def encode_header(
    *,
    dtype: str,
    compression: str,
    byte_positions: np.ndarray,
    shapes: list[tuple[int, ...]],
    payload: bytes | memoryview,
    raw_payload_len: int,
    checksum_algorithm: int = WRITE_ALGORITHM,
    where: str = "chunk",
    chunk_id: str | None = None,
) -> bytes:
    """Serialize a header for ``payload`` (already compressed for lz4 chunks), recording
    ``chunk_tag(chunk_id)`` when the chunk's id is given.

    Refuses (SchemaError) what ``decode_header`` would refuse, so no unreadable chunk is written.
    """
    count = len(shapes)
    for index, shape in enumerate(shapes):
        problem = shape_problem(shape)
        if problem is not None:
            raise SchemaError(f"{where}: sample {index} of shape {shape} cannot be stored: {problem}")
    total_dims = sum(len(s) for s in shapes)
    if count > MAX_SAMPLES or total_dims > MAX_TOTAL_DIMS or header_len_for(count, total_dims) > MAX_HEADER_LEN:
        raise SchemaError(f"{where}: {count} samples with {total_dims} dims do not fit one chunk header "
                          f"(at most {MAX_SAMPLES} samples and a {MAX_HEADER_LEN}-byte header)")
    ndims = np.fromiter((len(s) for s in shapes), dtype=np.uint8, count=count)
    dims = np.fromiter((d for s in shapes for d in s), dtype="<u4")
    positions = np.asarray(byte_positions, dtype="<u8")
    variable = (
        positions.tobytes()
        + ndims.tobytes()
        + b"\0" * (_pad8(count) - count)
        + dims.tobytes()
        + b"\0" * (_pad8(dims.nbytes) - dims.nbytes)
    )
    header_len = FIXED_HEADER_SIZE + len(variable)
    fixed = bytearray(
        _FIXED.pack(
            MAGIC,
            FORMAT_VERSION,
            DTYPES[dtype],
            COMPRESSIONS[compression],
            checksum_algorithm,
            count,
            header_len,
            0,
            len(payload),
            raw_payload_len,
            checksum(checksum_algorithm, payload),
            len(dims),
            0,
            0 if chunk_id is None else chunk_tag(chunk_id),
        )
    )
    crc = checksum(CRC32C, bytes(fixed) + variable) & 0xFFFFFFFF
    struct.pack_into("<I", fixed, _HEADER_CRC_OFFSET, crc)
    return bytes(fixed) + variable


def decode_header(data: bytes | memoryview, *, where: str = "chunk") -> ChunkHeader:
    """Parse and validate a header from the start of ``data`` (the whole chunk or its prefix).

    ``where`` names the chunk in error messages (dataset, tensor, file).
    """
    view = memoryview(data)
    if len(view) < FIXED_HEADER_SIZE:
        raise CorruptChunkError(f"{where}: truncated chunk ({len(view)} bytes, header needs {FIXED_HEADER_SIZE})")
    (magic, version, dtype_code, comp_code, algo, count, header_len, header_crc, payload_len,
     raw_len, payload_sum, total_dims, _r, tag) = _FIXED.unpack_from(view, 0)
    if magic != MAGIC:
        raise CorruptChunkError(f"{where}: not a deeplake chunk (magic {bytes(magic)!r}, expected {MAGIC!r})")
    if version != FORMAT_VERSION:
        raise UnsupportedFormatVersion(
            f"{where}: chunk format version {version} is not supported by this reader (supports {FORMAT_VERSION}); "
            "upgrade deeplake-spark"
        )
    if header_len < FIXED_HEADER_SIZE:
        raise CorruptChunkError(f"{where}: header length {header_len} is shorter than the fixed header "
                                "(damaged header)")
    if header_len > len(view):
        raise CorruptChunkError(f"{where}: truncated chunk (header says {header_len} bytes, file has {len(view)})")
    # Header checksum first: everything below trusts the header's numbers.
    raw = bytearray(view[:header_len])
    struct.pack_into("<I", raw, _HEADER_CRC_OFFSET, 0)
    if checksum(CRC32C, bytes(raw)) & 0xFFFFFFFF != header_crc:
        raise CorruptChunkError(f"{where}: header checksum mismatch (damaged header)")
    if dtype_code not in DTYPE_BY_CODE or comp_code not in COMPRESSION_BY_CODE:
        raise CorruptChunkError(f"{where}: unknown dtype/compression/checksum code ({dtype_code}, {comp_code}, {algo})")
    if algo not in _CHECKSUM_CODES:  # the header's own checksum held: a newer writer, not damage
        raise UnsupportedFormatVersion(
            f"{where}: payload checksum algorithm code {algo} is not known to this reader (knows "
            f"{sorted(_CHECKSUM_CODES)}); upgrade deeplake-spark")
    if count > MAX_SAMPLES or total_dims > count * MAX_NDIM:
        raise CorruptChunkError(f"{where}: implausible sample count {count} / dims {total_dims}")
    expected_len = header_len_for(count, total_dims)
    if expected_len != header_len:
        raise CorruptChunkError(f"{where}: header length {header_len} does not match its contents ({expected_len})")
    compression = COMPRESSION_BY_CODE[comp_code]
    if compression != "lz4" and raw_len != payload_len:
        raise CorruptChunkError(f"{where}: raw length {raw_len} != payload length {payload_len} for {compression}")
    if compression == "lz4" and raw_len > max(payload_len, 1) * MAX_LZ4_RATIO:
        raise CorruptChunkError(f"{where}: implausible decompressed size {raw_len} for {payload_len} stored bytes")
    off = FIXED_HEADER_SIZE
    positions = np.frombuffer(view, dtype="<u8", count=count + 1, offset=off)
    off += 8 * (count + 1)
    ndims = np.frombuffer(view, dtype=np.uint8, count=count, offset=off)
    off += _pad8(count)
    dims = np.frombuffer(view, dtype="<u4", count=total_dims, offset=off)
    if int(ndims.sum(dtype=np.int64)) != total_dims:
        raise CorruptChunkError(f"{where}: shape table is inconsistent")
    if count and int(ndims.max()) > MAX_NDIM:
        raise CorruptChunkError(f"{where}: sample {int(np.argmax(ndims))} has rank {int(ndims.max())}, above the "
                                f"format's limit of {MAX_NDIM}")
    if positions[0] != 0 or positions[-1] != raw_len or (count and np.any(np.diff(positions.astype(np.int64)) < 0)):
        raise CorruptChunkError(f"{where}: byte positions are inconsistent with the payload length")
    dim_offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(ndims, out=dim_offsets[1:])
    return ChunkHeader(
        dtype=DTYPE_BY_CODE[dtype_code],
        compression=compression,
        checksum_algorithm=algo,
        sample_count=count,
        header_len=header_len,
        payload_len=payload_len,
        raw_payload_len=raw_len,
        payload_checksum=payload_sum,
        byte_positions=positions,
        ndims=ndims,
        dims=dims,
        dim_offsets=dim_offsets,
        tag=tag,
    )


def check_chunk_identity(header: ChunkHeader, chunk_id: str, *, where: str) -> None:
    """Refuse a chunk whose header records another id than ``chunk_id``, the id its file is named
    after and its refs point to (``CorruptChunkError`` naming ``where``); a chunk without a tag
    (``tag == 0``, written before the tag) passes."""
    if header.tag and header.tag != chunk_tag(chunk_id):
        raise CorruptChunkError(f"{where}: the file holds another chunk's samples (its header was written for "
                                f"another chunk id than {chunk_id!r}): the chunk file was renamed, copied or swapped")
