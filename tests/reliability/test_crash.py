"""Writers SIGKILLed at injected and random points: the dataset stays consistent, vacuum cleans up."""

from __future__ import annotations

import os

import pytest
from crash_scenarios import KILL_POINTS, run_crash_campaign

CRASHES = int(os.environ.get("DEEPLAKE_SPARK_CRASHES", "50"))


@pytest.mark.slow
def test_sigkilled_writers_never_leave_a_partial_append_and_vacuum_removes_their_files(tmp_path):
    report = run_crash_campaign(str(tmp_path / "ds"), crashes=CRASHES, seed=7)
    print(f"crashes={report.crashes} by_point={dict(report.by_point)} committed={dict(report.committed_by_point)} "
          f"orphans={report.orphans_before_vacuum} vacuumed={report.vacuumed} seconds={report.seconds:.1f}")
    # after every kill: the dataset opened, len matched the history, no batch was partly visible,
    # every sample decoded and the next append landed as the next version
    assert report.problems == []
    assert report.crashes == CRASHES and report.probe_appends == CRASHES
    assert set(report.by_point) == set(KILL_POINTS)
    # kills before the commit never publish the batch, a kill after it never loses it
    for point in ("chunk_before", "chunk_partial", "chunk_after", "before_commit"):
        assert report.committed_by_point[point] == 0
    assert report.committed_by_point["after_commit"] == report.by_point["after_commit"]
    # killed appends leave files behind; vacuum(retention 0) removes exactly those
    assert report.orphans_before_vacuum["chunks"] > 0
    assert report.vacuumed["chunks"] == report.orphans_before_vacuum["chunks"] + report.orphans_before_vacuum["temp"]
    assert report.vacuumed["parquet"] == report.orphans_before_vacuum["parquet"]
