"""The tensor chunk codec: specs, sample encoding, chunk header and payload.

Pure functions and small classes over bytes and numpy; knows nothing of storage, Delta, Spark or
torch. The byte layout is documented in ``docs/FORMAT.md``.
"""

from __future__ import annotations

from deeplake_spark.format.chunk_reader import ChunkReader
from deeplake_spark.format.chunk_writer import ChunkBuilder
from deeplake_spark.format.header import FORMAT_VERSION, MAGIC, ChunkHeader
from deeplake_spark.format.samples import EncodedSample, decode_sample, encode_sample
from deeplake_spark.format.spec import COMPRESSIONS, DTYPES, HTYPES, TensorSpec

__all__ = [
    "COMPRESSIONS",
    "DTYPES",
    "FORMAT_VERSION",
    "HTYPES",
    "MAGIC",
    "ChunkBuilder",
    "ChunkHeader",
    "ChunkReader",
    "EncodedSample",
    "TensorSpec",
    "decode_sample",
    "encode_sample",
]
