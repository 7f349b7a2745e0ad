"""A chunk file renamed, copied or swapped with another one of the same shapes is refused by every
reader, naming the file, instead of being read as the wrong samples.

The payload checksum says a file is intact, the refs' shapes and byte counts say it fits: two chunks
of one fixed-shape tensor swapped on disk (a hand "restore", a sync tool, a copy under the wrong
name) passed both. Each chunk's header now records a tag of the id it was written under (Python and
JVM writers); readers compare it with the file name the refs point to. Chunks written before the tag
(tag 0) still read.
"""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest

import deeplake_spark as dls
from deeplake_spark.errors import CorruptChunkError
from deeplake_spark.format.checksum import CRC32C, checksum
from deeplake_spark.format.header import FIXED_HEADER_SIZE, chunk_tag, decode_header

ROWS = 20


def _chunk_files(path: str, column: str = "vec") -> list[str]:
    folder = os.path.join(path, "_tensors", column)
    return sorted(os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".dltc"))


def _swap(a: str, b: str) -> None:
    os.rename(a, a + ".tmp")
    os.rename(b, a)
    os.rename(a + ".tmp", b)


@pytest.fixture
def swapped(tmp_path):
    """20 rows of float32[4] in chunks of 10 identical-shape samples; the two chunk files swapped."""
    path = str(tmp_path / "ds")
    ds = dls.create(path, {"vec": dls.tensor("embedding", dtype="float32", shape=(4,), chunk_size=160),
                           "label": "int64"})
    ds.append({"vec": np.arange(ROWS * 4, dtype=np.float32).reshape(ROWS, 4), "label": np.arange(ROWS)})
    files = _chunk_files(path)
    assert len(files) == 2 and os.path.getsize(files[0]) == os.path.getsize(files[1])
    for f in files:  # the tag is the id the file is named after
        with open(f, "rb") as fh:
            assert decode_header(fh.read()).tag == chunk_tag(os.path.basename(f)[:-5])
    _swap(*files)
    return path, files


def _names_a_swapped_file(message: str, files: list[str]) -> bool:
    return "renamed, copied or swapped" in message and any(os.path.basename(f) in message for f in files)


def test_python_reads_refuse_a_swapped_chunk(swapped):
    path, files = swapped
    ds = dls.open(path)
    for read in (lambda: ds[3]["vec"], lambda: ds[0:ROWS].numpy(["vec"]), lambda: ds[12]["vec"],
                 lambda: list(ds.pytorch(batch_size=5, num_workers=0)),
                 lambda: list(ds.pytorch(batch_size=5, num_workers=2, engine="processes")),
                 lambda: ds.search(np.ones(4, np.float32), k=3, metric="l2")):
        with pytest.raises(CorruptChunkError) as error:
            read()
        assert _names_a_swapped_file(str(error.value), files), str(error.value)
    assert ds.table(columns=["label"]).num_rows == ROWS  # the tabular part still reads


def test_a_chunk_without_a_tag_still_reads(tmp_path):
    """Chunks written before the tag (0 in the header) keep reading under any name."""
    path = str(tmp_path / "old")
    ds = dls.create(path, {"vec": dls.tensor("embedding", dtype="float32", shape=(4,), chunk_size=160)})
    ds.append({"vec": np.arange(ROWS * 4, dtype=np.float32).reshape(ROWS, 4)})
    for f in _chunk_files(path):
        with open(f, "rb") as fh:
            data = bytearray(fh.read())
        header = decode_header(data)
        data[56:64] = bytes(8)  # the tag, as older writers left it
        struct.pack_into("<I", data, 20, 0)
        crc = checksum(CRC32C, bytes(data[:header.header_len])) & 0xFFFFFFFF
        struct.pack_into("<I", data, 20, crc)
        with open(f, "wb") as fh:
            fh.write(data)
        assert decode_header(data).tag == 0 and len(data) > FIXED_HEADER_SIZE
    np.testing.assert_array_equal(dls.open(path)[0:ROWS].numpy(["vec"])["vec"], np.arange(ROWS * 4, dtype=np.float32).reshape(ROWS, 4))


def _spark_error_text(excinfo: pytest.ExceptionInfo) -> str:
    return str(excinfo.value)


@pytest.mark.parametrize("source", ["deeplake", "deeplake-python"])
def test_spark_readers_refuse_a_swapped_chunk(spark, swapped, source):
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    path, files = swapped
    df = spark.read.format(source).option("tensors", "array").load(path)
    with pytest.raises((Py4JJavaError, PySparkException)) as error:
        df.collect()
    assert _names_a_swapped_file(_spark_error_text(error), files), _spark_error_text(error)[:2000]
    assert spark.read.format(source).load(path).select("label").count() == ROWS  # refs alone read no chunk


def test_the_jvm_writer_records_the_chunk_id(spark, tmp_path):
    path = str(tmp_path / "jvm")
    dls.create(path, {"vec": dls.tensor("embedding", dtype="float32", shape=(4,)), "label": "int64"})
    rows = [(i, [float(i)] * 4) for i in range(8)]
    spark.createDataFrame(rows, "label long, vec array<float>").write.format("deeplake").mode("append").save(path)
    files = _chunk_files(path)
    assert files
    for f in files:
        with open(f, "rb") as fh:
            assert decode_header(fh.read()).tag == chunk_tag(os.path.basename(f)[:-5]), f
