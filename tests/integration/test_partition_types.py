"""Timestamp and decimal partition columns: written by both Spark writers in Delta's serialization
(timestamps ISO 8601 in UTC with microseconds, as delta-spark writes them; decimals plain at the
column's scale), read back exactly by the dataset layer, the JVM reader, the Python Spark source and
delta-spark; a table delta-spark partitions by them reads the same in our readers.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import shutil
from decimal import Decimal

import numpy as np
import pytest

import deeplake_spark as dls

pytest.importorskip("pyspark")

from py4j.protocol import Py4JJavaError  # noqa: E402
from pyspark.errors import PySparkException  # noqa: E402

from deeplake_spark.spark import jvm  # noqa: E402

SPARK_ERRORS = (Py4JJavaError, PySparkException)
UTC = dt.UTC
T1 = dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
T2 = dt.datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC)   # before the epoch: negative microseconds
#: (id, ts, d, emb); a null of each, a value before 1970, decimals needing their scale's zeros
ROWS = [(0, T1, Decimal("1.50"), [0.0]), (1, T1, Decimal("0.05"), [1.0]), (2, T2, Decimal("12345678.90"), [2.0]),
        (3, None, None, [3.0]), (4, T2, Decimal("1.50"), [4.0])]
SCHEMA = "id long, ts timestamp, d decimal(10,2), emb array<float>"
#: what each row's values are stored as in partitionValues
TEXT = {T1: "2024-01-02T03:04:05.123456Z", T2: "1969-12-31T23:59:59.500000Z", None: None}
#: Spark expressions giving exact, time-zone-free values to compare
SELECT = "id,unix_micros(ts) AS us,CAST(d AS STRING) AS d"

needs_jar = pytest.mark.skipif(shutil.which("mvn") is None and not jvm.jar_file().exists(),
                               reason="no Maven to build the deeplake-jvm jar and no prebuilt jar")


def micros(t: dt.datetime | None) -> int | None:
    return None if t is None else (t - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1)


EXPECTED = {i: (micros(t), None if d is None else str(d)) for i, t, d, _ in ROWS}


def adds(path: str) -> list[dict]:
    out = []
    for name in sorted(glob.glob(os.path.join(path, "_delta_log", "*.json"))):
        with open(name) as f:
            out += [json.loads(line)["add"] for line in f if '"add"' in line]
    return out


def spark_values(rows) -> dict[int, tuple]:
    return {int(r["id"]): (r["us"], r["d"]) for r in rows}


def check_reads(spark, path: str, ids=None) -> None:
    """Every reader gives each row its exact instant and decimal."""
    expected = {i: v for i, v in EXPECTED.items() if ids is None or i in ids}
    table = dls.open(path).table(columns=["id", "ts", "d"]).to_pylist()
    assert {r["id"]: (micros(r["ts"]), None if r["d"] is None else str(r["d"])) for r in table} == expected
    for fmt in ("deeplake-python", "deeplake-jvm"):
        df = spark.read.format(fmt).load(path)
        assert spark_values(df.selectExpr(*SELECT.split(",")).collect()) == expected, fmt
        # filters on the partition columns (file pruning in the JVM reader) keep the right rows
        hits = df.where(f"d = 1.50 AND ts = timestamp_micros({micros(T2)})").select("id").collect()
        assert [r.id for r in hits] == ([4] if 4 in expected else []), fmt
        assert sorted(r.id for r in df.where("ts < timestamp_micros(0)").collect()) == \
            sorted(i for i in (2, 4) if i in expected), fmt


@pytest.fixture(scope="module", params=[pytest.param("deeplake-jvm", marks=needs_jar), "deeplake-python"])
def written(request, spark, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("part_types") / "ds")
    df = spark.createDataFrame(ROWS, SCHEMA).repartition(2)
    if request.param == "deeplake-jvm":
        df.write.format("deeplake-jvm").partitionBy("ts", "d").save(path)
    else:
        df.write.format("deeplake-python").mode("append").option("partitionBy", "ts,d").save(path)
    return path


def test_partition_values_are_deltas_serialization(written):
    values = {(a["partitionValues"]["ts"], a["partitionValues"]["d"]) for a in adds(written)}
    assert values == {(TEXT[t], None if d is None else str(d)) for _, t, d, _ in ROWS}
    assert dls.open(written).partition_columns == ["ts", "d"]


def test_every_reader_reads_the_exact_values(spark, written):
    check_reads(spark, written)
    ds = dls.open(written)   # ds[i]: numpy datetime64 (UTC) and Decimal
    samples = {int(s["id"]): s for s in (ds[i] for i in range(len(ds)))}
    assert samples[2]["ts"] == np.datetime64(micros(T2), "us") and samples[2]["d"] == Decimal("12345678.90")


@pytest.mark.slow
def test_delta_spark_reads_our_table(written, delta_spark):
    assert spark_values(delta_spark.read(written, select=SELECT)) == EXPECTED
    pruned = delta_spark.sql(f"SELECT id FROM delta.`{written}` WHERE d = 1.50 AND ts > timestamp_micros(0)")
    assert [r["id"] for r in pruned] == [0]


def test_a_table_delta_spark_partitions_by_timestamp_and_decimal(spark, delta_spark, tmp_path):
    path = str(tmp_path / "by_delta_spark")
    delta_spark.sql(f"CREATE TABLE delta.`{path}` (id BIGINT, ts TIMESTAMP, d DECIMAL(10,2)) USING delta "
                    "PARTITIONED BY (ts, d)")
    values = ", ".join(f"({i}, " + ("NULL" if t is None else f"timestamp_micros({micros(t)})") + ", "
                       + ("NULL" if d is None else f"CAST('{d}' AS DECIMAL(10,2))") + ")" for i, t, d, _ in ROWS)
    delta_spark.sql(f"INSERT INTO delta.`{path}` VALUES {values}")
    # delta-spark stores the strings our writers store (so one table can hold files of both)
    theirs = {(a["partitionValues"]["ts"], a["partitionValues"]["d"]) for a in adds(path)}
    assert theirs == {(TEXT[t], None if d is None else str(d)) for _, t, d, _ in ROWS}
    table = dls.open(path).table(columns=["id", "ts", "d"]).to_pylist()
    assert {r["id"]: (micros(r["ts"]), None if r["d"] is None else str(r["d"])) for r in table} == EXPECTED
    for fmt in ("deeplake-python", "deeplake-jvm"):
        got = spark.read.format(fmt).load(path).selectExpr(*SELECT.split(",")).collect()
        assert spark_values(got) == EXPECTED, fmt


@pytest.mark.parametrize("fmt", [pytest.param("deeplake-jvm", marks=needs_jar), "deeplake-python"])
def test_negative_decimals_and_timestamp_ntz_are_refused_by_name(spark, tmp_path, fmt):
    def save(df, path: str, columns: str) -> None:
        if fmt == "deeplake-jvm":
            df.write.format(fmt).partitionBy(*columns.split(",")).save(path)
        else:
            df.write.format(fmt).mode("append").option("partitionBy", columns).save(path)

    negative = spark.createDataFrame([(1, Decimal("-2.25"), [1.0])], "id long, d decimal(10,2), emb array<float>")
    with pytest.raises(SPARK_ERRORS, match="partition column 'd' has the negative value -2.25"):
        save(negative, str(tmp_path / "neg"), "d")
    assert not adds(str(tmp_path / "neg"))
    ntz = spark.createDataFrame([(1, dt.datetime(2024, 1, 1), [1.0])], "id long, t timestamp_ntz, emb array<float>")
    with pytest.raises(SPARK_ERRORS, match="partition column 't'.*timestamp_ntz"):
        save(ntz, str(tmp_path / "ntz"), "t")
    assert not os.path.exists(tmp_path / "ntz" / "_delta_log")
