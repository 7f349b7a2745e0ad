"""Chunks shared between a loader's worker processes, so each is read from storage once per epoch.

A DataLoader hands a rank's batches to its workers in turn (batch ``b`` to worker ``b % n``), and
a chunk spans several batches, so without sharing every worker would read (and decompress) most
chunks. The epoch's plan is deterministic: every worker knows which workers use each chunk. The
first worker to need a chunk claims it (an ``O_EXCL`` claim file holding its pid and start
time), loads it and writes it to a file in a per-loader folder under ``/dev/shm``, published by an
atomic rename; the other users map that file (no copy), the loader keeps its own copy. Each user
leaves a done marker after its last use, and the user that finds all markers present removes the
chunk: memory is bounded by the chunks in use (shuffle window + prefetch), not by the dataset.

Crash safety: a worker that waits for a chunk checks that the claimer is alive; the claim of a
dead (or zombie) process is taken over, and no wait outlasts ``timeout`` (a :class:`StorageError`
naming the chunk, the claimer and the folder). A loader that fails to load a chunk drops its claim
so the others try (and fail) themselves, with the real error. When ``/dev/shm`` is full the chunk
is used unshared. ``ChunkShare.create`` removes folders left by dead loader processes, and the
folder of a share is removed when the object that created it is collected or at exit.

Files hold ``parts`` (buffers; the prefetcher stores a chunk's bytes, or an lz4 chunk's header and
decompressed payload):
a 16-byte header (magic, part count), one 8-byte length per part, then the parts, each at a
64-byte aligned offset so numpy views of them are aligned.
"""

from __future__ import annotations

import errno
import logging
import mmap
import os
import shutil
import struct
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from deeplake_spark.errors import InvalidOptionError, StorageError

log = logging.getLogger(__name__)

PREFIX = "deeplake-spark-chunks-"
_MAGIC = b"DLSHARE1"
_ALIGN = 64
#: An empty claim (its writer died between creating and writing it) older than this is stale.
_EMPTY_CLAIM_GRACE_S = 10.0
#: Write errors that mean "no room": the chunk is then used unshared (EFBIG: a file size limit).
_FULL = (errno.ENOSPC, errno.ENOMEM, errno.EDQUOT, errno.EFBIG)

Parts = Sequence[bytes | bytearray | memoryview]


def default_base() -> str:
    """Where share folders go: ``/dev/shm`` (memory) where it exists, else the temp folder."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


def _start_time(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot, /proc/<pid>/stat field 22), or None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields_after_name = f.read().rsplit(b")", 1)[-1].split()
        return fields_after_name[19].decode()
    except (OSError, IndexError):
        return None


def pid_alive(pid: int, started: str | None = None) -> bool:
    """Whether process ``pid`` runs (a zombie, killed but not yet reaped, counts as dead; so does a
    new process that reuses the pid, when ``started`` gives the first one's start time)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields_after_name = f.read().rsplit(b")", 1)[-1].split()
    except OSError:
        return True
    if fields_after_name and fields_after_name[0] in (b"Z", b"X"):
        return False
    return started is None or len(fields_after_name) < 20 or fields_after_name[19].decode() == started


def _remove_if_owner(root: str, owner_pid: int) -> None:
    # Forked workers hold copies of the share object: only the creating process removes the folder.
    if os.getpid() == owner_pid:
        shutil.rmtree(root, ignore_errors=True)


def pid_namespace() -> str:
    """This process's pid namespace (the inode of ``/proc/self/ns/pid``; "0" where unknown). Share
    folders carry it, so a loader never sweeps the live folder of a loader in another container that
    shares ``/dev/shm`` (its pids mean other processes there)."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "0"


def sweep_stale(base: str) -> int:
    """Remove share folders under ``base`` whose creating process is gone (folders named
    ``<PREFIX><pid>-<pid namespace>-<random>`` of this pid namespace only); returns how many."""
    removed = 0
    try:
        names = os.listdir(base)
    except OSError:
        return 0
    namespace = pid_namespace()
    for name in names:
        if not name.startswith(PREFIX):
            continue
        parts = name[len(PREFIX) :].split("-", 2)
        if len(parts) < 3 or parts[1] != namespace:
            continue  # another pid namespace's (or an older, unmarked) folder: its pid means nothing here
        try:
            pid = int(parts[0])
        except ValueError:
            continue
        if pid != os.getpid() and not pid_alive(pid):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
            removed += 1
    return removed


class ChunkShare:
    """One loader's share folder. Picklable (a path and settings), created in the main process
    before the workers start; ``epoch(...)`` gives a worker its view of one epoch."""

    def __init__(self, root: str, *, owner_pid: int, timeout: float = 300.0) -> None:
        self.root = root
        self.owner_pid = owner_pid
        self.timeout = timeout

    @classmethod
    def create(cls, *, base: str | None = None, timeout: float = 300.0) -> ChunkShare:
        """A new folder under ``base`` (default: ``/dev/shm``), after sweeping dead loaders' folders."""
        base = base or default_base()
        sweep_stale(base)
        root = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-{pid_namespace()}-", dir=base)
        share = cls(root, owner_pid=os.getpid(), timeout=timeout)
        weakref.finalize(share, _remove_if_owner, root, os.getpid())
        return share

    def __getstate__(self) -> dict[str, Any]:
        return {"root": self.root, "owner_pid": self.owner_pid, "timeout": self.timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"], owner_pid=state["owner_pid"], timeout=state["timeout"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"ChunkShare({self.root!r})"

    def remove(self) -> None:
        """Delete the folder and everything in it (only in the process that created it)."""
        _remove_if_owner(self.root, self.owner_pid)

    def epoch(self, epoch: int, *, worker: int, users: Mapping[str, Collection[int]],
              pass_id: int = 0) -> SharedEpoch:
        """Worker ``worker``'s view of ``epoch`` in pass ``pass_id`` (a number the loader changes on every
        pass, so markers of a pass abandoned midway never meet a later one); ``users`` maps each
        chunk name to the workers using it."""
        return SharedEpoch(os.path.join(self.root, f"pass-{pass_id}-epoch-{epoch}"), worker=worker, users=users,
                           timeout=self.timeout)


class SharedEpoch:
    """The chunks of one epoch, as one worker sees them (thread-safe: I/O threads call ``acquire``)."""

    def __init__(self, folder: str, *, worker: int, users: Mapping[str, Collection[int]], timeout: float) -> None:
        self.folder = folder
        self.worker = worker
        self.users = users
        self.timeout = timeout
        self.loads = 0  # chunks this worker loaded from storage (for tests and logs)
        self._warned_full = False
        self._lock = threading.Lock()
        os.makedirs(folder, exist_ok=True)

    def _path(self, name: str) -> str:
        if not name or "/" in name or name.startswith("."):
            raise InvalidOptionError(f"shared chunk name {name!r}: expected a plain file name")
        return os.path.join(self.folder, name)

    def acquire(self, name: str, load: Callable[[], Parts]) -> list[memoryview]:
        """The parts of chunk ``name``: mapped from the share, or loaded with ``load()`` (by the
        first worker to get here) and published for the others."""
        path = self._path(name)
        if set(self.users.get(name, ())) <= {self.worker}:
            return self._count([memoryview(p).cast("B") for p in load()])  # nobody else needs it
        claim = path + ".claim"
        deadline = time.monotonic() + self.timeout
        pause = 0.0005
        while True:
            parts = _map(path)
            if parts is not None:
                return parts
            try:
                fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                holder = self._check_claim(claim)
                if time.monotonic() > deadline:
                    raise StorageError(f"loader worker {self.worker}: waited {self.timeout:g} s for chunk {name} "
                                       f"claimed by pid {holder} in {self.folder}") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.02)
                continue
            try:
                os.write(fd, f"{os.getpid()} {_start_time(os.getpid()) or ''}".encode())
            finally:
                os.close(fd)
            return self._load_and_publish(path, claim, load)

    def _count(self, parts: list[memoryview]) -> list[memoryview]:
        with self._lock:
            self.loads += 1
        return parts

    def _check_claim(self, claim: str) -> int | None:
        """The claimer's pid; a claim of a dead process (or an old empty one) is removed."""
        try:
            with open(claim, "rb") as f:
                text = f.read()
            age = time.time() - os.stat(claim).st_mtime
        except FileNotFoundError:
            return None
        words = text.decode(errors="replace").split()
        pid = int(words[0]) if words and words[0].isdigit() else None
        started = words[1] if len(words) > 1 else None
        stale = (pid is not None and not pid_alive(pid, started)) or (pid is None and age > _EMPTY_CLAIM_GRACE_S)
        if stale:
            log.warning("chunk share %s: taking over the claim of dead process %s", claim, pid)
            gone = f"{claim}.stale-{os.getpid()}-{threading.get_ident()}"
            try:
                os.rename(claim, gone)  # atomic: one waiter wins, the others see no claim and retry
                os.unlink(gone)
            except FileNotFoundError:
                pass
        return pid

    def _load_and_publish(self, path: str, claim: str, load: Callable[[], Parts]) -> list[memoryview]:
        try:
            parts = [memoryview(p).cast("B") for p in load()]
        except BaseException:
            _unlink(claim)  # the others try themselves and get the real error
            raise
        self._count(parts)
        tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
        try:
            _write(tmp, parts)
            os.rename(tmp, path)
        except OSError as e:
            _unlink(tmp)
            _unlink(claim)
            if e.errno not in _FULL:
                raise StorageError(f"loader worker {self.worker}: cannot write shared chunk {path}: {e}") from e
            if not self._warned_full:
                self._warned_full = True
                log.warning("chunk share %s is full (%s): chunks that do not fit are read by each worker that "
                            "needs them", self.folder, e)
            return parts
        # The loader keeps using its own copy: mapping the file back would cost a page fault per
        # 4 KiB page (~1.8 ms per 8 MiB chunk), more than the memory it saves while the chunk is used.
        return parts

    def done(self, name: str) -> None:
        """This worker has used ``name`` for the last time this epoch; the last user removes it."""
        path = self._path(name)
        users = set(self.users.get(name, ()))
        others = users - {self.worker}
        if not others:
            return  # used unshared: no files
        open(f"{path}.done-{self.worker}", "wb").close()
        if not all(os.path.exists(f"{path}.done-{w}") for w in others):
            return
        for leftover in [path, path + ".claim", *(f"{path}.done-{w}" for w in users)]:
            _unlink(leftover)

    def close(self) -> None:
        """Remove the epoch's folder once it is empty (the last worker to finish succeeds)."""
        try:
            os.rmdir(self.folder)
        except OSError:
            pass


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _layout(lengths: Sequence[int]) -> tuple[list[int], int]:
    offset = 16 + 8 * len(lengths)
    offsets = []
    for n in lengths:
        offset = -(-offset // _ALIGN) * _ALIGN
        offsets.append(offset)
        offset += n
    return offsets, offset


def _write(path: str, parts: Sequence[memoryview]) -> None:
    lengths = [p.nbytes for p in parts]
    offsets, total = _layout(lengths)
    with open(path, "wb") as f:
        f.write(_MAGIC + struct.pack("<Q", len(parts)) + struct.pack(f"<{len(parts)}Q", *lengths))
        for offset, part in zip(offsets, parts):
            f.seek(offset)
            f.write(part)
        f.truncate(total)


def _map(path: str) -> list[memoryview] | None:
    """The parts of a published file, mapped read-only; None when it does not exist (yet)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        size = os.fstat(fd).st_size
        mm = mmap.mmap(fd, size, prot=mmap.PROT_READ) if size else None
    finally:
        os.close(fd)
    view = memoryview(mm) if mm is not None else memoryview(b"")
    if len(view) < 16 or bytes(view[:8]) != _MAGIC:
        raise StorageError(f"shared chunk file {path} is damaged (bad header)")
    (count,) = struct.unpack("<Q", view[8:16])
    lengths = struct.unpack(f"<{count}Q", view[16 : 16 + 8 * count])
    offsets, total = _layout(lengths)
    if total > len(view):
        raise StorageError(f"shared chunk file {path} is truncated ({len(view)} of {total} bytes)")
    return [view[o : o + n] for o, n in zip(offsets, lengths)]
