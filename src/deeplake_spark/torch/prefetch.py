"""Chunk prefetching inside a loader worker: threads fetch chunks ahead of the batch that needs them.

The worker knows its whole batch list for the epoch, so it knows when each chunk is first and last
used. Chunks are requested in first-use order, at most ``prefetch_chunks`` beyond those the
current batch needs, and dropped after their last use: memory is bounded by the prefetch depth
and the shuffle window, never by the dataset size, and each chunk is read once per worker epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Self

import numpy as np

from deeplake_spark.dataset.reader import ChunkCache, SampleReader
from deeplake_spark.format.chunk_reader import ChunkReader
from deeplake_spark.torch.ref_checks import check_chunk_refs, uniform_shape
from deeplake_spark.torch.source import TensorSource

log = logging.getLogger(__name__)

ChunkKey = tuple[int, int]  # (tensor position in the source, chunk code)


@dataclass
class LoadedChunk:
    """A chunk ready for batch assembly.

    ``fixed`` is the whole payload as one ``(sample_count, *shape)`` array when every sample of
    the chunk has the same shape and is stored raw (none/lz4): batches then take samples with one
    numpy fancy-index per chunk instead of a Python call per sample.
    """

    reader: ChunkReader
    fixed: np.ndarray | None


def load_chunk(reader: SampleReader, tensor: TensorSource, code: int) -> LoadedChunk:
    """Read, verify and (for lz4) decompress chunk ``code`` of ``tensor``, and check the refs that
    point to it (index, shape); runs on an I/O thread."""
    chunk = reader.chunk(tensor.spec.name, tensor.chunk_ids[code])
    shape = uniform_shape(chunk)
    check_chunk_refs(tensor.claims, code, chunk, shape)  # type: ignore[arg-type]
    header = chunk.header
    fixed = None
    if header.dtype != "str" and header.compression in ("none", "lz4") and header.sample_count:
        if shape is not None:
            dtype = np.dtype(header.dtype).newbyteorder("<")
            payload = chunk.raw_payload  # decompresses lz4 here, off the worker's main thread
            fixed = np.frombuffer(payload, dtype=dtype).reshape((header.sample_count, *shape))
    elif header.compression == "lz4":
        _ = chunk.raw_payload
    return LoadedChunk(chunk, fixed)


class ChunkPrefetcher:
    """Serves the chunks each batch of a worker's epoch needs, loading ahead on threads."""

    def __init__(self, tensors: Sequence[TensorSource], batches: Sequence[np.ndarray], *, prefetch_chunks: int,
                 io_threads: int, verify: bool = True) -> None:
        self.tensors = list(tensors)
        self.prefetch_chunks = max(0, prefetch_chunks)
        self._readers = [
            SampleReader(t.storage, {t.spec.name: t.spec}, dataset=t.dataset, cache=ChunkCache(1), verify=verify)
            for t in self.tensors
        ]
        self._needs: list[list[ChunkKey]] = []
        first_use: dict[ChunkKey, int] = {}
        self._last_use: dict[ChunkKey, int] = {}
        for b, rows in enumerate(batches):
            keys: list[ChunkKey] = []
            for t_pos, t in enumerate(self.tensors):
                codes = np.unique(t.chunk_codes[rows])
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
        self._pool: ThreadPoolExecutor | None = None

    def _submit(self, key: ChunkKey) -> None:
        t_pos, code = key
        tensor = self.tensors[t_pos]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self._io_threads, thread_name_prefix="deeplake-io")
        self._live[key] = self._pool.submit(load_chunk, self._readers[t_pos], tensor, code)

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

    def close(self) -> None:
        for future in self._live.values():
            future.cancel()
        self._live.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
