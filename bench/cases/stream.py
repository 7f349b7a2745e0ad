"""Case 2, stream to torch: samples/s, MB/s and CPU ms per sample of every loader on every data kind.

Batch 64 (``tiny``: 256), 2 workers, shuffled unless the row says otherwise. Kinds (``bench/data.py``):
``tensors`` uint8[224,224,3] (LZ4 where the system has it), ``raw`` the same arrays uncompressed,
``images`` 256x256 JPEG, ``varjpeg`` variable-size JPEG + a resize-to-224 transform, ``f16``
float16[3,128,128], ``tiny`` uint8[28,28] (200k in the full run), ``embeddings`` float32[768] (full run).
Peers on every kind: Mosaic Streaming, Lance, Deep Lake 4 (``pytorch()`` shuffled and ``batches()``
unshuffled) and Parquet + pyarrow; plus ours with 0 workers, and ours unshuffled on ``raw`` and ``tiny``.

Each loader runs in a fresh process (its workers are its children) except the Spark converter,
which needs the bench's SparkSession. MB/s counts the bytes of the batches a training loop
receives (decoded uint8 images / float32 rows), so it is comparable across systems.
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass
from typing import Any

from bench.cases import Context, failed, spark_error_text, unavailable
from bench.measure import NotAvailable, Row, consume, run_job, worker_python

log = logging.getLogger(__name__)
CASE = "2 stream"
ALL_KINDS = ("tensors", "raw", "images", "varjpeg", "f16", "tiny", "embeddings")
#: kinds the Spark converter row runs on (full mode only: it needs the in-process SparkSession)
CONVERTER_KINDS = ("images", "tensors", "embeddings")


@dataclass(frozen=True)
class System:
    """One row per kind: ``label`` measured by ``function`` on ``store``'s copy of the data."""

    label: str
    store: str
    function: str
    kinds: tuple[str, ...] = ALL_KINDS
    workers: int | None = None  # None: the mode's (2)
    shuffle: bool = True
    note: str = ""


OURS = "ours loader"
OURS_W0 = "ours loader, 0 workers"
#: ours with the default workers, measured in the same process as OURS_W0, rounds interleaved
OURS_PAIRED = "ours loader, interleaved with 0 workers"
OURS_UNSHUFFLED = "ours loader, unshuffled"
MOSAIC = "mosaic streaming"
LANCE = "lance take"
DL4_TORCH = "deeplake4 pytorch()"
DL4_BATCHES = "deeplake4 batches()"
PARQUET = "parquet+pyarrow"

SYSTEMS = (
    System(OURS, "ours", "ours:stream"),
    System(OURS_W0, "ours", "ours:stream_workers_ab",
           note="num_workers=0: in-process; median of the rounds interleaved with 2 workers in one process"),
    System(OURS_UNSHUFFLED, "ours", "ours:stream", kinds=("raw", "tiny"), shuffle=False,
           note="shuffle=False, 2 workers (vs Deep Lake 4 batches(), unshuffled too)"),
    System(MOSAIC, "mosaic", "peers.mosaic:stream",
           note="streaming-community 0.14.2: MDSWriter shards (uncompressed) + StreamingDataset(shuffle=True)"),
    System(LANCE, "lance", "peers.lance:stream",
           note="pylance 14.0.2: map-style, one ds.take(batch) per batch, global shuffle, persistent workers"),
    System(DL4_TORCH, "deeplake4", "peers.deeplake4:stream_torch"),
    System(DL4_BATCHES, "deeplake4", "peers.deeplake4:stream_batches",
           kinds=tuple(k for k in ALL_KINDS if k != "varjpeg"), shuffle=False,
           note="Deep Lake 4's own threads, not shuffled"),
    System(PARQUET, "parquet", "peers.parquet:stream", note="shuffles row groups + rows within a group"),
    System("jpeg folder+PIL", "jpeg_folder", "peers.jpeg_folder:stream", kinds=("images",)),
)


def batch_size(ctx: Context, kind: str) -> int:
    return ctx.sizes.tiny_batch_size if kind == "tiny" else ctx.sizes.batch_size


def stream_row(ctx: Context, label: str, system: str, function: str, kind: str, *, case: str = CASE,
               n: int | None = None, python: str | None = None, workers: int | None = None,
               shuffle: bool | None = None, note: str = "", extra: dict[str, Any] | None = None) -> Row:
    """Run ``function`` (a worker's ``stream``) on ``system``'s store of ``kind`` in a fresh process
    (``extra``: more keyword arguments for it, e.g. ``{"cache_bytes": 0}`` for ours)."""
    kwargs: dict[str, Any] = dict(extra or {})
    if shuffle is not None:
        kwargs["shuffle"] = shuffle
    try:
        path = ctx.ensure_store(system, kind, n)
        result = run_job(function, python=python or worker_python(system), path=path, kind=kind,
                         batch_size=batch_size(ctx, kind), workers=ctx.sizes.workers if workers is None else workers,
                         min_seconds=ctx.sizes.stream_min_seconds, **kwargs)
    except NotAvailable as e:
        return unavailable(case, label, kind, str(e))
    except RuntimeError as e:
        return failed(case, label, kind, e)
    return _row(label, kind, result, case=case, note=note)


def _row(label: str, kind: str, result: dict[str, Any], *, case: str = CASE, note: str = "") -> Row:
    extra = {"mb_per_s": result["mb_per_s"], "cpu_ms_per_sample": result.get("cpu_ms_per_sample"),
             "first_batch_s": result["first_batch_s"], "epochs": result["epochs"],
             "epoch_samples": result["epoch_samples"]}
    if result.get("peak_rss"):
        extra["peak_rss_mb"] = result["peak_rss"] / 1e6
    if result.get("round_ratios"):
        ratios = result["round_ratios"]
        extra.update(median_round_ratio=statistics.median(ratios), round_ratio_min=min(ratios),
                     round_ratio_max=max(ratios), rounds_won=sum(r >= 1 for r in ratios), rounds=len(ratios))
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
        loader_cm = converter.make_torch_dataloader(batch_size=batch_size(ctx, kind), num_workers=ctx.sizes.workers,
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


def system_rows(ctx: Context, system: System, kinds: list[str], *, case: str = CASE) -> list[Row]:
    """``system`` on each of ``kinds`` in ONE fresh process (one interpreter start and import for all)."""
    rows: list[Row] = []
    jobs: list[dict[str, Any]] = []
    job_kinds: list[str] = []
    for kind in kinds:
        try:
            path = ctx.ensure_store(system.store, kind)
        except NotAvailable as e:
            rows.append(unavailable(case, system.label, kind, str(e)))
            continue
        except RuntimeError as e:
            rows.append(failed(case, system.label, kind, e))
            continue
        kwargs: dict[str, Any] = {"path": path, "kind": kind, "batch_size": batch_size(ctx, kind),
                                  "workers": ctx.sizes.workers if system.workers is None else system.workers,
                                  "min_seconds": ctx.sizes.stream_min_seconds}
        if system.label == OURS_W0:  # both worker counts, interleaved in one process (stream_workers_ab)
            kwargs["workers"] = ctx.sizes.workers
            kwargs["min_seconds"] = ctx.sizes.workers_ab_run_s
            kwargs["rounds"] = ctx.sizes.workers_ab_rounds
            kwargs["budget_seconds"] = ctx.sizes.workers_ab_budget_s
        if not system.shuffle:
            kwargs["shuffle"] = False
        jobs.append({"function": system.function, "kwargs": kwargs})
        job_kinds.append(kind)
    if not jobs:
        return rows
    try:
        got = run_job("measure:stream_many", python=worker_python(system.store), jobs=jobs)["results"]
    except NotAvailable as e:
        return rows + [unavailable(case, system.label, kind, str(e)) for kind in job_kinds]
    except RuntimeError as e:
        return rows + [failed(case, system.label, kind, e) for kind in job_kinds]
    for kind, result in zip(job_kinds, got):
        if "not_available" in result:
            rows.append(unavailable(case, system.label, kind, result["not_available"]))
        elif "error" in result:
            rows.append(failed(case, system.label, kind, RuntimeError(result["error"])))
        else:
            rows.append(_row(system.label, kind, result, case=case, note=system.note))
            if "paired" in result:
                paired = {**result["paired"], "round_ratios": result.get("round_ratios")}
                rows.append(_row(OURS_PAIRED, kind, paired, case=case,
                                 note=f"{ctx.sizes.workers} workers, rounds interleaved with {OURS_W0!r}"))
    return rows


def run(ctx: Context) -> list[Row]:
    """Every loader on every kind; with ``rounds`` > 1 the systems alternate and the best round counts.

    Each system streams all its kinds in one fresh process (``measure.stream_many``), systems one after
    another; stores are built (and cached under bench/_work) before the first measurement.
    """
    best: dict[tuple[str, str], Row] = {}
    for round_no in range(ctx.sizes.rounds):
        for system in SYSTEMS:
            if not ctx.wants(system.label):
                continue
            kinds = [k for k in ctx.sizes.stream_kinds if k in system.kinds]
            log.info("stream %s: %s (round %d)", system.label, ",".join(kinds), round_no + 1)
            for row in system_rows(ctx, system, kinds):
                _keep_best(best, row)
        for kind in ctx.sizes.stream_kinds:
            if ctx.sizes.stream_converter and kind in CONVERTER_KINDS and ctx.wants("ours spark converter"):
                _keep_best(best, converter_row(ctx, kind))
    order = {(s.label, k): (ki, si) for si, s in enumerate(SYSTEMS) for ki, k in enumerate(ALL_KINDS)}
    return sorted(best.values(), key=lambda r: order.get((r.system, r.kind), (ALL_KINDS.index(r.kind)
                                                                              if r.kind in ALL_KINDS else 99, 99)))


def _keep_best(best: dict[tuple[str, str], Row], row: Row) -> None:
    key = (row.system, row.kind)
    old = best.get(key)
    if old is None or (row.available and (not old.available or row.value > old.value)):  # type: ignore[operator]
        best[key] = row
