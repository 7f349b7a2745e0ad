"""Scalar tensors stored inline: spec -> column type, value checks, dtype restored on read."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deeplake_spark.dataset.inline import inline_array, inline_sample, inline_samples, inline_type
from deeplake_spark.dataset.schema import DatasetSchema, tensor
from deeplake_spark.errors import SchemaError
from deeplake_spark.format.spec import DTYPES, TensorSpec


def spec(dtype: str, htype: str = "generic") -> TensorSpec:
    return TensorSpec.create("t", htype, dtype=dtype, shape=())


def test_every_scalar_dtype_but_uint64_is_inline():
    assert {d for d in DTYPES if spec(d).is_scalar} == set(DTYPES) - {"uint64"}
    assert not TensorSpec.create("t", dtype="int32", shape=(1,)).is_scalar
    assert not TensorSpec.create("t", dtype="int32", shape=None).is_scalar
    assert [str(inline_type(spec(d))) for d in ("uint8", "uint16", "uint32", "float16", "str")] == \
        ["int16", "int32", "int64", "float", "string"]


@pytest.mark.parametrize("dtype", sorted(set(DTYPES) - {"uint64", "str"}))
def test_round_trip_keeps_dtype(dtype):
    s = spec(dtype)
    values = np.array([0, 1, 1, 0], dtype=dtype)
    for source in (values, list(values), pa.array(values)):
        column = inline_array(s, source, where="t")
        assert column.type == inline_type(s)
        samples = inline_samples(column, s)
        assert samples.dtype == np.dtype(dtype) and samples.tolist() == values.tolist()
        one = inline_sample(samples, 1)
        assert one.shape == () and one.dtype == np.dtype(dtype)


@pytest.mark.parametrize(("dtype", "value", "message"), [
    ("uint8", 256, "out of range"), ("uint8", -1, "out of range"), ("int8", 128, "out of range"),
    ("int32", 2.5, "non-integral"), ("int32", float("inf"), "non-integral or non-finite"),
    ("bool", 2, "only 0/1"), ("int32", "3", "got str for a int32 tensor"), ("int32", [1], r"shape \(1,\)"),
])
def test_bad_values_are_refused_naming_the_row(dtype, value, message):
    with pytest.raises(SchemaError, match=message) as info:
        inline_array(spec(dtype), [0, None, value], where="t", row_offset=10)
    assert str(info.value).startswith("t, row 12: ")


@pytest.mark.parametrize(("dtype", "values", "message"), [
    ("uint8", pa.array([1, 300]), "row 1: values out of range for uint8"),
    ("int32", pa.array([1.5]), "row 0: non-integral"), ("int32", pa.array([float("nan")]), "non-finite"),
    ("bool", pa.array([0, 2]), "row 1: only 0/1"), ("int32", pa.array(["1"]), "need a text/json"),
    ("str", pa.array([1]), "row 0: expected str for a text tensor, got int"),
])
def test_bad_arrow_values_are_refused(dtype, values, message):
    with pytest.raises(SchemaError, match=message):
        inline_array(spec(dtype), values, where="t")


def test_nulls_float16_and_text():
    column = inline_array(spec("uint8"), [3, None], where="t")
    assert column.null_count == 1
    samples = inline_samples(column, spec("uint8"))
    assert samples[0].dtype == np.uint8 and samples[1] is None
    halves = inline_array(spec("float16"), pa.array([0.1, None]), where="t")
    assert halves.to_pylist()[0] == float(np.float16(0.1)) and halves.null_count == 1
    meta = inline_array(spec("str", "json"), [{"b": 1, "a": [1]}, "[2]", None], where="t")
    assert json.loads(meta[0].as_py()) == {"a": [1], "b": 1} and meta[1].as_py() == "[2]"
    with pytest.raises(SchemaError, match="expected str"):
        inline_array(spec("str", "text"), [3], where="t")


def test_schema_storage_follows_the_column_type():
    new = DatasetSchema.from_mapping({"label": tensor("class_label", class_names=["a", "b"]), "id": "int64",
                                      "v": tensor(shape=(2,))})
    assert new.inline == {"label"} and set(new.chunked) == {"v"}
    arrow = new.to_arrow()
    assert arrow.field("label").type == pa.int32() and pa.types.is_struct(arrow.field("v").type)
    back = DatasetSchema.from_arrow(arrow)
    assert back == new and back.tensors["label"].class_names == ("a", "b")
    refs = DatasetSchema(new.tabular, new.tensors, new.order, frozenset())  # the layout before inline storage
    assert DatasetSchema.from_arrow(refs.to_arrow()).inline == frozenset()
    with pytest.raises(SchemaError, match="cannot be stored inline"):
        DatasetSchema(new.tabular, new.tensors, new.order, frozenset({"v"}))


def test_class_names_in_the_spec_json():
    plain = TensorSpec.create("label", "class_label")
    assert "class_names" not in plain.to_dict()  # unchanged JSON for specs without names
    named = TensorSpec.create("label", "class_label", class_names=["cat", "dog"])
    assert TensorSpec.from_dict(json.loads(named.to_json())) == named
    assert named.class_name(1) == "dog" and named.class_name(2) is None and plain.class_name(0) is None
    with pytest.raises(SchemaError, match="not a list of names"):
        TensorSpec.from_dict({**named.to_dict(), "class_names": "cat"})


_INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32")


@given(data=st.data(), dtype=st.sampled_from(_INT_DTYPES + ("bool", "float16", "float32", "float64")))
@settings(max_examples=150, deadline=None)
def test_any_valid_column_round_trips(data, dtype):
    """Values of the dtype (and nulls) come back equal and in the dtype, whatever the input form."""
    s = spec(dtype)
    if dtype in _INT_DTYPES:
        info = np.iinfo(dtype)
        element = st.integers(int(info.min), int(info.max))
    elif dtype == "bool":
        element = st.booleans()
    else:
        element = st.floats(width=int(dtype[-2:]) if dtype != "float16" else 16, allow_nan=False)
    values = data.draw(st.lists(st.one_of(st.none(), element), max_size=20))
    form = data.draw(st.sampled_from(["list", "arrow"]))
    given_values = values if form == "list" else pa.array(values, type=pa.from_numpy_dtype(np.dtype(dtype)))
    column = inline_array(s, given_values, where="t")
    assert column.type == inline_type(s) and column.null_count == values.count(None)
    samples = inline_samples(column, s)
    back = [None if v is None else np.asarray(v) for v in (samples if isinstance(samples, list) else list(samples))]
    for got, want in zip(back, values):
        if want is None:
            assert got is None
        else:
            assert got.dtype == np.dtype(dtype) and got == np.asarray(want, dtype=dtype)


@given(st.lists(st.one_of(st.none(), st.text()), max_size=10))
@settings(max_examples=100, deadline=None)
def test_any_text_round_trips(texts):
    valid = [t for t in texts if t is None or t.encode("utf-8", "surrogatepass").decode("utf-8", "ignore") == t]
    column = inline_array(spec("str", "text"), valid, where="t")
    samples = inline_samples(column, spec("str", "text"))
    assert list(samples) == valid
