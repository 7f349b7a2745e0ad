"""Chunk I/O over pyarrow.fs.

Why pyarrow.fs and not fsspec: it is already a hard dependency (Delta/Parquet), its S3 client is
C++ (no GIL held during transfers, so loader threads overlap I/O), and it supports ranged reads.

Set ``DEEPLAKE_SPARK_IO_LOG=/some/file`` to append one line ``<path> <bytes>`` per read, from every
process (Spark workers, loader workers): used by tests and benchmarks to count chunk reads.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs

from deeplake_spark.errors import StorageError

log = logging.getLogger(__name__)
_IO_LOG_ENV = "DEEPLAKE_SPARK_IO_LOG"


def normalize_uri(path: str | os.PathLike[str]) -> str:
    """Absolute local path (no scheme) or an unchanged ``scheme://`` URI, without trailing slash."""
    text = os.fspath(path)
    if "://" in text:
        if text.startswith("file://"):
            return os.path.abspath(urlparse(text).path)
        return text.rstrip("/")
    return os.path.abspath(os.path.expanduser(text))


def _opt(options: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        for key in (name, name.lower(), name.upper()):
            if options.get(key):
                return options[key]
    for name in names:
        if os.environ.get(name.upper()):
            return os.environ[name.upper()]
    return None


def delta_storage_options(uri: str, storage_options: Mapping[str, str] | None) -> dict[str, str] | None:
    """Options handed to delta-rs for ``uri`` (object stores only; local paths need none)."""
    if "://" not in uri:
        return None
    return {str(k): str(v) for k, v in (storage_options or {}).items()}


def _make_s3(options: Mapping[str, str]) -> pafs.S3FileSystem:
    endpoint = _opt(options, "aws_endpoint_url", "aws_endpoint", "endpoint_url")
    kwargs: dict[str, Any] = {
        "access_key": _opt(options, "aws_access_key_id"),
        "secret_key": _opt(options, "aws_secret_access_key"),
        "session_token": _opt(options, "aws_session_token"),
        "region": _opt(options, "aws_region", "aws_default_region") or "us-east-1",
    }
    if endpoint:
        parsed = urlparse(endpoint)
        kwargs["endpoint_override"] = parsed.netloc or parsed.path
        kwargs["scheme"] = parsed.scheme or "https"
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return pafs.S3FileSystem(**kwargs)


@dataclass(frozen=True)
class FileEntry:
    """A file found by ``Storage.list``: path relative to the storage root, size, mtime (ns)."""

    path: str
    size: int
    mtime_ns: int


class Storage:
    """Bytes under one root (a dataset path): read, ranged read, atomic write, list, delete.

    Picklable (holds only the URI and options), so Spark tasks and loader workers can carry it.
    """

    def __init__(self, uri: str | os.PathLike[str], storage_options: Mapping[str, str] | None = None) -> None:
        self.uri = normalize_uri(uri)
        self.storage_options = dict(storage_options or {})
        self._fs: pafs.FileSystem | None = None
        self._root: str = ""

    def __getstate__(self) -> dict[str, Any]:
        return {"uri": self.uri, "storage_options": self.storage_options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["uri"], state["storage_options"])  # type: ignore[misc]

    @property
    def is_local(self) -> bool:
        return "://" not in self.uri

    @property
    def fs(self) -> pafs.FileSystem:
        if self._fs is None:
            if self.is_local:
                self._fs, self._root = pafs.LocalFileSystem(), self.uri
            elif self.uri.startswith(("s3://", "s3a://")):
                parsed = urlparse(self.uri)
                self._fs, self._root = _make_s3(self.storage_options), parsed.netloc + parsed.path
            else:
                try:
                    self._fs, self._root = pafs.FileSystem.from_uri(self.uri)
                except (pa.ArrowInvalid, ValueError) as e:
                    raise StorageError(f"unsupported storage URI {self.uri!r}: {e}") from e
        return self._fs

    def full_path(self, relpath: str) -> str:
        _ = self.fs
        return f"{self._root}/{relpath}" if relpath else self._root

    def uri_of(self, relpath: str) -> str:
        return f"{self.uri}/{relpath}"

    def _log_read(self, relpath: str, nbytes: int) -> None:
        target = os.environ.get(_IO_LOG_ENV)
        if target:
            with open(target, "a") as f:
                f.write(f"{relpath} {nbytes}\n")

    def read(self, relpath: str) -> bytes:
        """Whole file. Raises FileNotFoundError for a missing file, StorageError for other failures."""
        try:
            with self.fs.open_input_stream(self.full_path(relpath)) as f:
                data = f.readall()
        except FileNotFoundError:
            raise
        except OSError as e:
            if "not found" in str(e).lower() or "does not exist" in str(e).lower() or "NoSuchKey" in str(e):
                raise FileNotFoundError(self.uri_of(relpath)) from e
            raise StorageError(f"reading {self.uri_of(relpath)} failed: {e}") from e
        self._log_read(relpath, len(data))
        return data

    def read_range(self, relpath: str, offset: int, length: int) -> bytes:
        try:
            with self.fs.open_input_file(self.full_path(relpath)) as f:
                data = f.read_at(length, offset)
        except FileNotFoundError:
            raise
        except OSError as e:
            raise StorageError(f"reading {self.uri_of(relpath)} [{offset}:+{length}] failed: {e}") from e
        self._log_read(relpath, len(data))
        return data

    def write(self, relpath: str, data: bytes | memoryview) -> None:
        """Write a whole file so that readers see all of it or nothing.

        Local: temp file in the same folder, then rename. Object stores: a single PUT is atomic.
        """
        target = self.full_path(relpath)
        try:
            if self.is_local:
                folder = os.path.dirname(target)
                os.makedirs(folder, exist_ok=True)
                tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}")
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, target)
            else:
                with self.fs.open_output_stream(target) as f:
                    f.write(data)
        except OSError as e:
            raise StorageError(f"writing {self.uri_of(relpath)} failed: {e}") from e

    def exists(self, relpath: str) -> bool:
        try:
            return self.fs.get_file_info(self.full_path(relpath)).type != pafs.FileType.NotFound
        except OSError as e:
            raise StorageError(f"checking {self.uri_of(relpath)} failed: {e}") from e

    def delete(self, relpath: str) -> None:
        try:
            self.fs.delete_file(self.full_path(relpath))
        except FileNotFoundError:
            pass
        except OSError as e:
            raise StorageError(f"deleting {self.uri_of(relpath)} failed: {e}") from e

    def list(self, relprefix: str) -> list[FileEntry]:
        """Files (recursively) under ``relprefix``; empty when it does not exist."""
        base = self.full_path(relprefix)
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        except OSError as e:
            raise StorageError(f"listing {self.uri_of(relprefix)} failed: {e}") from e
        root = self.full_path("")
        out = []
        for info in infos:
            if info.type == pafs.FileType.File:
                rel = info.path[len(root) :].lstrip("/")
                mtime = info.mtime_ns if info.mtime_ns is not None else 0
                out.append(FileEntry(rel, info.size or 0, mtime))
        return out
