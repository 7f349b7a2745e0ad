from __future__ import annotations

import os

import pytest

from deeplake_spark.errors import StorageError
from deeplake_spark.storage import normalize_uri


def test_local_paths_become_absolute_and_uris_keep_their_scheme(tmp_path):
    assert normalize_uri(str(tmp_path / "a" / ".." / "b")) == str(tmp_path / "b")
    assert normalize_uri(f"file://{tmp_path}/x") == f"{tmp_path}/x"
    assert normalize_uri("s3://bucket/prefix/") == "s3://bucket/prefix"
    assert normalize_uri("~/ds") == os.path.expanduser("~/ds")


def test_databricks_dbfs_paths_use_the_fuse_mount():
    assert normalize_uri("dbfs:/datasets/pets") == "/dbfs/datasets/pets"


def test_single_slash_scheme_is_refused_instead_of_becoming_a_local_folder():
    with pytest.raises(StorageError, match="unsupported path 'gs:/x'"):
        normalize_uri("gs:/x")


def test_read_writable_maps_a_local_file_privately_and_refuses_what_is_not_a_regular_file(tmp_path):
    """``read_writable`` maps local files copy-on-write: the buffer is writable, an edit stays in
    the process, and a FIFO, a directory or a missing file give the same errors as ``read``."""
    import threading

    from deeplake_spark.storage import Storage

    (tmp_path / "chunk").write_bytes(b"0123456789")
    (tmp_path / "empty").write_bytes(b"")
    storage = Storage(str(tmp_path))
    buf = storage.read_writable("chunk")
    assert bytes(buf) == b"0123456789" and not buf.readonly
    buf[0:4] = b"XXXX"
    assert (tmp_path / "chunk").read_bytes() == b"0123456789"  # private: the file is untouched
    assert bytes(storage.read_writable("chunk")) == b"0123456789"
    assert bytes(storage.read_writable("empty")) == b""
    with pytest.raises(FileNotFoundError):
        storage.read_writable("missing")
    (tmp_path / "folder").mkdir()
    with pytest.raises(StorageError, match="directory"):
        storage.read_writable("folder")
    os.mkfifo(tmp_path / "fifo")
    outcome: list[BaseException | None] = []

    def read_fifo() -> None:
        try:
            storage.read_writable("fifo")
            outcome.append(None)
        except BaseException as e:  # noqa: BLE001 - recorded for the assertion below
            outcome.append(e)

    reader = threading.Thread(target=read_fifo, daemon=True)
    reader.start()
    reader.join(10)
    assert outcome, "reading a FIFO blocks"
    assert isinstance(outcome[0], StorageError) and "not a regular file" in str(outcome[0])
