"""Refs -> samples: loads each needed chunk once and keeps recent chunks in a bounded cache."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from deeplake_spark.dataset.refs import chunk_relpath
from deeplake_spark.errors import ChunkError, ChunkNotFoundError, CorruptChunkError
from deeplake_spark.format.chunk_reader import ChunkReader
from deeplake_spark.format.spec import TensorSpec
from deeplake_spark.storage import Storage

DEFAULT_CACHE_BYTES = 256 * 1024 * 1024


class ChunkCache:
    """LRU of ``ChunkReader``s bounded by stored bytes; thread-safe."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, ChunkReader] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> ChunkReader | None:
        with self._lock:
            reader = self._items.get(key)
            if reader is not None:
                self._items.move_to_end(key)
            return reader

    @staticmethod
    def _cost(reader: ChunkReader) -> int:
        """Bytes a cached reader holds: the stored chunk plus its decompressed LZ4 payload."""
        header = reader.header
        return header.nbytes + (header.raw_payload_len if header.compression == "lz4" else 0)

    def put(self, key: str, reader: ChunkReader) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = reader
            self._bytes += self._cost(reader)
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._bytes -= self._cost(old)


class SampleReader:
    """Reads samples of a dataset's tensors from their refs.

    ``read(column, refs)`` groups refs by chunk so each chunk is fetched at most once per call.
    """

    def __init__(
        self,
        storage: Storage,
        tensors: dict[str, TensorSpec],
        *,
        dataset: str | None = None,
        cache: ChunkCache | None = None,
        verify: bool = True,
    ) -> None:
        self.storage = storage
        self.tensors = tensors
        self.dataset = dataset or storage.uri
        self.cache = cache if cache is not None else ChunkCache()
        self.verify = verify

    def chunk(self, column: str, chunk_id: str) -> ChunkReader:
        """The reader for one chunk, from cache or storage."""
        key = f"{column}/{chunk_id}"
        reader = self.cache.get(key)
        if reader is not None:
            return reader
        path = chunk_relpath(column, chunk_id)
        where = f"dataset {self.dataset}, tensor {column!r}, chunk file {path}"
        try:
            data = self.storage.read(path)
        except FileNotFoundError as e:
            raise ChunkNotFoundError(f"{where}: chunk file is missing (vacuumed or deleted?)") from e
        reader = ChunkReader(data, where=where, verify=self.verify)
        self.cache.put(key, reader)
        return reader

    def read(self, column: str, refs: Sequence[dict[str, Any] | None], *, raw: bool = False) -> list[Any]:
        """Samples for ``refs`` in the same order; ``None`` refs give ``None``.

        ``raw=True`` returns the stored bytes (e.g. the JPEG) instead of decoded arrays.
        """
        out: list[Any] = [None] * len(refs)
        by_chunk: dict[str, list[int]] = {}
        for i, ref in enumerate(refs):
            if ref is not None:
                by_chunk.setdefault(ref["chunk"], []).append(i)
        for chunk_id, positions in by_chunk.items():
            indices = [refs[i]["index"] for i in positions]  # type: ignore[index]
            try:
                reader = self.chunk(column, chunk_id)
            except ChunkError as e:
                # name the samples the caller asked for, not only the chunk
                shown = ", ".join(map(str, indices[:5])) + (", ..." if len(indices) > 5 else "")
                raise type(e)(f"{e}; cannot read sample(s) {shown} of that chunk") from e
            for i, index in zip(positions, indices):
                if not 0 <= index < len(reader):
                    raise CorruptChunkError(f"{reader.where}: a ref points to sample {index} but the chunk holds "
                                            f"{len(reader)} samples (chunk file replaced or refs damaged)")
                out[i] = bytes(reader.sample_bytes(index)) if raw else reader.sample(index)
        return out
