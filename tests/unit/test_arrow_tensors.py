"""Arrow columns -> chunks -> samples (the distributed write path), without Spark."""

from __future__ import annotations

import uuid

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deeplake_spark as dls
from deeplake_spark.dataset.distributed import (
    TaskWriter,
    commit_written,
    discard_written,
)
from deeplake_spark.dataset.schema import DatasetSchema
from deeplake_spark.errors import SchemaError

DTYPES = {"int16": pa.int16(), "int64": pa.int64(), "float32": pa.float32(), "float64": pa.float64()}


@st.composite
def samples(draw):
    """Rows of rank-0..2 samples (each rectangular, shapes vary per row), some rows null."""
    rank = draw(st.integers(0, 2))
    dtype = draw(st.sampled_from(sorted(DTYPES)))
    rows = []
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.booleans()) and draw(st.booleans()):
            rows.append(None)
            continue
        shape = tuple(draw(st.integers(0, 3)) for _ in range(rank))
        if 0 in shape:  # nested lists cannot carry the sizes inside an empty dimension
            shape = shape[:shape.index(0)] + (0,) * (rank - shape.index(0))
        values = draw(st.lists(st.integers(-1000, 1000), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
        rows.append(np.array(values, dtype=dtype).reshape(shape))
    return rank, dtype, rows


def arrow_of(rows, rank: int, dtype: str) -> pa.Array:
    t = DTYPES[dtype]
    for _ in range(rank):
        t = pa.list_(t)
    return pa.array([None if r is None else r.tolist() for r in rows], type=t)


def round_trip(path: str, schema: DatasetSchema, batches: list[dict]) -> dls.Dataset:
    writer = TaskWriter(path, schema, task_id=0)
    for batch in batches:
        writer.write(batch)
    commit_written(path, schema, [writer.finish()])
    return dls.open(path)


@settings(max_examples=40, deadline=None)
@given(samples(), st.integers(0, 3))
def test_nested_lists_round_trip(tmp_path_factory, drawn, cut):
    rank, dtype, rows = drawn
    path = str(tmp_path_factory.getbasetemp() / uuid.uuid4().hex)
    spec = dls.tensor("generic", dtype=dtype, shape=(None,) * rank)
    schema = DatasetSchema.from_mapping({"id": "int64", "x": spec})
    array = arrow_of(rows, rank, dtype)
    cut = min(cut, len(rows))
    # two batches, the second a slice with a non-zero offset into shared buffers
    batches = [{"id": pa.array(range(cut), pa.int64()), "x": array.slice(0, cut)},
               {"id": pa.array(range(cut, len(rows)), pa.int64()), "x": array.slice(cut)}]
    ds = round_trip(path, schema, batches)
    assert len(ds) == len(rows)
    for i, want in enumerate(rows):
        got = ds[i]["x"] if len(ds) else None
        if want is None:
            assert got is None
        else:
            assert got.shape == want.shape and got.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(got, want)


def test_ragged_and_null_inside_samples_are_refused(tmp_path):
    schema = DatasetSchema.from_mapping({"x": dls.tensor("generic", dtype="int32", shape=(None, None))})
    writer = TaskWriter(str(tmp_path / "a"), schema)
    with pytest.raises(SchemaError, match="row 1: nested arrays of different lengths"):
        writer.write({"x": pa.array([[[1]], [[1, 2], [3]]], pa.list_(pa.list_(pa.int32())))})
    with pytest.raises(SchemaError, match="null values inside a sample"):
        writer.write({"x": pa.array([[[1, None]]], pa.list_(pa.list_(pa.int32())))})
    writer.discard()


def test_casts_follow_the_codec_rules(tmp_path):
    schema = DatasetSchema.from_mapping({"m": dls.tensor("binary_mask", shape=(None,)),
                                         "u": dls.tensor("generic", dtype="uint8", shape=(None,))})
    ds = round_trip(str(tmp_path / "ok"), schema, [{"m": pa.array([[0, 1, 1]]), "u": pa.array([[0, 255]])}])
    np.testing.assert_array_equal(ds[0]["m"], np.array([False, True, True]))
    assert ds[0]["u"].dtype == np.uint8
    for bad, match in (({"u": pa.array([[256]])}, "out of range"), ({"m": pa.array([[2]])}, "0/1"),
                       ({"u": pa.array([[1.5]])}, "non-integral")):
        writer = TaskWriter(str(tmp_path / "bad"), schema)
        with pytest.raises(SchemaError, match=match):
            writer.write(bad)
        writer.discard()


def test_bbox_with_no_boxes_and_discard(tmp_path):
    path = str(tmp_path / "boxes")
    schema = DatasetSchema.from_mapping({"b": dls.tensor("bbox")})
    writer = TaskWriter(path, schema, task_id=2)
    writer.write({"b": pa.array([[], [[1, 2, 3, 4]], None], pa.list_(pa.list_(pa.float64())))})
    files = writer.finish()
    assert files.num_records == 3 and files.path.startswith("part-00002-") and files.chunk_paths
    assert discard_written(path, [files]) == []
    assert not list((tmp_path / "boxes").rglob("*.dltc")) and not list((tmp_path / "boxes").rglob("*.parquet"))
    ds = round_trip(path, schema, [{"b": pa.array([[], [[1, 2, 3, 4]], None], pa.list_(pa.list_(pa.float64())))}])
    assert ds[0]["b"].shape == (0, 4) and ds[1]["b"].tolist() == [[1, 2, 3, 4]] and ds[2]["b"] is None
