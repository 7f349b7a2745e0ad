"""Case 4, query to first batch: a SQL filter keeping 1% of the rows, joined with a label table,
then the first batch of tensors out of the loader.

Rows: ``id``, ``day`` (clustered: rows arrive in day order, 100 days), ``label`` (1,000 classes),
``features`` float32[64] stored in 1 MiB chunks. ``day < 1`` keeps 1%, ``day < 10`` keeps 10%.
Bytes read from chunk files are counted with ``DEEPLAKE_SPARK_IO_LOG`` (every process appends
``<path> <nbytes>``) over a full pass of the kept rows, for both selectivities: they must scale
with the rows kept, not with the dataset.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from typing import Any

import numpy as np

from bench.cases import Context, failed, spark_error_text, unavailable
from bench.measure import NotAvailable, Row, run_job, worker_python

log = logging.getLogger(__name__)
CASE = "4 query"
DAYS = 100
LABELS = 1_000
FEATURES = 64
CHUNK_BYTES = 1 << 20
BATCH_ROWS = 100_000


def query_columns(lo: int, hi: int, rows: int, days: int = DAYS) -> dict[str, np.ndarray]:
    ids = np.arange(lo, hi, dtype=np.int64)
    rng = np.random.default_rng([13, lo])
    return {"id": ids, "day": ids * days // rows, "label": rng.integers(0, LABELS, size=hi - lo).astype(np.int64),
            "features": rng.standard_normal((hi - lo, FEATURES), dtype=np.float32)}


# ------------------------------------------------------------------ worker functions (fresh processes)
def build_ours(path: str, rows: int) -> dict[str, Any]:
    import deeplake_spark as dls

    shutil.rmtree(path, ignore_errors=True)
    start = time.perf_counter()
    ds = dls.create(path, {"id": "int64", "day": "int64", "label": "int64",
                           "features": dls.tensor("embedding", shape=(FEATURES,), chunk_size=CHUNK_BYTES)})
    for lo in range(0, rows, BATCH_ROWS):
        ds.append(query_columns(lo, min(rows, lo + BATCH_ROWS), rows))
    return {"seconds": time.perf_counter() - start, "rows": rows}


def build_parquet(path: str, rows: int) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    for lo in range(0, rows, BATCH_ROWS):
        cols = query_columns(lo, min(rows, lo + BATCH_ROWS), rows)
        flat = pa.array(cols.pop("features").reshape(-1))
        table = pa.table({**cols, "features": pa.FixedSizeListArray.from_arrays(flat, FEATURES)})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=BATCH_ROWS // 4)
    if writer is not None:
        writer.close()
    return {"rows": rows}


def labels_table(path: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"label": np.arange(LABELS, dtype=np.int64),
                             "name": [f"class_{i:04d}" for i in range(LABELS)]}), path)


def _join_labels(rows: Any, labels_path: str) -> Any:
    """Inner join with the label table (pyarrow joins cannot carry struct/list columns: join the
    keys with a row number, then take the wide columns)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    keys = pa.table({"label": rows.column("label"), "_row": pa.array(np.arange(rows.num_rows))})
    matched = keys.join(pq.read_table(labels_path), "label").sort_by("_row")
    taken = rows.take(matched.column("_row"))
    return taken.append_column("name", matched.column("name"))


def ours_first_batch(path: str, keep_days: int, labels_path: str, batch_size: int) -> dict[str, Any]:
    """Python API: filtered Arrow scan, pyarrow join, first ``batch_size`` tensors; then a full pass."""
    import pyarrow.compute as pc

    import deeplake_spark as dls

    start = time.perf_counter()
    ds = dls.open(path)
    rows = ds.table(columns=["id", "label", "features"], filter=pc.field("day") < keep_days)
    joined = _join_labels(rows, labels_path)
    refs = joined.column("features").slice(0, batch_size).to_pylist()
    batch = np.stack(ds.read_tensor("features", refs))
    first_s = time.perf_counter() - start
    if batch.shape != (min(batch_size, joined.num_rows), FEATURES):
        raise RuntimeError(f"first batch has shape {batch.shape}")
    reader = ds.reader(cache_bytes=CHUNK_BYTES * 2)
    all_refs = joined.column("features").to_pylist()
    for lo in range(0, len(all_refs), batch_size):
        reader.read("features", all_refs[lo : lo + batch_size])
    return {"seconds": first_s, "rows_kept": joined.num_rows}


def parquet_first_batch(path: str, keep_days: int, labels_path: str, batch_size: int) -> dict[str, Any]:
    import pyarrow.parquet as pq

    start = time.perf_counter()
    rows = pq.read_table(path, columns=["id", "label", "features"], filters=[("day", "<", keep_days)])
    joined = _join_labels(rows, labels_path)
    batch = joined.slice(0, batch_size).column("features").combine_chunks().flatten().to_numpy()
    batch = batch.reshape(-1, FEATURES)
    return {"seconds": time.perf_counter() - start, "rows_kept": joined.num_rows}


# ------------------------------------------------------------------ bench side
def _io_bytes_since(log_path: str, offset: int, marker: str = "_tensors/") -> tuple[int, int, int]:
    """(bytes read from chunk files, chunk reads, new offset) from the IO log after ``offset``."""
    if not os.path.exists(log_path):
        return 0, 0, offset
    with open(log_path, "rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace")
        end = f.tell()
    total = reads = 0
    for line in text.splitlines():
        path, _, size = line.rpartition(" ")
        if marker in path and size.isdigit():
            total += int(size)
            reads += 1
    return total, reads, end


def _log_offset(log_path: str) -> int:
    return os.path.getsize(log_path) if os.path.exists(log_path) else 0


def _chunk_bytes(path: str) -> int:
    total = 0
    for root, _, files in os.walk(os.path.join(path, "_tensors")):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def _spark_first_batch(ctx: Context, path: str, keep_days: int, labels_path: str) -> dict[str, Any]:
    spark = ctx.spark()
    import deeplake_spark

    if "registered" not in ctx.facts.get("spark_deeplake_source", ""):
        raise NotAvailable("deeplake Spark source: " + ctx.facts.get("spark_deeplake_source", "?"))
    start = time.perf_counter()
    df = spark.read.format("deeplake").load(path)
    df.createOrReplaceTempView("q_rows")
    spark.read.parquet(labels_path).createOrReplaceTempView("q_labels")
    query = spark.sql(f"SELECT r.id, r.features, l.name FROM q_rows r JOIN q_labels l ON r.label = l.label "
                      f"WHERE r.day < {keep_days}")
    converter = deeplake_spark.make_spark_converter(query)
    loader_cm = converter.make_torch_dataloader(batch_size=ctx.sizes.batch_size, num_workers=ctx.sizes.workers,
                                                num_epochs=1)
    if hasattr(loader_cm, "__enter__"):
        with loader_cm as loader:
            next(iter(loader))
    else:
        next(iter(loader_cm))
    return {"seconds": time.perf_counter() - start}


def _spark_row(ctx: Context, ours_path: str, keep_days: int, labels_path: str, log_path: str) -> Row:
    """Spark SQL filter + join over the deeplake source, then the converter's first batch."""
    pct = f"{keep_days}%"
    offset = _log_offset(log_path)
    try:
        res = _spark_first_batch(ctx, ours_path, keep_days, labels_path)
        nbytes, reads, _ = _io_bytes_since(log_path, offset)
        return Row(CASE, "ours Spark SQL + converter", f"keep {pct}", value=res["seconds"], unit="s to first batch",
                   extra={"chunk_mb_read": nbytes / 1e6, "chunk_reads": reads},
                   note="includes Spark planning of the Python data source")
    except NotAvailable as e:
        return unavailable(CASE, "ours Spark SQL + converter", f"keep {pct}", str(e))
    except Exception as e:  # noqa: BLE001 - Spark wraps source errors in its own exception types
        return failed(CASE, "ours Spark SQL + converter", f"keep {pct}", RuntimeError(spark_error_text(e)))


def run(ctx: Context) -> list[Row]:
    rows_n = ctx.sizes.query_rows
    work = os.path.join(ctx.sizes.work, "stores")
    os.makedirs(work, exist_ok=True)
    ours_path = os.path.join(work, f"query_ours_{rows_n}")
    dl4_path = os.path.join(work, f"query_deeplake4_{rows_n}")
    pq_path = os.path.join(work, f"query_parquet_{rows_n}.parquet")
    labels_path = os.path.join(work, "query_labels.parquet")
    labels_table(labels_path)
    log_path = os.environ["DEEPLAKE_SPARK_IO_LOG"]
    out: list[Row] = []
    builds = [("ours", ours_path, "cases.query:build_ours", None), ("deeplake4", dl4_path,
              "peers.deeplake4:build_query", worker_python("deeplake4")),
              ("parquet", pq_path, "cases.query:build_parquet", None)]
    built = {}
    for system, path, function, python in builds:
        if os.path.exists(path + ".done"):
            built[system] = True
            continue
        try:
            kwargs: dict[str, Any] = {"path": path, "rows": rows_n}
            if system == "deeplake4":
                kwargs["days"] = DAYS
            run_job(function, python=python, **kwargs)
            ctx.mark_built(path, {"rows": rows_n})
            built[system] = True
        except NotAvailable as e:
            out.append(unavailable(CASE, system, "query", str(e)))
        except RuntimeError as e:
            out.append(failed(CASE, f"{system} (build)", "query", e))

    total_chunk_bytes = _chunk_bytes(ours_path) if built.get("ours") else 0
    kept_bytes: dict[int, int] = {}
    for keep_days in (1, 10):
        pct = f"{keep_days}%"
        if built.get("ours"):
            offset = _log_offset(log_path)
            try:
                res = run_job("cases.query:ours_first_batch", path=ours_path, keep_days=keep_days,
                              labels_path=labels_path, batch_size=ctx.sizes.batch_size)
                nbytes, reads, _ = _io_bytes_since(log_path, offset)
                kept_bytes[keep_days] = nbytes
                out.append(Row(CASE, "ours Python API", f"keep {pct}", value=res["seconds"], unit="s to first batch",
                               extra={"rows_kept": res["rows_kept"], "chunk_mb_read_full_pass": nbytes / 1e6,
                                      "chunk_reads": reads, "chunk_mb_total": total_chunk_bytes / 1e6}))
            except NotAvailable as e:
                out.append(unavailable(CASE, "ours Python API", f"keep {pct}", str(e)))
            except RuntimeError as e:
                out.append(failed(CASE, "ours Python API", f"keep {pct}", e))
        if keep_days == 1:  # the case's question; Spark's planning dominates, so no second Spark query
            out.append(_spark_row(ctx, ours_path, keep_days, labels_path, log_path))
        for system, label, function, path in (
            ("deeplake4", "deeplake4 TQL + batches()", "peers.deeplake4:query_first_batch", dl4_path),
            ("parquet", "pyarrow parquet filter", "cases.query:parquet_first_batch", pq_path),
        ):
            if not built.get(system):
                continue
            try:
                res = run_job(function, python=worker_python(system), path=path, keep_days=keep_days,
                              labels_path=labels_path, batch_size=ctx.sizes.batch_size)
                out.append(Row(CASE, label, f"keep {pct}", value=res["seconds"], unit="s to first batch",
                               extra={"rows_kept": res["rows_kept"]}))
            except NotAvailable as e:
                out.append(unavailable(CASE, label, f"keep {pct}", str(e)))
            except RuntimeError as e:
                out.append(failed(CASE, label, f"keep {pct}", e))
    if 1 in kept_bytes and 10 in kept_bytes and total_chunk_bytes:
        ctx.facts["query_bytes"] = {"keep_1pct_mb": kept_bytes[1] / 1e6, "keep_10pct_mb": kept_bytes[10] / 1e6,
                                    "total_mb": total_chunk_bytes / 1e6, "chunk_mb": CHUNK_BYTES / 1e6}
    return out
