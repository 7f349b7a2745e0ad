"""Benchmark cases, one module each; every case is ``run(ctx) -> list[Row]``.

``Context`` holds the sizes, where each system's copy of each data kind lives, and a lazily
started local[2] SparkSession shared by the cases that need Spark.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any

from bench.config import Sizes
from bench.measure import NotAvailable, Row, run_job, worker_python

log = logging.getLogger(__name__)

#: system name -> worker module (under bench/) that builds and streams its stores.
STORE_MODULES = {"ours": "ours", "deeplake4": "peers.deeplake4", "parquet": "peers.parquet",
                 "jpeg_folder": "peers.jpeg_folder", "mosaic": "peers.mosaic", "lance": "peers.lance"}


@dataclass
class Context:
    sizes: Sizes
    #: ``--systems``: run only the stream rows whose label starts with one of these (None: all)
    systems: tuple[str, ...] | None = None
    spark_error: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    _spark: Any = None

    def wants(self, label: str) -> bool:
        """Whether the stream row ``label`` is selected by ``--systems``."""
        return self.systems is None or any(label.startswith(prefix) for prefix in self.systems)

    def count(self, kind: str) -> int:
        return int(getattr(self.sizes, kind))

    def store(self, system: str, kind: str, n: int | None = None) -> str:
        """Path of ``system``'s copy of ``kind`` (``n`` samples; default the mode's size)."""
        n = self.count(kind) if n is None else n
        suffix = ".parquet" if system == "parquet" else ""
        return os.path.join(self.sizes.work, "stores", f"{system}_{kind}_{n}{suffix}")

    def ensure_store(self, system: str, kind: str, n: int | None = None) -> str:
        """Build ``system``'s store of ``kind`` unless a complete one is there; returns its path."""
        n = self.count(kind) if n is None else n
        path = self.store(system, kind, n)
        marker = path + ".done"
        if not os.path.exists(marker):
            result = run_job(f"{STORE_MODULES[system]}:build", python=worker_python(system), path=path, kind=kind, n=n)
            self.mark_built(path, result)
        return path

    def mark_built(self, path: str, result: dict[str, Any]) -> None:
        with open(path + ".done", "w") as f:
            json.dump(result, f)

    def spark(self) -> Any:
        """The shared SparkSession (deeplake source registered when it imports); NotAvailable if none."""
        if self._spark is not None:
            return self._spark
        if self.spark_error:
            raise NotAvailable(self.spark_error)
        try:
            from pyspark.sql import SparkSession

            from deeplake_spark.spark.session import DEFAULT_CONF
        except ImportError as e:
            self.spark_error = f"pyspark not importable: {e}"
            raise NotAvailable(self.spark_error) from e
        import sys

        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        try:
            import deeplake_spark

            self._spark = deeplake_spark.spark_session(master="local[2]")
            self.facts["spark_deeplake_source"] = "registered"
        except (ImportError, NotImplementedError, AttributeError) as e:
            # The deeplake source is not there yet: plain Spark still runs the Parquet rows.
            log.warning("deeplake Spark source not available (%s); starting plain Spark", e)
            self.facts["spark_deeplake_source"] = f"not available: {type(e).__name__}: {e}"
            builder = SparkSession.builder.master("local[2]").appName("deeplake-spark-bench")
            for key, value in DEFAULT_CONF.items():
                builder = builder.config(key, value)
            self._spark = builder.getOrCreate()
        self._spark.sparkContext.setLogLevel("ERROR")
        return self._spark

    def stop(self) -> None:
        if self._spark is not None:
            self._spark.stop()
            self._spark = None


def unavailable(case: str, system: str, kind: str, reason: str) -> Row:
    return Row(case=case, system=system, kind=kind, note=f"not available: {reason}")


def failed(case: str, system: str, kind: str, error: BaseException) -> Row:
    text = str(error).strip().splitlines()
    return Row(case=case, system=system, kind=kind, note=f"failed: {text[-1] if text else type(error).__name__}")


def spark_error_text(error: BaseException) -> str:
    """The innermost ``SomeError: message`` of a (Spark-wrapped Python) exception, one line."""
    matches = re.findall(r"([A-Za-z_.]*(?:Error|Exception|Conflict|NotFound)): (.+)", str(error))
    if matches:
        name, message = matches[-1]
        return f"{name.rsplit('.', 1)[-1]}: {message.strip()}"[:400]
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:400]
