"""Case 1, ingest: the same samples written by each system (samples/s).

- ours (Python API): ``ds.append`` in commits of 1,000 rows (JPEG bytes stored as-is).
- ours (Spark write): ``df.write.format("deeplake")`` of a DataFrame read from the staged Parquet
  (the Python Data Source).
- ours (Spark JVM write): ``df.write.format("deeplake-jvm")`` of the same DataFrame (the JVM writer:
  no Python workers), in the same session and run.
- Spark Parquet write: the same DataFrame written by ``df.write.parquet`` (snappy, Spark's default).
- Deep Lake 4: ``ds.append`` + ``ds.commit`` per 1,000 rows.
- pyarrow Parquet and a JPEG folder: reference points (no Spark, no commits).

The Spark writes are timed best of two when a write takes under 30 s (first-use costs of the
session land on whichever writer runs first otherwise).

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


def _spark_writes(ctx: Context, kind: str) -> list[Row]:
    rows: list[Row] = []
    try:
        spark = ctx.spark()
    except NotAvailable as e:
        return [unavailable(CASE, system, kind, str(e))
                for system in ("spark parquet write", "ours (Spark write)", "ours (Spark JVM write)")]
    source = _spark_source(ctx, kind)
    n = ctx.count(kind)
    out_dir = os.path.join(ctx.sizes.work, "spark_out")
    shutil.rmtree(out_dir, ignore_errors=True)
    df = spark.read.parquet(source)
    df.count()  # metadata warm-up, the same for both writers

    target = os.path.join(out_dir, f"parquet_{kind}")
    seconds = _best_time(lambda: df.write.mode("overwrite").parquet(target), target)
    rows.append(_row("spark parquet write", kind, {"rows": n, "seconds": seconds, "disk_bytes": _du(target)}))

    for system, fmt in (("ours (Spark write)", "deeplake"), ("ours (Spark JVM write)", "deeplake-jvm")):
        target = os.path.join(out_dir, f"{fmt}_{kind}")
        if "registered" not in ctx.facts.get("spark_deeplake_source", ""):
            rows.append(unavailable(CASE, system, kind, "not yet: " + ctx.facts.get("spark_deeplake_source", "")))
            continue
        try:
            writer = df.write.format(fmt).mode("overwrite")
            for key, value in _spark_schema_options(kind).items():
                writer = writer.option(key, value)
            seconds = _best_time(lambda w=writer, t=target: w.save(t), target)
            rows.append(_row(system, kind, {"rows": n, "seconds": seconds, "disk_bytes": _du(target)}))
        except Exception as e:  # Spark wraps the sources' errors in its own types
            rows.append(failed(CASE, system, kind, RuntimeError(spark_error_text(e))))
    shutil.rmtree(out_dir, ignore_errors=True)
    return rows


def _best_time(write: Any, target: str) -> float:
    """Seconds of ``write`` into a fresh ``target``; a write under 30 s runs twice and the faster counts,
    so a writer that happens to pay the session's first-use costs (class loading, JIT) is not
    penalized against the ones after it. Every Spark writer here is timed the same way."""
    times = []
    for _ in range(2):
        shutil.rmtree(target, ignore_errors=True)
        start = time.perf_counter()
        write()
        times.append(time.perf_counter() - start)
        if times[0] >= 30:
            break
    return min(times)


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
