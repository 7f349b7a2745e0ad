"""Partitioned writes of the JVM writer (``df.write.format("deeplake-jvm").partitionBy(...)``).

Standard Delta partitioning (tmp/contracts: Hive folders, partition columns out of the Parquet files,
``partitionValues`` in the adds, ``metaData.partitionColumns``); chunk files stay under ``_tensors/``.
Every table is read back by delta-spark (its own session, tests/delta_spark_worker.py), by the
Python dataset layer (``deeplake_spark.open``) and by the JVM reader.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import shutil

import numpy as np
import pytest

import deeplake_spark as dls

pytest.importorskip("pyspark")
pq = pytest.importorskip("pyarrow.parquet")

from py4j.protocol import Py4JJavaError  # noqa: E402
from pyspark.errors import PySparkException  # noqa: E402

from deeplake_spark.spark import jvm  # noqa: E402

SPARK_ERRORS = (Py4JJavaError, PySparkException)
FMT = "deeplake-jvm"
D1, D2 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)

pytestmark = pytest.mark.skipif(shutil.which("mvn") is None and not jvm.jar_file().exists(),
                                reason="no Maven to build the deeplake-jvm jar and no prebuilt jar")

#: (id, split, day, emb): split (with a null and a value that needs escaping) and day partition the table
ROWS = [(i, ["train", "val", None, "a b%/="][i % 4], D1 if i < 5 else D2, [float(i), 1.0]) for i in range(10)]
SCHEMA = "id long, split string, day date, emb array<float>"


def adds(path: str) -> list[dict]:
    out = []
    for name in sorted(glob.glob(os.path.join(path, "_delta_log", "*.json"))):
        with open(name) as f:
            out += [json.loads(line)["add"] for line in f if '"add"' in line]
    return out


def log_actions(path: str, version: int) -> list[dict]:
    with open(os.path.join(path, "_delta_log", f"{version:020d}.json")) as f:
        return [json.loads(line) for line in f if line.strip()]


def part_files(path: str) -> list[str]:
    return sorted(os.path.relpath(p, path) for p in glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True))


def by_id(rows) -> dict[int, dict]:
    return {int(r["id"]): r for r in rows}


@pytest.fixture(scope="module")
def parted(spark, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("jvm_wpart") / "ds")
    spark.createDataFrame(ROWS, SCHEMA).repartition(2).write.format(FMT).partitionBy("split", "day").save(path)
    return path


def test_layout_is_standard_delta_partitioning(parted):
    (meta,) = [a["metaData"] for a in log_actions(parted, 0) if "metaData" in a]
    assert meta["partitionColumns"] == ["split", "day"]
    assert [f["name"] for f in json.loads(meta["schemaString"])["fields"]] == ["id", "split", "day", "emb"]
    actions = adds(parted)
    values = {(a["partitionValues"]["split"], a["partitionValues"]["day"]) for a in actions}
    assert values == {("train", "2026-01-01"), ("val", "2026-01-01"), (None, "2026-01-01"), ("a b%/=", "2026-01-01"),
                      ("train", "2026-01-02"), ("val", "2026-01-02"), (None, "2026-01-02"), ("a b%/=", "2026-01-02")}
    folders = {os.path.dirname(p) for p in part_files(parted)}
    assert "split=__HIVE_DEFAULT_PARTITION__/day=2026-01-01" in folders
    assert "split=a b%25%2F%3D/day=2026-01-02" in folders          # Spark's escaping on disk
    assert any(a["path"].startswith("split=a%20b%2525%252F%253D/day=2026-01-02/") for a in actions)  # URI-encoded
    for rel in part_files(parted):
        assert pq.read_schema(os.path.join(parted, rel)).names == ["id", "emb"]   # partition columns left out
        assert rel.count("/") == 2
    assert all(os.path.dirname(c).endswith(os.path.join("_tensors", "emb"))
               for c in glob.glob(os.path.join(parted, "**", "*.dltc"), recursive=True))
    assert sum(json.loads(a["stats"])["numRecords"] for a in actions) == len(ROWS)
    assert all("split" not in json.loads(a["stats"])["minValues"] for a in actions)


def test_python_and_jvm_readers_read_it(spark, parted):
    got = by_id(dls.open(parted))
    assert sorted(got) == list(range(10))
    for i, split, day, emb in ROWS:
        assert got[i]["split"] == split and got[i]["day"] == day
        np.testing.assert_array_equal(got[i]["emb"], np.array(emb, np.float32))
    df = spark.read.format(FMT).option("tensors", "array").load(parted)
    assert df.columns == ["id", "split", "day", "emb"]
    rows = by_id(df.collect())
    assert {i: (r["split"], r["day"], list(r["emb"])) for i, r in rows.items()} == \
        {i: (s, d, e) for i, s, d, e in ROWS}
    assert sorted(r["id"] for r in df.where("split = 'train' and day = date'2026-01-02'").collect()) == [8]


def test_append_uses_the_tables_partitioning_and_overwrite_keeps_it(spark, tmp_path):
    path = str(tmp_path / "app")
    spark.createDataFrame(ROWS[:4], SCHEMA).write.format(FMT).partitionBy("split", "day").save(path)
    spark.createDataFrame([(20, "val", D2, [2.0, 0.0])], SCHEMA).write.format(FMT).mode("append").save(path)
    spark.createDataFrame([(21, "val", D2, [2.0, 1.0])], SCHEMA).write.format(FMT).mode("append") \
        .partitionBy("SPLIT", "day").save(path)                          # same columns, case-insensitively
    new = [a for a in adds(path) if a["partitionValues"] == {"split": "val", "day": "2026-01-02"}]
    assert len(new) == 2 and all(a["path"].startswith("split=val/day=2026-01-02/") for a in new)
    assert sorted(int(r["id"]) for r in dls.open(path)) == [0, 1, 2, 3, 20, 21]
    before = part_files(path)
    with pytest.raises(SPARK_ERRORS, match=r"partitionBy\[day\] differs from the dataset's partition columns "
                                           r"\[split, day\]"):
        spark.createDataFrame([(22, "x", D1, [0.0, 0.0])], SCHEMA).write.format(FMT).mode("append") \
            .partitionBy("day").save(path)
    assert part_files(path) == before
    spark.createDataFrame([(30, "test", D1, [3.0, 0.0])], SCHEMA).write.format(FMT).mode("overwrite").save(path)
    last = max(int(os.path.basename(p)[:20]) for p in glob.glob(os.path.join(path, "_delta_log", "*.json")))
    removes = [a["remove"] for a in log_actions(path, last) if "remove" in a]
    assert len(removes) == 6 and {"split": "val", "day": "2026-01-02"} in [r["partitionValues"] for r in removes]
    assert [(int(r["id"]), r["split"]) for r in dls.open(path)] == [(30, "test")]
    new_adds = [a["add"] for a in log_actions(path, last) if "add" in a]
    assert new_adds and all(list(a["partitionValues"]) == ["split", "day"] for a in new_adds)
    # overwriteSchema replaces the partitioning
    spark.createDataFrame([(40, "z", D1, [4.0, 0.0])], SCHEMA).write.format(FMT).mode("overwrite") \
        .option("overwriteSchema", "true").partitionBy("day").save(path)
    (meta,) = [a["metaData"] for a in log_actions(path, last + 1) if "metaData" in a]
    assert meta["partitionColumns"] == ["day"]
    assert [(int(r["id"]), r["split"], r["day"]) for r in dls.open(path)] == [(40, "z", D1)]


@pytest.mark.parametrize("column, message", [
    ("emb", "column 'emb' is a tensor and cannot be a partition column"),
    ("x", "partition column 'x' has type double"),
    ("ts", "partition column 'ts' has type timestamp_ntz"),
    ("nope", "partition column 'nope' is not a column of the data"),
])
def test_bad_partition_columns_are_refused_before_any_task_writes(spark, tmp_path, column, message):
    path = str(tmp_path / "bad")
    df = spark.createDataFrame([(1, 0.5, dt.datetime(2026, 1, 1), [1.0])], "id long, x double, ts timestamp_ntz, "
                               "emb array<float>")
    with pytest.raises(SPARK_ERRORS, match=message):
        df.write.format(FMT).partitionBy(column).save(path)
    assert not os.path.exists(path)


def test_integer_boolean_and_empty_string_partitions(spark, tmp_path):
    path = str(tmp_path / "types")
    rows = [(1, 7, True, "", [1.0]), (2, -3, False, "s", [2.0]), (3, None, None, None, [3.0])]
    spark.createDataFrame(rows, "id long, n int, flag boolean, s string, emb array<float>") \
        .write.format(FMT).partitionBy("n", "flag", "s").save(path)
    values = sorted(json.dumps(a["partitionValues"], sort_keys=True) for a in adds(path))
    assert values == sorted(json.dumps(v, sort_keys=True) for v in (
        {"n": "7", "flag": "true", "s": None},                 # "" is stored as null, as Spark and Delta do
        {"n": "-3", "flag": "false", "s": "s"},
        {"n": None, "flag": None, "s": None}))
    table = dls.open(path).table().to_pylist()      # rows of dls.open give NaN for a null int: read the table
    got = {r["id"]: (r["n"], r["flag"], r["s"]) for r in table}
    assert got == {1: (7, True, None), 2: (-3, False, "s"), 3: (None, None, None)}


def test_insert_into_a_catalog_table_over_a_partitioned_dataset_keeps_its_partitioning(spark, tmp_path):
    path = str(tmp_path / "loc")
    spark.createDataFrame([(1, "x", 0.5)], "id long, split string, v double").write.format(FMT) \
        .partitionBy("split").save(path)
    spark.sql("DROP TABLE IF EXISTS jvmw_part_loc")
    spark.sql(f"CREATE TABLE jvmw_part_loc USING `{FMT}` LOCATION '{path}'")
    try:
        spark.sql("INSERT INTO jvmw_part_loc SELECT 2 AS id, 'y' AS split, 1.5 AS v")
        assert [(a["partitionValues"], a["path"][:8]) for a in adds(path)] == [({"split": "x"}, "split=x/"),
                                                                                ({"split": "y"}, "split=y/")]
        assert sorted((r["id"], r["split"]) for r in spark.table("jvmw_part_loc").collect()) == [(1, "x"), (2, "y")]
    finally:
        spark.sql("DROP TABLE IF EXISTS jvmw_part_loc")


def test_save_as_table_create_table_partitioned_by_and_insert(spark, tmp_path):
    a, b = str(tmp_path / "sat"), str(tmp_path / "ct")
    spark.sql("DROP TABLE IF EXISTS jvmw_part_a")
    spark.sql("DROP TABLE IF EXISTS jvmw_part_b")
    try:
        spark.createDataFrame(ROWS[:3], SCHEMA).write.format(FMT).option("path", a).partitionBy("split") \
            .saveAsTable("jvmw_part_a")
        (meta,) = [x["metaData"] for x in log_actions(a, 0) if "metaData" in x]
        assert meta["partitionColumns"] == ["split"]
        spark.sql("INSERT INTO jvmw_part_a SELECT 50 AS id, 'val' AS split, date'2026-01-02' AS day, "
                  "array(5.0f, 5.0f) AS emb")
        assert sorted(int(r["id"]) for r in dls.open(a)) == [0, 1, 2, 50]
        assert all(list(x["partitionValues"]) == ["split"] for x in adds(a))
        spark.sql(f"CREATE TABLE jvmw_part_b (id BIGINT, split STRING, v DOUBLE) USING `{FMT}` PARTITIONED BY (split) "
                  f"LOCATION '{b}'")
        spark.sql("INSERT INTO jvmw_part_b VALUES (1, 'x', 0.5), (2, 'y', 1.5)")
        assert sorted(x["partitionValues"]["split"] for x in adds(b)) == ["x", "y"]
        assert sorted(r["id"] for r in spark.table("jvmw_part_b").where("split = 'y'").collect()) == [2]
    finally:
        spark.sql("DROP TABLE IF EXISTS jvmw_part_a")
        spark.sql("DROP TABLE IF EXISTS jvmw_part_b")


def test_streaming_sink_writes_partitioned(spark, tmp_path):
    from pyspark.sql import functions as F

    path, checkpoint, source = str(tmp_path / "stream"), str(tmp_path / "ckpt"), str(tmp_path / "in")
    spark.range(0, 6).coalesce(1).write.parquet(source)
    stream = (spark.readStream.schema("id long").parquet(source)
              .withColumn("split", F.when(F.col("id") % 2 == 0, "even").otherwise("odd"))
              .withColumn("emb", F.array(F.col("id").cast("float")))
              .writeStream.format(FMT).partitionBy("split").option("checkpointLocation", checkpoint)
              .trigger(availableNow=True).start(path))
    stream.awaitTermination(120)
    assert stream.exception() is None
    assert {a["partitionValues"]["split"] for a in adds(path)} == {"even", "odd"}
    assert {int(r["id"]): r["split"] for r in dls.open(path)} == {i: "odd" if i % 2 else "even" for i in range(6)}


def test_delta_spark_reads_the_partitioned_table(parted, delta_spark):
    rows = by_id(delta_spark.read(parted, select="id,split,day,emb.chunk"))
    assert sorted(rows) == list(range(10))
    for i, split, day, _ in ROWS:
        assert rows[i]["split"] == split and rows[i]["day"] == day.isoformat()
    assert all(r["chunk"] for r in rows.values())
    detail = delta_spark.sql(f"DESCRIBE DETAIL delta.`{parted}`")
    assert detail[0]["partitionColumns"] == ["split", "day"]
    pruned = delta_spark.sql(f"SELECT id FROM delta.`{parted}` WHERE split = 'a b%/=' AND day = '2026-01-02'")
    assert sorted(r["id"] for r in pruned) == [7]


def test_partition_by_option_is_the_same_as_the_writer_method(spark, tmp_path):
    """``option("partitionBy", "a,b")`` (what ``deeplake_spark.write(partition_by=...)`` sends, as for the Python
    source) partitions like ``DataFrameWriter.partitionBy``; both given and different is refused before any write."""
    path = str(tmp_path / "opt")
    spark.createDataFrame(ROWS[:4], SCHEMA).write.format(FMT).option("partitionBy", "split, day").save(path)
    assert dls.open(path).partition_columns == ["split", "day"]
    assert {tuple(sorted(a["partitionValues"])) for a in adds(path)} == {("day", "split")}
    other = str(tmp_path / "both")
    with pytest.raises(SPARK_ERRORS, match=r"option partitionBy=\[day\] and DataFrameWriter.partitionBy\[split\] disagree"):
        spark.createDataFrame(ROWS[:4], SCHEMA).write.format(FMT).option("partitionBy", "day").partitionBy("split") \
            .save(other)
    assert not os.path.exists(other)
    dls.write(spark.createDataFrame(ROWS[:4], SCHEMA), str(tmp_path / "dls"), partition_by=["day"])
    assert dls.open(str(tmp_path / "dls")).partition_columns == ["day"]
