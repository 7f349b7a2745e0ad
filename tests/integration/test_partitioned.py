"""Partitioned datasets (standard Delta partitioning of tabular columns, docs/FORMAT.md).

Tables partitioned by us (``create(partition_by=...)`` + ``append``), by delta-rs (``write_deltalake(...,
partition_by=...)``) and by delta-spark (``REPLACE TABLE ... PARTITIONED BY``) read the same everywhere:
``open``/``len``/``ds[i]``/time travel, the torch loader, ``info``, our vacuum, and the Python Spark
source, with partition columns restored (their values, types, nulls and place in the schema). Writers
that cannot write a partitioned table refuse it by name.
"""

from __future__ import annotations

import datetime
import glob
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

import deeplake_spark as dls
from deeplake_spark.errors import SchemaError

SCHEMA = {"image": dls.tensor("generic", dtype="uint8", shape=(2, 2), compression="lz4"),
          "id": "int64", "split": "string", "day": "date32", "label": "int64"}
SPLITS = ["train", "test", None, "x y"]
DAY0 = datetime.date(2026, 1, 1)


def _image(i: int) -> np.ndarray:
    return np.full((2, 2), i % 251, dtype=np.uint8)


def _split(i: int) -> str | None:
    return SPLITS[i % 4]


def _day(i: int) -> datetime.date:
    return DAY0 + datetime.timedelta(days=i % 2)


def _batch(ids: Sequence[int]) -> dict:
    return {"image": np.stack([_image(i) for i in ids]), "id": np.array(list(ids), dtype=np.int64),
            "split": [_split(i) for i in ids], "day": [_day(i) for i in ids], "label": [i % 3 for i in ids]}


def _expected(ids) -> dict[int, tuple]:
    return {i: (_split(i), _day(i), i % 3) for i in ids}


def _check_reads(path: str, ids, *, version: int | None = None) -> dls.Dataset:
    """Every reader of the dataset layer sees exactly rows ``ids`` with their partition values and images."""
    ds = dls.open(path, version=version)
    assert len(ds) == len(ids)
    assert list(ds.schema.order) == list(SCHEMA)  # partition columns at their schema position
    table = ds.table()
    assert table.schema.field("day").type == pa.date32() and table.schema.field("split").type == pa.string()
    got = {r["id"]: (r["split"], r["day"], r["label"]) for r in table.select(["id", "split", "day", "label"]).to_pylist()}
    assert got == _expected(ids)
    # ds[i] on a fresh handle (reads only the file holding row i) agrees with the table's row order
    row_ids = table.column("id").to_pylist()
    fresh = dls.open(path, version=version)
    for i in (0, len(row_ids) // 2, len(row_ids) - 1):
        sample = fresh[i]
        wanted = row_ids[i]
        assert sample["id"] == wanted and sample["split"] == _split(wanted) and sample["label"] == wanted % 3
        assert sample["day"] == np.datetime64(_day(wanted))
        np.testing.assert_array_equal(sample["image"], _image(wanted))
    seen = {}
    for batch in ds.pytorch(batch_size=3, num_workers=0, shuffle=False, columns=["id", "image", "label"]):
        for k, i in enumerate(batch["id"].tolist()):
            seen[i] = (batch["image"][k].numpy(), int(batch["label"][k]))
    assert sorted(seen) == sorted(ids)
    for i, (image, label) in seen.items():
        np.testing.assert_array_equal(image, _image(i))
        assert label == i % 3
    return ds


def _parquet_files(path: str) -> list[str]:
    return sorted(os.path.relpath(p, path) for p in glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True)
                  if "_delta_log" not in p)


def _chunk_files(path: str) -> list[str]:
    return sorted(glob.glob(os.path.join(path, "_tensors", "*", "*")))


def _vacuum_keeps(path: str, ids) -> None:
    """Our vacuum (dry run and real, retention 0) deletes no file the latest version needs."""
    ds = dls.open(path)
    dry = ds.vacuum(0, enforce_retention_duration=False, dry_run=True)
    done = ds.vacuum(0, enforce_retention_duration=False)
    assert sorted(done.files) == sorted(dry.files)
    live = {os.path.normpath(p) for p in DeltaTable(path).file_uris()}
    assert live and all(os.path.exists(p) for p in live)
    _check_reads(path, ids)


@pytest.fixture
def ours(tmp_path) -> str:
    """Created partitioned by (split, day); ids 0..5 (version 1) then 6..11 (version 2)."""
    path = str(tmp_path / "ours")
    ds = dls.create(path, SCHEMA, partition_by=["split", "day"])
    ds.append(_batch(range(0, 6)))
    ds.append(_batch(range(6, 12)))
    return path


def test_create_partitioned_writes_standard_delta_partitions(ours):
    ds = dls.open(ours)
    assert ds.partition_columns == ["split", "day"]
    metadata = DeltaTable(ours).metadata()
    assert list(metadata.partition_columns) == ["split", "day"]
    files = _parquet_files(ours)
    # Hive folders, null as __HIVE_DEFAULT_PARTITION__, no file at the root
    assert all(f.startswith("split=") and "/day=2026-01-0" in f for f in files)
    assert {f.split("/")[0] for f in files} == {"split=train", "split=test", "split=__HIVE_DEFAULT_PARTITION__",
                                               "split=x%20y"}
    for f in files:  # partition columns stay out of the Parquet files
        assert {"split", "day"}.isdisjoint(pq.read_schema(os.path.join(ours, f)).names)
        assert {"image", "id", "label"} <= set(pq.read_schema(os.path.join(ours, f)).names)
    # add actions carry Delta's string serialization, null as JSON null
    adds = [json.loads(line)["add"] for v in (1, 2)
            for line in open(os.path.join(ours, "_delta_log", f"{v:020d}.json")) if '"add"' in line]
    values = {(a["partitionValues"]["split"], a["partitionValues"]["day"]) for a in adds}
    assert (None, "2026-01-01") in values and ("x y", "2026-01-02") in values
    _check_reads(ours, range(12))
    _check_reads(ours, range(6), version=1)
    # chunks are not partitioned
    assert {os.path.relpath(os.path.dirname(c), ours) for c in _chunk_files(ours)} == {os.path.join("_tensors",
                                                                                                   "image")}


def test_filters_on_partition_columns_and_writes_keep_the_partitioning(ours):
    ds = dls.open(ours)
    train = ds.table(columns=["id"], filter=pc.field("split") == "train").column("id").to_pylist()
    assert sorted(train) == [i for i in range(12) if _split(i) == "train"]
    # the filter skips the other partitions' files
    train_files = [f for f in _parquet_files(ours) if f.startswith("split=train/")]
    assert len(list(ds.arrow_dataset().get_fragments(filter=pc.field("split") == "train"))) == len(train_files)
    nulls = ds.table(columns=["id"], filter=pc.field("split").is_null()).column("id").to_pylist()
    assert sorted(nulls) == [i for i in range(12) if _split(i) is None]
    # delete/update through delta-rs on a partition column and a tabular one
    ds.delete("split = 'test'")
    ds.update({"label": "label + 10"}, predicate="day = '2026-01-02'")
    kept = [i for i in range(12) if _split(i) != "test"]
    got = {r["id"]: r["label"] for r in dls.open(ours).table(columns=["id", "label"]).to_pylist()}
    assert got == {i: i % 3 + (10 if _day(i) == datetime.date(2026, 1, 2) else 0) for i in kept}
    # overwrite keeps the table's partitioning
    ds = dls.open(ours)
    ds.overwrite(_batch(range(20, 24)))
    assert dls.open(ours).partition_columns == ["split", "day"]
    _check_reads(ours, range(20, 24))
    assert all(f.startswith("split=") for f in _parquet_files(ours))
    _vacuum_keeps(ours, range(20, 24))


def test_partition_by_is_checked_by_name(tmp_path):
    cases = {"image": "tensor column", "nope": "not a column", "score": "is double"}
    for column, message in cases.items():
        with pytest.raises(SchemaError, match=f"{column!r}.*{message}|{message}.*{column!r}"):
            dls.create(str(tmp_path / column), {**SCHEMA, "score": "float64"}, partition_by=[column])
        assert not os.path.exists(os.path.join(tmp_path, column, "_delta_log"))
    with pytest.raises(SchemaError, match="'split' is listed twice"):
        dls.create(str(tmp_path / "twice"), SCHEMA, partition_by=["split", "split"])


def test_a_table_delta_rs_repartitioned_reads_right_and_vacuum_keeps_what_it_needs(tmp_path):
    path = str(tmp_path / "ds")
    ds = dls.create(path, SCHEMA)
    ds.append(_batch(range(0, 6)))
    ds.append(_batch(range(6, 12)))
    # another engine rewrites the table partitioned (version 3), then appends a partition of its own
    write_deltalake(path, dls.open(path).table(), mode="overwrite", partition_by=["label"], schema_mode="overwrite")
    rows = dls.open(path).table().filter(pc.field("id") < 2).sort_by("id")  # partitions list in any order
    write_deltalake(path, rows.set_column(1, "id", pa.array([100, 101], pa.int64())), mode="append")
    assert dls.open(path).partition_columns == ["label"]
    assert all(f.startswith("label=") for f in _parquet_files(path) if "part-" in f and "/" in f)
    latest = dls.open(path)
    got = {r["id"]: r["label"] for r in latest.table(columns=["id", "label"]).to_pylist()}
    assert got == {**{i: i % 3 for i in range(12)}, 100: 0, 101: 1}
    # the copied rows reference the original chunks; each id reads its image
    table = latest.table(columns=["id", "image"])
    images = latest.read_tensor("image", table.column("image").to_pylist())
    for i, image in zip(table.column("id").to_pylist(), images):
        np.testing.assert_array_equal(image, _image(i - 100 if i >= 100 else i))
    _check_reads(path, range(6), version=1)  # the unpartitioned versions still read
    ds = dls.open(path)
    ds.vacuum(0, enforce_retention_duration=False)
    for i in (0, 5, 11):
        row = dls.open(path).table(filter=pc.field("id") == i).to_pylist()[0]
        assert row["split"] == _split(i) and row["label"] == i % 3
    assert len(dls.open(path)) == 14


def test_info_counts_the_partitioned_files(ours):
    run = subprocess.run([sys.executable, "-m", "deeplake_spark.cli", "info", ours, "--json"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    info = json.loads(run.stdout)
    assert info["rows"] == 12 and info["partition_columns"] == ["split", "day"]
    parquet = sum(os.path.getsize(os.path.join(ours, f)) for f in _parquet_files(ours))
    assert info["table_bytes"] == parquet
    text = subprocess.run([sys.executable, "-m", "deeplake_spark.cli", "info", ours], capture_output=True, text=True,
                          timeout=120)
    assert f"partitioned by split, day ({len(_parquet_files(ours))} Parquet files)" in text.stdout


# ------------------------------------------------------------------------------ Spark (Python source)
FMT = "deeplake-python"


def _spark_rows(df) -> dict[int, tuple]:
    return {r["id"]: (r["split"], r["day"], r["label"]) for r in df.select("id", "split", "day", "label").collect()}


def test_python_spark_source_restores_partition_columns(spark, ours):
    df = spark.read.format(FMT).load(ours)
    assert df.columns == list(SCHEMA)
    assert dict(df.dtypes)["day"] == "date" and dict(df.dtypes)["split"] == "string"
    assert _spark_rows(df) == _expected(range(12))
    assert sorted(r.id for r in df.where("split = 'x y'").collect()) == [i for i in range(12) if _split(i) == "x y"]
    assert df.where("split IS NULL").count() == 3
    # only partition columns: the files are still read for their row counts
    assert Counter((r.split, r.day) for r in df.select("split", "day").collect()) == Counter(
        (_split(i), _day(i)) for i in range(12))
    arrays = spark.read.format(FMT).option("tensors", "array").load(ours).where("day = DATE'2026-01-02'").collect()
    assert sorted(r.id for r in arrays) == [i for i in range(12) if i % 2]
    for r in arrays:
        assert np.asarray(r.image).reshape(2, 2).tolist() == _image(r.id).tolist()
    old = spark.read.format(FMT).option("versionAsOf", 1).load(ours)
    assert _spark_rows(old) == _expected(range(6))


def _shifted(df, by: int):
    return df.withColumn("id", df.id + by)


def test_python_spark_writes_follow_the_datasets_partitioning(spark, ours):
    source = spark.read.format(FMT).option("tensors", "bytes").load(ours)
    source.where("id < 4").transform(lambda df: _shifted(df, 100)).write.format(FMT).mode("append").save(ours)
    ds = dls.open(ours)
    assert ds.partition_columns == ["split", "day"] and len(ds) == 16
    assert all(f.startswith("split=") and "/day=" in f for f in _parquet_files(ours))  # nothing at the root
    table = ds.table(columns=["id", "split", "day", "label", "image"])
    for row, image in zip(table.to_pylist(), ds.read_tensor("image", table.column("image").to_pylist())):
        original = row["id"] - 100 if row["id"] >= 100 else row["id"]
        assert (row["split"], row["day"], row["label"]) == (_split(original), _day(original), original % 3)
        np.testing.assert_array_equal(image, _image(original))
    assert _spark_rows(spark.read.format(FMT).load(ours)) == {
        **_expected(range(12)), **{i + 100: v for i, v in _expected(range(4)).items()}}
    # overwrite keeps the partitioning too; a different partitionBy is refused by name, nothing written
    before = (_parquet_files(ours), dls.open(ours).version)
    with pytest.raises(Exception, match=r"option 'partitionBy' \['label'\].*partitioned by \['split', 'day'\]"):
        source.write.format(FMT).mode("overwrite").option("partitionBy", "label").save(ours)
    assert (_parquet_files(ours), dls.open(ours).version) == before
    dls.write(spark.read.format(FMT).option("tensors", "bytes").load(ours).where("id >= 100"), ours,
              mode="overwrite")
    _check_reads_ids = sorted(dls.open(ours).table(columns=["id"]).column("id").to_pylist())
    assert _check_reads_ids == [100, 101, 102, 103] and dls.open(ours).partition_columns == ["split", "day"]
    _vacuum_keeps_partitioned(ours)


def _vacuum_keeps_partitioned(path: str) -> None:
    ds = dls.open(path)
    rows = ds.table(columns=["id", "image"]).to_pylist()
    ds.vacuum(0, enforce_retention_duration=False)
    again = dls.open(path)
    assert again.table(columns=["id", "image"]).to_pylist() == rows
    assert all(again[i]["image"] is not None for i in range(len(again)))


def test_dls_write_creates_a_partitioned_dataset(spark, tmp_path):
    path = str(tmp_path / "new")
    rows = [(i, _split(i), _day(i), [float(i), -float(i)]) for i in range(10)]
    df = spark.createDataFrame(rows, "id long, split string, day date, raw array<float>").repartition(3)
    dls.write(df, path, partition_by=["split"])
    ds = dls.open(path)
    assert ds.partition_columns == ["split"] and len(ds) == 10
    assert {f.split("/")[0] for f in _parquet_files(path)} == {"split=train", "split=test", "split=x y",
                                                              "split=__HIVE_DEFAULT_PARTITION__"}
    assert list(ds.schema.order) == ["id", "split", "day", "raw"]
    table = ds.table(columns=["id", "split", "day"])
    assert {r["id"]: (r["split"], r["day"]) for r in table.to_pylist()} == {i: (_split(i), _day(i)) for i in range(10)}
    adds = [json.loads(line)["add"] for line in open(os.path.join(path, "_delta_log", f"{0:020d}.json"))
            if '"add"' in line]
    assert {a["partitionValues"]["split"] for a in adds} == {"train", "test", "x y", None}
    got = spark.read.format(FMT).option("tensors", "array").load(path).collect()
    assert {r.id: (r.split, r.day, list(r.raw)) for r in got} == {
        i: (_split(i), _day(i), [float(i), -float(i)]) for i in range(10)}
    for i in range(10):
        sample = ds[i]
        np.testing.assert_array_equal(sample["raw"], np.array([sample["id"], -sample["id"]], dtype=np.float32))
    # checked by name before any task runs
    for columns, message in ((["raw"], "'raw' is a tensor"), (["nope"], "'nope' is not a column")):
        with pytest.raises(Exception, match=message):
            dls.write(df, str(tmp_path / "bad"), partition_by=columns)
        assert not os.path.exists(tmp_path / "bad")
    dls.write(df, path, mode="ignore", partition_by=["split"])  # exists: writes nothing
    assert dls.open(path).version == 0


def test_spark_partition_by_never_reaches_the_python_source(spark, tmp_path):
    """PySpark 4.2 refuses ``partitionBy`` for a Python data source itself (it cannot declare
    partitioning), before any deeplake code runs: nothing is written, for a new or an existing path."""
    path = str(tmp_path / "new")
    df = spark.range(4).selectExpr("id", "CAST(id % 2 AS STRING) AS k")
    for mode in ("append", "overwrite"):
        with pytest.raises(Exception, match="partitioning or clustering columns do not match"):
            df.write.format(FMT).mode(mode).partitionBy("k").save(path)
    assert not os.path.exists(path)
    # SQL: the catalog keeps no partitioning for a Python source's table, and an INSERT writes nothing
    spark.sql("DROP TABLE IF EXISTS h3_partitioned_python")
    try:
        spark.sql(f"CREATE TABLE h3_partitioned_python (id BIGINT, k STRING) USING `{FMT}` PARTITIONED BY (k) "
                  f"OPTIONS (path '{path}')")
        described = [tuple(r) for r in spark.sql("DESCRIBE TABLE EXTENDED h3_partitioned_python").collect()]
        assert not any("Partition" in str(r[0]) for r in described)
        with pytest.raises(Exception, match="needs a dataset path"):
            spark.sql("INSERT INTO h3_partitioned_python SELECT id, CAST(id % 2 AS STRING) FROM range(4)")
    finally:
        spark.sql("DROP TABLE IF EXISTS h3_partitioned_python")
    assert not os.path.exists(path)


# ------------------------------------------------------------------------------ delta-spark
def test_delta_spark_partitioned_table_reads_the_same(delta_spark, spark, tmp_path):
    path = str(tmp_path / "ds")
    ds = dls.create(path, SCHEMA)
    ds.append(_batch(range(0, 6)))
    ds.append(_batch(range(6, 12)))
    # delta-spark repartitions the table in place (version 3), then a delta-spark write adds a partition
    delta_spark.sql(f"REPLACE TABLE delta.`{path}` USING delta PARTITIONED BY (split, day) "
                    f"AS SELECT * FROM delta.`{path}`")
    delta_spark.sql(f"DELETE FROM delta.`{path}` WHERE id = 11")
    assert dls.open(path).partition_columns == ["split", "day"]
    assert {f.split("/")[0] for f in _parquet_files(path) if "/" in f} >= {"split=train", "split=x y",
                                                                          "split=__HIVE_DEFAULT_PARTITION__"}
    ids = range(11)
    _check_reads(path, ids)
    _check_reads(path, range(6), version=1)
    assert _spark_rows(spark.read.format(FMT).load(path)) == _expected(ids)
    _vacuum_keeps(path, ids)
    # and delta-spark reads a table we partitioned
    rows = delta_spark.read(path, select="id,split,day")
    assert {r["id"]: (r["split"], r["day"]) for r in rows} == {i: (_split(i), str(_day(i))) for i in ids}


def test_delta_spark_reads_a_dataset_we_created_partitioned(delta_spark, ours):
    rows = delta_spark.read(ours, select="id,split,day,label,image.chunk AS chunk")
    assert {r["id"]: (r["split"], r["day"], r["label"]) for r in rows} == {
        i: (_split(i), str(_day(i)), i % 3) for i in range(12)}
    assert all(r["chunk"] for r in rows)
    detail = delta_spark.sql(f"DESCRIBE DETAIL delta.`{ours}`")[0]
    assert detail["partitionColumns"] == ["split", "day"]


def test_vacuum_removes_what_a_killed_partitioned_write_left(ours):
    from deeplake_spark.dataset.distributed import TaskWriter

    task = TaskWriter(ours, dls.open(ours).schema, task_id=7, partition_by=["split", "day"])
    # partitions the log names, and one only this killed write created
    fresh = _batch([60])
    fresh["split"] = ["holdout"]
    task.write(_batch([48, 49, 50, 52]))
    task.write(fresh)
    left = task.finish()  # never committed: the driver was killed
    leftovers = sorted(f.path for f in left.data_files())
    assert len(leftovers) == 4 and all(p.startswith("split=") for p in leftovers)
    assert any(p.startswith("split=holdout/day=") for p in leftovers)
    # a user's Parquet file in a partition folder is never ours to delete
    user_file = os.path.join(ours, "split=train", "day=2026-01-01", "part-00000-" + "a" * 32 + ".parquet")
    pq.write_table(pa.table({"x": [1]}), user_file)
    old = time.time() - 30 * 24 * 3600
    for folder, _dirs, names in os.walk(ours):
        for name in names:
            if "_delta_log" not in folder:
                os.utime(os.path.join(folder, name), (old, old))
    result = dls.open(ours).vacuum(0, enforce_retention_duration=False)
    assert sorted(set(result.files) & set(leftovers)) == leftovers
    assert all(not os.path.exists(os.path.join(ours, p)) for p in leftovers + list(left.chunk_paths))
    assert os.path.exists(user_file)
    # a user's file in a partition-like folder nothing ever committed stays too
    user_fresh = os.path.join(ours, "split=holdout", "day=2026-01-02", "part-00001-" + "b" * 32 + ".parquet")
    os.makedirs(os.path.dirname(user_fresh), exist_ok=True)
    pq.write_table(pa.table({"x": [1]}), user_fresh)
    os.utime(user_fresh, (old, old))
    assert dls.open(ours).vacuum(0, enforce_retention_duration=False).files == []
    assert os.path.exists(user_fresh)
    _check_reads(ours, range(12))
