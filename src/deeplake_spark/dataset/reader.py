"""Refs -> samples: loads each needed chunk once and keeps recent chunks in a bounded cache."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from deeplake_spark.dataset.refs import check_chunk_id, chunk_relpath
from deeplake_spark.errors import ChunkError, ChunkNotFoundError, CorruptChunkError
from deeplake_spark.format.chunk_reader import ChunkReader
from deeplake_spark.format.header import ChunkHeader, check_chunk_identity
from deeplake_spark.format.spec import TensorSpec
from deeplake_spark.storage import Storage

DEFAULT_CACHE_BYTES = 256 * 1024 * 1024


def check_spec_shapes(header: ChunkHeader, spec: TensorSpec | None, where: str) -> None:
    """Refuse a chunk holding a sample whose shape contradicts ``spec``'s fixed rank or sizes.

    Our writers never store such a sample, so one means a damaged or foreign chunk; returning it
    would hand the caller an array of the wrong shape. Runs once per chunk load, over the header's
    shape arrays (no per-sample Python work).
    """
    if spec is None or spec.shape is None or header.sample_count == 0:
        return
    rank = len(spec.shape)
    ndims = header.ndims[: header.sample_count]
    bad = np.flatnonzero(ndims != rank)
    if bad.size == 0:
        fixed = [(axis, size) for axis, size in enumerate(spec.shape) if size is not None]
        if not fixed:
            return
        dims = header.dims[: header.sample_count * rank].reshape(header.sample_count, rank)
        axes = np.array([a for a, _ in fixed])
        sizes = np.array([d for _, d in fixed], dtype=np.int64)
        bad = np.flatnonzero((dims[:, axes] != sizes).any(axis=1))
        if bad.size == 0:
            return
    index = int(bad[0])
    raise CorruptChunkError(f"{where}, sample {index}: the chunk header gives shape {header.shape(index)} but "
                            f"tensor {spec.name!r} has fixed shape {spec.shape} (damaged or foreign chunk file)")


def check_ref(reader: ChunkReader, ref: dict[str, Any]) -> int:
    """The sample index of ``ref`` once its index is inside the chunk and its shape is the chunk's.

    A ref's shape is only a copy of what the chunk header says; readers that hand the shape out
    (``tensors=bytes``) must not trust a copy that disagrees with the bytes it describes.
    """
    index = ref.get("index")
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(reader):
        raise CorruptChunkError(f"{reader.where}: a ref points to sample {index!r} but the chunk holds "
                                f"{len(reader)} samples (chunk file replaced or refs damaged)")
    index = int(index)
    claimed = ref.get("shape")
    actual = reader.header.shape(index)
    if claimed is None or len(claimed) != len(actual) or any(c != a for c, a in zip(claimed, actual)):
        raise CorruptChunkError(f"{reader.where}, sample {index}: the ref says shape "
                                f"{None if claimed is None else list(claimed)} but the chunk header says "
                                f"{list(actual)} (refs damaged or hostile)")
    return index


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
        writable: bool = False,
    ) -> None:
        self.storage = storage
        self.tensors = tensors
        self.dataset = dataset or storage.uri
        self.cache = cache if cache is not None else ChunkCache()
        self.verify = verify
        #: read chunks into buffers of their own (``Storage.read_writable``) that zero-copy batch views
        #: may hand out; default immutable bytes (a shared cache hands out views to many callers)
        self.writable = writable

    def chunk(self, column: str, chunk_id: str) -> ChunkReader:
        """The reader for one chunk, from cache or storage.

        The chunk id is validated before anything (cache key, path) is built from it, and a chunk
        whose samples contradict the tensor's fixed shape is refused once, when it is loaded.
        """
        path = chunk_relpath(column, chunk_id, where=f"dataset {self.dataset}, tensor {column!r}")
        reader = self.cache.get(path)
        if reader is not None:
            return reader
        where = f"dataset {self.dataset}, tensor {column!r}, chunk file {path}"
        try:
            data = self.storage.read_writable(path) if self.writable else self.storage.read(path)
        except FileNotFoundError as e:
            raise ChunkNotFoundError(f"{where}: chunk file is missing (vacuumed or deleted?)") from e
        reader = ChunkReader(data, where=where, verify=self.verify)
        check_chunk_identity(reader.header, chunk_id, where=where)
        check_spec_shapes(reader.header, self.tensors.get(column), where)
        self.cache.put(path, reader)
        return reader

    def read(self, column: str, refs: Sequence[dict[str, Any] | None], *, raw: bool = False) -> list[Any]:
        """Samples for ``refs`` in the same order; ``None`` refs give ``None``.

        ``raw=True`` returns the stored bytes (e.g. the JPEG) instead of decoded arrays. Every ref is
        checked against its chunk (index in range, shape equal to the header's): a mismatch is a
        :class:`CorruptChunkError` naming the chunk file, the sample and both shapes.
        """
        out: list[Any] = [None] * len(refs)
        by_chunk: dict[str, list[int]] = {}
        where = f"dataset {self.dataset}, tensor {column!r}"
        for i, ref in enumerate(refs):
            if ref is not None:
                chunk_id = ref.get("chunk")
                if not isinstance(chunk_id, str):
                    check_chunk_id(chunk_id, where=where)  # raises, even for unhashable values
                by_chunk.setdefault(chunk_id, []).append(i)
        # every chunk id of the call is checked before the first chunk is read
        for chunk_id in by_chunk:
            check_chunk_id(chunk_id, where=where)
        for chunk_id, positions in by_chunk.items():
            indices = [refs[i]["index"] for i in positions]  # type: ignore[index]
            try:
                reader = self.chunk(column, chunk_id)
            except ChunkError as e:
                # name the samples the caller asked for, not only the chunk
                shown = ", ".join(map(str, indices[:5])) + (", ..." if len(indices) > 5 else "")
                raise type(e)(f"{e}; cannot read sample(s) {shown} of that chunk") from e
            for i in positions:
                index = check_ref(reader, refs[i])  # type: ignore[arg-type]
                out[i] = bytes(reader.sample_bytes(index)) if raw else reader.sample(index)
        return out
