"""Symbolic links inside a dataset are never followed by vacuum, ``Storage.list`` or ``info``.

Issue #12 items 2 and 11: a link under ``_tensors/`` (to an outside folder, or a ``.dltc`` link in a
tensor folder) made vacuum delete chunk and temp files outside the dataset, and a link loop made
``deeplake-spark info`` count chunk files many times over.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time

import pytest
from reliability_support import chunk_files, create_dataset, make_batch, rows_by_batch

import deeplake_spark as dls
from deeplake_spark.errors import StorageError
from deeplake_spark.storage import Storage

OLD_S = 30 * 24 * 3600
CHUNK_NAME = "0123456789abcdef0123456789abcdef.dltc"


def _age(path: str) -> None:
    stamp = time.time() - OLD_S
    os.utime(path, (stamp, stamp), follow_symlinks=False)


def _outside_folder(tmp_path) -> tuple[str, dict[str, bytes]]:
    """A folder outside the dataset holding files named like chunks and temp files, a month old."""
    outside = str(tmp_path / "outside")
    os.makedirs(outside)
    files = {CHUNK_NAME: b"someone else's chunk-named file", ".tmp-0123": b"someone else's temp-named file",
             "photo.jpg": b"\xff\xd8 a photo"}
    for name, data in files.items():
        with open(os.path.join(outside, name), "wb") as f:
            f.write(data)
        _age(os.path.join(outside, name))
    return outside, files


def _read_all(folder: str) -> dict[str, bytes]:
    out = {}
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), "rb") as f:
            out[name] = f.read()
    return out


def _dataset_with_orphans(path: str) -> None:
    ds = create_dataset(path)
    ds.append(make_batch(0, 0, 4))
    ds.overwrite(make_batch(0, 1, 4))  # version 1's chunks become orphans


def _age_all(root: str) -> None:
    for folder, _dirs, files in os.walk(root):
        for name in files:
            _age(os.path.join(folder, name))


@pytest.mark.parametrize("link", ["tensor folder", "chunk file", "temp file", "folder inside a tensor folder"])
def test_vacuum_never_deletes_through_a_link(tmp_path, caplog, link):
    root = str(tmp_path / "ds")
    _dataset_with_orphans(root)
    outside, files = _outside_folder(tmp_path)
    tensors = os.path.join(root, "_tensors")
    if link == "tensor folder":
        os.symlink(outside, os.path.join(tensors, "evil"))
    elif link == "chunk file":
        os.symlink(os.path.join(outside, CHUNK_NAME), os.path.join(tensors, "vec", CHUNK_NAME))
    elif link == "temp file":
        os.symlink(os.path.join(outside, ".tmp-0123"), os.path.join(tensors, "vec", ".tmp-link"))
    else:
        os.symlink(outside, os.path.join(tensors, "vec", "more"))
    _age_all(root)
    orphans_before = chunk_files(root)
    with caplog.at_level(logging.WARNING, logger="deeplake_spark"):
        dry = dls.open(root).vacuum(0, dry_run=True, enforce_retention_duration=False)
        result = dls.open(root).vacuum(0, enforce_retention_duration=False)
    assert _read_all(outside) == files, "vacuum deleted files outside the dataset through a link"
    links = [os.path.join(d, n) for d, ds_, ns in os.walk(root) for n in ns + ds_ if os.path.islink(os.path.join(d, n))]
    assert len(links) == 1, "vacuum removed the link itself"
    # the dataset's own orphans went, and only files inside the dataset are reported
    assert sorted(dry.files) == sorted(result.files) and result.chunk_files
    assert all(not f.startswith(("_tensors/evil", "_tensors/vec/more")) and not f.endswith((".tmp-link", CHUNK_NAME))
               for f in result.files)
    assert set(result.chunk_files) <= orphans_before
    assert rows_by_batch(dls.open(root)) == {(0, 1): 4}
    assert "symbolic link" in caplog.text


def test_storage_list_reports_no_file_reached_through_a_link(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "real.bin").write_bytes(b"x")
    outside, _files = _outside_folder(tmp_path)
    os.symlink(outside, root / "a" / "linked")
    os.symlink(outside + f"/{CHUNK_NAME}", root / "a" / "file-link.dltc")
    os.symlink("..", root / "a" / "loop")
    storage = Storage(str(root))
    assert [e.path for e in storage.list("")] == ["a/real.bin"]
    assert [e.path for e in storage.list("a", recursive=False)] == ["a/real.bin"]
    assert storage.list("a/linked") == [] and storage.list("a/loop/a") == []
    with pytest.raises(StorageError, match="symbolic link"):
        storage.delete(f"a/linked/{CHUNK_NAME}")
    assert os.path.exists(os.path.join(outside, CHUNK_NAME))
    assert storage.delete("a/real.bin") is True and storage.delete("a/real.bin") is False


def _info(path: str) -> dict:
    run = subprocess.run([sys.executable, "-m", "deeplake_spark.cli", "info", path, "--json"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_a_link_loop_neither_hangs_nor_double_counts(tmp_path):
    root = str(tmp_path / "ds")
    _dataset_with_orphans(root)
    expected = _info(root)
    folders = {c: os.path.join(root, "_tensors", c) for c in ("vec", "note")}  # note: text, inline (no folder)
    on_disk = {c: len(os.listdir(d)) if os.path.isdir(d) else 0 for c, d in folders.items()}
    os.symlink("..", os.path.join(root, "_tensors", "vec", "loop"))
    os.symlink(os.path.join(root, "_tensors"), os.path.join(root, "_tensors", "again"))
    os.symlink(root, os.path.join(root, "self"))
    info = _info(root)  # a 120 s timeout guards against a hang
    counted = {c["name"]: c["chunk_files"] for c in info["columns"] if c["kind"] == "tensor"}
    assert counted == on_disk
    assert info["size_bytes"] == expected["size_bytes"] and info["chunk_bytes"] == expected["chunk_bytes"]
    _age_all(root)
    result = dls.open(root).vacuum(0, enforce_retention_duration=False)
    assert result.chunk_files and all(f.count("/") == 2 for f in result.chunk_files)
    assert all(os.path.islink(os.path.join(root, p)) for p in ("_tensors/vec/loop", "_tensors/again", "self"))


def test_info_counts_only_the_datasets_own_files(tmp_path):
    root = str(tmp_path / "ds")
    _dataset_with_orphans(root)
    expected = _info(root)
    with open(os.path.join(root, "big-user-file.bin"), "wb") as f:
        f.write(b"\0" * 1_000_000)
    shutil.copytree(os.path.join(root, "_tensors"), os.path.join(root, "backup", "_tensors"))
    assert _info(root)["size_bytes"] == expected["size_bytes"]


def test_a_data_file_reached_through_a_link_stops_vacuum(tmp_path):
    """The latest version's Parquet file moved out and linked back: vacuum cannot read its refs
    without following the link, so it deletes nothing rather than losing that version's chunks."""
    root = str(tmp_path / "ds")
    _dataset_with_orphans(root)
    ds = dls.open(root)
    latest_file = ds.delta_table.file_uris()[0]
    moved = str(tmp_path / os.path.basename(latest_file))
    shutil.move(latest_file, moved)
    os.symlink(moved, latest_file)
    _age_all(root)
    before = chunk_files(root)
    with pytest.raises(StorageError, match="symbolic link"):
        dls.open(root).vacuum(0, enforce_retention_duration=False)
    assert chunk_files(root) == before and os.path.exists(moved)
