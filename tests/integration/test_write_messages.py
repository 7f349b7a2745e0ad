"""Commit messages from Spark writers: ``option("message", ...)`` (or delta-spark's ``userMetadata``)
on ``format("deeplake-python")`` (Python source) and ``format("deeplake-jvm")`` (batch and streaming) lands in
the Delta commit's ``commitInfo.userMetadata``, shown by ``history()``, the CLI and ``deeplake_history``.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

import deeplake_spark as dls

pytest.importorskip("pyspark")

from py4j.protocol import Py4JJavaError  # noqa: E402
from pyspark.errors import PySparkException  # noqa: E402

from deeplake_spark import cli  # noqa: E402
from deeplake_spark.spark import jvm  # noqa: E402

SPARK_ERRORS = (Py4JJavaError, PySparkException)
needs_jar = pytest.mark.skipif(shutil.which("mvn") is None and not jvm.jar_file().exists(),
                               reason="no Maven to build the deeplake-jvm jar and no prebuilt jar")


def commit_info(path: str, version: int) -> dict:
    with open(os.path.join(path, "_delta_log", f"{version:020d}.json")) as f:
        for line in f:
            if line.strip() and "commitInfo" in json.loads(line):
                return json.loads(line)["commitInfo"]
    raise AssertionError(f"no commitInfo in version {version} of {path}")


def frame(spark, start: int, n: int):
    from pyspark.sql import functions as F

    return spark.range(start, start + n).withColumn("emb", F.array(F.col("id").cast("float"), F.lit(1.0)))


@pytest.mark.parametrize("fmt", ["deeplake-python", pytest.param("deeplake-jvm", marks=needs_jar)])
def test_message_option_is_the_commits_user_metadata(spark, tmp_path, fmt, capsys):
    path = str(tmp_path / "ds")
    frame(spark, 0, 4).write.format(fmt).mode("append").option("message", "first rows").save(path)
    frame(spark, 4, 4).write.format(fmt).mode("append").option("userMetadata", "delta-spark spelling").save(path)
    frame(spark, 8, 2).write.format(fmt).mode("append").save(path)
    assert commit_info(path, 0)["userMetadata"] == "first rows"
    assert commit_info(path, 1)["userMetadata"] == "delta-spark spelling"
    assert "userMetadata" not in commit_info(path, 2)
    history = dls.open(path).history()
    assert [(c["version"], c["message"]) for c in history] == [
        (2, None), (1, "delta-spark spelling"), (0, "first rows")]
    assert sorted(int(r["id"]) for r in dls.open(path)) == list(range(10))
    assert cli.main(["history", path]) == 0
    shown = capsys.readouterr().out
    assert '"first rows"' in shown and '"delta-spark spelling"' in shown


@pytest.mark.parametrize("fmt", ["deeplake-python", pytest.param("deeplake-jvm", marks=needs_jar)])
def test_conflicting_or_oversized_messages_are_refused_by_name(spark, tmp_path, fmt):
    path = str(tmp_path / "ds")
    with pytest.raises(SPARK_ERRORS, match="'message'.*'userMetadata'"):
        frame(spark, 0, 2).write.format(fmt).mode("append").option("message", "a").option("userMetadata", "b") \
            .save(path)
    with pytest.raises(SPARK_ERRORS, match="at most 10000"):
        frame(spark, 0, 2).write.format(fmt).mode("append").option("message", "x" * 10_001).save(path)
    assert not os.path.exists(os.path.join(path, "_delta_log"))
    # the same text twice is one message
    frame(spark, 0, 2).write.format(fmt).mode("append").option("message", "same").option("userMetadata", "same") \
        .save(path)
    assert dls.open(path).history()[0]["message"] == "same"


@needs_jar
def test_jvm_streaming_sink_and_sql_history_show_the_message(spark, tmp_path):
    from pyspark.sql import functions as F

    path, checkpoint, source = str(tmp_path / "stream"), str(tmp_path / "ckpt"), str(tmp_path / "in")
    spark.range(0, 3).coalesce(1).write.mode("append").parquet(source)
    stream = (spark.readStream.schema("id long").parquet(source)
              .withColumn("emb", F.array(F.col("id").cast("float")))
              .writeStream.format("deeplake-jvm").option("checkpointLocation", checkpoint)
              .option("message", "from the stream").trigger(availableNow=True).start(path))
    stream.awaitTermination(120)
    assert stream.exception() is None
    assert dls.open(path).history()[0]["message"] == "from the stream"
    rows = spark.sql(f"SELECT version, userMetadata FROM deeplake_history('{path}')").collect()
    assert [(r.version, r.userMetadata) for r in rows] == [(0, "from the stream")]
