"""Local SparkSession with safe settings for this library, and source registration."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import sys
from typing import Any

from pyspark.sql import SparkSession

from deeplake_spark.errors import DeepLakeSparkError
from deeplake_spark.spark.source import DeepLakeDataSource

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


#: The path-based SQL catalog of the JVM jar: ``SELECT * FROM deeplake.`/data/pets` VERSION AS OF 3``.
CATALOG_NAME = "deeplake"
CATALOG_CLASS = "deeplake.spark.jvm.catalog.DeepLakeCatalog"
#: The jar's SQL extensions (``deeplake_history(path)``, ADD COLUMNS on catalog tables of the JVM source).
EXTENSIONS_CLASS = "deeplake.spark.jvm.DeepLakeSparkSessionExtensions"
#: Which source ``format("deeplake")`` is: ``python`` (the Python Data Source) or ``jvm`` (the jar's).
DEFAULT_FORMAT_CONF = "spark.deeplake.defaultFormat"
DEFAULT_FORMATS = ("python", "jvm")
#: ``format("deeplake")`` when neither ``register(default=...)`` nor the session setting says: the JVM
#: connector, falling back to ``python`` in a session without the jar (docs/FORMAT_NAMES.md).
DEFAULT_FORMAT = "jvm"


class DeepLakePythonDataSource(DeepLakeDataSource):
    """The Python Data Source under its explicit name: ``format("deeplake-python")``."""

    @classmethod
    def name(cls) -> str:
        return "deeplake-python"


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


def delta_jar_conf() -> dict[str, str]:
    """Settings that put the delta-spark jar matching the installed ``delta-spark`` on a session you
    build yourself (``SparkSession.builder.config(map=delta_jar_conf())``): ``spark.jars`` with the
    copies the README set-up's Maven build fetched into ``jvm-shim/target/delta/``, or, without them
    (a pip-only install), ``spark.jars.packages`` (Spark's Ivy fetches it from Maven Central, as
    ``delta.configure_spark_with_delta_pip`` does). Raises when delta-spark is not installed."""
    package = delta_package()
    if package is None:
        raise DeepLakeSparkError("a Delta Lake session (spark_session(delta=True), delta_jar_conf()) needs the "
                                 "delta-spark package: pip install "
                                 "'deeplake-spark[spark]' (or delta-spark matching your pyspark)")
    from deeplake_spark.spark.jvm import delta_jars

    jars = delta_jars(package)
    return {"spark.jars": ",".join(map(str, jars))} if jars else {"spark.jars.packages": package}


def spark_session(master: str = "local[*]", app_name: str = "deeplake-spark", *, delta: bool = False,
                  **conf: Any) -> SparkSession:
    """A SparkSession with the ``deeplake`` source and SQL functions registered.

    ``delta=True``: also make it a Delta Lake session (``format("delta")``, ``UPDATE``/``MERGE``/
    ``OPTIMIZE``/``DESCRIBE HISTORY``/``RESTORE`` on our datasets) with the ``delta-spark`` package
    (it comes with the ``spark`` extra); the matching delta-spark jar comes from the Maven build of
    ``jvm-shim/`` (``target/delta/``, fetched from Maven Central by the README set-up), or, without
    it (a pip-only install), Spark fetches it from Maven Central on first use
    (``spark.jars.packages``, cached in ``~/.ivy2``). delta-spark's catalog then
    replaces the session catalog, which does not know Python data sources: in such a session
    ``CREATE TABLE ... USING deeplake`` fails ("not a valid Spark SQL Data Source"); use
    ``CREATE TEMP VIEW ... USING deeplake`` or ``spark.read.format("deeplake")`` there.
    ``conf`` keys use underscores or dots: ``spark_session(**{"spark.driver.memory": "8g"})``.
    Python workers run the current interpreter (``PYSPARK_PYTHON``).

    With the JVM jar (built from ``jvm-shim/`` or shipped in the wheel) the session also gets the
    path-based SQL catalog ``deeplake`` (``SELECT * FROM deeplake.`/data/pets` VERSION AS OF 3``,
    ``ALTER TABLE deeplake.`/data/pets` ADD COLUMNS (score DOUBLE)``) and the jar's SQL extensions
    (``SELECT * FROM deeplake_history('/data/pets')``), next to delta-spark's when ``delta=True``;
    see docs/SQL.md. ``format("deeplake")`` is then the JVM connector; ``spark.deeplake.defaultFormat``
    (``jvm``, the default, or ``python``) chooses which source it is (docs/FORMAT_NAMES.md).
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName(app_name)
    settings = {**DEFAULT_CONF, **{k.replace("_", ".") if k.startswith("spark_") else k: str(v) for k, v in conf.items()}}
    from deeplake_spark.spark.jvm import session_jars  # rebuilds the deeplake-jvm jar when stale

    local_delta: list[str] = []
    if delta:
        jar_conf = delta_jar_conf()  # raises without delta-spark
        if "spark.jars" in jar_conf and "spark.jars" not in settings:
            local_delta = jar_conf["spark.jars"].split(",")
        else:  # no Maven-fetched copy (a pip-only install) or the caller's own spark.jars: Spark's Ivy fetches it
            given = [p for p in settings.get("spark.jars.packages", "").split(",") if p]
            settings["spark.jars.packages"] = ",".join([str(delta_package()), *given])
        for key, value in DELTA_CONF.items():
            settings.setdefault(key, value)
        cores = local_cores(master)
        if cores is not None:
            # Delta's defaults (50 snapshot partitions, a 10,000-task listing in VACUUM) are sized for
            # clusters: on a laptop they turn a VACUUM of a small table into a minute of empty tasks.
            settings.setdefault("spark.databricks.delta.snapshotPartitions", str(cores))
            settings.setdefault("spark.sql.sources.parallelPartitionDiscovery.parallelism", str(cores))
    jars = session_jars() or ([jar_path()] if jar_path() else [])
    if (jars or local_delta) and "spark.jars" not in settings:
        # the reader jar, hadoop-aws + AWS SDK modules (S3A), delta-spark and what it needs
        settings["spark.jars"] = ",".join(jars + local_delta)
    if jars:
        settings.setdefault(f"spark.sql.catalog.{CATALOG_NAME}", CATALOG_CLASS)
        given = [e.strip() for e in settings.get("spark.sql.extensions", "").split(",") if e.strip()]
        if EXTENSIONS_CLASS not in given:
            settings["spark.sql.extensions"] = ",".join([*given, EXTENSIONS_CLASS])
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    register(spark)
    return spark


def local_cores(master: str) -> int | None:
    """The task slots of a ``local``/``local[N]``/``local[*]`` master (None for a cluster master)."""
    master = master.strip()
    if master == "local":
        return 1
    if not master.startswith("local["):
        return None
    slots = master[len("local["):].split("]")[0].split(",")[0].strip()
    if slots == "*":
        return os.cpu_count() or 1
    return int(slots) if slots.isdigit() and int(slots) > 0 else None


def register(spark: SparkSession, *, default: str | None = None) -> None:
    """Register the data sources, the tensor SQL functions and (with the JVM jar) the ``deeplake``
    SQL catalog on ``spark``.

    ``default`` chooses what ``format("deeplake")`` is: ``"python"`` (the Python Data Source, works
    with pip alone) or ``"jvm"`` (the jar's source, which must be on the session's classpath). None
    keeps the session's ``spark.deeplake.defaultFormat``; when that is unset too, ``jvm`` if the jar is
    on ``spark.jars``, else ``python`` (asking for ``jvm`` explicitly without the jar is an error). Either way the Python
    source is also ``format("deeplake-python")`` and the JVM one ``format("deeplake-jvm")``. The choice
    can change in a running session: while the setting says ``jvm`` the jar's source answers to
    ``deeplake``, and Spark looks JVM sources up before Python ones (docs/FORMAT_NAMES.md).

    On a ``local`` master it also checks that the Python workers' interpreter can import pyarrow and
    deeplake_spark (a session started without ``PYSPARK_PYTHON`` runs ``python3`` from the PATH) and
    logs a warning saying how to fix it when not (``spark/python_check.py``).
    """
    from deeplake_spark.spark.functions import register_functions
    from deeplake_spark.spark.python_check import worker_python, worker_python_problem

    problem = worker_python_problem(worker_python(spark), master=spark.conf.get("spark.master", "") or "")
    if problem:
        log.warning(problem)

    current = (spark.conf.get(DEFAULT_FORMAT_CONF, None) or "").strip().lower() or None
    asked = default or current
    choice = (asked or DEFAULT_FORMAT).strip().lower()
    if choice not in DEFAULT_FORMATS:
        where = f"register(default={default!r})" if default else f"{DEFAULT_FORMAT_CONF}={asked!r}"
        raise DeepLakeSparkError(f"{where}: allowed values are {DEFAULT_FORMATS}")
    hint = missing_jvm_jar_hint(spark.conf.get("spark.jars", "") or "")
    if choice == "jvm" and hint:
        if asked:
            raise DeepLakeSparkError(f"format('deeplake') cannot be the JVM source here: {hint}")
        choice = "python"  # the pip-only fallback
    # A reader with pushFilters (ours where pruning is safe) fails every read without this; it is a
    # runtime conf, so an existing session (a Databricks notebook) can take it here.
    spark.conf.set("spark.sql.python.filterPushdown.enabled", "true")
    # Set before registering: the jar's source answers to "deeplake" exactly while this says "jvm", and
    # Spark refuses a Python source under a name a JVM source answers to.
    spark.conf.set(DEFAULT_FORMAT_CONF, choice)
    if choice == "python":
        spark.dataSource.register(DeepLakeDataSource)
    spark.dataSource.register(DeepLakePythonDataSource)
    register_functions(spark)
    if hint:
        log.warning(hint)
    elif not spark.conf.get(f"spark.sql.catalog.{CATALOG_NAME}", None):
        # Catalogs are looked up by name when first used, so an existing session can still get this one.
        spark.conf.set(f"spark.sql.catalog.{CATALOG_NAME}", CATALOG_CLASS)


def missing_jvm_jar_hint(spark_jars: str) -> str | None:
    """How to add the JVM reader when the session's ``spark.jars`` lacks it (None when it is there).

    The jar is a JVM library: it has to be on the classpath when the session starts, so
    ``register()`` on an existing session can only say how to add it, not add it.
    """
    from deeplake_spark.spark.jvm import JAR_PREFIX, SHORT_NAME

    if any(os.path.basename(entry).startswith(JAR_PREFIX) for entry in spark_jars.split(",") if entry.strip()):
        return None
    jar = jar_path()
    where = f"the jar {jar}" if jar else "the jar (build it with the README set-up: mvn -q -f jvm-shim/pom.xml verify)"
    return (f"format('{SHORT_NAME}') is not available in this session: {where} is not on spark.jars. Start the "
            "session with deeplake_spark.spark_session(), or add .config('spark.jars', '<jar>') to its builder "
            "(on Databricks: install the jar as a cluster library; ignore this message if you did)")
