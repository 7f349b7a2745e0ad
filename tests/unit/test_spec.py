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
