"""Concurrent writers, readers and deleters on one dataset, each a spawned process."""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import queue
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from reliability_support import (
    added_rows_by_version,
    audit_files,
    check_samples,
    create_dataset,
    make_batch,
    report_and_exit,
    rows_by_batch,
)

import deeplake_spark as dls
from deeplake_spark.errors import CommitConflict

MAX_APPEND_ATTEMPTS = 50


def append_worker(path: str, writer: int, batches: int, rows: int, reopen: bool, start: Any, out: Any) -> None:
    """Append ``batches`` batches; report each attempt's outcome (version or CommitConflict)."""
    ds = dls.open(path)
    start.wait()
    records = []
    for batch in range(batches):
        attempts = 0
        while True:
            attempts += 1
            if reopen:
                ds = dls.open(path)
            try:
                version = ds.append(make_batch(writer, batch, rows))
            except CommitConflict as e:
                records.append(("conflict", writer, batch, None, str(e)[:300]))
                if attempts < MAX_APPEND_ATTEMPTS:
                    continue
                records.append(("gave up", writer, batch, None, attempts))
            else:
                records.append(("ok", writer, batch, version, attempts))
            break
    report_and_exit(out, ("writer", writer, records))


def reader_worker(path: str, reader: int, rows: int, stop: Any, out: Any) -> None:
    """Open the latest and random past versions while writers run; check each is consistent."""
    rng = random.Random(reader)
    problems: list[str] = []
    checks = 0
    versions_seen: set[int] = set()
    while not stop.is_set() or checks < 3:
        latest = dls.open(path)
        version = latest.version
        added = added_rows_by_version(latest)
        targets = [latest]
        if version > 0:
            targets.append(dls.open(path, version=rng.randint(0, version)))
        for ds in targets:
            expected = sum(n for v, n in added.items() if v <= ds.version)
            counts = rows_by_batch(ds)
            if len(ds) != expected or sum(counts.values()) != expected:
                problems.append(f"reader {reader}: version {ds.version} has len {len(ds)} / {sum(counts.values())} "
                                f"rows, history says {expected}")
            partial = {k: n for k, n in counts.items() if n != rows}
            if partial:
                problems.append(f"reader {reader}: version {ds.version} shows partial batches {partial}")
            check_samples(ds, problems, limit=8)
            versions_seen.add(ds.version)
            checks += 1
    report_and_exit(out, ("reader", reader, {"checks": checks, "versions": len(versions_seen), "problems": problems}))



@dataclass
class ConcurrencyReport:
    writers: int
    batches: int
    rows: int
    commits: int = 0
    conflicts: int = 0
    conflict_examples: list[str] = field(default_factory=list)
    max_attempts: int = 0
    orphan_parquet: int = 0
    order_inversions: int = 0
    reader_checks: int = 0
    reader_versions: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


def run_concurrency(path: str, *, writers: int = 8, batches: int = 25, rows: int = 3, readers: int = 2,
                    timeout: float = 300.0) -> ConcurrencyReport:
    """``writers`` spawned processes append ``batches`` batches each while ``readers`` processes read."""

    report = ConcurrencyReport(writers, batches, rows)
    create_dataset(path)
    ctx = mp.get_context("spawn")
    start, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    t0 = time.monotonic()
    procs = [ctx.Process(target=append_worker, args=(path, w, batches, rows, w % 2 == 1, start, out))
             for w in range(writers)]
    procs += [ctx.Process(target=reader_worker, args=(path, r, rows, stop, out)) for r in range(readers)]
    for p in procs:
        p.start()
    start.set()
    results: dict[tuple[str, int], Any] = {}
    deadline = time.monotonic() + timeout
    while len(results) < writers + readers and time.monotonic() < deadline:
        try:
            kind, who, payload = out.get(timeout=1.0)
        except queue.Empty:  # keep waiting until the deadline
            if all(not p.is_alive() for p in procs):
                break
            continue
        results[(kind, who)] = payload
        if sum(1 for k in results if k[0] == "writer") == writers:
            stop.set()
    stop.set()
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
            report.problems.append(f"process {p.name} did not finish")
        elif p.exitcode != 0:
            report.problems.append(f"process {p.name} exited with {p.exitcode}")
    report.seconds = time.monotonic() - t0
    _verify_concurrency(path, results, report)
    return report


def _verify_concurrency(path: str, results: dict[tuple[str, int], Any], report: ConcurrencyReport) -> None:
    problems = report.problems
    committed: dict[int, tuple[int, int]] = {}
    for w in range(report.writers):
        records = results.get(("writer", w))
        if records is None:
            problems.append(f"writer {w} reported nothing")
            continue
        for status, writer, batch, version, info in records:
            if status == "conflict":
                report.conflicts += 1
                if len(report.conflict_examples) < 3:
                    report.conflict_examples.append(info)
                continue
            if status == "gave up":
                problems.append(f"writer {writer}: batch {batch} still conflicted after {info} attempts")
                continue
            report.max_attempts = max(report.max_attempts, info)
            if version in committed:
                problems.append(f"version {version} returned to both {committed[version]} and {(writer, batch)}")
            committed[version] = (writer, batch)
    for r in range(sum(1 for k in results if k[0] == "reader")):
        payload = results[("reader", r)]
        report.reader_checks += payload["checks"]
        report.reader_versions += payload["versions"]
        problems.extend(payload["problems"])
    report.commits = len(committed)
    total = report.writers * report.batches
    ds = dls.open(path)
    if ds.version != total:
        problems.append(f"latest version {ds.version}, expected {total} (one per append)")
    if sorted(committed) != list(range(1, total + 1)):
        problems.append(f"append() returned versions {sorted(committed)[:10]}..., expected 1..{total}")
    counts = rows_by_batch(ds)
    want = {(w, b): report.rows for w in range(report.writers) for b in range(report.batches)}
    if counts != want:
        bad = {k: counts.get(k, 0) for k in set(counts) | set(want) if counts.get(k, 0) != want.get(k, 0)}
        problems.append(f"rows per (writer, batch) differ from one copy each: {dict(list(bad.items())[:10])}")
    if check_samples(ds, problems) != total * report.rows:
        problems.append("final version does not hold every row")
    # Every version opens; its length agrees with the history; the one Parquet file it adds holds
    # exactly the batch whose append() returned that version (full scans of every 20th version).
    added = added_rows_by_version(ds)
    previous: set[str] = set()
    added_by_file: set[tuple[int, str]] = set()
    batches_upto: Counter[tuple[int, int]] = Counter()
    for version in range(ds.version + 1):
        old = dls.open(path, version=version)
        if len(old) != sum(n for v, n in added.items() if v <= version):
            problems.append(f"version {version}: len {len(old)} disagrees with the history's operationMetrics")
        files = set(pa.table(old.delta_table.get_add_actions(flatten=False)).column("path").to_pylist())
        new_files = files - previous
        if version in committed:
            batches_upto[committed[version]] = report.rows
            added_by_file.update((version, f) for f in new_files)
            if len(new_files) != 1 or previous - files:
                problems.append(f"version {version}: adds {len(new_files)} files, removes {len(previous - files)}")
            else:
                rows = pq.read_table(os.path.join(path, new_files.pop()), columns=["writer", "batch"])
                got = Counter(zip(rows.column("writer").to_pylist(), rows.column("batch").to_pylist()))
                if got != {committed[version]: report.rows}:
                    problems.append(f"version {version}: adds rows {dict(got)}, append() said {committed[version]}")
        if (version % 20 == 0 or version == ds.version) and rows_by_batch(old) != batches_upto:
            problems.append(f"version {version}: rows are not exactly the batches committed up to it")
        previous = files
    # Row order (files sorted by modification time, see delta_log.ordered_fragments_dataset) against
    # commit order: each inversion is a later commit whose rows come before an earlier commit's.
    actions = pa.table(ds.delta_table.get_add_actions(flatten=False))
    by_mtime = sorted(zip(actions.column("modification_time").cast(pa.int64()).to_pylist(),
                          actions.column("path").to_pylist()))
    commit_of = {p: v for v, p in added_by_file}
    order = [commit_of.get(p, -1) for _, p in by_mtime]
    report.order_inversions = sum(1 for a, b in itertools.pairwise(order) if a > b)
    audit = audit_files(path)
    report.orphan_parquet = len(audit.orphan_parquet)
    if audit.orphan_chunks or audit.temp_files:
        problems.append(f"failed appends left {len(audit.orphan_chunks)} chunks, {len(audit.temp_files)} temp files")
    ds.vacuum(retention_hours=0, enforce_retention_duration=False)
    audit = audit_files(path)
    if audit.orphan_parquet or audit.orphan_chunks:
        problems.append(f"vacuum left {len(audit.orphan_parquet)} parquet, {len(audit.orphan_chunks)} chunk orphans")
    if check_samples(dls.open(path), problems, limit=50) != min(50, total * report.rows):
        problems.append("rows unreadable after vacuum")


def delete_worker(path: str, rounds: int, start: Any, out: Any) -> None:
    """Delete the ``seq = 0`` rows again and again while appends land; report each outcome."""
    from deeplake_spark.errors import DeepLakeSparkError

    ds = dls.open(path)
    start.wait()
    records = []
    for _ in range(rounds):
        try:
            records.append(("ok", ds.delete("seq = 0"), ""))
        except CommitConflict as e:
            records.append(("conflict", None, str(e)[:300]))
        except DeepLakeSparkError as e:
            records.append(("error", None, f"{type(e).__name__}: {e}"[:300]))
        time.sleep(random.uniform(0.0, 0.05))
    report_and_exit(out, ("deleter", 0, records))


@dataclass
class MixedReport:
    appends: int = 0
    deletes: int = 0
    delete_conflicts: int = 0
    append_conflicts: int = 0
    problems: list[str] = field(default_factory=list)


def run_appends_with_deletes(path: str, *, writers: int = 3, batches: int = 8, rows: int = 3,
                             delete_rounds: int = 10, timeout: float = 300.0) -> MixedReport:
    """Appenders and a deleter race; conflicts must surface as CommitConflict and lose nothing."""

    report = MixedReport()
    create_dataset(path)
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=append_worker, args=(path, w, batches, rows, False, start, out))
             for w in range(writers)]
    procs.append(ctx.Process(target=delete_worker, args=(path, delete_rounds, start, out)))
    for p in procs:
        p.start()
    start.set()
    results = {}
    deadline = time.monotonic() + timeout
    while len(results) < len(procs) and time.monotonic() < deadline:
        try:
            kind, who, payload = out.get(timeout=1.0)
        except queue.Empty:  # keep waiting while the children live
            if all(not p.is_alive() for p in procs):
                break
            continue
        results[(kind, who)] = payload
    for p in procs:
        p.join(30)
        if p.is_alive():
            p.kill()
            p.join()
            report.problems.append(f"process {p.name} did not finish")
        elif p.exitcode != 0:
            report.problems.append(f"process {p.name} exited with {p.exitcode}")
    for status, version, info in results.get(("deleter", 0), []):
        if status == "error":
            report.problems.append(f"delete raised a non-conflict error: {info}")
        elif status == "conflict":
            report.delete_conflicts += 1
        else:
            report.deletes += 1
            left = dls.open(path, version=version).table(columns=["seq"]).column("seq").to_pylist().count(0)
            if left:
                report.problems.append(f"delete() returned version {version}, which still has {left} seq=0 rows")
    for w in range(writers):
        for status, writer, batch, version, info in results.get(("writer", w), []):
            if status == "conflict":
                report.append_conflicts += 1
            elif status == "gave up":
                report.problems.append(f"writer {writer}: batch {batch} still conflicted after {info} attempts")
            else:
                report.appends += 1
                got = rows_by_batch(dls.open(path, version=version)).get((writer, batch), 0)
                if got < rows - 1:  # the deleter may already have removed its seq=0 row at that version
                    report.problems.append(f"append of {(writer, batch)} -> version {version} shows {got} rows")
    ds = dls.open(path)
    ds.delete("seq = 0")
    table = ds.table(columns=["writer", "batch", "seq"])
    keys = Counter(zip(*(table.column(c).to_pylist() for c in ("writer", "batch", "seq"))))
    want = Counter((w, b, s) for w in range(writers) for b in range(batches) for s in range(1, rows))
    if keys != want:
        report.problems.append(f"final rows differ: missing {list((want - keys).elements())[:5]}, "
                               f"extra {list((keys - want).elements())[:5]}")
    return report
