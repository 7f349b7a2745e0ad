"""A separate process holding a real Spark + delta-spark session, driven over stdin/stdout.

The test run's own Spark session (tests/conftest.py) stays a plain one; a JVM's catalog and SQL
extensions are fixed when it starts, and delta-spark's catalog replaces the session catalog. So the
delta-spark interop tests talk to this worker: one JSON request per line in, one JSON reply per line
out; ``DEEPLAKE_DELTA_WORKER_CONF`` (a JSON object) adds session settings. Requests: ``{"sql": "..."}`` or ``{"read": path, "format": "delta"|"deeplake", "options": {...},
"select": "id"}``; replies ``{"rows": [...]}`` or ``{"error": "ExceptionType: message"}``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


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
                          **{"spark.driver.memory": "1g", **extra})
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


if __name__ == "__main__":
    main()
