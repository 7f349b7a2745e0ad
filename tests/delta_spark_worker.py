"""A separate process holding a real Spark + delta-spark session, driven over stdin/stdout.

The test run's own Spark session (tests/conftest.py) stays a plain one; a JVM's catalog and SQL
extensions are fixed when it starts, and delta-spark's catalog replaces the session catalog. So the
delta-spark interop tests talk to this worker: one JSON request per line in, one JSON reply per line
out; ``DEEPLAKE_DELTA_WORKER_CONF`` (a JSON object) adds session settings. Requests: ``{"sql": "..."}``
or ``{"read": path, "format": "delta"|"deeplake", "options": {...}, "select": "id"}``;
replies ``{"rows": [...]}`` or ``{"error": "ExceptionType: message"}``.

A worker's JVM takes 15-30 s to start: start one per module (or per settings) and send it many requests.
``conftest.py``'s ``delta_spark`` fixture gives the test run's shared one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

#: The tests' tables have a few files: fewer tasks per job than Delta's cluster-sized defaults (50 log
#: replay partitions, VACUUM listing parallelism 10000). Results are the same. The gain is small: an A/B
#: at equal load (old and new worker side by side, 3 tables each) gave VACUUM 17/11/11 s vs 23/16/10 s.
SMALL_DATA_CONF = {
    "spark.driver.memory": "1g",
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "1",
    "spark.databricks.delta.snapshotPartitions": "1",
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "1",
}


def _rows(df: Any) -> list[dict[str, Any]]:
    return [r.asDict(recursive=True) for r in df.collect()]


def main() -> None:
    # Replies go to the original stdout; everything else that writes to fd 1 (the JVM started below,
    # Ivy's resolution report, py4j) goes to stderr, so a reply line is never mixed with chatter.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    from deeplake_spark.spark import spark_session

    extra = json.loads(os.environ.get("DEEPLAKE_DELTA_WORKER_CONF", "{}"))  # more session settings, e.g. the default format
    spark = spark_session(master="local[1]", app_name="delta-spark-worker", delta=True,
                          **{**SMALL_DATA_CONF, **extra})
    spark.sparkContext.setLogLevel("ERROR")
    out.write(json.dumps({"ready": spark.version}) + "\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if "sql" in request:
                rows = _rows(spark.sql(request["sql"]))
            else:
                reader = spark.read.format(request.get("format", "delta"))
                for key, value in (request.get("options") or {}).items():
                    reader = reader.option(key, value)
                df = reader.load(request["read"])
                if request.get("select"):
                    df = df.selectExpr(*request["select"].split(","))
                rows = _rows(df)
            reply: dict[str, Any] = {"rows": rows}
        except Exception as e:  # noqa: BLE001 - every error goes back to the test, typed by name
            reply = {"error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(reply, default=str) + "\n")
        out.flush()
    spark.stop()


class DeltaSparkError(Exception):
    """An error raised inside the delta-spark session (its type and message)."""


class DeltaSpark:
    """Client side: a worker process started with ``conf`` (more session settings), asked over a pipe.

    ``wait=False`` returns while the worker's JVM is still starting (so it starts next to other work); the
    first request, or ``version``, waits for it."""

    def __init__(self, conf: dict[str, str] | None = None, *, wait: bool = True) -> None:
        env = {**os.environ, "DEEPLAKE_DELTA_WORKER_CONF": json.dumps(conf or {})}
        self.proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1, env=env)
        self._version: str | None = None
        if wait:
            self.version  # noqa: B018 - waits for the worker's session

    @property
    def version(self) -> str:
        """The worker's Spark version, once its session is up (waits for it)."""
        if self._version is None:
            self._version = self._reply()["ready"]
        return self._version

    def _reply(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the delta-spark worker died (exit {self.proc.wait()})")
        return json.loads(line)

    def _ask(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        assert self.proc.stdin is not None
        self.version  # noqa: B018 - the first line a worker writes is its "ready"
        self.proc.stdin.write(json.dumps(request) + "\n")
        reply = self._reply()
        if "error" in reply:
            raise DeltaSparkError(reply["error"])
        return reply["rows"]

    def sql(self, statement: str) -> list[dict[str, Any]]:
        """Rows of ``spark.sql(statement)`` as dicts; DeltaSparkError on a failure."""
        return self._ask({"sql": statement})

    def read(self, path: str, *, format: str = "delta", select: str = "id", **options: Any) -> list[dict[str, Any]]:
        """Rows of ``spark.read.format(format).options(**options).load(path).selectExpr(*select.split(","))``."""
        return self._ask({"read": path, "format": format, "select": select,
                          "options": {k: str(v) for k, v in options.items()}})

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(120)


if __name__ == "__main__":
    main()
