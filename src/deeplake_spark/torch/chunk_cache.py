"""Verified chunks kept across epochs for the loader engines that build batches in the training
process (``"main"`` and ``"threads"``), so epoch 2 and later of a dataset that fits read no file and
verify no checksum.

Chunk files are immutable (a new version writes new chunk files), so a chunk is identified by its
dataset, tensor folder and chunk id. A chunk is stored after it was read, verified (checksum),
checked against the loader's refs and, for LZ4, decompressed; it is stored as its header and its
body (the decompressed payload), immutable ``bytes`` of the cache's own, never bytes that failed a
check (a chunk that fails is not stored).

Batches of stored chunks are gathered into arrays of their own (one copy, as a fresh read would
need): a training loop that edits a batch in place cannot reach the cache. Handing out views of the
cache instead was measured and lost: memory that can be edited without reaching the cache has to
be a fresh copy-on-write mapping each epoch, and mapping its pages (a fault, or ``MADV_POPULATE_READ``,
per 4 KiB) cost more CPU per sample than copying them (raw 224x224x3: ~23-60 vs ~11 us per sample
with the batch read once).

The cache admits chunks until ``max_bytes`` are stored and then admits no more (nothing is evicted):
a loader visits every chunk each epoch, and under LRU a dataset a little larger than the cache
would miss on every chunk, while this keeps a fixed ``max_bytes`` of it warm.
"""

from __future__ import annotations

import os
import threading

from deeplake_spark.errors import InvalidOptionError

#: Default bound: 1/16 of the machine's memory, at most 1 GiB (a loader per rank, in a notebook beside other work).
DEFAULT_MAX_BYTES = 1 << 30


def default_cache_bytes() -> int:
    """``min(1 GiB, physical memory / 16)`` (1 GiB where the memory size is unknown)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return DEFAULT_MAX_BYTES
    return int(min(DEFAULT_MAX_BYTES, total // 16))


def check_cache_bytes(value: object) -> int:
    """The ``cache_bytes`` loader option: None (default size), 0 (off) or a byte count."""
    if value is None:
        return default_cache_bytes()
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidOptionError(f"cache_bytes={value!r}: expected None (default), 0 (no cache) or a number of bytes")
    return value


class ChunkCache:
    """Verified chunks (header + body) by identity, bounded by ``max_bytes``; thread-safe.

    ``put(key, head, body)`` stores copies of a chunk's parts unless the cache is full and returns
    read-only views of them (valid as long as the cache). ``templates`` is free for the cache's user
    to keep what it derived from a stored chunk once (e.g. its parsed header), under the same key.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: dict[tuple[str, ...], tuple[bytes, bytes]] = {}
        self._stored = 0
        self._lock = threading.Lock()
        self.templates: dict[tuple[str, ...], object] = {}

    @property
    def stored_bytes(self) -> int:
        """Bytes of the chunks stored (headers and bodies)."""
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
        is stored already or does not fit."""
        nbytes = len(memoryview(head).cast("B")) + len(memoryview(body).cast("B"))
        with self._lock:
            if key in self._entries or self._stored + nbytes > self.max_bytes:
                return None
            self._stored += nbytes  # reserved: a concurrent put of another chunk sees it
        kept = (bytes(head), bytes(body))  # the copy, outside the lock
        with self._lock:
            if key in self._entries:  # stored meanwhile by another thread
                self._stored -= nbytes
                return None
            self._entries[key] = kept
        return memoryview(kept[0]), memoryview(kept[1])
