"""Verified chunks kept across epochs for the loader engines that build batches in the training
process (``"main"`` and ``"threads"``), so epoch 2 and later of a dataset that fits read no file and
verify no checksum.

Chunk files are immutable (a new version writes new chunk files), so a chunk is identified by its
dataset, tensor folder and chunk id. A chunk is stored after it was read, verified (checksum),
checked against the loader's refs and, for LZ4, decompressed: the stored bytes are the chunk (or its
header and decompressed payload), never bytes that failed a check. A chunk that fails is not stored.

Where the platform has ``memfd_create`` (Linux) the bytes live in one anonymous in-memory file (an
arena, filled front to back) that only this process writes. Each epoch maps a chunk's bytes
copy-on-write (``MAP_PRIVATE``): batches may then be zero-copy views of them, and a training loop
that edits a batch in place only changes its own private copy of the pages it writes -- the next
epoch maps the pristine bytes again. Elsewhere the bytes are kept as immutable ``bytes`` and batches
are gathered into fresh arrays (a copy).

The cache admits chunks until ``max_bytes`` are stored and then admits no more (nothing is evicted):
a loader visits every chunk each epoch, and under LRU a dataset a little larger than the cache
would miss on every chunk, while this keeps a fixed ``max_bytes`` of it warm.
"""

from __future__ import annotations

import mmap
import os
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from deeplake_spark.errors import InvalidOptionError

#: Default bound: 1/8 of the machine's memory, at most 4 GiB.
DEFAULT_MAX_BYTES = 4 << 30
#: Chunks start at multiples of this in the arena (aligned samples for any dtype).
_ALIGN = 64


def default_cache_bytes() -> int:
    """``min(4 GiB, physical memory / 8)`` (4 GiB where the memory size is unknown)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return DEFAULT_MAX_BYTES
    return int(min(DEFAULT_MAX_BYTES, total // 8))


def check_cache_bytes(value: object) -> int:
    """The ``cache_bytes`` loader option: None (default size), 0 (off) or a byte count."""
    if value is None:
        return default_cache_bytes()
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidOptionError(f"cache_bytes={value!r}: expected None (default), 0 (no cache) or a number of bytes")
    return value


@dataclass(frozen=True)
class _Entry:
    offset: int
    sizes: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return sum(self.sizes)


def _split(buffer: memoryview, sizes: Sequence[int]) -> list[memoryview]:
    parts, start = [], 0
    for size in sizes:
        parts.append(buffer[start:start + size])
        start += size
    return parts


class ChunkCache:
    """Bytes of verified chunks by identity, bounded by ``max_bytes``; thread-safe.

    ``put(key, parts)`` stores a chunk's parts (its bytes, or its header and decompressed payload)
    unless the cache is full, and returns read-only views of the stored copy (which stay valid as
    long as the cache). ``epoch()`` maps what is stored copy-on-write for one epoch of a loader.
    ``templates`` is free for the cache's user to keep what it derived from a stored chunk once
    (e.g. its parsed header), under the same key.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: dict[tuple[str, ...], _Entry] = {}
        self._bytes: dict[tuple[str, ...], tuple[bytes, ...]] = {}
        self._pending: set[tuple[str, ...]] = set()
        self._stored = 0
        self._lock = threading.Lock()
        self._end = 0  # next free offset in the arena
        self._fd = -1
        self._shared: mmap.mmap | None = None
        self.templates: dict[tuple[str, ...], object] = {}
        if max_bytes > 0 and hasattr(os, "memfd_create"):
            try:
                fd = os.memfd_create("deeplake-chunk-cache", getattr(os, "MFD_CLOEXEC", 0))
            except OSError:
                fd = -1
            if fd >= 0:
                try:
                    os.ftruncate(fd, max_bytes)  # sparse: pages exist once written
                    self._shared = mmap.mmap(fd, max_bytes, access=mmap.ACCESS_READ)
                    self._fd = fd
                    weakref.finalize(self, os.close, fd)
                except (OSError, ValueError):
                    os.close(fd)

    @property
    def copy_on_write(self) -> bool:
        """Whether ``epoch()`` maps private writable copies (else stored chunks are read-only bytes)."""
        return self._fd >= 0

    @property
    def stored_bytes(self) -> int:
        """Bytes of the chunks stored or being stored (the alignment padding between them not counted)."""
        return self._stored

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: tuple[str, ...]) -> bool:
        with self._lock:
            return key in self._entries

    def put(self, key: tuple[str, ...], parts: Sequence[memoryview | bytes]) -> list[memoryview] | None:
        """Store a verified chunk's parts: read-only views of the stored copy, or None when the
        chunk is stored already (or being stored) or does not fit."""
        views = [memoryview(p).cast("B") for p in parts]
        sizes = tuple(len(v) for v in views)
        nbytes = sum(sizes)
        with self._lock:
            if key in self._entries or key in self._pending or self._stored + nbytes > self.max_bytes:
                return None
            if self._shared is None:
                kept = self._bytes[key] = tuple(bytes(v) for v in views)
                self._entries[key] = _Entry(0, sizes)
                self._stored += nbytes
                return [memoryview(b) for b in kept]
            offset = self._end
            if offset + nbytes > self.max_bytes:
                return None
            self._end = -(-(offset + nbytes) // _ALIGN) * _ALIGN
            self._pending.add(key)
            self._stored += nbytes
        # Written outside the lock into the reserved range; visible to ``epoch()`` once complete.
        position, ok = offset, True
        try:
            for view in views:
                while len(view):
                    n = os.pwrite(self._fd, view, position)
                    position += n
                    view = view[n:]
        except OSError:
            ok = False
        with self._lock:
            self._pending.discard(key)
            if ok:
                self._entries[key] = _Entry(offset, sizes)
            else:
                self._stored -= nbytes
        if not ok:
            return None
        return _split(memoryview(self._shared)[offset:offset + nbytes], sizes)

    def epoch(self) -> CacheEpoch:
        """The chunks stored now, for one epoch: with ``copy_on_write``, one private mapping of them
        (batches may be views of it; a write changes only the writer's copy of that page)."""
        with self._lock:
            entries = dict(self._entries)
            end = self._end
        mapped = None
        if self._fd >= 0 and end:
            mapped = memoryview(mmap.mmap(self._fd, end, access=mmap.ACCESS_COPY))
        return CacheEpoch(entries, mapped)


class CacheEpoch:
    """One epoch's copy-on-write view of the chunks a ``ChunkCache`` held when it was made."""

    def __init__(self, entries: dict[tuple[str, ...], _Entry], mapped: memoryview | None) -> None:
        self._entries = entries
        self._mapped = mapped

    def parts(self, key: tuple[str, ...]) -> list[memoryview] | None:
        """Writable private parts of a stored chunk (None: not stored then, or no copy-on-write)."""
        entry = self._entries.get(key)
        if entry is None or self._mapped is None:
            return None
        return _split(self._mapped[entry.offset:entry.offset + entry.nbytes], entry.sizes)
