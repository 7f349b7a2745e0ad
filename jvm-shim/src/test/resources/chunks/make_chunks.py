"""Write the chunk fixtures ChunkTest.java parses, with deeplake_spark's own chunk writer.

    .venv/bin/python jvm-shim/src/test/resources/chunks/make_chunks.py

tests/unit/test_jvm_build.py checks that the writer still produces exactly these bytes, so the Java
tests keep testing the format the Python side writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from deeplake_spark.format.checksum import CRC32C, XXH64
from deeplake_spark.format.chunk_writer import ChunkBuilder
from deeplake_spark.format.samples import EncodedSample
from deeplake_spark.format.spec import TensorSpec

HERE = Path(__file__).resolve().parent
#: the chunk id int32_xxh64.dltc's header records (ChunkTest.java checks the tag against it)
INTS_CHUNK_ID = "0123abcd_ints-chunk"
#: the chunk id int32_xxh3.dltc's header records
XXH3_CHUNK_ID = "4567ef01_ints-xxh3"


def fixtures() -> dict[str, bytes]:
    """File name -> chunk bytes."""
    ints = ChunkBuilder(TensorSpec.create("ints", dtype="int32", shape=(2,)), checksum_algorithm=XXH64)
    for sample in ([1, 2], [3, 4], [-5, 6]):
        ints.add(EncodedSample(np.asarray(sample, "<i4").tobytes(), (2,)))
    floats = ChunkBuilder(TensorSpec.create("floats", dtype="float32", shape=(None,), compression="lz4"),
                          checksum_algorithm=CRC32C)
    for sample in ([0.5, 1.5, 2.5], [], [-1.0] * 40):
        floats.add(EncodedSample(np.asarray(sample, "<f4").tobytes(), (len(sample),)))
    # ints records the id it is written under (header tag, checked by Chunk.checkIdentity); floats
    # records none, as chunks written before the tag
    # what the writer records by default (XXH3-64), over samples Java checks by value
    current = ChunkBuilder(TensorSpec.create("ints", dtype="int32", shape=(None,)))
    for sample in ([7, -8, 9], list(range(100)), []):
        current.add(EncodedSample(np.asarray(sample, "<i4").tobytes(), (len(sample),)))
    return {"int32_xxh64.dltc": ints.finish(INTS_CHUNK_ID), "float32_lz4_crc32c.dltc": floats.finish(),
            "int32_xxh3.dltc": current.finish(XXH3_CHUNK_ID)}


if __name__ == "__main__":
    for name, data in fixtures().items():
        (HERE / name).write_bytes(data)
        print(HERE / name, len(data), file=sys.stderr)
