"""Concurrent writers and readers on one dataset, as separate spawned processes on real files."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest
from concurrency_scenarios import run_appends_with_deletes, run_concurrency
from deltalake import DeltaTable
from reliability_support import (
    audit_files,
    chunk_files,
    create_dataset,
    make_batch,
    rows_by_batch,
)

import deeplake_spark as dls
from deeplake_spark.errors import CommitConflict


@pytest.fixture(scope="module")
def eight_writers(tmp_path_factory):
    """8 spawned processes x 25 appends (200 commits) while 2 reader processes check every version."""
    return run_concurrency(str(tmp_path_factory.mktemp("eight") / "ds"), writers=8, batches=25, rows=3, readers=2)


@pytest.mark.slow
def test_eight_processes_append_200_commits_while_readers_see_consistent_versions(eight_writers):
    report = eight_writers
    print(f"commits={report.commits} conflicts={report.conflicts} reader_checks={report.reader_checks} "
          f"orphan_parquet={report.orphan_parquet} order_inversions={report.order_inversions} "
          f"seconds={report.seconds:.1f}")
    assert report.problems == []
    assert report.commits == 200
    assert report.reader_checks > 0
    # An append whose retries ran out raised CommitConflict, committed nothing and left no chunk
    # behind; the worker's retry then landed the batch exactly once (checked in problems).
    assert all("retry" in message for message in report.conflict_examples)


@pytest.mark.slow
@pytest.mark.xfail(reason="rows are ordered by Parquet file modification time, not by commit version: with "
                          "concurrent writers a later commit's rows can sort before an earlier one's, so ds[i] "
                          "is not stable across versions (see delta_log.ordered_fragments_dataset)", strict=False)
def test_row_order_follows_commit_order_under_concurrent_appends(eight_writers):
    assert eight_writers.order_inversions == 0


def _append_losing_a_race(path: str, out) -> None:
    """Child process: another writer changes the table metadata while this append is committing."""
    from deeplake_spark.dataset import delta_log

    real_write = delta_log.write_deltalake
    raced: list[int] = []

    def racing_write(*args, **kwargs):
        if not raced:  # fault injection, this process only: a concurrent commit lands first
            raced.append(1)
            DeltaTable(path).alter.set_table_properties({"delta.appendOnly": "false"})
        return real_write(*args, **kwargs)

    delta_log.write_deltalake = racing_write
    ds = dls.open(path)
    chunks = chunk_files(path)
    result = {"version_before": ds.version}
    try:
        ds.append(make_batch(0, 1, 3))
        result["error"] = None
    except CommitConflict as e:
        result["error"] = str(e)
    result["version_after_conflict"] = dls.open(path).version
    result["chunks_unchanged"] = chunk_files(path) == chunks
    result["orphan_chunks"] = audit_files(path).orphan_chunks
    result["retry_version"] = ds.append(make_batch(0, 1, 3))  # the same handle
    out.put(result)


def test_commit_conflict_is_raised_commits_nothing_and_the_same_handle_can_retry(tmp_path):
    path = str(tmp_path / "ds")
    create_dataset(path).append(make_batch(0, 0, 3))
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_append_losing_a_race, args=(path, out))
    proc.start()
    result = out.get(timeout=120)
    proc.join(60)
    assert proc.exitcode == 0
    before = result["version_before"]
    assert result["error"] is not None and "retry" in result["error"] and path in result["error"]
    assert result["version_after_conflict"] == before + 1  # only the other writer's commit
    assert result["chunks_unchanged"] and result["orphan_chunks"] == []
    assert result["retry_version"] == before + 2
    table = dls.open(path).table(columns=["batch"])
    assert sorted(table.column("batch").to_pylist()) == [0, 0, 0, 1, 1, 1]


def test_append_after_a_concurrent_delete(tmp_path):
    """delta-rs fails writes from a handle that a delete moved past, however often they retry."""
    path = str(tmp_path / "ds")
    ds = create_dataset(path)
    ds.append(make_batch(0, 0, 3))
    dls.open(path).delete("seq = 0")
    for batch in (1, 2):
        ds.append(make_batch(0, batch, 3))
    assert rows_by_batch(dls.open(path)) == {(0, 0): 2, (0, 1): 3, (0, 2): 3}


def test_append_returns_its_own_commit_version_on_a_stale_handle(tmp_path):
    path = str(tmp_path / "ds")
    stale = create_dataset(path)
    other = dls.open(path)
    for b in range(3):
        other.append(make_batch(1, b, 2))
    version = stale.append(make_batch(0, 0, 2))
    assert version == 4
    row = dls.open(path, version=version).table(columns=["writer"]).column("writer").to_pylist()
    assert row.count(0) == 2
    history = dls.open(path, version=2).history()
    assert [c["version"] for c in history] == [2, 1, 0]
    assert [c.get("operationMetrics", {}).get("num_added_rows") for c in history[:2]] == [2, 2]
    assert np.array_equal(dls.open(path)[-1]["vec"], make_batch(0, 0, 2)["vec"][1])


@pytest.mark.slow
def test_deletes_racing_appends_surface_conflicts_and_lose_nothing(tmp_path):
    report = run_appends_with_deletes(str(tmp_path / "ds"), writers=3, batches=8, rows=3, delete_rounds=10)
    print(f"appends={report.appends} deletes={report.deletes} delete_conflicts={report.delete_conflicts} "
          f"append_conflicts={report.append_conflicts}")
    assert report.problems == []
    assert report.appends == 24 and report.deletes + report.delete_conflicts == 10


def _create(path: str, start, out) -> None:
    from deeplake_spark.errors import DatasetExistsError

    start.wait()
    try:
        dls.create(path, {"a": "int64"})
        out.put("created")
    except DatasetExistsError:
        out.put("exists")


def test_processes_racing_to_create_one_dataset(tmp_path):
    path = str(tmp_path / "ds")
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_create, args=(path, start, out)) for _ in range(4)]
    for p in procs:
        p.start()
    start.set()
    outcomes = sorted(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(60)
    assert outcomes == ["created", "exists", "exists", "exists"]
    assert dls.open(path).version == 0
