"""Real-process scenarios shared by tests/reliability and ``python -m bench.soak``.

Every scenario runs writer/reader/crashing processes against a real dataset on local disk and
returns a report whose ``problems`` list is empty when every invariant held. The functions that
run in child processes live at module level so ``spawn``/``forkserver`` children can import them
(pytest puts this folder on ``sys.path``; multiprocessing hands ``sys.path`` to its children).
"""

from __future__ import annotations

import itertools
import os
import queue
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import deeplake_spark as dls
from deeplake_spark.dataset.refs import CHUNK_SUFFIX, TENSORS_DIR
from deeplake_spark.errors import CommitConflict

TENSOR_COLUMNS = ("vec", "note")


# --------------------------------------------------------------------------- data
def create_dataset(path: str, *, chunk_size: int = 96) -> dls.Dataset:
    """A dataset whose batches span several chunks per tensor (tiny ``chunk_size``)."""
    return dls.create(path, {
        "vec": dls.tensor("generic", dtype="int64", shape=(3,), chunk_size=chunk_size),
        "note": dls.tensor("text", chunk_size=chunk_size),
        "writer": "int64",
        "batch": "int64",
        "seq": "int64",
    })


def expected_vec(writer: int, batch: int, seq: int) -> np.ndarray:
    return np.array([writer, batch, seq], dtype=np.int64) * np.array([1_000_003, 1_009, 1], dtype=np.int64)


def make_batch(writer: int, batch: int, rows: int) -> dict[str, Any]:
    seqs = np.arange(rows, dtype=np.int64)
    return {
        "vec": np.stack([expected_vec(writer, batch, s) for s in seqs]),
        "note": [f"w{writer}-b{batch}-s{s}" for s in seqs],
        "writer": np.full(rows, writer, dtype=np.int64),
        "batch": np.full(rows, batch, dtype=np.int64),
        "seq": seqs,
    }


def rows_by_batch(ds: dls.Dataset) -> Counter[tuple[int, int]]:
    """Row count per ``(writer, batch)`` at ``ds``'s version."""
    table = ds.table(columns=["writer", "batch"])
    return Counter(zip(table.column("writer").to_pylist(), table.column("batch").to_pylist()))


def added_rows_by_version(ds: dls.Dataset) -> dict[int, int]:
    """Rows each commit added, from the Delta history's operationMetrics."""
    return {int(c["version"]): int((c.get("operationMetrics") or {}).get("num_added_rows", 0)) for c in ds.history()}


def check_samples(ds: dls.Dataset, problems: list[str], *, limit: int | None = None) -> int:
    """Decode tensor samples of (up to ``limit``) rows and compare them with what was written."""
    table = ds.table()
    if limit is not None and table.num_rows > limit:
        picks = sorted(random.Random(table.num_rows).sample(range(table.num_rows), limit))
        table = table.take(pa.array(picks, type=pa.int64()))
    vecs = ds.read_tensor("vec", table.column("vec").to_pylist())
    notes = ds.read_tensor("note", table.column("note").to_pylist())
    keys = zip(table.column("writer").to_pylist(), table.column("batch").to_pylist(), table.column("seq").to_pylist())
    for (w, b, s), vec, note in zip(keys, vecs, notes):
        if not np.array_equal(vec, expected_vec(w, b, s)) or note != f"w{w}-b{b}-s{s}":
            problems.append(f"version {ds.version}: row (w{w}, b{b}, s{s}) reads back {vec!r} / {note!r}")
    return table.num_rows


# --------------------------------------------------------------------- file audit
@dataclass
class FileAudit:
    """Files under a dataset that its current version does not use."""

    chunk_files: int
    parquet_files: int
    orphan_chunks: list[str]
    orphan_parquet: list[str]
    temp_files: list[str]


def audit_files(path: str) -> FileAudit:
    """Compare the files on disk with the current version's chunk refs and Delta add actions."""
    ds = dls.open(path)
    table = ds.table()
    referenced = set()
    for name in TENSOR_COLUMNS:
        ids = table.column(name).combine_chunks().field("chunk").drop_null().unique().to_pylist()
        referenced.update(f"{TENSORS_DIR}/{name}/{i}{CHUNK_SUFFIX}" for i in ids)
    added = set(pa.table(ds.delta_table.get_add_actions(flatten=False)).column("path").to_pylist())
    chunks, parquet, temp = [], [], []
    for folder, _dirs, files in os.walk(path):
        rel_folder = os.path.relpath(folder, path)
        if rel_folder.split(os.sep)[0] == "_delta_log":
            continue
        for name in files:
            rel = os.path.normpath(os.path.join(rel_folder, name))
            if name.startswith(".tmp-"):
                temp.append(rel)
            elif rel.startswith(TENSORS_DIR + os.sep):
                chunks.append(rel)
            elif name.endswith(".parquet"):
                parquet.append(rel)
    return FileAudit(
        chunk_files=len(chunks),
        parquet_files=len(parquet),
        orphan_chunks=sorted(c for c in chunks if c not in referenced),
        orphan_parquet=sorted(p for p in parquet if p not in added),
        temp_files=sorted(temp),
    )


def chunk_files(path: str) -> set[str]:
    root = os.path.join(path, TENSORS_DIR)
    return {os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(root) for f in fs}


# ---------------------------------------------------------------- concurrency
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
    out.put(("writer", writer, records))


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
    out.put(("reader", reader, {"checks": checks, "versions": len(versions_seen), "problems": problems}))



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
    import multiprocessing as mp

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


# ---------------------------------------------------------------------- crashes
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
    import multiprocessing as mp

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
        nth = rng.randint(1, 4)  # each batch writes about 2 chunks per tensor
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


# ------------------------------------------------------------ appends + deletes
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
    out.put(("deleter", 0, records))


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
    import multiprocessing as mp

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
