"""Other engines write to a dataset's Delta table; the dataset, time travel and vacuum still work.

Issue #12 items 3, 9 and 10: delta-rs (optimize, delete, update, merge, vacuum) and polars rewrite
the Delta table without knowing about chunks. They may omit ``commitInfo``, write a ref's chunk id
as ``string_view``, leave refs null for inserted rows, or vacuum files our versions still list.
After each of them: ``open`` works, ``ds[i]`` found by id returns the right tensor, time travel
works (or says which version is gone), and our vacuum and its dry run work and never delete a
chunk the latest version references.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

import deeplake_spark as dls
from deeplake_spark.errors import CorruptDatasetError, InvalidOptionError, VersionNotFound

SHAPE = (4, 4)
OLD_S = 30 * 24 * 3600


def _pixels(value: int) -> np.ndarray:
    return np.full(SHAPE, value % 256, dtype=np.uint8)


def _make(path: str) -> dls.Dataset:
    """Three appends of 4 rows (versions 1-3); tiny chunks, so each commit writes several."""
    ds = dls.create(path, {"image": dls.tensor("generic", dtype="uint8", shape=SHAPE, chunk_size=64),
                           "id": "int64", "label": "int64", "pixel": "int64"})
    for b in range(3):
        ids = np.arange(4 * b, 4 * b + 4)
        ds.append({"image": np.stack([_pixels(int(i)) for i in ids]), "id": ids, "label": ids % 3, "pixel": ids})
    return ds


def _make_with_removed_files(path: str) -> dls.Dataset:
    """:func:`_make`, then version 4 deletes id 3 (rewriting version 1's file, which gets a remove action)."""
    ds = _make(path)
    ds.delete("id = 3")
    return ds


def _merge_insert(path: str) -> None:
    # an upsert on tabular columns: matched rows are rewritten (delta-rs writes their refs' chunk
    # ids as string_view), inserted rows get null refs
    source = pa.table({"id": pa.array([1, 100, 101], pa.int64()), "label": pa.array([7, 1, 2], pa.int64())})
    (DeltaTable(path).merge(source, "t.id = s.id", source_alias="s", target_alias="t")
     .when_matched_update(updates={"label": "s.label"})
     .when_not_matched_insert(updates={"id": "s.id", "label": "s.label"}).execute())


def _polars_append(path: str) -> None:
    # rows copied with their refs (polars writes the chunk id as string_view), plus one without a tensor
    frame = pl.read_delta(path)
    copied = frame.filter(pl.col("id") < 2).with_columns(pl.col("id") + 1000)
    empty = pl.DataFrame({"image": [None], "id": [500], "label": [0], "pixel": [None]}, schema=frame.schema)
    pl.concat([copied, empty]).write_delta(path, mode="append")


def _polars_overwrite(path: str) -> None:
    pl.read_delta(path).filter(pl.col("id") % 2 == 0).write_delta(path, mode="overwrite")


def _repartition_then_polars_append(path: str) -> None:
    # delta-rs rewrites the table partitioned by label (partition column out of the Parquet files,
    # files in label=<n>/ folders), then polars appends copied rows into that partitioning
    rows = DeltaTable(path).to_pyarrow_dataset().to_table()
    write_deltalake(path, rows, mode="overwrite", partition_by=["label"], schema_mode="overwrite")
    copied = pl.read_delta(path).filter(pl.col("id") < 2).with_columns(pl.col("id") + 1000)
    copied.write_delta(path, mode="append")
    latest = DeltaTable(path)
    assert latest.metadata().partition_columns == ["label"]
    assert all(os.path.relpath(uri, path).startswith("label=") for uri in latest.file_uris())


ENGINES: dict[str, Callable[[str], Any]] = {
    "delta-rs compact": lambda p: DeltaTable(p).optimize.compact(),
    "delta-rs z_order": lambda p: DeltaTable(p).optimize.z_order(["id"]),
    "delta-rs delete": lambda p: DeltaTable(p).delete("id = 1 OR id = 6"),
    "delta-rs update": lambda p: DeltaTable(p).update(updates={"label": "label + 10"}, predicate="id > 5"),
    "delta-rs merge insert": _merge_insert,
    "delta-rs vacuum 0 h": lambda p: DeltaTable(p).vacuum(retention_hours=0, enforce_retention_duration=False,
                                                          dry_run=False),
    "polars append": _polars_append,
    "polars overwrite": _polars_overwrite,
    "delta-rs partition + polars append": _repartition_then_polars_append,
}


def _check_latest(path: str) -> None:
    """Every row of the latest version reads back the tensor its ``pixel`` column says."""
    ds = dls.open(path)
    table = ds.table(columns=["id", "pixel"])
    ids, pixels = table.column("id").to_pylist(), table.column("pixel").to_pylist()
    samples = ds.read_tensor("image", ds.table(columns=["image"]).column("image").to_pylist())
    for row_id, pixel, sample in zip(ids, pixels, samples):
        if pixel is None:
            assert sample is None, f"row id {row_id}: a row without a tensor read {sample!r}"
        else:
            assert np.array_equal(sample, _pixels(pixel)), f"row id {row_id} reads the wrong tensor"
    # ds[i], with i found by id, on a fresh handle (the row locator path)
    for wanted in (ids[0], ids[-1], 8 if 8 in ids else ids[len(ids) // 2]):
        i = ids.index(wanted)
        row = dls.open(path)[i]
        assert row["id"] == wanted
        expected = pixels[i]
        assert (row["image"] is None) if expected is None else np.array_equal(row["image"], _pixels(expected))


def _check_version_2(path: str) -> None:
    """Time travel to version 2 (ids 0-7): its rows and samples, or a typed error naming it."""
    try:
        old = dls.open(path, version=2)
        table = old.table(columns=["id", "image"])
    except VersionNotFound as e:
        assert "version 2" in str(e), str(e)
        return
    assert sorted(table.column("id").to_pylist()) == list(range(8))
    samples = old.read_tensor("image", table.column("image").to_pylist())
    assert all(np.array_equal(s, _pixels(i)) for i, s in zip(table.column("id").to_pylist(), samples))


@pytest.mark.parametrize("engine", list(ENGINES))
def test_dataset_survives_another_engine(tmp_path, engine):
    path = str(tmp_path / "ds")
    _make_with_removed_files(path)
    ENGINES[engine](path)
    assert dls.open(path).version >= 4
    _check_latest(path)
    _check_version_2(path)
    ds = dls.open(path)
    for run in ({"dry_run": True}, {}, {"retention_hours": 0, "enforce_retention_duration": False, "dry_run": True},
                {"retention_hours": 0, "enforce_retention_duration": False}, {}, {"dry_run": True}):
        result = ds.vacuum(**run)
        assert ds.version in result.retained_versions
        _check_latest(path)
    # after the forced vacuum there is nothing left to delete, and old versions say why they are gone
    assert ds.vacuum(0, enforce_retention_duration=False).files == []
    _check_version_2(path)


def _drop_commit_info(path: str, version: int, *, mtime: float | None = None) -> None:
    file = os.path.join(path, "_delta_log", f"{version:020d}.json")
    with open(file) as f:
        kept = [line for line in f if "commitInfo" not in json.loads(line)]
    with open(file, "w") as f:
        f.writelines(kept)
    if mtime is not None:
        os.utime(file, (mtime, mtime))


def test_a_commit_without_commit_info_is_dated_by_its_file(tmp_path):
    """A writer that omits commitInfo (optional in Delta): the commit counts as written when its
    file was, not in 1970, so the version it replaced stays inside the default window."""
    path = str(tmp_path / "ds")
    ds = _make(path)
    ds.overwrite({"image": np.stack([_pixels(50)]), "id": [50], "label": [0], "pixel": [50]})  # version 4
    _drop_commit_info(path, 4)
    commit_time = os.stat(os.path.join(path, "_delta_log", f"{4:020d}.json")).st_mtime
    history = {c["version"]: c for c in dls.open(path).history()}
    assert abs(history[4]["timestamp"] / 1000 - commit_time) < 2
    run = subprocess.run([sys.executable, "-m", "deeplake_spark.cli", "history", path],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "1970" not in run.stdout
    result = dls.open(path).vacuum()  # default 168 h
    assert result.files == [] and result.retained_versions == [0, 1, 2, 3, 4]
    _check_version_2(path)
    three = dls.open(path, version=3)
    assert np.array_equal(three[11]["image"], _pixels(11))
    # a commit file a month old without commitInfo: the version it replaced has left the window
    _drop_commit_info(path, 2, mtime=time.time() - OLD_S - 60)
    _drop_commit_info(path, 3, mtime=time.time() - OLD_S)
    _drop_commit_info(path, 1, mtime=time.time() - OLD_S - 120)
    assert dls.open(path).vacuum(dry_run=True).retained_versions == [3, 4]


def _old(path: str) -> None:
    stamp = time.time() - OLD_S
    for folder, _dirs, files in os.walk(path):
        for name in files:
            if not folder.endswith("_delta_log"):
                os.utime(os.path.join(folder, name), (stamp, stamp))


@pytest.mark.parametrize("first", ["ours", "delta-rs"])
def test_vacuum_after_a_shorter_vacuum(tmp_path, first):
    """Versions whose Parquet files a shorter vacuum removed are skipped, not fatal."""
    path = str(tmp_path / "ds")
    ds = _make(path)
    ds.overwrite({"image": np.stack([_pixels(7)]), "id": [7], "label": [1], "pixel": [7]})
    _old(path)
    if first == "ours":
        ds.vacuum(0, enforce_retention_duration=False)
    else:
        DeltaTable(path).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    chunks_before = {f for _d, _s, fs in os.walk(os.path.join(path, "_tensors")) for f in fs}
    dry = dls.open(path).vacuum(dry_run=True)
    real = dls.open(path).vacuum()
    # versions 1-3 lost data files; version 0 (no rows), 4 and delta-rs' VACUUM START/END commits are whole
    assert dry.retained_versions == real.retained_versions == [0, *range(4, dls.open(path).version + 1)]
    assert real.parquet_files == []
    if first == "ours":
        assert real.chunk_files == []
    else:  # delta-rs left our chunks; the versions that referenced them are gone, so they go now
        assert real.chunk_files and sorted(dry.chunk_files) == sorted(real.chunk_files)
    assert {f for _d, _s, fs in os.walk(os.path.join(path, "_tensors")) for f in fs} <= chunks_before
    _check_latest(path)
    with pytest.raises(VersionNotFound, match="version 3"):
        dls.open(path, version=3).table()
    run = subprocess.run([sys.executable, "-m", "deeplake_spark.cli", "vacuum", path, "--retention-hours", "168",
                          "--dry-run"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_an_unreadable_data_file_aborts_vacuum(tmp_path):
    """Only a missing data file is skipped; one that cannot be read stops vacuum before it deletes."""
    path = str(tmp_path / "ds")
    ds = _make(path)
    ds.overwrite({"image": np.stack([_pixels(7)]), "id": [7], "label": [1], "pixel": [7]})
    latest = DeltaTable(path).file_uris()[0]
    with open(latest, "wb") as f:
        f.write(b"not parquet at all")
    _old(path)
    before = sorted(os.path.relpath(os.path.join(d, f), path) for d, _s, fs in os.walk(path) for f in fs)
    with pytest.raises(CorruptDatasetError, match=os.path.basename(latest)):
        dls.open(path).vacuum(0, enforce_retention_duration=False)
    assert sorted(os.path.relpath(os.path.join(d, f), path) for d, _s, fs in os.walk(path) for f in fs) == before
    run = subprocess.run([sys.executable, "-m", "deeplake_spark.cli", "vacuum", path, "--retention-hours", "0",
                          "--force"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert "CorruptDatasetError" in run.stderr and os.path.basename(latest) in run.stderr


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "168", -1, True, None])
def test_vacuum_refuses_a_retention_that_is_not_a_finite_number(tmp_path, value):
    path = str(tmp_path / "ds")
    _make(path)
    before = sorted(os.listdir(path))
    with pytest.raises(InvalidOptionError, match="retention_hours"):
        dls.open(path).vacuum(value, enforce_retention_duration=False)
    assert sorted(os.listdir(path)) == before


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_cli_vacuum_bad_retention_is_one_line(tmp_path, value):
    path = str(tmp_path / "ds")
    _make(path)
    run = subprocess.run([sys.executable, "-m", "deeplake_spark.cli", "vacuum", path, f"--retention-hours={value}",
                          "--force"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "retention" in run.stderr


def test_vacuum_after_the_log_was_cleaned_up(tmp_path):
    """Another engine checkpointed and removed old commits (Spark does so automatically): versions
    that can no longer be rebuilt from the log are skipped, the rest are kept whole."""
    path = str(tmp_path / "ds")
    ds = _make(path)
    ds.overwrite({"image": np.stack([_pixels(40)]), "id": [40], "label": [1], "pixel": [40]})  # version 4
    DeltaTable(path).create_checkpoint()
    ds.append({"image": np.stack([_pixels(41)]), "id": [41], "label": [2], "pixel": [41]})  # version 5
    # what log cleanup removes once the log has expired; version 3's commit is left, but without
    # versions 0-2 no reader can rebuild version 3
    for version in range(3):
        os.remove(os.path.join(path, "_delta_log", f"{version:020d}.json"))
    _old(path)
    chunks = {f for _d, _s, fs in os.walk(os.path.join(path, "_tensors")) for f in fs}
    result = dls.open(path).vacuum()  # default window: every commit is recent
    assert result.retained_versions == [4, 5]
    # versions 1-3 are gone for every reader: their Parquet files and chunks went
    assert len(result.parquet_files) == 3 and result.chunk_files
    assert {f for _d, _s, fs in os.walk(os.path.join(path, "_tensors")) for f in fs} < chunks
    _check_latest(path)
    assert np.array_equal(dls.open(path, version=4)[0]["image"], _pixels(40))
