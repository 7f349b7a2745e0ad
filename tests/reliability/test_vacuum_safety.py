"""Vacuum never breaks readers of versions inside the retention window; dry_run lists what it deletes."""

from __future__ import annotations

import multiprocessing as mp
import os
import time

import numpy as np
import pytest
from reliability_support import (
    audit_files,
    chunk_files,
    create_dataset,
    make_batch,
    rows_by_batch,
)

import deeplake_spark as dls
from deeplake_spark.errors import ChunkNotFoundError, VersionNotFound

GAP_S = 2.5


def _data_files(path: str) -> set[str]:
    """Every file outside ``_delta_log`` (vacuum itself may add VACUUM START/END commits there)."""
    out = set()
    for folder, _dirs, files in os.walk(path):
        rel = os.path.relpath(folder, path)
        if rel.split(os.sep)[0] != "_delta_log":
            out.update(os.path.normpath(os.path.join(rel, f)) for f in files)
    return out


def _read_versions_until(path: str, versions: list[int], reading, stop, out) -> None:
    """Child process: keep reading every row and sample of ``versions`` until told to stop."""
    reads, errors = 0, []
    held = {v: dls.open(path, version=v) for v in versions}
    while not stop.is_set() or reads < 2 * len(versions):
        if reads >= len(versions):
            reading.set()
        for version, ds in held.items():
            try:
                rows = ds[0:len(ds)].numpy()  # every column of every row, samples read
                if len(rows["vec"]) != len(ds):
                    errors.append(f"version {version}: {len(rows['vec'])} samples for {len(ds)} rows")
                dls.open(path, version=version)[0:len(ds)].numpy()
            except Exception as e:  # noqa: BLE001 - reported to the parent, which fails the test
                errors.append(f"version {version}: {type(e).__name__}: {e}")
            reads += 1
    out.put((reads, errors[:5]))


@pytest.mark.slow
def test_vacuum_keeps_every_version_inside_the_window_readable(tmp_path):
    path = str(tmp_path / "ds")
    ds = create_dataset(path)
    ds.append(make_batch(0, 0, 4))              # v1
    ds.overwrite(make_batch(0, 1, 4))           # v2: v1's rows and chunks are no longer current
    time.sleep(GAP_S)
    ds.append(make_batch(0, 2, 4))              # v3
    ds.overwrite(make_batch(0, 3, 4))           # v4
    assert ds.version == 4
    held = {v: dls.open(path, version=v) for v in (1, 2, 3)}

    ctx = mp.get_context("spawn")
    reading, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    reader = ctx.Process(target=_read_versions_until, args=(path, [2, 3, 4], reading, stop, out))
    reader.start()
    assert reading.wait(120), "the reader process did not start reading"

    # The window ends halfway between v2's and v3's commits (GAP_S apart), however slow the machine:
    # v1 (replaced by v2) falls out, v2 (replaced by v3), v3 and v4 stay inside.
    stamps = {c["version"]: c["timestamp"] for c in ds.history()}
    cutoff_ms = (stamps[2] + stamps[3]) / 2
    retention_hours = (time.time() * 1000 - cutoff_ms) / 3_600_000
    before = _data_files(path)
    dry = ds.vacuum(retention_hours, dry_run=True, enforce_retention_duration=False)
    assert _data_files(path) == before, "a dry run deleted files"
    result = ds.vacuum(retention_hours, enforce_retention_duration=False)
    gone = before - _data_files(path)
    stop.set()
    reads, errors = out.get(timeout=120)
    reader.join(60)

    assert errors == [] and reads > 0
    assert result.retained_versions == [2, 3, 4]
    assert sorted(dry.files) == sorted(result.files) == sorted(gone)
    assert result.chunk_files and all(f.startswith("_tensors/") for f in result.chunk_files)
    # readers of retained versions, opened before the vacuum or after it, read every sample
    for version, batches in ((2, {1}), (3, {1, 2})):
        for ds_v in (held[version], dls.open(path, version=version)):
            rows = ds_v[0:len(ds_v)].numpy()
            assert {int(b) for b in rows["batch"]} == batches
            assert len(rows["vec"]) == 4 * len(batches) and all(v is not None for v in rows["vec"])
    assert rows_by_batch(dls.open(path)) == {(0, 3): 4}
    # version 1 left the window: its Parquet file and its chunks are gone (retention is exact, not
    # rounded up to whole hours) and reading it says so
    assert any(f.endswith(".parquet") for f in result.parquet_files)
    with pytest.raises((ChunkNotFoundError, VersionNotFound, FileNotFoundError)):
        held[1][0]


def test_dry_run_lists_exactly_what_a_real_run_deletes(tmp_path):
    path = str(tmp_path / "ds")
    ds = create_dataset(path)
    for b in range(3):
        ds.append(make_batch(0, b, 3))
    ds.overwrite(make_batch(0, 9, 3))
    ds.delete("batch = 9")
    ds.append(make_batch(0, 10, 3))
    before = _data_files(path)
    dry = ds.vacuum(0, dry_run=True, enforce_retention_duration=False)
    assert dry.dry_run and _data_files(path) == before
    real = ds.vacuum(0, enforce_retention_duration=False)
    assert sorted(dry.parquet_files) == sorted(real.parquet_files) and len(real.parquet_files) == 4  # batches 0-2 and 9
    assert sorted(dry.chunk_files) == sorted(real.chunk_files) and real.chunk_files
    assert sorted(before - _data_files(path)) == sorted(real.files)
    audit = audit_files(path)
    assert audit.orphan_chunks == [] and audit.orphan_parquet == []
    assert rows_by_batch(dls.open(path)) == {(0, 10): 3}
    with pytest.raises(VersionNotFound, match="vacuumed"):
        dls.open(path, version=1).table()


def test_vacuum_on_a_stale_handle_keeps_commits_it_has_not_seen(tmp_path):
    """A handle opened before another process's append must not treat the new files as garbage."""
    path = str(tmp_path / "ds")
    create_dataset(path).append(make_batch(0, 0, 3))
    stale = dls.open(path)
    chunks = chunk_files(path)
    dls.open(path).append(make_batch(1, 0, 3))
    stale.vacuum(0, enforce_retention_duration=False)
    fresh = dls.open(path)
    assert rows_by_batch(fresh) == {(0, 0): 3, (1, 0): 3}
    assert np.array_equal(fresh[5]["vec"], make_batch(1, 0, 3)["vec"][2])
    assert chunks < chunk_files(path)


def test_default_vacuum_keeps_a_young_dataset_whole(tmp_path):
    path = str(tmp_path / "ds")
    ds = create_dataset(path)
    ds.append(make_batch(0, 0, 3))
    ds.overwrite(make_batch(0, 1, 3))
    before = _data_files(path)
    result = ds.vacuum()  # 168 h: every version is still inside the window
    assert result.files == [] and _data_files(path) == before
    assert result.retained_versions == [0, 1, 2]
    assert rows_by_batch(dls.open(path, version=1)) == {(0, 0): 3}
