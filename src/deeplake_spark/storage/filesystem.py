"""Chunk I/O over pyarrow.fs, for local paths and S3 (AWS or S3-compatible servers).

Why pyarrow.fs and not fsspec: it is already a hard dependency (Delta/Parquet), its S3 client is
C++ (no GIL held during transfers, so loader threads overlap I/O), and it supports ranged reads.

S3 settings come from ``storage_options`` first, then from ``AWS_*`` environment variables, under
the names delta-rs (object_store) uses, so one dict configures both the Delta log and the chunks::

    {"AWS_ENDPOINT_URL": "http://127.0.0.1:8333", "AWS_ACCESS_KEY_ID": "...",
     "AWS_SECRET_ACCESS_KEY": "...", "AWS_REGION": "us-east-1", "conditional_put": "etag"}

Keys are case-insensitive; delta-rs' short aliases (``endpoint``, ``access_key_id``, ...) work too.

Set ``DEEPLAKE_SPARK_IO_LOG=/some/file`` to append one line ``<path> <bytes>`` per read, from every
process (Spark workers, loader workers): used by tests and benchmarks to count chunk reads.
"""

from __future__ import annotations

import logging
import mmap
import os
import re
import stat
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs

from deeplake_spark.errors import StorageError

log = logging.getLogger(__name__)
_IO_LOG_ENV = "DEEPLAKE_SPARK_IO_LOG"
S3_SCHEMES = ("s3://", "s3a://")
#: URL schemes of object stores tested end to end (plus local paths and ``file://``).
TESTED_SCHEMES = ("s3", "s3a")
#: URL schemes handed to pyarrow.fs (chunks, Parquet) and delta-rs (the log) as they are: usable
#: where their filesystem is installed and configured (credentials in storage_options or the
#: environment, libhdfs for hdfs), not tested here.
CONFIGURED_SCHEMES = ("gs", "gcs", "abfs", "abfss", "hdfs")
URI_SCHEMES = TESTED_SCHEMES + CONFIGURED_SCHEMES
SUPPORTED_TEXT = ("local paths, file://, " + ", ".join(f"{s}://" for s in TESTED_SCHEMES)
                  + " and, once their filesystem is configured, " + ", ".join(f"{s}://" for s in CONFIGURED_SCHEMES))
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Accepted names of each S3 setting, in order of preference: the AWS_* name (also read from the
# environment), then object_store's aliases, which delta-rs accepts as well.
S3_OPTION_NAMES: dict[str, tuple[str, ...]] = {
    "endpoint": ("aws_endpoint_url", "aws_endpoint_url_s3", "aws_endpoint", "endpoint_url", "endpoint"),
    "access_key": ("aws_access_key_id", "access_key_id"),
    "secret_key": ("aws_secret_access_key", "secret_access_key"),
    "session_token": ("aws_session_token", "aws_token", "session_token", "token"),
    "region": ("aws_region", "aws_default_region", "region", "default_region"),
    "allow_http": ("aws_allow_http", "allow_http"),
    "conditional_put": ("aws_conditional_put", "conditional_put"),
    "allow_unsafe_rename": ("aws_s3_allow_unsafe_rename", "allow_unsafe_rename"),
    "locking_provider": ("aws_s3_locking_provider",),
}


def normalize_uri(path: str | os.PathLike[str]) -> str:
    """Absolute local path (no scheme) or an unchanged ``scheme://`` URI, without trailing slash."""
    text = os.fspath(path)
    if text.startswith("dbfs:/") and not text.startswith("dbfs://"):
        # Databricks: dbfs:/x is visible to Python through the FUSE mount /dbfs/x
        return os.path.abspath("/dbfs/" + text[len("dbfs:/") :].lstrip("/"))
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:/(?!/)", text):
        raise StorageError(f"unsupported path {text!r}: use a local path or a scheme://bucket/prefix URI")
    if "://" in text:
        if text.startswith("file://"):
            return os.path.abspath(urlparse(text).path)
        scheme = text.split("://", 1)[0].lower()
        if scheme not in URI_SCHEMES:
            # caught here, not as a DatasetNotFoundError from delta-rs (which reads an unknown
            # scheme as an empty table location) or as a pyarrow error at the first read
            raise StorageError(f"{text}: URL scheme {scheme!r} is not supported; supported: {SUPPORTED_TEXT}")
        return text.rstrip("/")
    return os.path.abspath(os.path.expanduser(text))


def scheme_unavailable(uri: str, error: BaseException) -> StorageError | None:
    """For a URI of one of :data:`CONFIGURED_SCHEMES` whose filesystem failed to start or to reach
    it (no credentials, no libhdfs, ...): a StorageError saying the scheme is not supported here as
    configured, naming the URI, the first lines of ``error`` and the supported schemes. None for
    other URIs, whose errors are reported as they are."""
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme not in CONFIGURED_SCHEMES:
        return None
    lines = [line.strip(" \u21b3") for line in _ANSI.sub("", str(error)).splitlines() if line.strip(" \u21b3")]
    cause = ": ".join(lines[:3])[:300] or type(error).__name__
    return StorageError(f"{uri}: URL scheme {scheme!r} is not supported here: its filesystem is not installed or "
                        f"not configured ({cause}); pass its credentials in storage_options, or use one of: "
                        f"{SUPPORTED_TEXT}")


def s3_option(storage_options: Mapping[str, str] | None, setting: str) -> str | None:
    """The value of one S3 ``setting`` (a key of ``S3_OPTION_NAMES``), or None when unset.

    ``storage_options`` wins over the environment; keys match case-insensitively. Only the
    ``AWS_*`` names are read from the environment (``TOKEN`` or ``REGION`` there mean other things).
    """
    names = S3_OPTION_NAMES[setting]
    given = {str(k).lower(): v for k, v in (storage_options or {}).items()}
    for name in names:
        value = given.get(name)
        if value is not None and str(value) != "":
            return str(value)
    for name in names:
        if name.startswith("aws_") and os.environ.get(name.upper()):
            return os.environ[name.upper()]
    return None


def is_true(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true", "yes", "on")


def delta_storage_options(uri: str, storage_options: Mapping[str, str] | None) -> dict[str, str] | None:
    """Options handed to delta-rs for ``uri`` (object stores only; local paths need none).

    The user's options pass through unchanged; for an ``http://`` S3 endpoint ``AWS_ALLOW_HTTP``
    is added when missing, since pyarrow takes the scheme from the URL but delta-rs refuses plain
    HTTP without it.
    """
    if "://" not in uri:
        return None
    options = {str(k): str(v) for k, v in (storage_options or {}).items()}
    if uri.startswith(S3_SCHEMES):
        endpoint = s3_option(options, "endpoint")
        if endpoint and endpoint.lower().startswith("http://") and s3_option(options, "allow_http") is None:
            options["AWS_ALLOW_HTTP"] = "true"
    return options


def make_s3_filesystem(storage_options: Mapping[str, str] | None) -> pafs.S3FileSystem:
    """A pyarrow S3 client configured from delta-rs-style ``storage_options`` and ``AWS_*`` env vars."""
    kwargs: dict[str, Any] = {
        "access_key": s3_option(storage_options, "access_key"),
        "secret_key": s3_option(storage_options, "secret_key"),
        "session_token": s3_option(storage_options, "session_token"),
        "region": s3_option(storage_options, "region") or "us-east-1",
    }
    endpoint = s3_option(storage_options, "endpoint")
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"//{endpoint}")
        kwargs["endpoint_override"] = parsed.netloc or parsed.path
        if parsed.scheme:
            kwargs["scheme"] = parsed.scheme
        else:
            kwargs["scheme"] = "http" if is_true(s3_option(storage_options, "allow_http")) else "https"
    if (kwargs["access_key"] is None) != (kwargs["secret_key"] is None):
        raise StorageError("S3 storage options: set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        return pafs.S3FileSystem(**kwargs)
    except (pa.ArrowInvalid, ValueError, OSError) as e:
        raise StorageError(f"cannot configure S3 access (endpoint {endpoint!r}): {e}") from e


@dataclass(frozen=True)
class FileEntry:
    """A file found by ``Storage.list``: path relative to the storage root, size, mtime (ns)."""

    path: str
    size: int
    mtime_ns: int


class Storage:
    """Bytes under one root (a dataset path): read, ranged read, atomic write, list, delete.

    Picklable (holds only the URI and options), so Spark tasks and loader workers can carry it.
    The filesystem client is created on first use in each process; one client (and its pool of
    HTTP connections) serves every thread of that process.
    """

    def __init__(self, uri: str | os.PathLike[str], storage_options: Mapping[str, str] | None = None) -> None:
        self.uri = normalize_uri(uri)
        self.storage_options = {str(k): str(v) for k, v in (storage_options or {}).items()}
        self._fs: pafs.FileSystem | None = None
        self._fs_pid = 0
        self._root: str = ""

    def __getstate__(self) -> dict[str, Any]:
        return {"uri": self.uri, "storage_options": self.storage_options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["uri"], state["storage_options"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"Storage({self.uri!r})"

    @property
    def is_local(self) -> bool:
        return "://" not in self.uri

    @property
    def fs(self) -> pafs.FileSystem:
        # A client inherited through fork() shares connections with the parent: make a new one.
        if self._fs is None or self._fs_pid != os.getpid():
            self._fs, self._root = self._connect()
            self._fs_pid = os.getpid()
        return self._fs

    def _connect(self) -> tuple[pafs.FileSystem, str]:
        if self.is_local:
            return pafs.LocalFileSystem(), self.uri
        if self.uri.startswith(S3_SCHEMES):
            parsed = urlparse(self.uri)
            if not parsed.netloc:
                raise StorageError(f"{self.uri}: an S3 URI needs a bucket, e.g. s3://bucket/datasets/cats")
            return make_s3_filesystem(self.storage_options), parsed.netloc + parsed.path
        try:
            return pafs.FileSystem.from_uri(self.uri)
        except (pa.ArrowInvalid, ValueError, OSError) as e:  # OSError: e.g. hdfs without libjvm/libhdfs
            raise scheme_unavailable(self.uri, e) or StorageError(f"unsupported storage URI {self.uri!r}: {e}") from e

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

    def read(self, relpath: str, *, max_bytes: int | None = None) -> bytes:
        """Whole file. Raises FileNotFoundError for a missing file, StorageError for other failures
        (also a file over ``max_bytes``, checked before reading: the size comes with the open)."""
        # A random-access file reads everything with one (ranged) GET on S3; an input
        # stream would fetch it in many small requests, several times slower.
        with self._io_errors(relpath, "reading"), self._open_regular(relpath) as f:
            if max_bytes is not None and f.size() > max_bytes:
                raise StorageError(f"the file has {f.size()} bytes, over the bound of {max_bytes}")
            data = f.readall()
        self._log_read(relpath, len(data))
        return data

    def read_writable(self, relpath: str) -> memoryview:
        """Whole file into a new writable buffer the caller owns; for readers that hand out zero-copy
        views of it. Errors as :meth:`read`.

        A local file is mapped privately (copy-on-write) instead of copied: its pages come straight
        from the page cache, and a write to the buffer (a training loop editing a batch that is a
        view of it) stays in this process. Measured on a 75 MB epoch of raw chunks in the page
        cache: read + checksum + gather ~17 ms mapped vs ~45-55 ms copied into fresh buffers. Chunk
        files are immutable: writers publish whole files by rename and vacuum unlinks them, which
        leaves a mapping intact; only truncating a chunk file in place while a loader maps it would
        fault the reading process (SIGBUS), as it would any program mapping that file."""
        if self.is_local:
            return self._map_private(relpath)
        with self._io_errors(relpath, "reading"), self._open_regular(relpath) as f:
            size = f.size()
            buffer = bytearray(size)
            got = f.readinto(buffer)
        if got != size:
            raise StorageError(f"reading {self.uri_of(relpath)}: short read ({got} of {size} bytes)")
        self._log_read(relpath, got)
        return memoryview(buffer)

    def _map_private(self, relpath: str) -> memoryview:
        """A local regular file mapped copy-on-write (``read_writable``)."""
        path = self.full_path(relpath)
        with self._io_errors(relpath, "reading"):
            # O_NONBLOCK: opening a FIFO a hostile dataset holds returns at once (refused below)
            # instead of waiting for a writer; it changes nothing for a regular file
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                info = os.fstat(fd)  # of the file opened, not of whatever the path names later
                if stat.S_ISDIR(info.st_mode):
                    raise StorageError(f"reading {self.uri_of(relpath)} failed: the path is a directory")
                if not stat.S_ISREG(info.st_mode):
                    raise StorageError(f"reading {self.uri_of(relpath)} failed: not a regular file (a FIFO, device "
                                       "or socket)")
                size = info.st_size
                mapped = memoryview(mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE,
                                              prot=mmap.PROT_READ | mmap.PROT_WRITE)) if size else memoryview(bytearray())
            finally:
                os.close(fd)
        self._log_read(relpath, size)
        return mapped

    def read_range(self, relpath: str, offset: int, length: int) -> bytes:
        with self._io_errors(relpath, "reading", f" [{offset}:+{length}]"), \
                self._open_regular(relpath) as f:
            data = f.read_at(length, offset)
        self._log_read(relpath, len(data))
        return data

    def open_input(self, relpath: str) -> pa.NativeFile:
        """A random-access file (for ranged reads, e.g. Parquet footers and column chunks).

        Raises FileNotFoundError for a missing file, StorageError for other failures to open it.
        """
        with self._io_errors(relpath, "opening"):
            return self.fs.open_input_file(self.full_path(relpath))

    def _open_regular(self, relpath: str) -> Any:
        """``fs.open_input_file`` of ``relpath``; locally only a regular file: opening a FIFO (or a
        device) that a hostile dataset folder holds would block the reader forever, or read endlessly."""
        path = self.full_path(relpath)
        if self.is_local:
            mode = os.stat(path).st_mode  # FileNotFoundError passes through as a missing file
            if stat.S_ISDIR(mode):
                raise StorageError("the path is a directory")
            if not stat.S_ISREG(mode):
                raise StorageError("not a regular file (a FIFO, device or socket)")
        return self.fs.open_input_file(path)

    @contextmanager
    def _io_errors(self, relpath: str, doing: str, detail: str = "") -> Iterator[None]:
        """FileNotFoundError for a missing file (also S3's NoSuchKey), StorageError for other I/O errors."""
        try:
            yield
        except FileNotFoundError:
            raise
        except OSError as e:
            if _is_not_found(e):
                raise FileNotFoundError(self.uri_of(relpath)) from e
            raise StorageError(f"{doing} {self.uri_of(relpath)}{detail} failed: {e}") from e

    def write(self, relpath: str, data: bytes | memoryview) -> None:
        """Write a whole file so that readers see all of it or nothing.

        Local: temp file ``.tmp-<hex>`` in the same folder, then rename; the temp file is removed
        on any failure (disk full, interrupt). S3: one PUT (or a multipart upload, which becomes
        visible only when completed), so a failed write leaves no partial object.
        """
        target = self.full_path(relpath)
        try:
            if self.is_local:
                folder = os.path.dirname(target)
                os.makedirs(folder, exist_ok=True)
                tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}")
                try:
                    with open(tmp, "wb") as f:
                        f.write(data)
                    os.replace(tmp, target)
                except BaseException:
                    # BaseException: a KeyboardInterrupt or a worker being stopped must not leave a
                    # partial file behind either (the error itself still propagates).
                    self._remove_temp(tmp)
                    raise
            else:
                with self.fs.open_output_stream(target) as f:
                    f.write(data)
        except OSError as e:
            raise StorageError(f"writing {self.uri_of(relpath)} failed: {e}") from e

    def _remove_temp(self, tmp: str) -> None:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        except OSError as e:  # e.g. the file system went read-only: vacuum removes it later
            log.warning("could not remove the temp file %s of a failed write: %s", tmp, e)

    def exists(self, relpath: str) -> bool:
        try:
            return self.fs.get_file_info(self.full_path(relpath)).type != pafs.FileType.NotFound
        except OSError as e:
            raise StorageError(f"checking {self.uri_of(relpath)} failed: {e}") from e

    def info(self, relpath: str) -> FileEntry | None:
        """Size and modification time of one file; None when it does not exist (or is not a file)."""
        try:
            info = self.fs.get_file_info(self.full_path(relpath))
        except OSError as e:
            raise StorageError(f"checking {self.uri_of(relpath)} failed: {e}") from e
        if info.type != pafs.FileType.File:
            return None
        return FileEntry(relpath, info.size or 0, info.mtime_ns if info.mtime_ns is not None else 0)

    def through_link(self, relpath: str) -> bool:
        """True when ``relpath`` or a folder on the way to it (below the root) is a symbolic link.

        Always False for object stores, which have no links. The root itself may be a link (a
        dataset folder mounted elsewhere); only what lies inside it is checked.
        """
        if not self.is_local:
            return False
        current = self.full_path("")
        for part in relpath.split("/"):
            if not part:
                continue
            current = os.path.join(current, part)
            if os.path.islink(current):
                return True
        return False

    def delete(self, relpath: str) -> bool:
        """Delete one file; True when it was deleted, False when it was already gone.

        Never deletes through a symbolic link: a local path that is a link or passes through a
        linked folder raises StorageError (the link, and what it points to, stay untouched).
        """
        if self.through_link(relpath):
            raise StorageError(f"not deleting {self.uri_of(relpath)}: it is, or lies under, a symbolic link "
                               "inside the dataset folder; only files stored in the dataset itself are deleted")
        try:
            if self.is_local:
                os.unlink(self.full_path(relpath))
            else:
                self.fs.delete_file(self.full_path(relpath))
        except FileNotFoundError:
            return False
        except OSError as e:
            if _is_not_found(e):
                return False
            raise StorageError(f"deleting {self.uri_of(relpath)} failed: {e}") from e
        return True

    def list(self, relprefix: str, *, recursive: bool = True) -> list[FileEntry]:
        """Files under ``relprefix`` (all levels, or only its own with ``recursive=False``); empty
        when it does not exist.

        Symbolic links are never followed nor reported: a linked file or folder (or a prefix that
        passes through one) is skipped with a warning. So a link to a folder outside the dataset,
        or a link loop, can neither make a caller delete files outside the dataset nor count a
        file twice.
        """
        if self.is_local:
            return list(self._walk_local(relprefix, recursive))
        base = self.full_path(relprefix)
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=recursive, allow_not_found=True))
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

    def list_folders(self, relprefix: str) -> list[str]:
        """Folders directly inside ``relprefix`` (relative paths); empty when it does not exist.
        Symbolic links are never reported (as in :meth:`list`)."""
        relprefix = relprefix.strip("/")
        if self.is_local:
            if relprefix and self.through_link(relprefix):
                return []
            try:
                entries = list(os.scandir(self.full_path(relprefix)))
            except (FileNotFoundError, NotADirectoryError):
                return []
            except OSError as e:
                raise StorageError(f"listing {self.uri_of(relprefix)} failed: {e}") from e
            return sorted(f"{relprefix}/{e.name}" if relprefix else e.name for e in entries
                          if not e.is_symlink() and e.is_dir(follow_symlinks=False))
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self.full_path(relprefix), allow_not_found=True))
        except OSError as e:
            raise StorageError(f"listing {self.uri_of(relprefix)} failed: {e}") from e
        root = self.full_path("")
        return sorted(info.path[len(root):].strip("/") for info in infos if info.type == pafs.FileType.Directory)

    def _walk_local(self, relprefix: str, recursive: bool) -> Iterator[FileEntry]:
        # os.scandir with follow_symlinks=False rather than pyarrow's LocalFileSystem, which
        # follows links (and so leaves the dataset folder, or loops forever through a link cycle).
        relprefix = relprefix.strip("/")
        if relprefix and self.through_link(relprefix):
            log.warning("%s is a symbolic link (or lies under one): not listed", self.uri_of(relprefix))
            return
        pending = [relprefix]
        while pending:
            rel_folder = pending.pop()
            folder = self.full_path(rel_folder)
            try:
                entries = list(os.scandir(folder))
            except (FileNotFoundError, NotADirectoryError):
                continue  # missing (or removed while we walk): nothing under it
            except OSError as e:
                raise StorageError(f"listing {self.uri_of(rel_folder)} failed: {e}") from e
            for entry in entries:
                rel = f"{rel_folder}/{entry.name}" if rel_folder else entry.name
                try:
                    if entry.is_symlink():
                        log.warning("skipping symbolic link %s: links inside a dataset are not followed",
                                    self.uri_of(rel))
                    elif entry.is_dir(follow_symlinks=False):
                        if recursive:
                            pending.append(rel)
                    elif entry.is_file(follow_symlinks=False):
                        stat = entry.stat(follow_symlinks=False)
                        yield FileEntry(rel, stat.st_size, stat.st_mtime_ns)
                except FileNotFoundError:
                    continue  # deleted between scandir and stat
                except OSError as e:
                    raise StorageError(f"listing {self.uri_of(rel)} failed: {e}") from e


def _is_not_found(error: OSError) -> bool:
    text = str(error)
    return "NoSuchKey" in text or "not found" in text.lower() or "does not exist" in text.lower()
