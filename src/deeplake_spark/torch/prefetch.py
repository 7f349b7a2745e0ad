"""Chunk prefetching inside a loader worker: threads fetch chunks ahead of the batch that needs them.

The worker knows its whole batch list for the epoch, so it knows when each chunk is first and last
used. Chunks are requested in first-use order, at most ``prefetch_chunks`` beyond those the
current batch needs, and dropped after their last use: memory is bounded by the prefetch depth
and the shuffle window, never by the dataset size, and each chunk is read once per worker epoch.

Worker processes that build alternate batches of one rank share the chunks they all need through
a ``chunk_share.SharedEpoch`` (``shared=``): the first to need a chunk reads, verifies and
decompresses it once, the others map the result, so each chunk is read once per rank epoch.
``chunk_users`` tells the share which workers use each chunk.

Loaders that build batches in the training process keep verified chunks across epochs in a
``chunk_cache.ChunkCache`` (``cache=``): a stored chunk is served from memory, without I/O or
checksum.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Self

import numpy as np

from deeplake_spark.dataset.reader import ChunkCache, SampleReader
from deeplake_spark.dataset.refs import chunk_relpath
from deeplake_spark.format.chunk_reader import ChunkReader
from deeplake_spark.torch.chunk_cache import ChunkCache as LoaderChunkCache
from deeplake_spark.torch.chunk_share import SharedEpoch
from deeplake_spark.torch.ref_checks import check_chunk_refs, uniform_shape
from deeplake_spark.torch.source import TensorSource

log = logging.getLogger(__name__)

ChunkKey = tuple[int, int]  # (tensor position in the source, chunk code)


@dataclass
class LoadedChunk:
    """A chunk ready for batch assembly.

    ``fixed`` is the whole payload as one ``(sample_count, *shape)`` array when every sample of
    the chunk has the same shape and is stored raw (none/lz4): batches then take samples with one
    numpy fancy-index per chunk instead of a Python call per sample. ``owned``: ``fixed`` is a
    writable buffer this chunk alone holds (an LZ4 payload decompressed here, not a chunk share's
    memory nor the read-only bytes of a raw chunk), so a batch may be a view of it.
    """

    reader: ChunkReader
    fixed: np.ndarray | None
    owned: bool = False


def unique_codes(codes: np.ndarray) -> np.ndarray:
    """``np.unique(codes)``, without a sort or hash when they are already in order (unshuffled plans)."""
    if len(codes) < 2:
        return codes.copy()
    step = codes[1:] != codes[:-1]
    if (codes[1:] >= codes[:-1]).all():
        return codes[np.concatenate(([True], step))]
    return np.unique(codes)


def _ready(chunk: ChunkReader) -> LoadedChunk:
    """A loaded chunk with its lz4 payload decompressed and, when uniform, its fixed-shape view."""
    header = chunk.header
    shape = uniform_shape(chunk)
    fixed = None
    if header.dtype != "str" and header.compression in ("none", "lz4") and header.sample_count:
        if shape is not None:
            dtype = np.dtype(header.dtype).newbyteorder("<")
            payload = chunk.raw_payload  # decompresses lz4 here, off the worker's main thread
            fixed = np.frombuffer(payload, dtype=dtype).reshape((header.sample_count, *shape))
    elif header.compression == "lz4":
        _ = chunk.raw_payload
    return LoadedChunk(chunk, fixed, owned=fixed is not None and bool(fixed.flags.writeable))


def load_chunk(reader: SampleReader, tensor: TensorSource, code: int) -> LoadedChunk:
    """Read, verify and (for lz4) decompress chunk ``code`` of ``tensor``, and check the refs that
    point to it (index, shape); runs on an I/O thread."""
    chunk = reader.chunk(tensor.spec.name, tensor.chunk_ids[code])
    check_chunk_refs(tensor.claims, code, chunk, uniform_shape(chunk))  # type: ignore[arg-type]
    return _ready(chunk)


@dataclass
class _Template:
    """What a loader derives once from a chunk in its ``ChunkCache``: ``loaded`` reads the cache's
    read-only copy; ``claims`` = the refs already checked against it."""

    loaded: LoadedChunk
    claims: object


def chunk_name(key: ChunkKey) -> str:
    """The name of a chunk in a ``SharedEpoch`` (the same in every worker of a loader)."""
    return f"t{key[0]}-c{key[1]}"


def _parts(loaded: LoadedChunk) -> list[memoryview]:
    """What the share stores: the chunk's bytes, or for lz4 its header and decompressed payload
    (raw images barely compress: storing the compressed payload too would double the writes)."""
    chunk = loaded.reader
    data = chunk.data
    if chunk.header.compression == "lz4":
        return [data[: chunk.header.header_len], chunk.raw_payload]
    return [data]


def _rebuilt(tensor: TensorSource, code: int, parts: list[memoryview], *, owned: bool) -> LoadedChunk:
    """The chunk rebuilt from parts (``_parts``) that were verified, checked and decompressed when
    they were loaded (by another worker for a chunk share, by this loader for its chunk cache).
    ``owned``: the parts are memory only this chunk holds (a private copy-on-write mapping)."""
    where = (f"dataset {tensor.dataset}, tensor {tensor.spec.name!r}, "
             f"chunk file {chunk_relpath(tensor.spec.name, tensor.chunk_ids[code])}")
    if len(parts) == 1:
        loaded = _ready(ChunkReader(parts[0], where=where, verify=False))
    else:
        loaded = _ready(ChunkReader.from_decompressed(parts[0], parts[1], where=where))
    loaded.owned = owned and loaded.owned
    return loaded


def _shared_reader(tensor: TensorSource, code: int, parts: list[memoryview]) -> LoadedChunk:
    """The chunk rebuilt from the share's parts (the share's memory, mapped by the other workers too)."""
    return _rebuilt(tensor, code, parts, owned=False)


def cache_key(tensor: TensorSource, code: int) -> tuple[str, str, str]:
    """A chunk's identity in a ``ChunkCache``: chunk files are immutable, so dataset, tensor folder
    and chunk id name the same bytes in every version that holds them."""
    return (tensor.dataset, tensor.spec.name, tensor.chunk_ids[code])


def chunk_users(tensors: Sequence[TensorSource], batches: Sequence[np.ndarray],
                owners: np.ndarray) -> dict[str, frozenset[int]]:
    """For each chunk a rank's epoch reads, the workers that use it (``owners[b]``: the worker that
    builds batch ``b``, -1 for batches not built, e.g. done before a resume)."""
    built = [b for b in range(len(batches)) if owners[b] >= 0]
    if not built:
        return {}
    rows = np.concatenate([batches[b] for b in built])
    worker = np.repeat(np.asarray([owners[b] for b in built], dtype=np.int64), [len(batches[b]) for b in built])
    span = int(worker.max()) + 1
    users: dict[str, set[int]] = {}
    for t_pos, tensor in enumerate(tensors):
        codes = tensor.chunk_codes[rows].astype(np.int64)
        valid = codes >= 0
        for pair in np.unique(codes[valid] * span + worker[valid]).tolist():
            users.setdefault(chunk_name((t_pos, pair // span)), set()).add(pair % span)
    return {name: frozenset(ws) for name, ws in users.items()}


class ChunkPrefetcher:
    """Serves the chunks each batch of a worker's epoch needs, loading ahead on threads.

    ``shared``: this worker's view of the epoch's chunk share (process workers); the prefetcher
    then tells it when each chunk is used for the last time and closes it. ``pool``: I/O threads
    to use (e.g. one pool for all the epochs of a pass, so no thread is started per epoch); the
    prefetcher then leaves it running on close, after its own loads have ended.
    """

    def __init__(self, tensors: Sequence[TensorSource], batches: Sequence[np.ndarray], *, prefetch_chunks: int,
                 io_threads: int, verify: bool = True, shared: SharedEpoch | None = None,
                 pool: ThreadPoolExecutor | None = None, cache: LoaderChunkCache | None = None) -> None:
        self.tensors = list(tensors)
        self.shared = shared
        self.cache = cache if shared is None else None
        self.prefetch_chunks = max(0, prefetch_chunks)
        self._readers = [
            # writable: an uncompressed chunk's samples can then be handed out as zero-copy views
            # (``LoadedChunk.owned``); each prefetcher (one per epoch) reads its chunks afresh
            SampleReader(t.storage, {t.spec.name: t.spec}, dataset=t.dataset, cache=ChunkCache(1), verify=verify,
                         writable=True)
            for t in self.tensors
        ]
        self._needs: list[list[ChunkKey]] = []
        first_use: dict[ChunkKey, int] = {}
        self._last_use: dict[ChunkKey, int] = {}
        for b, rows in enumerate(batches):
            keys: list[ChunkKey] = []
            for t_pos, t in enumerate(self.tensors):
                codes = unique_codes(t.chunk_codes[rows])
                keys.extend((t_pos, int(c)) for c in codes if c >= 0)
            for key in keys:
                first_use.setdefault(key, b)
                self._last_use[key] = b
            self._needs.append(keys)
        self._schedule = sorted(first_use, key=lambda k: first_use[k])
        self._first_use = first_use
        self._next = 0
        self._live: dict[ChunkKey, Future[LoadedChunk]] = {}
        self._io_threads = max(1, io_threads)
        self._own_pool = pool is None
        self._pool: ThreadPoolExecutor | None = pool

    def _submit(self, key: ChunkKey) -> None:
        t_pos, code = key
        tensor = self.tensors[t_pos]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self._io_threads, thread_name_prefix="deeplake-io")
        if self.cache is not None:
            template = self.cache.templates.get(cache_key(tensor, code))
            if isinstance(template, _Template):  # verified when it was stored: no I/O, no checksum
                done: Future[LoadedChunk] = Future()
                try:
                    done.set_result(self._from_cache(template, tensor, code))
                except Exception as e:  # noqa: BLE001 - raised at the batch that needs the chunk
                    done.set_exception(e)
                self._live[key] = done
            else:
                self._live[key] = self._pool.submit(self._load_cached, self.cache, key)
        elif self.shared is None:
            self._live[key] = self._pool.submit(load_chunk, self._readers[t_pos], tensor, code)
        else:
            self._live[key] = self._pool.submit(self._load_shared, self.shared, key)

    def _load_shared(self, shared: SharedEpoch, key: ChunkKey) -> LoadedChunk:
        t_pos, code = key
        tensor = self.tensors[t_pos]
        parts = shared.acquire(chunk_name(key), lambda: _parts(load_chunk(self._readers[t_pos], tensor, code)))
        return _shared_reader(tensor, code, parts)

    def _load_cached(self, cache: LoaderChunkCache, key: ChunkKey) -> LoadedChunk:
        """Load a chunk (read, verify, check, decompress) and keep it in ``cache`` when it fits;
        this epoch uses the buffer just read, the cache a copy of its own."""
        t_pos, code = key
        tensor = self.tensors[t_pos]
        loaded = load_chunk(self._readers[t_pos], tensor, code)  # raises before anything is cached
        chunk = loaded.reader
        kept = cache.put(cache_key(tensor, code), chunk.data[:chunk.header.header_len], chunk.raw_payload)
        if kept is not None:
            cache.templates[cache_key(tensor, code)] = _Template(_rebuilt(tensor, code, list(kept), owned=False),
                                                                 tensor.claims)
        return loaded

    @staticmethod
    def _from_cache(template: _Template, tensor: TensorSource, code: int) -> LoadedChunk:
        """A stored chunk: its reader parsed once, over the cache's read-only bytes (batches of it are
        gathered into arrays of their own)."""
        if template.claims is not tensor.claims:  # another loader's refs: check them too
            check_chunk_refs(tensor.claims, code, template.loaded.reader,  # type: ignore[arg-type]
                             uniform_shape(template.loaded.reader))
        return template.loaded

    def chunks_for(self, batch: int) -> dict[ChunkKey, LoadedChunk]:
        """The loaded chunks batch number ``batch`` needs (waits for them); starts later loads."""
        needed = self._needs[batch]
        while self._next < len(self._schedule) and self._first_use[self._schedule[self._next]] <= batch:
            self._submit(self._schedule[self._next])
            self._next += 1
        budget = len(needed) + self.prefetch_chunks
        while self._next < len(self._schedule) and len(self._live) < budget:
            self._submit(self._schedule[self._next])
            self._next += 1
        return {key: self._live[key].result() for key in needed}

    @property
    def live_chunks(self) -> int:
        """Chunks loaded or loading now (what bounds a worker's memory)."""
        return len(self._live)

    def release(self, batch: int) -> None:
        """Forget chunks whose last use was ``batch``."""
        for key in self._needs[batch]:
            if self._last_use[key] == batch:
                self._live.pop(key, None)
                if self.shared is not None:
                    self.shared.done(chunk_name(key))

    def close(self) -> None:
        futures = list(self._live.values())
        for future in futures:
            future.cancel()
        self._live.clear()
        if self._pool is not None and self._own_pool:
            self._pool.shutdown(wait=True, cancel_futures=True)
        elif futures:
            wait(futures)  # a borrowed pool keeps running: this epoch's loads end here
        self._pool = None
        if self.shared is not None:
            self.shared.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
