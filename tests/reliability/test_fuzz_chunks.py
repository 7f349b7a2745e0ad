"""The chunk decoder fed valid, mutated and lying chunks raises only the library's own errors."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import struct

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from fuzz_support import (
    FIXED_HEADER_SIZE,
    NUMERIC,
    campaign_child,
    exercise,
    fix_header_crc,
    mutate,
    png_bytes,
    valid_chunk,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deeplake_spark.errors import CorruptChunkError, DecodeError
from deeplake_spark.format import ChunkBuilder, ChunkReader, TensorSpec, encode_sample

CAMPAIGN_INPUTS = int(os.environ.get("DEEPLAKE_SPARK_FUZZ_INPUTS", "12000"))
HYPOTHESIS_EXAMPLES = int(os.environ.get("DEEPLAKE_SPARK_FUZZ_EXAMPLES", "600"))


@st.composite
def chunks(draw: st.DrawFn) -> bytes:
    """A valid chunk of hypothesis-generated arrays (ragged shapes, every numeric dtype, none/lz4)."""
    dtype = draw(st.sampled_from(NUMERIC))
    spec = TensorSpec.create("t", "generic", dtype=dtype, compression=draw(st.sampled_from(["none", "lz4"])))
    arrays = draw(st.lists(hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)),
                           max_size=5))
    builder = ChunkBuilder(spec)
    for array in arrays:
        builder.add(encode_sample(spec, array))
    return builder.finish()


@settings(max_examples=HYPOTHESIS_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=chunks(), rng=st.randoms(use_true_random=False), rounds=st.integers(0, 3))
def test_hypothesis_chunks_mutated_decode_or_raise_library_errors(data, rng, rounds):
    for _ in range(rounds):
        data, _ = mutate(data, rng)
    outcome = exercise(data)  # raises UnexpectedError on anything but DeepLakeSparkError / IndexError
    if rounds == 0:
        assert outcome == "ok"


@pytest.mark.slow
def test_seeded_campaign_in_a_memory_limited_process():
    """>= 10,000 mutated chunks decoded in a child whose address space is capped (RLIMIT_AS)."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=campaign_child, args=(CAMPAIGN_INPUTS, 20261125, 512 << 20, out))
    proc.start()
    result = out.get(timeout=300)
    proc.join(60)
    assert proc.exitcode == 0, result
    print(f"inputs={result['inputs']} outcomes={result['outcomes']} slowest={result['slowest_s'] * 1000:.1f} ms")
    assert result["failures"] == []
    assert sum(result["outcomes"].values()) == CAMPAIGN_INPUTS
    assert result["outcomes"].get("ok", 0) > 0 and result["outcomes"].get("CorruptChunkError", 0) > 0
    assert result["slowest_s"] < 2.0  # no input makes the decoder hang


def _lying(data: bytes, **fields: int) -> bytes:
    offsets = {"count": ("<I", 12), "header_len": ("<I", 16), "payload_len": ("<Q", 24), "raw_len": ("<Q", 32),
               "total_dims": ("<I", 48)}
    out = bytearray(data)
    for name, value in fields.items():
        fmt, offset = offsets[name]
        struct.pack_into(fmt, out, offset, value)
    fix_header_crc(out)
    return bytes(out)


def _lz4_chunk() -> bytes:
    spec = TensorSpec.create("t", "generic", dtype="uint8", compression="lz4")
    builder = ChunkBuilder(spec)
    builder.add(encode_sample(spec, np.zeros(1000, dtype=np.uint8)))
    return builder.finish()


@pytest.mark.parametrize("fields", [
    {"count": (1 << 28) - 1},               # 2 GiB of byte positions
    {"count": 0xFFFFFFFF},
    {"total_dims": 0xFFFFFFFF},
    {"raw_len": 1 << 40},                   # "decompress to 1 TiB"
    {"payload_len": 1 << 62},
    {"header_len": 0xFFFFFFFF},
    {"header_len": 8},
])
def test_lying_header_with_valid_checksum_allocates_nothing_big(fields):
    import tracemalloc

    data = _lying(_lz4_chunk(), **fields)
    tracemalloc.start()
    try:
        with pytest.raises(CorruptChunkError):
            reader = ChunkReader(data, where="lying chunk")
            reader.sample(0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"decoding a lying {len(data)}-byte chunk allocated {peak} bytes"


def test_image_chunk_whose_header_lies_about_the_shape_is_rejected():
    spec = TensorSpec.create("t", "image", compression="png")
    builder = ChunkBuilder(spec)
    builder.add(encode_sample(spec, png_bytes((2, 3, 3))))
    data = bytearray(builder.finish())
    # dims table: after the fixed header, 2 byte positions (u64) and 1 ndims byte padded to 8
    dims_at = FIXED_HEADER_SIZE + 16 + 8
    assert struct.unpack_from("<3I", data, dims_at) == (2, 3, 3)
    struct.pack_into("<I", data, dims_at, 4000)  # claims 4000 rows
    fix_header_crc(data)
    reader = ChunkReader(bytes(data), where="png chunk")
    with pytest.raises(DecodeError, match="does not match its stored shape"):
        reader.sample(0)


def test_valid_chunks_of_every_kind_round_trip():
    rng = random.Random(5)
    for _ in range(200):
        assert exercise(valid_chunk(rng)) == "ok"
