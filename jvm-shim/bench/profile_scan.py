"""Profile the JVM reader under scan_bench with Java Flight Recorder on the local-mode driver JVM
(where the tasks run), then summarise where the executor task threads spent their samples.

Record (the JVM writes the file when it exits, i.e. after this process ends)::

    .venv/bin/python jvm-shim/bench/profile_scan.py --rows 80000 --workdir /tmp/scan80k \
        --systems deeplake-jvm --jfr /tmp/scan.jfr

then summarise (needs ``jfr`` from the JDK on PATH)::

    .venv/bin/python jvm-shim/bench/profile_scan.py --report /tmp/scan.jfr
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import subprocess
import sys
import time
from typing import Any

TASK_THREAD = "Executor task launch"


def _name(frame: dict[str, Any]) -> str:
    return f"{frame['method']['type']['name'].rsplit('/', 1)[-1]}.{frame['method']['name']}"


def report(jfr: str, limit: int = 20) -> None:
    """Executor-thread samples: share under deeplake frames and under Spark's interpreted
    ArrayAggregate, the innermost deeplake frame, the top-of-stack frames, samples per thread kind."""
    out = subprocess.run(["jfr", "print", "--json", "--stack-depth", "200", "--events", "jdk.ExecutionSample", jfr],
                         capture_output=True, text=True, check=True).stdout
    events = json.loads(out)["recording"]["events"]
    threads: collections.Counter[str] = collections.Counter()
    top: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()
    tasks = in_ours = in_aggregate = 0
    for e in events:
        thread = (e["values"].get("sampledThread") or {}).get("javaName") or ""
        threads["".join(c for c in thread if not c.isdigit())[:40]] += 1
        frames = e["values"]["stackTrace"]["frames"]
        if TASK_THREAD not in thread or not frames:
            continue
        tasks += 1
        names = [_name(f) for f in frames]
        deeplake = [_name(f) for f in frames if f["method"]["type"]["name"].startswith("deeplake/")]
        in_ours += bool(deeplake)
        in_aggregate += any(n.startswith("ArrayAggregate.") for n in names)
        ours[deeplake[0] if deeplake else "(no deeplake frame)"] += 1
        top[" < ".join(names[:3])] += 1
    print(f"executor task samples: {tasks}; under a deeplake frame: {in_ours} ({in_ours / max(1, tasks):.0%}); "
          f"under Spark's ArrayAggregate (aggregate() HOF): {in_aggregate} ({in_aggregate / max(1, tasks):.0%})")
    print("innermost deeplake frame:")
    for frame, n in ours.most_common(limit):
        print(f"{n:6d}  {frame}")
    print("top of stack:")
    for frame, n in top.most_common(limit):
        print(f"{n:6d}  {frame}")
    print("samples per thread:")
    for thread, n in threads.most_common(10):
        print(f"{n:6d}  {thread}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=80000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--workdir", help="dataset + Parquet copies (kept: reused by the next run)")
    parser.add_argument("--jfr", default=None, help="record to this file (none: no recording)")
    parser.add_argument("--report", default=None, help="summarise this recording and exit")
    parser.add_argument("--systems", default="deeplake-jvm,deeplake,parquet")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.report:
        report(args.report)
        return
    if not args.workdir:
        parser.error("--workdir is required to record")
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("scan_bench", os.path.join(here, "scan_bench.py"))
    scan = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(scan)  # type: ignore[union-attr]
    scan.SYSTEMS = tuple(args.systems.split(","))
    from deeplake_spark.spark import spark_session

    conf = {}
    if args.jfr:
        conf["spark.driver.extraJavaOptions"] = (f"-XX:StartFlightRecording=filename={args.jfr},settings=profile,"
                                                 "dumponexit=true")
    spark = spark_session(master="local[2]", **conf)
    spark.sparkContext.setLogLevel("ERROR")
    start = time.perf_counter()
    results = scan.run(spark, args.workdir, rows=args.rows, dim=args.dim, files=4, repeats=args.repeats)
    for r in results:
        print(f"{r['case']:<11} {r['system']:<13} {r['seconds']:>8.3f} s  {r['cpu_seconds']:>8.3f} s CPU")
    if len(scan.SYSTEMS) == 3:
        print(json.dumps(scan.ratios(results)))
    print(f"total {time.perf_counter() - start:.0f}s, load average {os.getloadavg()}")
    spark.stop()
    if args.jfr:
        print(f"recording: {args.jfr} (written when the JVM exits); summarise with --report {args.jfr}")


if __name__ == "__main__":
    sys.exit(main())
