"""Scan benchmark: JVM reader vs Python reader vs Spark's Parquet reader on the same tensor values.

One dataset (a float32 embedding tensor of ``dim`` values per row, ``rows`` rows in ``files``
commits) is read three ways in one Spark session:

* ``deeplake-jvm``  -- ``spark.read.format("deeplake-jvm")`` (this jar; no Python workers);
* ``deeplake``      -- ``spark.read.format("deeplake-python")`` (the Python data source);
* ``parquet``       -- ``spark.read.parquet`` of the same samples written by Spark: an
  ``array<float>`` column (array cases) or a ``binary`` column holding the very bytes the chunks
  hold (bytes cases).

Cases: ``count`` (``df.select(col).count()``: Spark may answer from metadata), ``scan_*`` (count
of rows whose tensor is not null: every sample is read and materialized), ``max_array``
(``sum(array_max(emb))``: every decoded value visited by generated code) and ``sum_array`` (sum
of all decoded values written as the ``aggregate`` higher-order function, which Spark evaluates
interpretively and which deeplake's optimizer rule turns into a generated-code loop: ``--conf
spark.deeplake.optimizer.arraySum.enabled=false`` measures it without the rule). Each timing is
the best of ``repeats`` runs after one warm-up; ``cpu_seconds`` is the
least CPU time of those runs summed over this process tree (the Spark JVM, whose local-mode
executor threads run the tasks, and Spark's Python workers): a measure a busy machine does not
stretch the way it stretches wall time. Within a case the systems take turns (warm-up of each, then
run 1 of each, run 2 of each, ...), so a burst of load from other processes falls on all of them
rather than on whichever system was being timed at that moment.

Call :func:`run` from the benchmark package, or run this file:
``.venv/bin/python jvm-shim/bench/scan_bench.py --rows 20000 --dim 512``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

SYSTEMS = ("deeplake-jvm", "deeplake", "parquet")


def make_dataset(path: str, *, rows: int, dim: int, files: int, seed: int = 0) -> None:
    """A dataset of ``rows`` float32 embeddings of ``dim`` values, appended in ``files`` commits."""
    import deeplake_spark as dls

    ds = dls.create(path, {"id": "int64", "emb": dls.tensor("embedding", dtype="float32", shape=(dim,))})
    rng = np.random.default_rng(seed)
    per_file = -(-rows // files)
    for start in range(0, rows, per_file):
        n = min(per_file, rows - start)
        ds.append({"id": np.arange(start, start + n), "emb": list(rng.standard_normal((n, dim), dtype=np.float32))})


def tree_cpu() -> dict[tuple[int, float], float]:
    """CPU seconds of this process and each descendant (with the children each has reaped), by
    (pid, start time)."""
    import psutil

    me = psutil.Process()
    out: dict[tuple[int, float], float] = {}
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            out[(p.pid, p.create_time())] = t.user + t.system + t.children_user + t.children_system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


def cpu_since(before: dict[tuple[int, float], float]) -> float:
    """CPU seconds the process tree used since ``before``, per process so that one that exited in
    between (a Spark Python worker) cannot make the sum negative; what it used after ``before`` is lost."""
    return sum(cpu - before.get(key, 0.0) for key, cpu in tree_cpu().items())


def _best(actions: dict[str, Callable[[], Any]], repeats: int, warmup: bool = True) -> dict[str, tuple[float, float, Any]]:
    """Per name: (least wall seconds, least CPU seconds, result) of ``repeats`` runs after a warm-up,
    the actions taking turns (each warmed up, then one run of each per round). ``warmup=False``: no
    warm-up pass (a later round of the same session, already warm)."""
    results: dict[str, Any] = ({name: action() for name, action in actions.items()}  # JIT, Python workers, file cache
                               if warmup else dict.fromkeys(actions))
    times: dict[str, list[float]] = {name: [] for name in actions}
    cpus: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(repeats):
        for name, action in actions.items():
            cpu = tree_cpu()
            start = time.perf_counter()
            results[name] = action()
            times[name].append(time.perf_counter() - start)
            cpus[name].append(cpu_since(cpu))
    return {name: (min(times[name]), min(cpus[name]), results[name]) for name in actions}


def run(spark: Any, workdir: str, *, rows: int = 20000, dim: int = 512, files: int = 4,
        repeats: int = 3, only: tuple[str, ...] = (), warmup: bool = True) -> list[dict[str, Any]]:
    """Build the data under ``workdir`` and time every (case, system), or only the cases named in
    ``only``; returns one dict per timing."""
    from pyspark.sql import functions as F

    ds_path = os.path.join(workdir, "ds")
    if not os.path.exists(ds_path):
        make_dataset(ds_path, rows=rows, dim=dim, files=files)
    arrays_path = os.path.join(workdir, "arrays.parquet")
    bytes_path = os.path.join(workdir, "bytes.parquet")
    if not os.path.exists(arrays_path):
        base = spark.read.format("deeplake-jvm").option("tensors", "array").load(ds_path)
        base.repartition(files).write.parquet(arrays_path)
        raw = spark.read.format("deeplake-jvm").option("tensors", "bytes").load(ds_path)
        raw.select("id", F.col("emb.data").alias("emb")).repartition(files).write.parquet(bytes_path)

    def frame(system: str, mode: str) -> Any:
        if system == "parquet":
            return spark.read.parquet(arrays_path if mode == "array" else bytes_path).select("emb")
        source = "deeplake-python" if system == "deeplake" else system  # whatever defaultFormat says
        return spark.read.format(source).option("tensors", mode).load(ds_path).select("emb")

    def value_sum(df: Any) -> float:
        total = F.aggregate("emb", F.lit(0.0).cast("double"), lambda acc, x: acc + x.cast("double"))
        return float(df.select(F.sum(total)).first()[0])

    def max_sum(df: Any) -> float:
        return float(df.select(F.sum(F.array_max("emb"))).first()[0])

    cases: dict[str, tuple[str, Callable[[Any], Any]]] = {
        "count": ("array", lambda df: df.count()),
        "scan_bytes": ("bytes", lambda df: df.where(F.col("emb").isNotNull()).count()),
        "scan_array": ("array", lambda df: df.where(F.col("emb").isNotNull()).count()),
        "max_array": ("array", max_sum),
        "sum_array": ("array", value_sum),
    }
    results = []
    for case, (mode, action) in cases.items():
        if only and case not in only:
            continue

        def one_run(system: str, action: Callable[[Any], Any] = action, mode: str = mode) -> Callable[[], Any]:
            return lambda: action(frame(system, mode))

        timed = _best({system: one_run(system) for system in SYSTEMS}, repeats, warmup)
        for system in SYSTEMS:
            seconds, cpu, value = timed[system]
            results.append({"case": case, "system": system, "seconds": round(seconds, 4),
                            "cpu_seconds": round(cpu, 4), "rows_per_s": round(rows / seconds), "result": value})
    return results


def ratios(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per case: JVM reader speed-up over the Python reader and over Parquet (>1 = JVM faster), in
    wall time, and the same in CPU time (``cpu_vs_python``, ``cpu_vs_parquet``)."""
    out: dict[str, dict[str, float]] = {}
    for case in dict.fromkeys(r["case"] for r in results):
        t = {r["system"]: r["seconds"] for r in results if r["case"] == case}
        c = {r["system"]: r.get("cpu_seconds") or 0.0 for r in results if r["case"] == case}
        out[case] = {"vs_python": round(t["deeplake"] / t["deeplake-jvm"], 2),
                     "vs_parquet": round(t["parquet"] / t["deeplake-jvm"], 2)}
        if c["deeplake-jvm"] > 0:
            out[case]["cpu_vs_python"] = round(c["deeplake"] / c["deeplake-jvm"], 2)
            out[case]["cpu_vs_parquet"] = round(c["parquet"] / c["deeplake-jvm"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--workdir", default=None, help="kept when given; a temp folder otherwise")
    parser.add_argument("--cases", default="", help="comma list of cases to run (all when empty)")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                        help="a Spark setting for the session (repeatable)")
    args = parser.parse_args()
    from deeplake_spark.spark import spark_session

    settings = dict(item.split("=", 1) for item in args.conf)
    spark = spark_session(master=args.master, **settings)
    load_before = os.getloadavg()
    workdir = args.workdir or tempfile.mkdtemp(prefix="deeplake-jvm-bench-")
    try:
        results = run(spark, workdir, rows=args.rows, dim=args.dim, files=args.files, repeats=args.repeats,
                      only=tuple(c for c in args.cases.split(",") if c))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    mib = args.rows * args.dim * 4 / 2**20
    print(f"rows={args.rows} dim={args.dim} ({mib:.0f} MiB of float32) files={args.files} master={args.master} "
          f"conf={settings} load average (1, 5, 15 min) before {load_before} after {os.getloadavg()}")
    for r in results:
        print(f"{r['case']:<11} {r['system']:<13} {r['seconds']:>8.3f} s {r['cpu_seconds']:>8.3f} s CPU "
              f"{r['rows_per_s']:>10} rows/s  {r['result']}")
    print(json.dumps({"results": results, "ratios": ratios(results)}, indent=1))
    spark.stop()


if __name__ == "__main__":
    main()
