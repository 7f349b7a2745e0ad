"""A Spark DataFrame of a dataset reads exactly the version it was planned against (issue #12, item 4).

``raw = spark.read.format("deeplake").option("tensors", "bytes").load(p)`` at 12 rows, then an
append made from ``raw`` itself, used to make ``raw`` return 3 rows, and an overwrite from ``raw``
kept only those 3. Cause: PySpark 4.3 stores the partitions planned while pushing a query's filters
on the DataFrame's relation and reuses them for its later actions without pushed filters, and each
planning opened the latest version. Now every action of a DataFrame reads the version of its
``load()``, with partitions that never depend on a filter.

Real datasets on disk, a real local Spark session, real Delta commits; no mocks.
"""

from __future__ import annotations

import glob
import io
import json
import os
import shutil
import time

import numpy as np
import pytest

import deeplake_spark as dls
from deeplake_spark.errors import SchemaError, UnsafePathError
from deeplake_spark.spark.read_options import ReadOptions
from deeplake_spark.spark.reader import BatchReader, DeepLakeReader, source_schema
from deeplake_spark.spark.write_options import WriteOptions, plan_write

pytest.importorskip("pyspark")

from pyspark.sql import functions as F  # noqa: E402

ROWS = 12


def jpeg(value: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(value)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (16, 12, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def make_dataset(path: str) -> dict[int, tuple[bytes, list[float]]]:
    """Two commits of 6 rows (ids 0..11): a JPEG image and a float embedding; returns the samples by id."""
    ds = dls.create(path, {"id": "int64", "image": dls.tensor("image", shape=(None, None, 3)),
                           "emb": dls.tensor("embedding", shape=(3,))})
    samples = {i: (jpeg(i), [float(i), i + 0.5, -float(i)]) for i in range(ROWS)}
    for part in (range(0, 6), range(6, ROWS)):
        ds.append({"id": list(part), "image": [samples[i][0] for i in part],
                   "emb": [np.array(samples[i][1], np.float32) for i in part]})
    return samples


def load(spark, path: str, tensors: str = "ref"):
    return spark.read.format("deeplake").option("tensors", tensors).load(path)


def ids_of(df) -> list[int]:
    return sorted(r["id"] for r in df.select("id").collect())


def spark_error_text(excinfo: pytest.ExceptionInfo) -> str:
    return str(excinfo.value)


# ----------------------------------------------------------------------- append/overwrite from itself
@pytest.mark.parametrize("tensors,api", [("bytes", "format"), ("bytes", "dls.write"),
                                         ("array", "format"), ("array", "dls.write")])
def test_append_then_overwrite_from_the_same_dataframe(spark, tmp_path, tensors, api):
    path = str(tmp_path / "ds")
    samples = make_dataset(path)

    def save(df, mode: str, **options: str) -> None:
        if api == "dls.write":
            dls.write(df, path, mode=mode, **options)
            return
        writer = df.write.format("deeplake").mode(mode)
        for key, value in options.items():
            writer = writer.option(key, value)
        writer.save(path)

    raw = load(spark, path, tensors)
    assert ids_of(raw) == list(range(ROWS))
    save(raw.where("id < 2"), "append")
    assert len(dls.open(path)) == ROWS + 2
    # Every later action of `raw`, filtered or not, reads the version `raw` was planned against.
    assert ids_of(raw) == list(range(ROWS))
    assert raw.count() == ROWS
    assert ids_of(raw.where("id >= 10")) == [10, 11]
    assert ids_of(load(spark, path, tensors)) == sorted([*range(ROWS), 0, 1])  # a fresh load sees the append

    save(raw.withColumn("extra", F.lit(7)), "overwrite", overwriteSchema="true")
    ds = dls.open(path)
    assert len(ds) == ROWS
    got = {int(ds[i]["id"]): ds[i] for i in range(len(ds))}
    assert sorted(got) == list(range(ROWS))
    for i, (_image, emb) in samples.items():
        assert int(got[i]["extra"]) == 7
        np.testing.assert_allclose(np.asarray(got[i]["emb"]), emb, rtol=1e-6)
        assert np.asarray(got[i]["image"]).shape == (16, 12, 3)
    if tensors == "bytes":  # stored bytes are copied, not re-encoded
        copied = {r["id"]: bytes(r["image"]["data"]) for r in load(spark, path, "bytes").collect()}
        assert copied == {i: image for i, (image, _) in samples.items()}


def test_ref_dataframe_is_pinned_and_never_writes_refs_into_its_dataset(spark, tmp_path):
    path = str(tmp_path / "ds")
    samples = make_dataset(path)
    refs = load(spark, path)
    assert refs.count() == ROWS
    dls.write(load(spark, path, "bytes").where("id < 2"), path, mode="append")
    assert refs.count() == ROWS and ids_of(refs.where("id < 3")) == [0, 1, 2]
    fetched = {r["id"]: bytes(r["image"]["data"])
               for r in dls.fetch(refs.where("id >= 9").select("id", "image"), ["image"], mode="bytes").collect()}
    assert fetched == {i: samples[i][0] for i in (9, 10, 11)}
    # Refs are not tensor data: writing them back is refused up front, naming the column and dataset.
    for mode in ("append", "overwrite"):
        with pytest.raises(Exception, match="SchemaError") as excinfo:
            refs.write.format("deeplake").mode(mode).option("overwriteSchema", "true").save(path)
        assert "column 'image' holds refs into the chunks of" in spark_error_text(excinfo)
        assert dls.open(path).path in spark_error_text(excinfo)
    assert len(dls.open(path)) == ROWS + 2
    # The tabular part of a refs DataFrame overwrites its own dataset from the pinned version.
    refs.select("id").write.format("deeplake").mode("overwrite").option("overwriteSchema", "true").save(path)
    assert sorted(dls.open(path).table().column("id").to_pylist()) == list(range(ROWS))
    with pytest.raises(SchemaError, match="holds refs into the chunks of"):  # the typed error under Spark's
        plan_write(refs.schema, WriteOptions.parse({"path": path}), None)


# ------------------------------------------------------------------------------ versions never mix
@pytest.mark.parametrize("tensors", ["ref", "bytes", "array"])
def test_filtered_action_never_changes_the_rows_of_later_actions(spark, tmp_path, tensors):
    path = str(tmp_path / "ds")
    make_dataset(path)
    df = load(spark, path, tensors)
    assert df.where("id < 2").count() == 2
    # PySpark 4.3 reused the partitions planned for `id < 2` here: 6 rows (one file) instead of 12.
    assert df.count() == ROWS
    assert ids_of(df) == list(range(ROWS))
    assert df.where("id >= 6").count() == 6
    assert df.count() == ROWS


@pytest.mark.parametrize("tensors", ["ref", "bytes", "array"])
def test_dataframe_reads_its_version_after_overwrites_by_others(spark, tmp_path, tensors):
    path = str(tmp_path / "ds")
    samples = make_dataset(path)
    df = load(spark, path, tensors)
    # Planned (schema) before any action; the dataset then changes twice before the first action.
    dls.write(load(spark, path, "bytes").where("id < 4"), path, mode="overwrite")
    dls.open(path).append({"id": [100], "image": [jpeg(100)], "emb": [np.zeros(3, np.float32)]})
    assert len(dls.open(path)) == 5
    assert df.count() == ROWS
    assert ids_of(df.where("id > 2")) == list(range(3, ROWS))
    assert ids_of(df) == list(range(ROWS))
    if tensors != "ref":  # samples of the pinned version, whose chunks the overwrite left on storage
        rows = {r["id"]: r["emb"] for r in df.where("id >= 8").select("id", "emb").collect()}
        if tensors == "bytes":
            rows = {i: np.frombuffer(bytes(v["data"]), "<f4") for i, v in rows.items()}
        assert sorted(rows) == list(range(8, ROWS))
        for i, emb in rows.items():
            np.testing.assert_allclose(np.asarray(emb, np.float32), samples[i][1], rtol=1e-6)
    assert load(spark, path, tensors).count() == 5  # a fresh load reads the latest version


# ----------------------------------------------------------------------------- Delta paths (item 7)
def test_add_action_outside_the_table_is_refused_by_the_spark_source(spark, tmp_path):
    root = tmp_path / "parent"
    path = str(root / "ds")
    make_dataset(path)
    outside = root / "outside" / "x.parquet"
    outside.parent.mkdir(parents=True)
    shutil.copy(sorted(glob.glob(os.path.join(path, "*.parquet")))[0], outside)
    now = int(time.time() * 1000)
    actions = [
        {"commitInfo": {"timestamp": now, "operation": "WRITE", "operationParameters": {"mode": "Append"}}},
        {"add": {"path": "../outside/x.parquet", "partitionValues": {}, "size": outside.stat().st_size,
                 "modificationTime": now, "dataChange": True, "stats": json.dumps({"numRecords": 6})}},
    ]
    (tmp_path / "parent" / "ds" / "_delta_log" / f"{3:020d}.json").write_text(
        "\n".join(json.dumps(a) for a in actions) + "\n")
    for tensors in ("ref", "bytes"):
        with pytest.raises(Exception, match="UnsafePathError") as excinfo:
            load(spark, path, tensors).collect()
        text = spark_error_text(excinfo)
        assert "../outside/x.parquet" in text and "add action" in text, text
    # The version before the foreign commit is still readable.
    assert spark.read.format("deeplake").option("versionAsOf", 2).load(path).count() == ROWS


def test_executors_never_open_a_path_outside_the_dataset(tmp_path):
    path = str(tmp_path / "ds")
    make_dataset(path)
    secret = tmp_path / "secret.parquet"
    shutil.copy(sorted(glob.glob(os.path.join(path, "*.parquet")))[0], secret)
    options = ReadOptions.parse({"path": path, "tensors": "bytes"})
    ds = dls.open(path)
    reader = DeepLakeReader(options, source_schema(ds, options))
    batches = BatchReader(reader)
    inside = [os.path.basename(p) for p in sorted(glob.glob(os.path.join(path, "*.parquet")))]
    assert sum(b.num_rows for b in batches.batches(inside)) == ROWS
    for hostile in (f"file://{secret}", str(secret), "../secret.parquet"):
        with pytest.raises(UnsafePathError, match="add action") as excinfo:
            list(batches.batches([hostile]))
        assert hostile in str(excinfo.value) and ds.path in str(excinfo.value)
