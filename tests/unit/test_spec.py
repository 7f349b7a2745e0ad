from __future__ import annotations

import pytest

from deeplake_spark import tensor
from deeplake_spark.dataset.schema import DatasetSchema
from deeplake_spark.errors import SchemaError
from deeplake_spark.format import HTYPES, TensorSpec


@pytest.mark.parametrize("htype", HTYPES)
def test_every_htype_has_defaults_and_round_trips(htype):
    spec = TensorSpec.create("col", htype)
    assert TensorSpec.from_dict(spec.to_dict()) == spec


def test_dtype_aliases_and_shape_strings():
    spec = TensorSpec.create("x", dtype="f4", shape="(None, 4)")
    assert spec.dtype == "float32" and spec.shape == (None, 4)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"htype": "nope"}, "unknown htype"), ({"dtype": "complex64"}, "unsupported dtype"),
     ({"compression": "zip"}, "unknown compression"), ({"dtype": "float32", "compression": "jpeg"}, "uint8")],
)
def test_bad_specs(kwargs, message):
    with pytest.raises(SchemaError, match=message):
        TensorSpec.create("x", **kwargs)


def test_schema_arrow_round_trip_keeps_specs():
    schema = DatasetSchema.from_mapping({"image": tensor("image"), "label": "int64", "name": "string"})
    back = DatasetSchema.from_arrow(schema.to_arrow())
    assert back.order == ("image", "label", "name")
    assert back.tensors["image"] == schema.tensors["image"].with_name("image")
    assert str(back.tabular.field("label").type) == "int64"


@pytest.mark.parametrize("shape", [(-1,), (None, -1), (-2, 4), "(-1, 4)", "[-1]"])
def test_negative_dims_are_refused_with_a_pointer_to_none(shape):
    with pytest.raises(SchemaError, match="use None"):
        TensorSpec.create("x", shape=shape)


@pytest.mark.parametrize("shape, expected", [((None, 4), (None, 4)), ("(None, 4)", (None, 4)), ("?,4", (None, 4)),
                                             ("*", (None,)), ((), ()), ([2, 3], (2, 3))])
def test_ways_to_say_a_dimension_varies(shape, expected):
    assert TensorSpec.create("x", shape=shape).shape == expected


@pytest.mark.parametrize("chunk_size", [0, -1, True, 1.5, "big"])
def test_chunk_size_must_be_a_positive_int(chunk_size):
    with pytest.raises(SchemaError, match="chunk_size"):
        TensorSpec.create("x", chunk_size=chunk_size)
    assert TensorSpec.create("x", chunk_size=None).chunk_size == TensorSpec.create("x").chunk_size


def test_specs_above_the_format_rank_limit_are_refused_when_created_and_when_read():
    from deeplake_spark.format.limits import MAX_NDIM

    assert len(TensorSpec.create("x", shape=(1,) * MAX_NDIM).shape) == MAX_NDIM
    with pytest.raises(SchemaError, match=f"{MAX_NDIM + 1} dimensions"):
        TensorSpec.create("x", shape=(1,) * (MAX_NDIM + 1))
    with pytest.raises(SchemaError, match="3000 dimensions"):
        TensorSpec.from_dict({"name": "x", "shape": [1] * 3000})


@pytest.mark.parametrize("data, message", [
    ({"name": "x", "shape": "3"}, "not a list"),
    ({"name": "x", "shape": 3}, "not a list"),
    ({"name": "x", "htype": ["image"]}, "htype"),
    ({"name": "x", "dtype": None}, "dtype"),
    ({"name": "x", "chunk_size": "lots"}, "chunk_size"),
    ({"htype": "image"}, "name"),
    ([1, 2], "JSON object"),
])
def test_malformed_spec_dicts_are_schema_errors(data, message):
    with pytest.raises(SchemaError, match=message):
        TensorSpec.from_dict(data)


def test_columns_that_differ_only_in_case_are_refused():
    with pytest.raises(SchemaError, match="'Label' and 'label' differ only in case"):
        DatasetSchema.from_mapping({"Label": "int64", "label": tensor("class_label")})
