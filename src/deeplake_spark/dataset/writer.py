"""Samples -> chunk files -> ref columns. Chunks are written before any Delta commit references them."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from deeplake_spark.dataset import delta_log
from deeplake_spark.dataset.refs import REF_TYPE, chunk_relpath
from deeplake_spark.errors import CommitConflict, StorageError
from deeplake_spark.format.chunk_writer import ChunkBuilder
from deeplake_spark.format.samples import EncodedSample, encode_block, encode_sample
from deeplake_spark.format.spec import TensorSpec
from deeplake_spark.storage import Storage

log = logging.getLogger(__name__)


def new_chunk_id() -> str:
    """Random, never-reused chunk id (chunks are immutable)."""
    return uuid.uuid4().hex


class TensorColumnWriter:
    """Packs the samples of one tensor column into chunks of ``spec.chunk_size`` bytes.

    ``written`` lists the chunk paths this writer created, so a failed commit can delete them.
    """

    def __init__(self, storage: Storage, spec: TensorSpec, *, dataset: str = "") -> None:
        self.storage = storage
        self.spec = spec
        self.dataset = dataset or storage.uri
        self._builder = ChunkBuilder(spec)
        self._chunk_id = new_chunk_id()
        self.written: list[str] = []
        self.bytes_written = 0

    def add(self, value: Any, *, row: int | None = None) -> dict[str, Any] | None:
        """Encode and buffer one sample; returns its ref (``None`` for a null sample)."""
        if value is None:
            return None
        where = f"dataset {self.dataset}, tensor {self.spec.name!r}" + (f", row {row}" if row is not None else "")
        sample = encode_sample(self.spec, value, where=where)
        return self.add_encoded(sample)

    def add_encoded(self, sample: EncodedSample) -> dict[str, Any]:
        if not self._builder.fits(sample):
            self.flush()
        index = self._builder.add(sample)
        return {"chunk": self._chunk_id, "index": index, "shape": list(sample.shape), "nbytes": len(sample.data)}

    def add_block(self, block: np.ndarray) -> pa.StructArray:
        """Store a validated ``(N, *shape)`` block (see ``format.samples.encode_block``); returns N refs."""
        count = len(block)
        sample_nbytes = block[0].nbytes
        per_chunk = max(1, self.spec.chunk_size // sample_nbytes) if sample_nbytes else count
        chunk_ids, indices = [], []
        start = 0
        while start < count:
            room = min(per_chunk - len(self._builder), self._builder.room_for(block.ndim - 1))
            if room <= 0:
                self.flush()
                continue
            take = min(room, count - start)
            first = self._builder.add_block(block[start : start + take])
            chunk_ids.append(np.full(take, self._chunk_id, dtype=object))
            indices.append(np.arange(first, first + take, dtype=np.int32))
            start += take
        shape = list(block.shape[1:])
        offsets = np.arange(count + 1, dtype=np.int32) * len(shape)
        shapes = pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.tile(np.array(shape, dtype=np.int64), count)))
        return pa.StructArray.from_arrays(
            [pa.array(np.concatenate(chunk_ids), type=pa.string()), pa.array(np.concatenate(indices)),
             shapes.cast(pa.list_(pa.int64())), pa.array(np.full(count, sample_nbytes, dtype=np.int64))],
            fields=list(REF_TYPE),
        )

    def flush(self) -> None:
        """Write the buffered chunk (if any) and start a new one."""
        if not len(self._builder):
            return
        path = chunk_relpath(self.spec.name, self._chunk_id)
        data = self._builder.finish(self._chunk_id)
        self.storage.write(path, data)
        self.written.append(path)
        self.bytes_written += len(data)
        log.debug("wrote chunk %s (%d samples, %d bytes)", path, len(self._builder), len(data))
        self._builder.reset()
        self._chunk_id = new_chunk_id()

    def delete_written(self) -> None:
        """Remove every chunk this writer wrote (after a failed or aborted commit)."""
        for path in self.written:
            self.storage.delete(path)
        self.written.clear()


def settle_failed_write(storage: Storage, writers: Sequence[TensorColumnWriter], error: BaseException, *,
                        committing: bool, write_id: str, start_version: int) -> int | None:
    """Clean up after an append/overwrite raised ``error``; returns the version its commit landed as
    when the Delta log shows that it did land after all, else None (the caller re-raises).

    Chunks are deleted when the commit provably did not happen: it never started, lost a conflict,
    or the log after ``start_version`` holds no commit with ``write_id`` (a local commit is a
    rename, done or not). They stay, for vacuum to remove once no version references them, when
    the outcome is unknown: an interrupt, a log that cannot be read, or an object-store I/O error
    while PUTting the log entry (the request may still complete).
    """
    if committing and not isinstance(error, CommitConflict):
        if not isinstance(error, Exception):  # KeyboardInterrupt & co: stop now, look nothing up
            log.warning("%s: %s interrupted a commit; its chunks stay until vacuum removes them", storage.uri,
                        type(error).__name__)
            return None
        try:
            found = delta_log.find_commit(storage, write_id, after=start_version)
        except (StorageError, OSError) as e:
            log.warning("%s: a write failed (%s) and the log cannot be read to see whether its commit landed (%s); "
                        "its chunks stay until vacuum removes them", storage.uri, error, e)
            return None
        if found is not None:
            log.warning("%s: the commit landed as version %d although the writer reported: %s", storage.uri, found,
                        error)
            return found
        if not storage.is_local and isinstance(error.__cause__, OSError):
            log.warning("%s: a commit failed with an I/O error (%s) and may still land; its chunks stay until "
                        "vacuum removes them", storage.uri, error)
            return None
    for writer in writers:
        try:
            writer.delete_written()
        except StorageError as e:
            log.warning("%s: could not remove the chunks of a failed write (vacuum removes them later): %s",
                        storage.uri, e)
    return None


def write_tensor_column(
    storage: Storage, spec: TensorSpec, values: Iterable[Any], *, dataset: str = "", row_offset: int = 0,
    writer: TensorColumnWriter | None = None,
) -> tuple[pa.Array, TensorColumnWriter]:
    """Encode ``values`` into chunks and return the ref array plus the writer (for cleanup)."""
    writer = writer or TensorColumnWriter(storage, spec, dataset=dataset)
    if isinstance(values, np.ndarray):
        block = encode_block(spec, values, where=f"dataset {writer.dataset}, tensor {spec.name!r}")
        if block is not None:
            refs_array = writer.add_block(block)
            writer.flush()
            return refs_array, writer
    refs: Sequence[dict[str, Any] | None] = [writer.add(v, row=row_offset + i) for i, v in enumerate(values)]
    writer.flush()
    return pa.array(refs, type=REF_TYPE), writer
