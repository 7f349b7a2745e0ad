"""Vacuum deletes only the dataset's own files: never a user's files, a nested dataset or source images.

Issue #12 item 1: delta-rs' full vacuum used to delete every file its log does not name, so a
default ``ds.vacuum()`` on a dataset created in a project folder wiped ``README.md``, ``src/`` and
``raw_images/``, a dataset nested in a sub-folder, and the source JPEGs of ``import-folder pets pets``.
"""

from __future__ import annotations

import io
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from PIL import Image
from reliability_support import chunk_files, create_dataset, make_batch, rows_by_batch

import deeplake_spark as dls
from deeplake_spark.dataset.vacuum import vacuum
from deeplake_spark.errors import UnsafePathError
from deeplake_spark.storage import Storage

DAY_S = 24 * 3600
OLD_S = 30 * DAY_S


def _set_age(path: str, seconds_ago: float) -> None:
    stamp = time.time() - seconds_ago
    os.utime(path, (stamp, stamp), follow_symlinks=False)


def _age_tree(root: str, seconds_ago: float) -> None:
    for folder, _dirs, files in os.walk(root):
        for name in files:
            _set_age(os.path.join(folder, name), seconds_ago)


def _age_dataset(path: str, seconds_ago: float = OLD_S) -> None:
    """Make every commit (commitInfo timestamps) and every file of the dataset ``seconds_ago`` old,
    keeping the commits' order: as if it had been written a month ago."""
    log_dir = os.path.join(path, "_delta_log")
    commits = sorted(n for n in os.listdir(log_dir) if n.endswith(".json"))
    base_ms = int((time.time() - seconds_ago) * 1000)
    for i, name in enumerate(commits):
        file = os.path.join(log_dir, name)
        lines = []
        with open(file) as f:
            for line in f:
                action = json.loads(line)
                if "commitInfo" in action:
                    action["commitInfo"]["timestamp"] = base_ms + i * 1000
                lines.append(json.dumps(action))
        with open(file, "w") as f:
            f.write("\n".join(lines) + "\n")
    _age_tree(path, seconds_ago)


def _contents(root: str, rels: list[str] | None = None) -> dict[str, tuple[bytes, int]]:
    """Bytes and mtime of every file under ``root`` (or of ``rels``, relative to it)."""
    if rels is None:
        rels = [os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs]
    out = {}
    for rel in rels:
        full = os.path.join(root, rel)
        with open(full, "rb") as f:
            out[rel] = (f.read(), os.stat(full).st_mtime_ns)
    return out


def _own_parquet(path: str) -> set[str]:
    return {n for n in os.listdir(path) if n.endswith(".parquet")}


PROJECT_FILES = {
    "README.md": b"# my project\n",
    "src/train.py": b"print('train')\n",
    "raw_images/cat.jpg": b"\xff\xd8\xff\xe0 not really a jpeg",
    "notes.parquet": b"PAR1 a user's own Parquet file, not in the log",
    ".tmp-user-file": b"a user's temp file at the root",
    "_tensors/README.txt": b"not a chunk",
    "_tensors/vec/nested/deep.dltc": b"not a chunk of ours (too deep)",
    "_tensors/vec/not-a-chunk.txt": b"no .dltc suffix",
    "_tensors/vec/not.a.chunk.dltc": b"not a chunk id",
}


def _add_project_files(root: str) -> None:
    """A user's project around the dataset: files and folders no Delta action names, a month old."""
    for rel, data in PROJECT_FILES.items():
        full = os.path.join(root, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
        _set_age(full, OLD_S)


@pytest.mark.parametrize("retention", ["default", "forced"])
def test_vacuum_keeps_a_projects_files_and_a_nested_dataset(tmp_path, retention):
    root = str(tmp_path / "project")
    ds = create_dataset(root)  # create() may refuse a non-empty folder: the user's files come after
    ds.append(make_batch(0, 0, 6))
    first_parquet = _own_parquet(root)
    ds.overwrite(make_batch(0, 1, 6))  # version 1's Parquet file and chunks become orphans
    ds.append(make_batch(0, 2, 6))
    _add_project_files(root)
    nested = os.path.join(root, "sub", "nested")
    nested_ds = create_dataset(nested)
    nested_ds.append(make_batch(5, 0, 4))
    nested_ds.overwrite(make_batch(5, 1, 4))  # the nested dataset has orphans of its own
    _age_dataset(nested)
    if retention == "default":
        _age_dataset(root)  # a month-old log, so that the default 168 h window has orphans to remove
    foreign = _contents(root, list(PROJECT_FILES)) | {f"sub/{k}": v for k, v in _contents(os.path.join(root, "sub")).items()}
    chunks_before = chunk_files(root)

    ds = dls.open(root)
    if retention == "default":
        dry, result = ds.vacuum(dry_run=True), ds.vacuum()
    else:
        dry = ds.vacuum(0, dry_run=True, enforce_retention_duration=False)
        result = ds.vacuum(0, enforce_retention_duration=False)

    after = _contents(root, [rel for rel in foreign if os.path.exists(os.path.join(root, rel))])
    assert after == foreign, f"vacuum deleted or changed files that are not the dataset's: {set(foreign) - set(after)}"
    # the dataset's own orphans did go: version 1's Parquet file and its chunks, nothing else
    assert sorted(result.files) == sorted(dry.files)
    assert set(result.parquet_files) == first_parquet and not first_parquet & _own_parquet(root)
    assert result.chunk_files and set(result.chunk_files) == chunks_before - chunk_files(root)
    latest = dls.open(root)
    assert rows_by_batch(latest) == {(0, 1): 6, (0, 2): 6}
    assert np.array_equal(latest[11]["vec"], make_batch(0, 2, 6)["vec"][5])
    # the nested dataset is whole: every version, every sample
    assert rows_by_batch(dls.open(nested)) == {(5, 1): 4}
    old = dls.open(nested, version=1)
    assert rows_by_batch(old) == {(5, 0): 4}
    assert np.array_equal(old[3]["vec"], make_batch(5, 0, 4)["vec"][3])


def _jpeg(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG")
    return out.getvalue()


def _write_pets(folder: str) -> dict[str, bytes]:
    images = {}
    for cls in ("cat", "dog"):
        for i in range(3):
            rel = f"{cls}/{cls}{i}.jpg"
            images[rel] = _jpeg(hash(rel) % 1000)
            full = os.path.join(folder, rel)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                f.write(images[rel])
            _set_age(full, OLD_S)
    return images


def _files(folder: str) -> dict[str, bytes]:
    return {rel: data for rel, (data, _mtime) in _contents(folder).items()}


def test_dataset_holding_its_own_source_images_keeps_them(tmp_path):
    """What ``import-folder pets pets`` produced: the JPEGs in class folders inside the dataset
    folder, the dataset's rows made from them. Vacuum must leave every source image."""
    pets = str(tmp_path / "pets")
    ds = dls.create(pets, {"image": dls.tensor("image", compression="jpeg"), "label": "int64",
                           "filename": "string"})
    images = _write_pets(pets)
    names = sorted(images)
    ds.append({"image": [images[n] for n in names], "label": [int(n.startswith("dog")) for n in names],
               "filename": names})
    ds.overwrite({"image": [images[n] for n in names], "label": [int(n.startswith("dog")) for n in names],
                  "filename": names})
    _age_dataset(pets)
    for cli_args in (["--retention-hours", "168"], ["--retention-hours", "0", "--force"]):
        run = subprocess.run([sys.executable, "-m", "deeplake_spark.cli", "vacuum", pets, *cli_args],
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        assert not any(line.endswith(".jpg") for line in run.stdout.splitlines())
    assert {k: v for k, v in _files(pets).items() if k.endswith(".jpg")} == images
    reopened = dls.open(pets)
    table = reopened.table(columns=["filename"])
    for i, name in enumerate(table.column("filename").to_pylist()):
        assert reopened.read_tensor("image", [reopened.table().column("image")[i].as_py()], raw=True)[0] == images[name]


def test_imported_dataset_next_to_its_source_inside_a_parent_dataset(tmp_path):
    """A dataset in a parent folder of other files: ``proj`` is a dataset, ``proj/pets`` the source
    images, ``proj/pets_ds`` the import. Vacuuming either dataset keeps the images and the other dataset."""
    proj = str(tmp_path / "proj")
    parent = create_dataset(proj)
    parent.append(make_batch(0, 0, 3))
    parent.overwrite(make_batch(0, 1, 3))
    images = _write_pets(os.path.join(proj, "pets"))
    target = os.path.join(proj, "pets_ds")
    run = subprocess.run([sys.executable, "-m", "deeplake_spark.cli", "import-folder", os.path.join(proj, "pets"),
                          target, "--engine", "python", "-q"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    imported = dls.open(target)
    imported.append({"image": [images["cat/cat0.jpg"]], "label": [0], "label_name": ["cat"],
                     "filename": ["cat/cat0.jpg"]})
    imported_before = _files(target)
    _age_dataset(proj)
    for path in (proj, target):
        for cli_args in (["--retention-hours", "168"], ["--retention-hours", "0", "--force"]):
            run = subprocess.run([sys.executable, "-m", "deeplake_spark.cli", "vacuum", path, *cli_args],
                                 capture_output=True, text=True, timeout=300)
            assert run.returncode == 0, run.stderr
        if path == proj:
            # the parent's vacuum left every file of the imported dataset alone
            assert {k: v for k, v in _files(target).items() if not k.startswith("_delta_log")} == \
                {k: v for k, v in imported_before.items() if not k.startswith("_delta_log")}
    assert {k: v for k, v in _files(os.path.join(proj, "pets")).items()} == images
    assert rows_by_batch(dls.open(proj)) == {(0, 1): 3}
    imported = dls.open(target)
    assert len(imported) == len(images) + 1
    filenames = imported.table(columns=["filename"]).column("filename").to_pylist()
    raw = imported.read_tensor("image", imported.table().column("image").to_pylist(), raw=True)
    assert all(raw[i] == images[name] for i, name in enumerate(filenames))


def test_partition_folders_are_decoded_like_delta_does(tmp_path):
    """Delta paths are percent-encoded URIs (``k=a%2520b`` for the folder ``k=a%20b``): vacuum finds
    the files the log names on storage, and only those."""
    path = str(tmp_path / "plain")
    table = pa.table({"k": ["a b", "c/d%", "é"], "v": [1, 2, 3]})
    write_deltalake(path, table, partition_by=["k"])
    old = {os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs
           if f.endswith(".parquet")}
    write_deltalake(path, table, partition_by=["k"], mode="overwrite")
    decoy = os.path.join(path, "k=a%20b", "user-file.parquet")
    with open(decoy, "wb") as f:
        f.write(b"not named by the log")
    _age_tree(path, OLD_S)
    result = vacuum(DeltaTable(path), Storage(path), retention_hours=0, enforce_retention_duration=False)
    assert sorted(result.parquet_files) == sorted(old) and len(old) == 3
    assert os.path.exists(decoy)
    assert DeltaTable(path).to_pyarrow_table().num_rows == 3


@pytest.mark.parametrize("hostile", ["../outside/victim.parquet", "%2E%2E/outside/victim.parquet",
                                     "file://{outside}/victim.parquet", "{outside}/victim.parquet"])
def test_a_remove_action_outside_the_table_aborts_vacuum(tmp_path, hostile):
    root = str(tmp_path / "ds")
    outside = str(tmp_path / "outside")
    os.makedirs(outside)
    victim = os.path.join(outside, "victim.parquet")
    with open(victim, "wb") as f:
        f.write(b"someone else's file")
    ds = create_dataset(root)
    ds.append(make_batch(0, 0, 3))
    ds.overwrite(make_batch(0, 1, 3))
    # a foreign writer's commit that "removes" a file outside the table
    action = {"remove": {"path": hostile.format(outside=outside), "deletionTimestamp": 1, "dataChange": True}}
    with open(os.path.join(root, "_delta_log", f"{3:020d}.json"), "w") as f:
        f.write(json.dumps({"commitInfo": {"timestamp": int(time.time() * 1000), "operation": "DELETE"}}) + "\n")
        f.write(json.dumps(action) + "\n")
    _age_tree(root, OLD_S)
    _set_age(victim, OLD_S)
    before = _contents(root)
    with pytest.raises(UnsafePathError) as error:
        dls.open(root).vacuum(0, enforce_retention_duration=False)
    assert "remove" in str(error.value) and root in str(error.value) and "victim.parquet" in str(error.value)
    assert os.path.exists(victim)
    assert _contents(root) == before, "vacuum deleted files before refusing the hostile path"


def test_a_second_vacuum_reports_nothing_already_gone(tmp_path):
    root = str(tmp_path / "ds")
    ds = create_dataset(root)
    for b in range(3):
        ds.overwrite(make_batch(0, b, 4))
    first = ds.vacuum(0, enforce_retention_duration=False)
    assert first.parquet_files and first.chunk_files
    second = ds.vacuum(0, enforce_retention_duration=False)
    again = ds.vacuum(0, dry_run=True, enforce_retention_duration=False)
    assert second.files == [] and again.files == []


def _vacuum_in_child(path: str, out) -> None:
    result = dls.open(path).vacuum(0, enforce_retention_duration=False, progress=False)
    out.put(result.files)


def test_concurrent_vacuums_report_each_deleted_file_once(tmp_path):
    """Two forced vacuums racing over the same orphans: every file is reported by exactly the
    process whose delete removed it (a file gone before its delete is not reported)."""
    root = str(tmp_path / "ds")
    ds = create_dataset(root, chunk_size=32)
    for b in range(6):
        ds.overwrite(make_batch(0, b, 20))
    before = chunk_files(root) | _own_parquet(root)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    children = [ctx.Process(target=_vacuum_in_child, args=(root, out)) for _ in range(2)]
    for child in children:
        child.start()
    reports = [out.get(timeout=300) for _ in children]
    for child in children:
        child.join(60)
    gone = before - (chunk_files(root) | _own_parquet(root))
    assert len(gone) > 100
    assert set(reports[0]).isdisjoint(reports[1])
    assert set(reports[0]) | set(reports[1]) == gone
    assert rows_by_batch(dls.open(root)) == {(0, 5): 20}


def test_uncommitted_files_of_our_writers_go_lookalikes_stay(tmp_path):
    """A Spark task killed before the driver's commit leaves its Parquet file and chunks: vacuum
    removes them. Parquet files of other programs stay, even when named like Delta data files."""
    import pyarrow.parquet as pq

    from deeplake_spark.dataset.distributed import TaskWriter

    root = str(tmp_path / "ds")
    ds = create_dataset(root)
    ds.append(make_batch(0, 0, 3))
    task = TaskWriter(root, ds.schema, task_id=7)
    task.write(make_batch(1, 0, 3))
    task.finish()  # never committed: the driver was killed
    leftover = task.path
    with open(os.path.join(root, leftover), "rb") as f:
        head = f.read(100)
    interrupted = "part-00009-00000000000000000000000000000009.parquet"  # a task killed while writing
    with open(os.path.join(root, interrupted), "wb") as f:
        f.write(head)
    lookalikes = {
        "part-00000-0b5e9e2c-3a1f-4c61-9d7e-5f7e1f0c2a11-c000.snappy.parquet": True,  # a Spark job's output
        "part-00001-0123456789abcdef0123456789abcdef.parquet": True,
        "sub/part-00002-0123456789abcdef0123456789abcdef.parquet": False,  # not at the root
    }
    for rel, valid in lookalikes.items():
        full = os.path.join(root, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if valid:
            pq.write_table(pa.table({"writer": [1], "batch": [2]}), full)
        else:
            with open(full, "wb") as f:
                f.write(b"not parquet")
    _age_tree(root, OLD_S)
    before = _contents(root, list(lookalikes))
    chunks_before = chunk_files(root)
    result = dls.open(root).vacuum(0, enforce_retention_duration=False)
    assert sorted(result.parquet_files) == sorted([leftover, interrupted])
    assert not os.path.exists(os.path.join(root, leftover)) and not os.path.exists(os.path.join(root, interrupted))
    assert _contents(root, list(lookalikes)) == before
    assert not set(result.parquet_files) & set(lookalikes)
    assert set(result.chunk_files) == chunks_before - chunk_files(root) and result.chunk_files
    assert rows_by_batch(dls.open(root)) == {(0, 0): 3}


def test_a_restore_committed_during_vacuum_keeps_its_files(tmp_path):
    """Vacuum decides from a snapshot; a commit after it (here a restore of a version outside the
    window, committed before vacuum lists the files) keeps the files and chunks it brings back."""
    root = str(tmp_path / "ds")
    ds = create_dataset(root)
    ds.append(make_batch(0, 0, 3))
    ds.overwrite(make_batch(0, 1, 3))
    _age_tree(root, OLD_S)
    stale = dls.open(root)  # vacuum's snapshot: version 2
    stale.delta_table.update_incremental = lambda: None  # noqa: E731 - hold the snapshot still, as if slow
    dls.open(root).restore(1)  # version 3 brings version 1's Parquet file and chunks back
    stale.vacuum(0, enforce_retention_duration=False)
    restored = dls.open(root)
    assert rows_by_batch(restored) == {(0, 0): 3}
    assert np.array_equal(restored[2]["vec"], make_batch(0, 0, 3)["vec"][2])
