"""Local SparkSession with safe settings for this library, and source registration."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import sys
from typing import Any

from pyspark.sql import SparkSession

from deeplake_spark.errors import DeepLakeSparkError

log = logging.getLogger(__name__)

#: Settings the library needs or that keep a small machine safe. Any of them can be overridden.
DEFAULT_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # A reader with pushFilters (ours on Spark 5+, see reader.STATS_PRUNING) fails every read without this.
    "spark.sql.python.filterPushdown.enabled": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Scans of big binary cells ran a 1 GB heap out of memory with 4096-row vectorized batches.
    "spark.driver.memory": "4g",
    "spark.sql.parquet.columnarReaderBatchSize": "256",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "1024",
    "spark.sql.execution.arrow.maxBytesPerBatch": str(64 * 1024 * 1024),
    "spark.sql.files.maxPartitionBytes": str(64 * 1024 * 1024),
    "spark.sql.shuffle.partitions": "8",
    "spark.driver.extraJavaOptions": "-Dio.netty.tryReflectionSetAccessible=true",
}


def jar_path() -> str | None:
    """The jvm-shim jar shipped inside the package, when it was built."""
    folder = os.path.join(os.path.dirname(os.path.dirname(__file__)), "jars")
    if not os.path.isdir(folder):
        return None
    jars = sorted(f for f in os.listdir(folder) if f.endswith(".jar"))
    return os.path.join(folder, jars[-1]) if jars else None


#: Settings that turn a session into a Delta Lake session (delta-spark's SQL and catalog).
DELTA_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def delta_package() -> str | None:
    """Maven coordinates of the delta-spark jar matching the installed ``delta-spark`` and pyspark
    (``io.delta:delta-spark_<spark major.minor>_2.13:<version>``), or None without delta-spark."""
    try:
        version = importlib.metadata.version("delta-spark")
    except importlib.metadata.PackageNotFoundError:
        return None
    import pyspark

    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    return f"io.delta:delta-spark_{spark_minor}_2.13:{version}"


def spark_session(master: str = "local[*]", app_name: str = "deeplake-spark", *, delta: bool = False,
                  **conf: Any) -> SparkSession:
    """A SparkSession with the ``deeplake`` source and SQL functions registered.

    ``delta=True``: also make it a Delta Lake session (``format("delta")``, ``UPDATE``/``MERGE``/
    ``OPTIMIZE``/``DESCRIBE HISTORY``/``RESTORE`` on our datasets) with the ``delta-spark`` package
    (it comes with the ``spark`` extra); Spark fetches the matching delta-spark jar from Maven Central
    on first use (``spark.jars.packages``) and caches it in ``~/.ivy2``. delta-spark's catalog then
    replaces the session catalog, which does not know Python data sources: in such a session
    ``CREATE TABLE ... USING deeplake`` fails ("not a valid Spark SQL Data Source"); use
    ``CREATE TEMP VIEW ... USING deeplake`` or ``spark.read.format("deeplake")`` there.
    ``conf`` keys use underscores or dots: ``spark_session(**{"spark.driver.memory": "8g"})``.
    Python workers run the current interpreter (``PYSPARK_PYTHON``).
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName(app_name)
    settings = {**DEFAULT_CONF, **{k.replace("_", ".") if k.startswith("spark_") else k: str(v) for k, v in conf.items()}}
    package = delta_package() if delta else None
    if delta and package is None:
        raise DeepLakeSparkError("spark_session(delta=True) needs the delta-spark package: pip install "
                                 "'deeplake-spark[spark]' (or delta-spark matching your pyspark)")
    if package is not None:
        given = [p for p in settings.get("spark.jars.packages", "").split(",") if p]
        settings["spark.jars.packages"] = ",".join([package, *given])
        for key, value in DELTA_CONF.items():
            settings.setdefault(key, value)
    from deeplake_spark.spark.jvm import ensure_jar  # builds the deeplake-jvm reader when its sources changed

    jar = ensure_jar() or jar_path()
    if jar and "spark.jars" not in settings:
        settings["spark.jars"] = jar
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    register(spark)
    return spark


def register(spark: SparkSession) -> None:
    """Register the ``deeplake`` data source and the tensor SQL functions on ``spark``."""
    from deeplake_spark.spark.functions import register_functions
    from deeplake_spark.spark.source import DeepLakeDataSource

    # A reader with pushFilters (ours where pruning is safe) fails every read without this; it is a
    # runtime conf, so an existing session (a Databricks notebook) can take it here.
    spark.conf.set("spark.sql.python.filterPushdown.enabled", "true")
    spark.dataSource.register(DeepLakeDataSource)
    register_functions(spark)
    hint = missing_jvm_jar_hint(spark.conf.get("spark.jars", "") or "")
    if hint:
        log.warning(hint)


def missing_jvm_jar_hint(spark_jars: str) -> str | None:
    """How to add the JVM reader when the session's ``spark.jars`` lacks it (None when it is there).

    The jar is a JVM library: it has to be on the classpath when the session starts, so
    ``register()`` on an existing session can only say how to add it, not add it.
    """
    from deeplake_spark.spark.jvm import JAR_PREFIX, SHORT_NAME

    if any(os.path.basename(entry).startswith(JAR_PREFIX) for entry in spark_jars.split(",") if entry.strip()):
        return None
    jar = jar_path()
    where = f"the jar {jar}" if jar else "the jar (build it with deeplake_spark.spark.jvm.build_jar())"
    return (f"format('{SHORT_NAME}') is not available in this session: {where} is not on spark.jars. Start the "
            "session with deeplake_spark.spark_session(), or add .config('spark.jars', '<jar>') to its builder "
            "(on Databricks: install the jar as a cluster library; ignore this message if you did)")
