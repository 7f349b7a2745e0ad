"""Chunks whose payload checksum is XXH64 (every chunk written before writers switched to XXH3-64,
docs/FORMAT.md 3.1) or CRC-32C keep reading, verified, in every reader: dataset reads, the torch
loader with no chunk cache (each epoch re-verifies) and its worker processes, and both Spark readers.
One bit flipped in such a chunk's payload is still refused by name. Both writers record XXH3-64."""

from __future__ import annotations

import os

import numpy as np
import pytest

import deeplake_spark as dls
from deeplake_spark.errors import CorruptChunkError
from deeplake_spark.format.checksum import CRC32C, XXH3_64, XXH64, checksum
from deeplake_spark.format.header import decode_header
from fuzz_support import fix_header_crc, fix_payload_checksum

ROWS = 24
VECTORS = np.arange(ROWS * 4, dtype=np.float32).reshape(ROWS, 4)


def _chunk_files(path: str) -> list[str]:
    folder = os.path.join(path, "_tensors", "vec")
    return sorted(os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".dltc"))


def _rechecksum(path: str, algorithm: int) -> None:
    """Rewrite each chunk's payload checksum with ``algorithm``, as an older writer recorded it."""
    for f in _chunk_files(path):
        with open(f, "rb") as fh:
            data = bytearray(fh.read())
        data[8] = algorithm
        fix_payload_checksum(data)
        fix_header_crc(data)
        with open(f, "wb") as fh:
            fh.write(data)
        assert decode_header(data).checksum_algorithm == algorithm


@pytest.fixture(params=[XXH64, CRC32C], ids=["xxh64", "crc32c"])
def older(request, tmp_path):
    path = str(tmp_path / "ds")
    ds = dls.create(path, {"vec": dls.tensor("embedding", dtype="float32", shape=(4,), chunk_size=128,
                                             compression="lz4"),
                           "label": "int64"})
    ds.append({"vec": VECTORS, "label": np.arange(ROWS)})
    files = _chunk_files(path)
    assert len(files) >= 3
    for f in files:  # what writers record now
        with open(f, "rb") as fh:
            assert decode_header(fh.read()).checksum_algorithm == XXH3_64
    _rechecksum(path, request.param)
    return path, files


def _loader_rows(ds, **options) -> np.ndarray:
    batches = list(ds.pytorch(batch_size=5, shuffle=False, cache_bytes=0, **options))
    return np.concatenate([b["vec"].numpy() for b in batches])


def test_older_checksums_read_verified_in_python_and_the_loader(older):
    path, files = older
    ds = dls.open(path)
    np.testing.assert_array_equal(ds[0:ROWS].numpy(["vec"])["vec"], VECTORS)
    np.testing.assert_array_equal(ds[17]["vec"], VECTORS[17])
    np.testing.assert_array_equal(_loader_rows(ds, num_workers=0), VECTORS)
    np.testing.assert_array_equal(_loader_rows(ds, num_workers=2, engine="processes"), VECTORS)
    # verified, not just accepted: one bit off in the payload is refused by name
    with open(files[1], "rb") as fh:
        data = bytearray(fh.read())
    data[-1] ^= 0x01
    with open(files[1], "wb") as fh:
        fh.write(data)
    for read in (lambda: dls.open(path)[0:ROWS].numpy(["vec"]), lambda: _loader_rows(dls.open(path), num_workers=0)):
        with pytest.raises(CorruptChunkError, match="payload checksum mismatch") as error:
            read()
        assert os.path.basename(files[1]) in str(error.value)


@pytest.mark.parametrize("source", ["deeplake", "deeplake-python"])
def test_older_checksums_read_in_both_spark_readers(spark, older, source):
    path, _ = older
    rows = spark.read.format(source).option("tensors", "array").load(path).orderBy("label").collect()
    np.testing.assert_array_equal(np.asarray([r["vec"] for r in rows], dtype=np.float32), VECTORS)


def test_the_jvm_writer_records_xxh3_that_python_verifies(spark, tmp_path):
    path = str(tmp_path / "jvm")
    dls.create(path, {"vec": dls.tensor("embedding", dtype="float32", shape=(4,)), "label": "int64"})
    rows = [(i, VECTORS[i].tolist()) for i in range(ROWS)]
    spark.createDataFrame(rows, "label long, vec array<float>").write.format("deeplake").mode("append").save(path)
    for f in _chunk_files(path):
        with open(f, "rb") as fh:
            data = fh.read()
        header = decode_header(data)
        assert header.checksum_algorithm == XXH3_64
        assert header.payload_checksum == checksum(XXH3_64, data[header.header_len:])
    table = dls.open(path)
    order = np.argsort(table.table(columns=["label"]).column("label").to_numpy())
    np.testing.assert_array_equal(table[0:ROWS].numpy(["vec"])["vec"][order], VECTORS)
