"""Verified chunks kept across epochs for the loader engines that build batches in the training
process (``"main"`` and ``"threads"``), so epoch 2 and later of a dataset that fits read no file and
verify no checksum.

Chunk files are immutable (a new version writes new chunk files), so a chunk is identified by its
dataset, tensor folder and chunk id. A chunk is stored after it was read, verified (checksum),
checked against the loader's refs and, for LZ4, decompressed: the stored bytes are the chunk (or its
header and decompressed payload), never bytes that failed a check. A chunk that fails is not stored.

A chunk is stored as its header (kept as ``bytes``) and its body, the (decompressed) payload. Where
the platform has ``memfd_create`` (Linux) the bodies live one after the other in one anonymous
in-memory file (an arena, filled front to back in the order the loader stores them) that only this
process writes. Each epoch maps the arena copy-on-write (``MAP_PRIVATE``): batches may then be
zero-copy views of it -- also a batch that runs from the end of one chunk into the next one when
their bodies are adjacent -- and a training loop that edits a batch in place only changes its own
private copy of the pages it writes; the next epoch maps the pristine bytes again. Elsewhere bodies
are kept as immutable ``bytes`` and batches are gathered into fresh arrays (a copy).

The cache admits chunks until ``max_bytes`` are stored and then admits no more (nothing is evicted):
a loader visits every chunk each epoch, and under LRU a dataset a little larger than the cache
would miss on every chunk, while this keeps a fixed ``max_bytes`` of it warm.
"""

from __future__ import annotations

import mmap
import os
import threading
import weakref
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
    head: bytes
    offset: int  # of the body in the arena
    size: int  # of the body

    @property
    def nbytes(self) -> int:
        return len(self.head) + self.size


class ChunkCache:
    """Verified chunks (header + body) by identity, bounded by ``max_bytes``; thread-safe.

    ``put(key, head, body)`` stores a chunk unless the cache is full and returns read-only views of
    the stored copy (valid as long as the cache). ``epoch()`` maps the stored bodies copy-on-write
    for one epoch of a loader. ``templates`` is free for the cache's user to keep what it derived
    from a stored chunk once (e.g. its parsed header), under the same key.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: dict[tuple[str, ...], _Entry] = {}
        self._bodies: dict[tuple[str, ...], bytes] = {}  # without an arena
        self._pending: set[tuple[str, ...]] = set()
        self._stored = 0
        self._heads = 0  # bytes of the heads stored or being stored
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
        """Whether ``epoch()`` maps private writable copies (else stored bodies are read-only bytes)."""
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

    def put(self, key: tuple[str, ...], head: bytes | memoryview,
            body: bytes | memoryview) -> tuple[memoryview, memoryview] | None:
        """Store a verified chunk: read-only views of the stored (head, body), or None when the chunk
        is stored already (or being stored) or does not fit."""
        view = memoryview(body).cast("B")
        kept_head = bytes(head)
        nbytes = len(kept_head) + len(view)
        with self._lock:
            if key in self._entries or key in self._pending or self._stored + nbytes > self.max_bytes:
                return None
            if self._shared is None:
                kept = self._bodies[key] = bytes(view)
                self._entries[key] = _Entry(kept_head, 0, len(kept))
                self._stored += nbytes
                return memoryview(kept_head), memoryview(kept)
            offset = self._end
            if offset + len(view) + self._heads + len(kept_head) > self.max_bytes:  # padding counts here
                return None
            self._end = -(-(offset + len(view)) // _ALIGN) * _ALIGN
            self._pending.add(key)
            self._stored += nbytes
            self._heads += len(kept_head)
        # Written outside the lock into the reserved range; visible to ``epoch()`` once complete.
        position, ok, rest = offset, True, view
        try:
            while len(rest):
                n = os.pwrite(self._fd, rest, position)
                position += n
                rest = rest[n:]
        except OSError:
            ok = False
        with self._lock:
            self._pending.discard(key)
            if ok:
                self._entries[key] = _Entry(kept_head, offset, len(view))
            else:
                self._stored -= nbytes
                self._heads -= len(kept_head)
        if not ok:
            return None
        return memoryview(kept_head), memoryview(self._shared)[offset:offset + len(view)]

    def epoch(self) -> CacheEpoch:
        """The chunks stored now, for one epoch: with ``copy_on_write``, one private mapping of the
        arena (batches may be views of it; a write changes only the writer's copy of that page)."""
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
        #: The private mapping of the arena (None without copy-on-write or when nothing is stored).
        self.mapped = mapped

    def body(self, key: tuple[str, ...]) -> tuple[int, int] | None:
        """(offset, size) of a stored chunk's body in ``mapped`` (None: not stored then, or no
        copy-on-write)."""
        entry = self._entries.get(key)
        if entry is None or self.mapped is None:
            return None
        return entry.offset, entry.size
