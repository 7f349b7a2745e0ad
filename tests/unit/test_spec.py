from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# ---------------------------------------------------------------- media htypes (video, point_cloud, link)
def test_media_htype_defaults():
    video, cloud, link = (TensorSpec.create("x", h) for h in ("video", "point_cloud", "link"))
    assert (video.dtype, video.shape, video.compression, video.is_video) == ("uint8", None, "mp4", True)
    assert (cloud.dtype, cloud.shape, cloud.compression) == ("float32", (None, None), "lz4")
    assert (link.dtype, link.shape, link.link_to, link.is_scalar) == ("str", (), "bytes", True)


def test_link_targets_and_deeplake_spelling_round_trip():
    spec = TensorSpec.create("photo", "link[image]")
    assert (spec.htype, spec.link_to) == ("link", "image")
    assert spec == TensorSpec.create("photo", "link", link_to="image")
    assert TensorSpec.from_dict(spec.to_dict()) == spec and spec.to_dict()["link_to"] == "image"
    assert "link_to" not in TensorSpec.create("x", "image").to_dict()  # other specs keep their JSON


@pytest.mark.parametrize(
    "args, kwargs, message",
    [(("link",), {"link_to": "audio"}, "link_to 'audio' is not one of"),
     (("image",), {"link_to": "image"}, "only applies to link tensors"),
     (("link[image]",), {"link_to": "bytes"}, "disagree"),
     (("link",), {"dtype": "int32"}, "link tensor stores URL/path text"),
     (("video",), {"compression": "jpeg"}, "needs a video container compression"),
     (("video",), {"compression": "lz4"}, "needs a video container compression"),
     (("image",), {"compression": "mp4"}, "mp4 compression is for htype 'video'"),
     (("video",), {"shape": (None, None, None, 3)}, "no declared shape"),
     (("video",), {"dtype": "float32"}, "needs dtype uint8"),
     (("point_cloud",), {"shape": (None, 2)}, "3 or more values per point"),
     (("point_cloud",), {"shape": (None, None, None)}, "3 or more values per point"),
     (("point_cloud",), {"shape": None}, "3 or more values per point"),
     (("point_cloud",), {"dtype": "int32"}, "float coordinates")],
)
def test_media_specs_are_checked_by_name(args, kwargs, message):
    with pytest.raises(SchemaError, match=message) as info:
        TensorSpec.create("col", *args, **kwargs)
    assert "'col'" in str(info.value)


@pytest.mark.parametrize("compression", ["mp4", "webm", "mkv", "avi"])
def test_every_video_container_is_a_sample_compression(compression):
    spec = TensorSpec.create("clip", "video", compression=compression)
    assert spec.is_sample_compressed and spec.is_video
    assert TensorSpec.from_dict(spec.to_dict()) == spec


def test_point_cloud_with_fixed_width():
    assert TensorSpec.create("lidar", "point_cloud", shape=(None, 4), dtype="float64").shape == (None, 4)


_MAGICS = [b"", b"\x00\x00\x00\x18ftypisom", b"\x00\x00\x00\x18ftypheic", b"\x1a\x45\xdf\xa3", b"RIFF\x00\x00\x00\x00AVI ",
           b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"\x00\x00\x00\x08moov"]


@settings(max_examples=300, deadline=None)
@given(magic=st.sampled_from(_MAGICS), tail=st.binary(max_size=80),
       compression=st.sampled_from(["mp4", "webm", "mkv", "avi"]))
def test_video_container_check_accepts_its_kinds_and_refuses_the_rest_typed(magic, tail, compression):
    from deeplake_spark.errors import DecodeError
    from deeplake_spark.format.video import ACCEPTED_CONTAINERS, check_video, video_container

    data = magic + tail
    kind = video_container(data)
    assert kind in (None, "mp4", "webm", "mkv", "avi")
    try:
        got = check_video(data, compression, where="tensor 'clip'")
    except DecodeError as e:
        assert "tensor 'clip'" in str(e) and kind not in ACCEPTED_CONTAINERS[compression]
    else:
        assert got == kind and got in ACCEPTED_CONTAINERS[compression]


@settings(max_examples=100, deadline=None)
@given(points=st.integers(0, 20), width=st.integers(1, 6), dtype=st.sampled_from(["float16", "float32", "float64"]),
       seed=st.integers(0, 2**16))
def test_point_cloud_samples_round_trip_or_are_refused_by_width(points, width, dtype, seed):
    import numpy as np

    from deeplake_spark.format.samples import decode_sample, encode_sample

    spec = TensorSpec.create("lidar", "point_cloud", dtype=dtype)
    cloud = np.random.default_rng(seed).normal(size=(points, width)).astype(dtype)
    if points and width < 3:
        with pytest.raises(SchemaError, match="tensor 'lidar'.*needs at least 3"):
            encode_sample(spec, cloud)
        return
    encoded = encode_sample(spec, cloud)
    back = decode_sample(spec.dtype, "none", encoded.data, encoded.shape)
    assert back.dtype == np.dtype(dtype) and np.array_equal(back, cloud)
