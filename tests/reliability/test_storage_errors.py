"""Storage failures are typed errors naming the file, and leave nothing half-done behind.

Issue #12 items 12 and 14: a full disk left ``Storage.write``'s ``.tmp-*`` partial file behind;
a vacuum on a read-only or full file system, or against S3 with wrong credentials or a missing
bucket, raised a bare ``OSError``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import signal
import subprocess
import time
from collections.abc import Iterator

import numpy as np
import pytest
from reliability_support import create_dataset, make_batch, rows_by_batch
from s3_server import S3Server

import deeplake_spark as dls
from deeplake_spark.errors import DatasetNotFoundError, StorageError
from deeplake_spark.storage import Storage

OLD_S = 30 * 24 * 3600


def _can_mount() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and subprocess.run(
        ["sh", "-c", "command -v mount"], capture_output=True).returncode == 0


@pytest.fixture
def tmpfs(tmp_path) -> Iterator[str]:
    """A 1 MiB tmpfs (root only): a real full disk and a real read-only file system."""
    if not _can_mount():
        pytest.skip("needs root to mount a tmpfs")
    mount_point = str(tmp_path / "tmpfs")
    os.makedirs(mount_point)
    run = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mount_point], capture_output=True, text=True)
    if run.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {run.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", mount_point], check=False)


def _files_under(folder: str) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _s, fs in os.walk(folder) for f in fs)


def test_write_on_a_full_disk_leaves_no_temp_file(tmpfs):
    storage = Storage(tmpfs)
    storage.write("_tensors/vec/small.dltc", b"x" * 1000)
    with pytest.raises(StorageError, match="big.dltc") as error:
        storage.write("_tensors/vec/big.dltc", os.urandom(2 * 1024 * 1024))
    assert "No space left" in str(error.value) or "28" in str(error.value)
    assert _files_under(tmpfs) == ["_tensors/vec/small.dltc"]


def _write_with_file_size_limit(folder: str, out) -> None:
    """Child process: files may not grow past 4 KiB (RLIMIT_FSIZE), like a quota."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    try:
        Storage(folder).write("_tensors/vec/big.dltc", b"y" * 100_000)
    except StorageError as e:
        out.put(("StorageError", str(e)))
    else:
        out.put(("no error", ""))


def test_write_past_a_file_size_limit_leaves_no_temp_file(tmp_path):
    """The same without root: a child process with RLIMIT_FSIZE."""
    folder = str(tmp_path / "ds")
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_write_with_file_size_limit, args=(folder, out))
    child.start()
    kind, message = out.get(timeout=120)
    child.join(60)
    assert kind == "StorageError" and "big.dltc" in message
    assert _files_under(folder) == []


def _age(root: str) -> None:
    stamp = time.time() - OLD_S
    for folder, _dirs, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(folder, name), (stamp, stamp))


def test_vacuum_on_a_read_only_file_system_names_the_file(tmpfs):
    path = os.path.join(tmpfs, "ds")
    ds = create_dataset(path)
    ds.append(make_batch(0, 0, 3))
    ds.overwrite(make_batch(0, 1, 3))
    _age(path)
    subprocess.run(["mount", "-o", "remount,ro", tmpfs], check=True)
    before = _files_under(path)
    with pytest.raises(StorageError) as error:
        dls.open(path).vacuum(0, enforce_retention_duration=False)
    assert path in str(error.value) and ("Read-only" in str(error.value) or "30" in str(error.value))
    assert _files_under(path) == before
    dry = dls.open(path).vacuum(0, dry_run=True, enforce_retention_duration=False)  # reads only: works
    assert dry.chunk_files and dry.parquet_files


# ------------------------------------------------------------------------------------- S3
@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> Iterator[S3Server]:
    """A server of this module's own: one test kills and restarts it."""
    server = S3Server(tmp_path_factory.mktemp("seaweedfs-errors")).start()
    try:
        yield server
    finally:
        server.stop()


def _s3_dataset(server: S3Server) -> str:
    uri = server.uri()
    ds = dls.create(uri, {"vec": dls.tensor("generic", dtype="int64", shape=(3,)), "note": dls.tensor("text"),
                          "writer": "int64", "batch": "int64", "seq": "int64"}, storage_options=server.storage_options)
    ds.append(make_batch(0, 0, 3))
    ds.overwrite(make_batch(0, 1, 3))
    return uri


@pytest.mark.slow
def test_s3_wrong_credentials_are_a_clear_storage_error(s3):
    uri = _s3_dataset(s3)
    wrong = {**s3.storage_options, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    with pytest.raises(StorageError, match=uri):
        dls.open(uri, storage_options=wrong)
    with pytest.raises(StorageError, match="s3://"):
        dls.create(s3.uri(), {"label": "int64"}, storage_options=wrong)
    with pytest.raises(StorageError, match=uri):
        Storage(uri, wrong).list("_tensors")
    # a handle opened with good credentials whose chunk storage is refused: vacuum stops, deletes nothing
    ds = dls.open(uri, storage_options=s3.storage_options)
    ds.storage = Storage(uri, wrong)
    with pytest.raises(StorageError, match=uri):
        ds.vacuum(0, enforce_retention_duration=False)
    reopened = dls.open(uri, storage_options=s3.storage_options)
    assert rows_by_batch(reopened) == {(0, 1): 3}
    assert dls.open(uri, version=1, storage_options=s3.storage_options)[2]["note"] == "w0-b0-s2"


@pytest.mark.slow
def test_s3_missing_bucket_is_a_clear_error(s3):
    missing = "s3://no-such-bucket-deeplake/ds"
    with pytest.raises((StorageError, DatasetNotFoundError), match="no-such-bucket-deeplake"):
        dls.open(missing, storage_options=s3.storage_options)
    with pytest.raises(StorageError, match="no-such-bucket-deeplake"):
        dls.create(missing, {"label": "int64"}, storage_options=s3.storage_options)
    with pytest.raises((StorageError, DatasetNotFoundError), match="no-such-bucket-deeplake"):
        dls.open(missing, storage_options=s3.storage_options).vacuum()


@pytest.mark.slow
def test_s3_outage_during_vacuum_deletes_nothing(s3):
    uri = _s3_dataset(s3)
    ds = dls.open(uri, storage_options=s3.storage_options)
    before = sorted(e.path for e in Storage(uri, s3.storage_options).list(""))
    s3.kill()
    try:
        with pytest.raises(StorageError, match=uri):
            ds.vacuum(0, enforce_retention_duration=False)
    finally:
        s3.restart()
    assert sorted(e.path for e in Storage(uri, s3.storage_options).list("")) == before
    assert np.array_equal(dls.open(uri, version=1, storage_options=s3.storage_options)[1]["vec"],
                          make_batch(0, 0, 3)["vec"][1])
    result = dls.open(uri, storage_options=s3.storage_options).vacuum(0, enforce_retention_duration=False)
    assert result.parquet_files and result.chunk_files
    assert rows_by_batch(dls.open(uri, storage_options=s3.storage_options)) == {(0, 1): 3}
