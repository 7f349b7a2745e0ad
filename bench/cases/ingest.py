"""Case 1, ingest: the same samples written by each system (samples/s).

- ours (Python API): ``ds.append`` in commits of 1,000 rows (JPEG bytes stored as-is).
- ours (Spark write): ``df.write.format("deeplake")`` of a DataFrame read from the staged Parquet
  (the Python Data Source).
- ours (Spark JVM write): ``df.write.format("deeplake-jvm")`` of the same DataFrame (the JVM writer:
  no Python workers), in the same session and run.
- Spark Parquet write: the same DataFrame written by ``df.write.parquet`` (snappy, Spark's default).
- Deep Lake 4: ``ds.append`` + ``ds.commit`` per 1,000 rows.
- pyarrow Parquet and a JPEG folder: reference points (no Spark, no commits).

The Spark writes take turns for up to three rounds (while a round of all of them stays under 60 s),
each timed best of its rounds, with its least CPU seconds (Spark JVM + Python workers) next to it:
on a shared machine wall times swing with the load (a JVM/Parquet ratio of 3.65x in one run, 0.98x in
another, best of two back-to-back writes each), CPU seconds much less.

The stores written here are the ones the later cases read.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from typing import Any

from bench.cases import STORE_MODULES, Context, failed, spark_error_text, unavailable
from bench.measure import NotAvailable, Row, run_job, worker_python

log = logging.getLogger(__name__)
CASE = "1 ingest"
KINDS = ("images", "tensors", "embeddings")


def _row(system: str, kind: str, result: dict[str, Any], note: str = "") -> Row:
    rows = result["rows"]
    return Row(CASE, system, kind, value=rows / result["seconds"], unit="samples/s",
               extra={"seconds": result["seconds"], "rows": rows, "disk_mb": result.get("disk_bytes", 0) / 1e6,
                      "peak_rss_mb": result.get("peak_rss", 0) / 1e6},
               note=note)


def _worker_ingest(ctx: Context, system: str, kind: str) -> Row:
    path = ctx.store(system, kind)
    for leftover in (path, path + ".done"):
        if os.path.isdir(leftover):
            shutil.rmtree(leftover)
        elif os.path.exists(leftover):
            os.remove(leftover)
    try:
        result = run_job(f"{STORE_MODULES[system]}:build", python=worker_python(system), path=path, kind=kind,
                         n=ctx.count(kind))
    except NotAvailable as e:
        return unavailable(CASE, system, kind, str(e))
    except RuntimeError as e:
        return failed(CASE, system, kind, e)
    ctx.mark_built(path, result)
    return _row(system, kind, result)


def _spark_schema_options(kind: str) -> dict[str, str]:
    """Tensor options for the deeplake sink; binary JPEG and array<float> columns are inferred."""
    if kind == "tensors":
        return {"tensor.image.htype": "generic", "tensor.image.dtype": "uint8", "tensor.image.compression": "lz4"}
    return {}


def _spark_source(ctx: Context, kind: str) -> str:
    """Parquet the Spark writers read: the pyarrow store, except tensors as list<uint8> (Spark has
    no uint8 array type for raw bytes: it reads them as array<smallint>)."""
    if kind != "tensors":
        return ctx.store("parquet", kind)
    path = os.path.join(ctx.sizes.work, "stores", f"spark_stage_tensors_{ctx.count(kind)}.parquet")
    if not os.path.exists(path):
        import numpy as np
        import pyarrow as pa
        import pyarrow.parquet as pq

        from bench import data

        samples, labels = data.tensors(ctx.count(kind))
        writer = None
        for lo in range(0, len(labels), 500):
            block = np.ascontiguousarray(samples[lo : lo + 500]).reshape(-1)
            width = data.TENSOR_SIZE * data.TENSOR_SIZE * 3
            offsets = pa.array(np.arange(0, block.size + 1, width, dtype=np.int32))
            col = pa.ListArray.from_arrays(offsets, pa.array(block))
            table = pa.table({"image": col, "label": pa.array(labels[lo : lo + 500])})
            writer = writer or pq.ParquetWriter(path + ".tmp", table.schema, compression="lz4")
            writer.write_table(table)
        if writer is not None:
            writer.close()
        os.replace(path + ".tmp", path)
    return path


SPARK_SYSTEMS = (("spark parquet write", None), ("ours (Spark write)", "deeplake"),
                 ("ours (Spark JVM write)", "deeplake-jvm"))
#: Rounds of the Spark writes when one round of all of them takes under ROUND_LIMIT_S.
ROUNDS, ROUND_LIMIT_S = 3, 60.0


def _spark_writes(ctx: Context, kind: str) -> list[Row]:
    try:
        spark = ctx.spark()
    except NotAvailable as e:
        return [unavailable(CASE, system, kind, str(e)) for system, _ in SPARK_SYSTEMS]
    source = _spark_source(ctx, kind)
    n = ctx.count(kind)
    out_dir = os.path.join(ctx.sizes.work, "spark_out")
    shutil.rmtree(out_dir, ignore_errors=True)
    df = spark.read.parquet(source)
    df.count()  # metadata warm-up, the same for every writer

    rows: list[Row] = []
    writers: dict[str, tuple[Any, str]] = {}
    for system, fmt in SPARK_SYSTEMS:
        target = os.path.join(out_dir, f"{fmt or 'parquet'}_{kind}")
        if fmt is None:
            writers[system] = (lambda t=target: df.write.mode("overwrite").parquet(t), target)
            continue
        if "registered" not in ctx.facts.get("spark_deeplake_source", ""):
            rows.append(unavailable(CASE, system, kind, "not yet: " + ctx.facts.get("spark_deeplake_source", "")))
            continue
        writer = df.write.format(fmt).mode("overwrite")
        for key, value in _spark_schema_options(kind).items():
            writer = writer.option(key, value)
        writers[system] = (lambda w=writer, t=target: w.save(t), target)
    timings = _interleaved(writers)
    for system, (seconds, cpu, error) in timings.items():
        if error is not None:
            rows.append(failed(CASE, system, kind, RuntimeError(spark_error_text(error))))
            continue
        target = writers[system][1]
        row = _row(system, kind, {"rows": n, "seconds": seconds, "disk_bytes": _du(target)},
                   note=f"best of {len(cpu)} interleaved rounds")
        row.extra["cpu_s"] = round(min(cpu), 3)
        rows.append(row)
    shutil.rmtree(out_dir, ignore_errors=True)
    return rows


def _interleaved(writers: dict[str, tuple[Any, str]]) -> dict[str, tuple[float, list[float], BaseException | None]]:
    """Best wall seconds and the CPU seconds of each round (Spark JVM + Python workers) per writer.

    The writers take turns, round after round (up to ROUNDS while a round stays under ROUND_LIMIT_S),
    each into a fresh target: on a shared machine the load drifts, and taking turns spreads it over all
    writers instead of landing on whichever ran at a busy moment; the first round also pays the
    session's first-use costs (class loading, JIT) for everyone. Best-of wall time is the headline;
    CPU seconds (least of the rounds) are a measure load does not stretch the way it stretches wall time.
    """
    from bench.measure import cpu_seconds

    walls: dict[str, list[float]] = {name: [] for name in writers}
    cpus: dict[str, list[float]] = {name: [] for name in writers}
    errors: dict[str, BaseException | None] = dict.fromkeys(writers)
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for name, (write, target) in writers.items():
            if errors[name] is not None:
                continue
            shutil.rmtree(target, ignore_errors=True)
            cpu0, t0 = cpu_seconds(), time.perf_counter()
            try:
                write()
            except Exception as e:  # Spark wraps the sources' errors in its own types
                errors[name] = e
                continue
            walls[name].append(time.perf_counter() - t0)
            cpus[name].append(cpu_seconds() - cpu0)
        if time.perf_counter() - started >= ROUND_LIMIT_S:
            break
    return {name: (min(walls[name]) if walls[name] else 0.0, cpus[name], errors[name]) for name in writers}


def _du(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def run(ctx: Context) -> list[Row]:
    rows: list[Row] = []
    for kind in KINDS:
        log.info("ingest %s (%d samples)", kind, ctx.count(kind))
        rows.append(_worker_ingest(ctx, "parquet", kind))
        rows.append(_worker_ingest(ctx, "ours", kind))
        rows.append(_worker_ingest(ctx, "deeplake4", kind))
        if kind == "images":
            rows.append(_worker_ingest(ctx, "jpeg_folder", kind))
        rows.extend(_spark_writes(ctx, kind))
    names = {"parquet": "pyarrow parquet write", "ours": "ours (Python API)", "deeplake4": "deeplake4 append",
             "jpeg_folder": "jpeg folder write"}
    for row in rows:
        row.system = names.get(row.system, row.system)
    return rows
