"""Case 2, stream to torch: samples/s and MB/s of decoded samples, 2 workers, batch 64, shuffled.

Each loader runs in a fresh process (its workers are its children) except the Spark converter,
which needs the bench's SparkSession. MB/s counts the bytes of the batches a training loop
receives (decoded uint8 images / float32 rows), so it is comparable across systems.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from bench.cases import Context, failed, spark_error_text, unavailable
from bench.measure import NotAvailable, Row, consume, run_job, worker_python

log = logging.getLogger(__name__)
CASE = "2 stream"
KINDS = ("images", "tensors", "embeddings")

#: (row label, store system, worker function, kinds it can do)
SYSTEMS = (
    ("ours loader", "ours", "ours:stream", KINDS),
    ("deeplake4 pytorch()", "deeplake4", "peers.deeplake4:stream_torch", KINDS),
    ("deeplake4 batches()", "deeplake4", "peers.deeplake4:stream_batches", KINDS),
    ("parquet+pyarrow", "parquet", "peers.parquet:stream", KINDS),
    ("jpeg folder+PIL", "jpeg_folder", "peers.jpeg_folder:stream", ("images",)),
)


def stream_row(ctx: Context, label: str, system: str, function: str, kind: str, *, case: str = CASE,
               n: int | None = None, python: str | None = None) -> Row:
    """Run ``function`` (a worker's ``stream``) on ``system``'s store of ``kind`` in a fresh process."""
    try:
        path = ctx.ensure_store(system, kind, n)
        result = run_job(function, python=python or worker_python(system), path=path, kind=kind,
                         batch_size=ctx.sizes.batch_size, workers=ctx.sizes.workers,
                         min_seconds=ctx.sizes.stream_min_seconds)
    except NotAvailable as e:
        return unavailable(case, label, kind, str(e))
    except RuntimeError as e:
        return failed(case, label, kind, e)
    return _row(label, kind, result, case=case)


def _row(label: str, kind: str, result: dict[str, Any], *, case: str = CASE, note: str = "") -> Row:
    extra = {"mb_per_s": result["mb_per_s"], "cpu_ms_per_sample": result.get("cpu_ms_per_sample"),
             "first_batch_s": result["first_batch_s"], "epochs": result["epochs"],
             "epoch_samples": result["epoch_samples"], "peak_rss_mb": result.get("peak_rss", 0) / 1e6}
    if label.startswith("deeplake4 batches"):
        note = note or "Deep Lake 4's own threads, not shuffled"
    if label.startswith("parquet"):
        note = note or "shuffles row groups + rows within a group"
    if label.startswith("petastorm"):
        note = note or "make_batch_reader (2 processes) + its DataLoader, shuffling queue 256; pyarrow 10.0.1 venv"
    return Row(case, label, kind, value=result["samples_per_s"], unit="samples/s", extra=extra, note=note)


def converter_row(ctx: Context, kind: str) -> Row:
    """``make_spark_converter`` over ``spark.read.format("deeplake")`` of our store (in this process)."""
    label = "ours spark converter"
    try:
        spark = ctx.spark()
        import deeplake_spark

        path = ctx.ensure_store("ours", kind)
        df = spark.read.format("deeplake").load(path)
        start = time.perf_counter()
        converter = deeplake_spark.make_spark_converter(df)
        make_s = time.perf_counter() - start
        loader_cm = converter.make_torch_dataloader(batch_size=ctx.sizes.batch_size, num_workers=ctx.sizes.workers,
                                                    shuffle=True, num_epochs=1)
    except NotAvailable as e:
        return unavailable(CASE, label, kind, str(e))
    except (ImportError, NotImplementedError, AttributeError) as e:
        return unavailable(CASE, label, kind, f"{type(e).__name__}: {e}")
    except Exception as e:  # noqa: BLE001 - Spark wraps source errors (AnalysisException etc.): record, go on
        return failed(CASE, label, kind, RuntimeError(spark_error_text(e)))
    try:
        if hasattr(loader_cm, "__enter__"):
            with loader_cm as loader:
                result = consume(lambda: loader, min_seconds=ctx.sizes.stream_min_seconds)
        else:
            result = consume(lambda: loader_cm, min_seconds=ctx.sizes.stream_min_seconds)
    except (RuntimeError, ValueError, OSError) as e:
        return failed(CASE, label, kind, e)
    return _row(label, kind, result, note=f"converter made in {make_s:.2f}s; runs in the Spark driver process")


def run(ctx: Context) -> list[Row]:
    """Every loader on every kind; with ``rounds`` > 1 the systems alternate and the best round counts."""
    best: dict[tuple[str, str], Row] = {}
    for round_no in range(ctx.sizes.rounds):
        for kind in KINDS:
            for label, system, function, kinds in SYSTEMS:
                if kind in kinds:
                    log.info("stream %s: %s (round %d)", kind, label, round_no + 1)
                    _keep_best(best, stream_row(ctx, label, system, function, kind))
            _keep_best(best, converter_row(ctx, kind))
    return list(best.values())


def _keep_best(best: dict[tuple[str, str], Row], row: Row) -> None:
    key = (row.system, row.kind)
    old = best.get(key)
    if old is None or (row.available and (not old.available or row.value > old.value)):  # type: ignore[operator]
        best[key] = row
