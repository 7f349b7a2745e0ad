"""Partitioned Delta tables through the JVM reader (``format("deeplake-jvm")``).

Tables are written partitioned by other engines (delta-rs' ``write_deltalake(partition_by=...)`` in
this process, delta-spark in its own session): partition columns come back at their schema position
with each file's values (null partitions included), filters on them skip the files they exclude
(counted as the scan's input partitions: one per data file read), time travel sees each version's files.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil

import pytest

pytest.importorskip("pyspark")
pa = pytest.importorskip("pyarrow")
deltalake = pytest.importorskip("deltalake")

from deeplake_spark.spark import jvm  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("mvn") is None and not jvm.jar_file().exists(),
                                reason="no mvn to build the deeplake-jvm jar and no prebuilt jar")

D1, D2 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)
#: (id, split, day, x): split and day are the partition columns, in the middle of the schema.
ROWS = [(0, "train", D1, 0.5), (1, "train", D1, 1.5), (2, "test", D1, 2.5), (3, None, D2, 3.5),
        (4, "train", D2, 4.5), (5, "test", None, 5.5), (6, None, None, 6.5), (7, "val", D2, 7.5)]


def _arrow(rows) -> pa.Table:
    ids, splits, days, xs = zip(*rows)
    return pa.table({"id": pa.array(ids, pa.int64()), "split": pa.array(splits, pa.string()),
                     "day": pa.array(days, pa.date32()), "x": pa.array(xs, pa.float64())})


@pytest.fixture(scope="module")
def parted(tmp_path_factory):
    """Version 0: ROWS partitioned by (split, day); version 1 appends id 8 to a new partition."""
    path = str(tmp_path_factory.mktemp("jvm_parted") / "t")
    deltalake.write_deltalake(path, _arrow(ROWS), partition_by=["split", "day"])
    deltalake.write_deltalake(path, _arrow([(8, "extra", D2, 8.5)]), mode="append")
    return path


def _read(spark, path, **options):
    reader = spark.read.format("deeplake-jvm")
    for key, value in options.items():
        reader = reader.option(key, value)
    return reader.load(path)


def _files_read(df) -> int:
    """Data files the scan reads: the JVM source makes one input partition per file."""
    return df.rdd.getNumPartitions()


def _tuples(df):
    return sorted((tuple(r) for r in df.collect()), key=lambda t: t[0])


def test_partition_columns_come_back_at_their_schema_position(spark, parted):
    assert sorted(os.listdir(parted)) == ["_delta_log", "split=__HIVE_DEFAULT_PARTITION__", "split=extra",
                                          "split=test", "split=train", "split=val"]
    df = _read(spark, parted)
    assert [(f.name, f.dataType.simpleString()) for f in df.schema] == [
        ("id", "bigint"), ("split", "string"), ("day", "date"), ("x", "double")]
    assert _tuples(df) == ROWS + [(8, "extra", D2, 8.5)]
    assert _files_read(df) == 8  # one file per (split, day) pair
    assert _tuples(df.select("day", "split").where("split = 'val'")) == [(D2, "val")]  # partition columns only
    assert df.count() == 9
    assert df.where("split is null").count() == 2


def test_time_travel_reads_each_versions_files(spark, parted):
    v0 = _read(spark, parted, versionAsOf=0)
    assert _tuples(v0) == ROWS
    assert _files_read(v0) == 7
    assert _files_read(v0.where("split = 'extra'")) == 0
    assert v0.where("split = 'extra'").count() == 0


@pytest.mark.parametrize(("where", "files", "ids"), [
    ("split = 'train'", 2, [0, 1, 4]),
    ("split = 'train' and day = date'2026-01-02'", 1, [4]),
    ("split is null", 2, [3, 6]),
    ("day is null", 2, [5, 6]),
    ("split in ('test', 'val') and day >= date'2026-01-02'", 1, [7]),
    ("split <> 'train'", 4, [2, 5, 7, 8]),  # nulls never match <>: their files are skipped
    ("not (split = 'train') or split is null", 6, [2, 3, 5, 6, 7, 8]),
    ("split like 'tr%' and x > 1", 2, [1, 4]),  # x is not a partition column: Spark filters the rows
    ("split = 'nope'", 0, []),
])
def test_partition_filters_skip_files(spark, parted, where, files, ids):
    df = _read(spark, parted).where(where)
    assert _files_read(df) == files
    assert [t[0] for t in _tuples(df)] == ids


def test_a_filter_on_a_data_column_reads_every_file(spark, parted):
    df = _read(spark, parted).where("x > 7")
    assert _files_read(df) == 8
    assert [t[0] for t in _tuples(df)] == [7, 8]


def test_table_delta_spark_wrote_partitioned_reads_the_same(spark, tmp_path, delta_spark):
    """delta-spark (the run's shared worker session) writes the table; our session and delta-spark's, through
    a catalog table USING deeplake-jvm (the V1 relation DeltaCatalog asks for), read the same rows."""
    path = str(tmp_path / "spark_parted")
    delta_spark.sql(f"CREATE TABLE delta.`{path}` (id BIGINT, split STRING, day DATE, x DOUBLE) USING delta "
                    "PARTITIONED BY (split, day)")
    values = ", ".join(f"({i}, {'NULL' if s is None else repr(s)}, "
                       f"{'NULL' if d is None else 'DATE' + repr(d.isoformat())}, {x})" for i, s, d, x in ROWS)
    delta_spark.sql(f"INSERT INTO delta.`{path}` VALUES {values}")
    delta_spark.sql(f"CREATE TABLE h1_parted USING `deeplake-jvm` LOCATION '{path}'")
    try:
        in_delta_spark = delta_spark.sql(
            "SELECT id, split, day FROM h1_parted WHERE split = 'train' OR day IS NULL ORDER BY id")
    finally:
        delta_spark.sql("DROP TABLE h1_parted")
    df = _read(spark, path)
    assert [f.name for f in df.schema] == ["id", "split", "day", "x"]
    assert _tuples(df) == ROWS
    assert _files_read(df.where("split = 'train'")) == 2
    assert [(r["id"], r["split"], r["day"]) for r in in_delta_spark] == [
        (0, "train", "2026-01-01"), (1, "train", "2026-01-01"), (4, "train", "2026-01-02"), (5, "test", None),
        (6, None, None)]


def test_tensor_dataset_written_partitioned_reads_like_the_python_source(spark, tmp_path):
    """A deeplake dataset with tensors, partitioned by a string and a date column (nulls included): the JVM
    reader gives the Python source's rows in every tensor mode, and partition filters skip files."""
    import numpy as np

    import deeplake_spark as dls

    path = str(tmp_path / "tensors_parted")
    ds = dls.create(path, {"id": "int64", "split": "string", "day": "date",
                           "emb": dls.tensor("embedding", shape=(3,)), "img": dls.tensor("image", compression="png",
                                                                                         shape=(None, None))},
                    partition_by=["split", "day"])
    ids = list(range(8))
    ds.append({"id": ids, "split": [r[1] for r in ROWS], "day": [r[2] for r in ROWS],
               "emb": [np.full(3, i, np.float32) for i in ids],
               "img": [np.full((2, 3), i * 10, np.uint8) for i in ids]})
    for mode in ("ref", "bytes", "array"):
        jvm_rows = _tuples(_read(spark, path, tensors=mode))
        py_rows = _tuples(spark.read.format("deeplake-python").option("tensors", mode).load(path))
        assert jvm_rows == py_rows, mode
    df = _read(spark, path, tensors="array")
    assert [f.name for f in df.schema] == ["id", "split", "day", "emb", "img"]
    train = df.where("split = 'train' and day = date'2026-01-01'")
    assert _files_read(train) == 1
    assert [(r["id"], r["emb"], r["img"]) for r in train.orderBy("id").collect()] == [
        (0, [0.0] * 3, [[0] * 3] * 2), (1, [1.0] * 3, [[10] * 3] * 2)]
    assert [r["id"] for r in df.where("split is null").orderBy("id").collect()] == [3, 6]
