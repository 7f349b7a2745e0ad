"""Chunk codec: property-based round trips and corruption cases."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from deeplake_spark.errors import CorruptChunkError, DecodeError, SchemaError, UnsupportedFormatVersion
from deeplake_spark.format import ChunkBuilder, ChunkReader, TensorSpec, encode_sample
from deeplake_spark.format.checksum import CRC32C, XXH3_64, XXH64, checksum
from deeplake_spark.format.header import encode_header
from deeplake_spark.format.limits import MAX_DIM, MAX_NDIM, MAX_SAMPLES
from deeplake_spark.format.samples import encode_block

NUMERIC = ["bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
           "float16", "float32", "float64"]


def build(spec: TensorSpec, values) -> ChunkReader:
    builder = ChunkBuilder(spec)
    for v in values:
        builder.add(encode_sample(spec, v))
    return ChunkReader(builder.finish(), where="test chunk")


@st.composite
def ragged_batches(draw):
    dtype = draw(st.sampled_from(NUMERIC))
    compression = draw(st.sampled_from(["none", "lz4"]))
    rank = draw(st.integers(0, 4))
    shapes = st.lists(st.integers(0, 5), min_size=rank, max_size=rank).map(tuple)
    arrays = draw(st.lists(shapes.flatmap(lambda s: hnp.arrays(np.dtype(dtype), s)), min_size=0, max_size=12))
    return dtype, compression, arrays


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ragged_batches())
def test_numeric_ragged_round_trip(batch):
    dtype, compression, arrays = batch
    spec = TensorSpec.create("t", dtype=dtype, shape=None, compression=compression)
    reader = build(spec, arrays)
    assert len(reader) == len(arrays)
    for i, expected in enumerate(arrays):
        got = reader.sample(i)
        assert got.shape == expected.shape and got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
        assert reader.shape(i) == expected.shape


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(), max_size=20), st.sampled_from(["none", "lz4"]))
def test_strings_round_trip(texts, compression):
    spec = TensorSpec.create("t", "text", compression=compression)
    reader = build(spec, texts)
    assert [reader.sample(i) for i in range(len(texts))] == texts


def test_json_round_trip():
    spec = TensorSpec.create("meta", "json")
    values = [{"a": 1, "b": [1, 2]}, [1, "x"], None and 0 or 3]
    reader = build(spec, values)
    import json

    assert [json.loads(reader.sample(i)) for i in range(3)] == values


def test_zero_d_and_empty_arrays():
    spec = TensorSpec.create("t", dtype="float64", shape=None)
    values = [np.float64(3.5), np.zeros((0,)), np.zeros((2, 0, 3)), np.ones((1, 1, 1, 1, 1))]
    reader = build(spec, values)
    for i, v in enumerate(values):
        np.testing.assert_array_equal(reader.sample(i), v)
        assert reader.sample(i).shape == np.shape(v)


def test_big_sample_gets_own_chunk_and_target_size_respected():
    spec = TensorSpec.create("t", dtype="uint8", shape=None, chunk_size=1000)
    builder = ChunkBuilder(spec)
    small = encode_sample(spec, np.zeros(400, np.uint8))
    big = encode_sample(spec, np.zeros(5000, np.uint8))
    assert builder.fits(big)  # empty chunk takes anything
    builder.add(small)
    assert builder.fits(small) and not builder.fits(big)


def test_block_encoding_matches_per_sample():
    spec = TensorSpec.create("e", "embedding", shape=(4,))
    block = encode_block(spec, np.arange(12, dtype=np.float64).reshape(3, 4))
    assert block.dtype == np.float32 and block.shape == (3, 4)
    builder = ChunkBuilder(spec)
    builder.add_block(block)
    reader = ChunkReader(builder.finish())
    np.testing.assert_array_equal(reader.sample(2), [8, 9, 10, 11])
    with pytest.raises(SchemaError, match="shape"):
        encode_block(spec, np.zeros((2, 5)))


def _jpeg(h=16, w=20) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def test_jpeg_passthrough_and_single_sample_decode():
    spec = TensorSpec.create("img", "image")
    data = [_jpeg(16, 20), _jpeg(8, 8)]
    reader = build(spec, data)
    assert bytes(reader.sample_bytes(0)) == data[0]  # stored untouched
    assert reader.sample(1).shape == (8, 8, 3)
    assert reader.shape(0) == (16, 20, 3)


def test_png_encode_from_array_is_lossless():
    spec = TensorSpec.create("mask", "image", compression="png")
    arr = np.random.default_rng(1).integers(0, 255, (10, 12, 3), dtype=np.uint8)
    reader = build(spec, [arr, arr[:, :, 0]])
    np.testing.assert_array_equal(reader.sample(0), arr)
    np.testing.assert_array_equal(reader.sample(1), arr[:, :, 0])


def test_undecodable_image_bytes():
    spec = TensorSpec.create("img", "image")
    with pytest.raises(DecodeError, match="not a JPEG or PNG"):
        encode_sample(spec, b"hello world")
    with pytest.raises(DecodeError, match="truncated JPEG"):
        encode_sample(spec, _jpeg()[:100])


@pytest.mark.parametrize(
    "value, message",
    [("text", "str"), (np.zeros((2, 3)), "shape"), (np.array([1.5]), "non-integral"), (np.array([300]), "out of range")],
)
def test_schema_errors(value, message):
    spec = TensorSpec.create("x", dtype="uint8", shape=(1,))
    with pytest.raises(SchemaError, match=message):
        encode_sample(spec, value)


def _chunk() -> bytes:
    spec = TensorSpec.create("t", dtype="int32", shape=None, compression="lz4")
    builder = ChunkBuilder(spec)
    for i in range(4):
        builder.add(encode_sample(spec, np.arange(i * 10, dtype=np.int32)))
    return builder.finish()


def test_flipped_payload_byte_is_detected():
    data = bytearray(_chunk())
    data[-3] ^= 0xFF
    with pytest.raises(CorruptChunkError, match="payload checksum"):
        ChunkReader(bytes(data), where="ds, tensor 't', chunk file x.dltc")


def test_truncated_and_damaged_header():
    data = _chunk()
    with pytest.raises(CorruptChunkError, match="truncated"):
        ChunkReader(data[:-5])
    with pytest.raises(CorruptChunkError, match="truncated"):
        ChunkReader(data[:30])
    damaged = bytearray(data)
    damaged[70] ^= 0x01
    with pytest.raises(CorruptChunkError, match="header checksum"):
        ChunkReader(bytes(damaged))
    with pytest.raises(CorruptChunkError, match="not a deeplake chunk"):
        ChunkReader(b"PAR1" + data[4:])


def test_unsupported_format_version():
    data = bytearray(_chunk())
    struct.pack_into("<H", data, 4, 99)
    with pytest.raises(UnsupportedFormatVersion, match="version 99"):
        ChunkReader(bytes(data))


@pytest.mark.parametrize("compression", ["none", "lz4"])
def test_writers_record_xxh3_and_chunks_of_every_payload_checksum_read(compression):
    spec = TensorSpec.create("t", dtype="int32", shape=(None,), compression=compression)
    values = [np.arange(i * 10, dtype=np.int32) for i in range(4)]
    default = build(spec, values)
    assert default.header.checksum_algorithm == XXH3_64 == _chunk()[8]
    assert default.header.payload_checksum == checksum(XXH3_64, default._data[default.header.header_len:])
    for algorithm in (CRC32C, XXH64, XXH3_64):  # chunks written before XXH3 keep reading, verified
        builder = ChunkBuilder(spec, checksum_algorithm=algorithm)
        for v in values:
            builder.add(encode_sample(spec, v))
        data = builder.finish()
        reader = ChunkReader(data, where="chunk")
        assert reader.header.checksum_algorithm == algorithm
        assert [reader.sample(i).tolist() for i in range(4)] == [v.tolist() for v in values]
        damaged = bytearray(data)
        damaged[-1] ^= 0x10
        with pytest.raises(CorruptChunkError, match="payload checksum mismatch"):
            ChunkReader(bytes(damaged), where="chunk")


def test_an_unknown_payload_checksum_code_is_a_newer_writer_not_damage():
    data = bytearray(_chunk())
    data[8] = 9  # with a valid header checksum: a writer newer than this reader
    header_len = struct.unpack_from("<I", data, 16)[0]
    struct.pack_into("<I", data, 20, 0)
    struct.pack_into("<I", data, 20, checksum(CRC32C, bytes(data[:header_len])) & 0xFFFFFFFF)
    with pytest.raises(UnsupportedFormatVersion, match="checksum algorithm code 9 is not known.*upgrade"):
        ChunkReader(bytes(data), where="ds, tensor 't', chunk file x.dltc")


def test_lz4_decompressed_once():
    reader = ChunkReader(_chunk())
    first = reader.raw_payload
    reader.sample(3)
    assert reader.raw_payload is first


def test_block_of_zero_byte_samples():
    spec = TensorSpec.create("b", "bbox")
    builder = ChunkBuilder(spec)
    builder.add_block(encode_block(spec, np.zeros((3, 0, 4), np.float32)))
    reader = ChunkReader(builder.finish())
    assert [reader.sample(i).shape for i in range(3)] == [(0, 4)] * 3


@pytest.mark.parametrize("mode, fmt", [("RGB", "JPEG"), ("L", "JPEG"), ("RGB", "PNG"), ("L", "PNG"), ("RGBA", "PNG"),
                                       ("LA", "PNG"), ("P", "PNG"), ("CMYK", "JPEG"), ("I;16", "PNG")])
def test_header_probe_agrees_with_decoded_shape(mode, fmt):
    from deeplake_spark.format.images import decode_image, probe_image

    rng = np.random.default_rng(3)
    img = Image.fromarray(rng.integers(0, 255, (9, 13, 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    shape = probe_image(buf.getvalue(), where="t")
    assert shape[:2] == (9, 13)
    assert decode_image(buf.getvalue(), shape, where="t").shape == shape


def test_png_with_a_damaged_chunk_is_refused():
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(buf, format="PNG")
    damaged = bytearray(buf.getvalue())
    damaged[-20] ^= 0xFF
    with pytest.raises(DecodeError, match="png"):
        encode_sample(TensorSpec.create("m", "image", compression="png"), bytes(damaged))


# ------------------------------------------------------------ the format's limits, one constant
@st.composite
def high_rank_samples(draw):
    """Samples of every rank 0..MAX_NDIM (dims of 1 or 2, so that rank 32 stays small)."""
    rank = draw(st.integers(0, MAX_NDIM))
    count = draw(st.integers(1, 3))
    return [np.asarray(draw(hnp.arrays(np.int16, tuple(draw(st.lists(st.integers(1, 2), min_size=rank,
                                                                        max_size=rank))))))
            for _ in range(count)], draw(st.sampled_from(["none", "lz4"]))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(high_rank_samples())
def test_every_rank_up_to_max_ndim_round_trips(batch):
    samples, compression = batch
    reader = build(TensorSpec.create("t", dtype="int16", compression=compression), samples)
    for i, sample in enumerate(samples):
        np.testing.assert_array_equal(reader.sample(i), sample)
        assert reader.shape(i) == sample.shape


def test_one_dimension_above_max_ndim_is_refused_by_writer_and_reader():
    spec = TensorSpec.create("t", dtype="float32")
    too_deep = np.zeros((1,) * (MAX_NDIM + 1), np.float32)
    with pytest.raises(SchemaError, match=f"rank {MAX_NDIM + 1} is above the format's limit of {MAX_NDIM}"):
        encode_sample(spec, too_deep, where="tensor 't', row 7")
    with pytest.raises(SchemaError, match="above the format's limit"):
        encode_block(spec, np.zeros((2,) + (1,) * (MAX_NDIM + 1), np.float32))
    with pytest.raises(SchemaError, match="cannot be stored"):  # the header encoder refuses it too
        encode_header(dtype="float32", compression="none", byte_positions=np.array([0, 4]),
                      shapes=[(1,) * (MAX_NDIM + 1)], payload=b"\0" * 4, raw_payload_len=4)
    # a chunk another writer made with a rank-33 sample (valid checksums) is corrupt for the reader
    data = bytearray(build(spec, [np.zeros((1,) * MAX_NDIM, np.float32), np.zeros(1, np.float32)])._data)
    count, total_dims = 2, MAX_NDIM + 1
    ndims_at = 64 + 8 * (count + 1)
    data[ndims_at:ndims_at + 2] = bytes([MAX_NDIM + 1, 0])  # same total dims, ranks 33 and 0
    struct.pack_into("<I", data, 20, 0)
    header_len = struct.unpack_from("<I", data, 16)[0]
    struct.pack_into("<I", data, 20, checksum(CRC32C, bytes(data[:header_len])) & 0xFFFFFFFF)
    assert total_dims == struct.unpack_from("<I", data, 48)[0]
    with pytest.raises(CorruptChunkError, match=f"rank {MAX_NDIM + 1}, above the format's limit"):
        ChunkReader(bytes(data))


def test_dims_that_do_not_fit_u32_are_refused():
    spec = TensorSpec.create("m", "binary_mask")
    with pytest.raises(SchemaError, match="u32"):
        encode_sample(spec, np.zeros((MAX_DIM + 1, 0), bool))
    with pytest.raises(SchemaError, match="dimension"):
        TensorSpec.create("m", shape=(MAX_DIM + 1,))
    assert TensorSpec.create("m", shape=(MAX_DIM,)).shape == (MAX_DIM,)


def test_a_chunk_closes_before_its_header_passes_the_limits():
    spec = TensorSpec.create("e", dtype="float32", chunk_size=1 << 40)
    builder = ChunkBuilder(spec)
    empty = encode_sample(spec, np.zeros((0,) * MAX_NDIM, np.float32))
    builder.add(empty)
    assert builder.fits(empty)
    # what the header allows for zero-byte samples of rank 32: far fewer than MAX_SAMPLES
    assert 0 < builder.room_for(MAX_NDIM) < MAX_SAMPLES
    assert builder.room_for(0) <= MAX_SAMPLES - 1


@pytest.mark.parametrize("value, message", [
    ("bad \udc00 text", "not valid Unicode"),
])
def test_text_that_utf8_cannot_hold_is_a_schema_error(value, message):
    with pytest.raises(SchemaError, match=message):
        encode_sample(TensorSpec.create("t", "text"), value, where="tensor 't', row 3")


@pytest.mark.parametrize("value", [{"a": object()}, {"a": float("nan")}, [float("inf")], {1: 2, "a": 3}])
def test_values_that_are_not_json_are_schema_errors(value):
    with pytest.raises(SchemaError, match="not JSON") as info:
        encode_sample(TensorSpec.create("j", "json"), value, where="tensor 'j', row 0")
    assert "tensor 'j', row 0" in str(info.value)


@pytest.mark.parametrize("shape", [(0, 0, 3), (0, 5, 3), (4, 0)])
def test_empty_images_are_schema_errors(shape):
    for compression in ("png", "jpeg"):
        with pytest.raises(SchemaError, match="no pixels"):
            encode_sample(TensorSpec.create("i", "image", compression=compression), np.zeros(shape, np.uint8))
