"""A writer SIGKILLed at injected and random points, again and again, on one dataset."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from reliability_support import (
    added_rows_by_version,
    audit_files,
    check_samples,
    create_dataset,
    make_batch,
    rows_by_batch,
)

import deeplake_spark as dls

KILL_POINTS = ("chunk_before", "chunk_partial", "chunk_after", "before_commit", "during_commit", "after_commit",
               "random")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def crash_child(path: str, point: str, nth: int, delay_s: float, batch: int, rows: int, ready: Any) -> None:
    """Append batches and get SIGKILLed at ``point`` (fault injection in this child process only)."""
    import uuid

    from deeplake_spark.dataset import delta_log
    from deeplake_spark.storage import Storage

    real_write = Storage.write
    writes = {"n": 0}

    def write(self: Storage, relpath: str, data: bytes | memoryview) -> None:
        writes["n"] += 1
        if writes["n"] == nth:
            if point == "chunk_before":
                _die()
            if point == "chunk_partial":  # what a kill inside Storage.write leaves: a half-written temp file
                target = self.full_path(relpath)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(os.path.join(os.path.dirname(target), f".tmp-{uuid.uuid4().hex}"), "wb") as f:
                    f.write(bytes(data)[: len(data) // 2])
                    f.flush()
                    _die()
        real_write(self, relpath, data)
        if writes["n"] == nth and point == "chunk_after":
            _die()

    real_commit = delta_log.write_deltalake

    def commit(*args: Any, **kwargs: Any) -> Any:
        if point == "before_commit":
            _die()
        if point == "during_commit":  # lands somewhere inside delta-rs: Parquet write, log write, or after
            threading.Timer(delay_s, _die).start()
        result = real_commit(*args, **kwargs)
        if point == "after_commit":
            _die()
        return result

    Storage.write = write  # type: ignore[method-assign]
    delta_log.write_deltalake = commit  # type: ignore[attr-defined]
    ds = dls.open(path)
    ready.set()
    for k in range(1000):  # "random": looped until the parent's SIGKILL lands
        ds.append(make_batch(0, batch + k, rows))
        if point != "random":
            time.sleep(delay_s + 1)  # the timer of "during_commit" fires while we wait at the latest


@dataclass
class CrashReport:
    crashes: int = 0
    by_point: Counter[str] = field(default_factory=Counter)
    committed_by_point: Counter[str] = field(default_factory=Counter)
    probe_appends: int = 0
    orphans_before_vacuum: dict[str, int] = field(default_factory=dict)
    vacuumed: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


def run_crash_campaign(path: str, *, crashes: int = 50, rows: int = 6, seed: int = 0) -> CrashReport:
    """SIGKILL a writer ``crashes`` times at injected and random points; check the dataset after each."""

    report = CrashReport()
    rng = random.Random(seed)
    create_dataset(path, chunk_size=64)
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["deeplake_spark", "deeplake_spark.dataset.delta_log", "numpy", "pyarrow"])
    t0 = time.monotonic()
    next_batch = 0
    probe_batch = 1_000_000
    for i in range(crashes):
        point = KILL_POINTS[i % len(KILL_POINTS)]
        nth = rng.randint(1, 2)  # each batch writes 2 chunks of "vec" ("note" is text: stored inline, no chunk)
        delay = rng.uniform(0.0, 0.04) if point == "during_commit" else 0.0
        ready = ctx.Event()
        proc = ctx.Process(target=crash_child, args=(path, point, nth, delay, next_batch, rows, ready))
        proc.start()
        if point == "random":
            ready.wait(30)
            time.sleep(rng.uniform(0.0, 0.15))
            proc.kill()
        proc.join(60)
        if proc.is_alive():
            proc.kill()
            proc.join()
            report.problems.append(f"crash {i} ({point}): child hung")
        elif proc.exitcode != -signal.SIGKILL:
            report.problems.append(f"crash {i} ({point}, nth={nth}): child exited with {proc.exitcode}, not SIGKILL")
        report.crashes += 1
        report.by_point[point] += 1
        next_batch += 1000
        probe_batch += 1
        _verify_after_crash(path, i, point, rows, next_batch - 1000, probe_batch, report)
    audit = audit_files(path)
    report.orphans_before_vacuum = {"chunks": len(audit.orphan_chunks), "parquet": len(audit.orphan_parquet),
                                    "temp": len(audit.temp_files)}
    ds = dls.open(path)
    rows = len(ds)
    result = ds.vacuum(retention_hours=0, enforce_retention_duration=False)
    report.vacuumed = {"chunks": len(result.chunk_files), "parquet": len(result.parquet_files)}
    after = audit_files(path)
    if after.orphan_chunks or after.orphan_parquet or after.temp_files:
        report.problems.append(f"after vacuum: {len(after.orphan_chunks)} unreferenced chunks, "
                               f"{len(after.orphan_parquet)} unreferenced parquet, {len(after.temp_files)} temp files")
    ds = dls.open(path)  # delta-rs logs VACUUM START/END commits when it deletes Parquet files
    if check_samples(ds, report.problems) != rows:
        report.problems.append(f"vacuum changed the rows: {rows} -> {len(ds)}")
    report.seconds = time.monotonic() - t0
    return report


def _verify_after_crash(path: str, i: int, point: str, rows: int, batch: int, probe_batch: int,
                        report: CrashReport) -> None:
    where = f"crash {i} ({point})"
    try:
        ds = dls.open(path)
        counts = rows_by_batch(ds)
        expected = sum(added_rows_by_version(ds).values())
        if len(ds) != expected or sum(counts.values()) != expected:
            report.problems.append(f"{where}: len {len(ds)} disagrees with history ({expected} rows)")
        partial = {k: n for k, n in counts.items() if n != rows}
        if partial:
            report.problems.append(f"{where}: partial appends visible: {partial}")
        report.committed_by_point[point] += sum(1 for (w, b) in counts if w == 0 and b >= batch)
        check_samples(ds, report.problems, limit=12)
        before = ds.version
        version = ds.append(make_batch(1, probe_batch, rows))
        if version != before + 1 or rows_by_batch(dls.open(path))[(1, probe_batch)] != rows:
            report.problems.append(f"{where}: the next append did not land as version {before + 1}")
        report.probe_appends += 1
    except Exception as e:  # noqa: BLE001 - recorded as a problem: one broken state must not hide the others
        report.problems.append(f"{where}: {type(e).__name__}: {e}")
