"""The JVM writer (``format("deeplake")``, Spark's default for our datasets) on the media htypes:
point_cloud and link tensors are written as the Python writer writes them (same checks, same spec
JSON); video, whose containers only the Python writer checks and probes, is refused by name with
the way to write it. Both Spark writers agree."""

from __future__ import annotations

import numpy as np
import pytest

import deeplake_spark as dls
from deeplake_spark.errors import DeepLakeSparkError

WRITERS = ["deeplake", "deeplake-python"]


def _errors():
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    return Py4JJavaError, PySparkException, DeepLakeSparkError


@pytest.mark.parametrize("writer", WRITERS)
def test_point_clouds_append_and_read_back(spark, tmp_path, writer):
    path = str(tmp_path / "pc")
    dls.create(path, {"pc": dls.tensor("point_cloud"), "label": "int64"})
    clouds = [[[1.0, 2.0, 3.0], [4.0, 5.0, 6.5]], [[0.5, 0.25, 0.125, 9.0]], []]
    rows = [(i, c) for i, c in enumerate(clouds)]
    spark.createDataFrame(rows, "label long, pc array<array<float>>").write.format(writer).mode("append").save(path)
    ds = dls.open(path)
    assert len(ds) == 3 and ds.schema.tensors["pc"].htype == "point_cloud"
    got = {int(ds[i]["label"]): ds[i]["pc"] for i in range(3)}
    for i, cloud in enumerate(clouds):  # an empty cloud is (0, 0), as the Python API stores []
        want = np.asarray(cloud, np.float32) if cloud else np.zeros((0, 0), np.float32)
        np.testing.assert_array_equal(got[i], want)
        assert got[i].shape == want.shape
    # two values per point is not a point cloud: refused by both writers, nothing committed
    with pytest.raises(_errors()) as error:
        spark.createDataFrame([(9, [[1.0, 2.0]])], "label long, pc array<array<float>>") \
            .write.format(writer).mode("append").save(path)
    assert "values per point" in str(error.value) and "at least 3" in str(error.value)
    assert len(dls.open(path)) == 3


@pytest.mark.parametrize("writer", WRITERS)
def test_links_append_and_keep_their_target_kind(spark, tmp_path, writer):
    path = str(tmp_path / "links")
    dls.create(path, {"img": dls.tensor("link[image]"), "label": "int64"})
    urls = ["s3://bucket/a.jpg", "file:///data/b.png"]
    spark.createDataFrame(list(enumerate(urls)), "label long, img string").write.format(writer).mode("append") \
        .save(path)
    ds = dls.open(path)
    spec = ds.schema.tensors["img"]
    assert spec.htype == "link" and spec.link_to == "image"
    assert sorted(ds.table(columns=["label"]).column("label").to_pylist()) == [0, 1]


@pytest.mark.parametrize("writer", WRITERS)
def test_a_new_dataset_of_point_clouds_and_links_has_the_python_spec(spark, tmp_path, writer):
    """Created by the Spark writer from options: the stored spec JSON is the Python API's."""
    path = str(tmp_path / "new")
    df = spark.createDataFrame([(1, [[1.0, 2.0, 3.0]], "file:///x.mp4")], "label long, pc array<array<float>>, v string")
    df.write.format(writer).option("tensor.pc.htype", "point_cloud").option("tensor.v.htype", "link") \
        .option("tensor.v.linkTo", "video").mode("overwrite").save(path)
    tensors = dls.open(path).schema.tensors
    reference = dls.create(str(tmp_path / "ref"), {"pc": dls.tensor("point_cloud"),
                                                   "v": dls.tensor("link", link_to="video")}).schema.tensors
    assert tensors["pc"].to_dict() == reference["pc"].to_dict()
    assert tensors["v"].to_dict() == reference["v"].to_dict()
    with pytest.raises(_errors()) as error:
        df.write.format(writer).option("tensor.pc.htype", "point_cloud").option("tensor.v.htype", "link") \
            .option("tensor.v.linkTo", "audio").mode("overwrite").save(str(tmp_path / "bad"))
    assert "link_to" in str(error.value) and "audio" in str(error.value)


def test_the_jvm_writer_refuses_video_by_name_and_says_how_to_write_it(spark, tmp_path):
    path = str(tmp_path / "video")
    dls.create(path, {"v": dls.tensor("video"), "label": "int64"})
    with pytest.raises(_errors()) as error:
        spark.createDataFrame([(1, b"\x00\x00\x00\x18ftypmp42")], "label long, v binary") \
            .write.format("deeplake").mode("append").save(path)
    message = str(error.value)
    assert "video tensors are written by the Python writer only" in message and "deeplake-python" in message
    assert len(dls.open(path)) == 0
