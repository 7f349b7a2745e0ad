"""Baseline: one Parquet file with a binary (JPEG / raw tensor bytes) or list column, read by pyarrow.

The torch side is an ``IterableDataset`` that gives each DataLoader worker every ``workers``-th
row group, in a seeded shuffled order, and shuffles rows inside each row group (petastorm-style
shuffling: weaker than a global shuffle).
"""

from __future__ import annotations

import io
import os
import shutil
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench import data

ROW_GROUP_ROWS = 1_000


def table(kind: str, lo: int, hi: int, samples: Any, labels: np.ndarray) -> pa.Table:
    """Rows ``lo:hi`` of ``kind`` as Arrow: ``image`` binary (JPEG or raw uint8) / ``embedding`` list."""
    if kind in data.JPEG_KINDS:
        col = pa.array(samples[lo:hi], type=pa.binary())
    elif kind in data.ARRAY_KINDS:
        block = np.ascontiguousarray(samples[lo:hi])
        width = block[0].nbytes
        col = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), hi - lo, [None, pa.py_buffer(block)])
        col = col.cast(pa.binary())
    else:
        flat = pa.array(np.ascontiguousarray(samples[lo:hi]).reshape(-1))
        col = pa.FixedSizeListArray.from_arrays(flat, data.EMBEDDING_DIM)
    name = "embedding" if kind == "embeddings" else "image"
    return pa.table({name: col, "label": pa.array(labels[lo:hi])})


def build(path: str, kind: str, n: int) -> dict[str, Any]:
    """pyarrow ``ParquetWriter``: LZ4 for ``tensors``, snappy for embeddings, none else (JPEG bytes and
    the uncompressed array kinds)."""
    compression = {"images": "none", "varjpeg": "none", "tensors": "lz4", "embeddings": "snappy"}.get(kind, "none")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    from bench.ours import load

    samples, labels = load(kind, n)  # loaded before the clock starts, as for every system
    start = time.perf_counter()
    writer = None
    for lo in range(0, n, ROW_GROUP_ROWS):
        t = table(kind, lo, min(n, lo + ROW_GROUP_ROWS), samples, labels)
        if writer is None:
            writer = pq.ParquetWriter(path, t.schema, compression=compression)
        writer.write_table(t, row_group_size=ROW_GROUP_ROWS)
    if writer is not None:
        writer.close()
    return {"seconds": time.perf_counter() - start, "rows": n, "disk_bytes": os.path.getsize(path)}


class ParquetStream:
    """Torch ``IterableDataset`` over a Parquet file's row groups, decoded per sample."""

    def __init__(self, path: str, kind: str, seed: int = 0) -> None:
        self.path, self.kind, self.seed = path, kind, seed
        self.epoch = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        import torch
        from PIL import Image

        info = torch.utils.data.get_worker_info()
        wid, nworkers = (info.id, info.num_workers) if info else (0, 1)
        pf = pq.ParquetFile(self.path)
        rng = np.random.default_rng([self.seed, self.epoch])
        groups = rng.permutation(pf.num_row_groups)[wid::nworkers]
        self.epoch += 1
        name = "embedding" if self.kind == "embeddings" else "image"
        for g in groups:
            t = pf.read_row_group(int(g))
            col, labels = t.column(name), t.column("label").to_numpy()
            order = rng.permutation(t.num_rows)
            if self.kind == "embeddings":
                values = col.combine_chunks().flatten().to_numpy().reshape(-1, data.EMBEDDING_DIM)
            if self.kind in data.ARRAY_KINDS:
                dtype, shape = data.ARRAY_KINDS[self.kind]
            for i in order:
                if self.kind == "images":
                    with Image.open(io.BytesIO(col[int(i)].as_py())) as img:
                        x = np.asarray(img.convert("RGB"))
                elif self.kind == "varjpeg":
                    x = data.decode_resize(col[int(i)].as_py())
                elif self.kind in data.ARRAY_KINDS:
                    x = np.frombuffer(col[int(i)].as_py(), dtype=dtype).reshape(shape)
                else:
                    x = values[i]
                yield {name: torch.from_numpy(np.array(x)), "label": int(labels[i])}


def stream(path: str, kind: str, batch_size: int, workers: int, min_seconds: float,
           shuffle: bool = True) -> dict[str, Any]:
    from torch.utils.data import DataLoader, IterableDataset

    from bench.measure import NotAvailable, consume

    if not shuffle:
        raise NotAvailable("the Parquet baseline always shuffles (row groups + rows within a group)")

    class _Dataset(ParquetStream, IterableDataset):
        pass

    loader = DataLoader(_Dataset(path, kind), batch_size=batch_size, num_workers=workers)
    return consume(lambda: loader, min_seconds=min_seconds)
