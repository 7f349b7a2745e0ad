"""Damaged chunk files on disk give typed errors naming the place; everything else still reads."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest

import deeplake_spark as dls
from deeplake_spark.errors import (
    ChunkNotFoundError,
    CorruptChunkError,
    DeepLakeSparkError,
    UnsupportedFormatVersion,
)
from deeplake_spark.format.checksum import CRC32C, checksum
from deeplake_spark.format.header import FIXED_HEADER_SIZE

ROWS = 6


def _rows(start: int) -> dict:
    ids = np.arange(start, start + ROWS)
    return {
        "vec": np.stack([np.array([i, i * 10, i * 100], dtype=np.int64) for i in ids]),
        "mask": [np.eye(4, dtype=bool) ^ bool(i % 2) for i in ids],
        "label": ids,
    }


@pytest.fixture
def two_versions(tmp_path):
    """Version 1 holds rows 0-5, version 2 adds rows 6-11; two samples per ``vec`` chunk."""
    path = str(tmp_path / "ds")
    ds = dls.create(path, {
        "vec": dls.tensor("generic", dtype="int64", shape=(3,), chunk_size=48),
        "mask": dls.tensor("binary_mask", chunk_size=40),
        "label": "int64",
    })
    ds.append(_rows(0))
    ds.append(_rows(ROWS))
    return dls.open(path)


def _ref(ds, row: int, column: str = "vec") -> dict:
    return ds.table(columns=[column]).column(column)[row].as_py()


def _rewrite(path: str, fn) -> None:
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data = fn(data)
    with open(path, "wb") as f:
        f.write(data)


def _flip(offset_of):
    def fn(data: bytearray) -> bytearray:
        data[offset_of(data)] ^= 0x40
        return data
    return fn


def _header_len(data: bytes) -> int:
    return struct.unpack_from("<I", data, 16)[0]


def _new_version(data: bytearray) -> bytearray:
    struct.pack_into("<H", data, 4, 7)
    return data


def _new_version_with_valid_crc(data: bytearray) -> bytearray:
    struct.pack_into("<H", data, 4, 7)
    header = bytearray(data[: _header_len(data)])
    struct.pack_into("<I", header, 20, 0)
    struct.pack_into("<I", data, 20, checksum(CRC32C, bytes(header)) & 0xFFFFFFFF)
    return data


DAMAGE = {
    "flipped payload byte": (_flip(lambda d: _header_len(d) + 3), CorruptChunkError, "checksum"),
    "truncated chunk": (lambda d: d[:-5], CorruptChunkError, "truncated"),
    "truncated inside header": (lambda d: d[:FIXED_HEADER_SIZE + 4], CorruptChunkError, "truncated"),
    "empty file": (lambda d: bytearray(), CorruptChunkError, "truncated"),
    "damaged header": (_flip(lambda d: FIXED_HEADER_SIZE + 9), CorruptChunkError, "header checksum"),
    "damaged magic": (_flip(lambda d: 1), CorruptChunkError, "not a deeplake chunk"),
    "newer format version": (_new_version, UnsupportedFormatVersion, "version 7"),
    "newer format version, valid crc": (_new_version_with_valid_crc, UnsupportedFormatVersion, "upgrade"),
    "missing chunk file": (None, ChunkNotFoundError, "missing"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_chunk_gives_a_typed_error_and_the_rest_still_reads(two_versions, damage):
    ds = two_versions
    fn, error, words = DAMAGE[damage]
    row = ROWS + 1  # second sample of the first vec chunk of version 2
    ref = _ref(ds, row)
    relpath = f"_tensors/vec/{ref['chunk']}.dltc"
    chunk_path = os.path.join(ds.path, relpath)
    if fn is None:
        os.remove(chunk_path)
    else:
        _rewrite(chunk_path, fn)

    fresh = dls.open(ds.path)  # no chunk cache from before the damage
    with pytest.raises(error) as info:
        fresh[row]
    message = str(info.value)
    assert isinstance(info.value, DeepLakeSparkError)
    for part in (ds.path, "'vec'", relpath, words, f"sample(s) {ref['index']}"):
        assert part in message, (part, message)
    with pytest.raises(error):
        fresh.read_tensor("vec", [ref])
    with pytest.raises(error):
        fresh[ROWS:].numpy()

    # the other sample of the damaged chunk is lost too, but nothing else is
    same_chunk = [r for r in range(2 * ROWS) if _ref(fresh, r)["chunk"] == ref["chunk"]]
    assert same_chunk == [ROWS, ROWS + 1]
    others = [r for r in range(2 * ROWS) if r not in same_chunk]
    rows = fresh[others]
    assert np.array_equal(rows["vec"][:, 0], np.array(others))
    assert np.array_equal(rows["label"], np.array(others))
    mask = fresh.read_tensor("mask", [_ref(fresh, row, "mask")])[0]  # other tensors of the same row
    assert np.array_equal(mask, np.eye(4, dtype=bool) ^ bool(row % 2))
    assert len(fresh) == 2 * ROWS and fresh.table().num_rows == 2 * ROWS
    # the older version does not reference the damaged chunk and reads completely
    old = dls.open(ds.path, version=1)
    assert np.array_equal(old[0:ROWS]["vec"][:, 1], np.arange(ROWS) * 10)


def test_damaged_lz4_chunk_is_detected(two_versions):
    ds = two_versions
    ref = _ref(ds, 2, "mask")
    relpath = f"_tensors/mask/{ref['chunk']}.dltc"
    _rewrite(os.path.join(ds.path, relpath), _flip(lambda d: len(d) - 1))
    with pytest.raises(CorruptChunkError, match="checksum") as info:
        dls.open(ds.path)[2]
    assert relpath in str(info.value) and "'mask'" in str(info.value)
    fresh = dls.open(ds.path)
    readable = [r for r in range(2 * ROWS) if _ref(fresh, r, "mask")["chunk"] != ref["chunk"]]
    assert readable and all(np.array_equal(fresh[r]["mask"], np.eye(4, dtype=bool) ^ bool(r % 2)) for r in readable)


def test_ref_pointing_past_the_end_of_a_chunk_is_corruption(two_versions):
    ds = two_versions
    ref = dict(_ref(ds, 0), index=99)
    with pytest.raises(CorruptChunkError, match="sample 99"):
        ds.read_tensor("vec", [ref])
