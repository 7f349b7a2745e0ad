"""Peer: Lance (``pylance==14.0.2``) read into a torch ``DataLoader`` (run inside ``bench.worker``).

Same samples as ours, written with ``lance.write_dataset``: ``image`` is ``binary`` (JPEG bytes) or
``fixed_size_binary`` (the array kinds' raw bytes), ``label`` is ``int64``.

Lance's torch module has two loaders: ``lance.torch.data.LanceDataset`` (an ``IterableDataset`` that
scans in file order and splits work by distributed rank only, so with 2 DataLoader workers each worker
would yield every row) and ``SafeLanceDataset`` + ``get_safe_loader`` (map-style, ``ds.take(indices)``
per batch, then ``to_pylist()``; workers spawned and persistent). The rows here use the second way with
the ``to_pylist()`` step replaced by a zero-copy view of the taken Arrow column (kinder to Lance than its
own helper): a global shuffle by torch's ``DataLoader(shuffle=True)``, one ``take`` of a whole batch per
worker, workers persistent across epochs. Workers fork, as every other system's here: safe because the
loader process itself never opens the dataset (Lance's native runtime does not survive a fork once it
has, which is why ``get_safe_loader`` spawns); each worker opens it on its first batch. Unshuffled, the
same loader reads batches in order (contiguous ``take``).
"""

from __future__ import annotations

import shutil
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from bench import data
from bench.measure import NotAvailable, consume

WRITE_BATCH = 1_000


def _lance() -> Any:
    try:
        import lance
    except ImportError as e:
        raise NotAvailable(f"lance not importable ({e}); pip install -r bench/requirements.txt") from e
    return lance


def _schema(kind: str) -> Any:
    import pyarrow as pa

    if kind in data.JPEG_KINDS:
        image = pa.binary()
    elif kind in data.ARRAY_KINDS:
        image = pa.binary(data.sample_nbytes(kind))
    elif kind == "embeddings":
        image = pa.list_(pa.float32(), data.EMBEDDING_DIM)
    else:
        raise NotAvailable(f"no Lance layout for data kind {kind!r}")
    return pa.schema([("image", image), ("label", pa.int64())])


def _batches(kind: str, samples: Any, labels: np.ndarray, schema: Any) -> Iterator[Any]:
    import pyarrow as pa

    n = len(labels)
    for lo in range(0, n, WRITE_BATCH):
        hi = min(n, lo + WRITE_BATCH)
        if kind in data.JPEG_KINDS:
            col = pa.array(samples[lo:hi], type=pa.binary())
        elif kind == "embeddings":
            flat = pa.array(np.ascontiguousarray(samples[lo:hi]).reshape(-1))
            col = pa.FixedSizeListArray.from_arrays(flat, data.EMBEDDING_DIM)
        else:
            block = np.ascontiguousarray(samples[lo:hi])
            col = pa.FixedSizeBinaryArray.from_buffers(schema.field("image").type, hi - lo,
                                                       [None, pa.py_buffer(block)])
        yield pa.record_batch([col, pa.array(labels[lo:hi])], schema=schema)


def build(path: str, kind: str, n: int) -> dict[str, Any]:
    """``lance.write_dataset`` of the kind's samples (default file and group sizes)."""
    import pyarrow as pa

    lance = _lance()
    samples, labels = data.load(kind, n)
    shutil.rmtree(path, ignore_errors=True)
    schema = _schema(kind)
    start = time.perf_counter()
    reader = pa.RecordBatchReader.from_batches(schema, _batches(kind, samples, labels, schema))
    lance.write_dataset(reader, path, schema=schema)
    seconds = time.perf_counter() - start
    from bench.ours import disk_bytes

    return {"seconds": seconds, "rows": n, "disk_bytes": disk_bytes(path)}


def _count_rows(path: str) -> int:
    return int(_lance().dataset(path).count_rows())


def count_rows(path: str) -> int:
    """Rows of the Lance dataset at ``path``, counted in a forked child so this process never opens it."""
    import multiprocessing as mp

    with mp.get_context("fork").Pool(1) as pool:
        return int(pool.apply(_count_rows, (path,)))


class LanceTake:
    """Map-style dataset: ``__getitems__(indices)`` = one ``take`` of the batch's rows, decoded per column."""

    def __init__(self, path: str, kind: str, rows: int | None = None) -> None:
        self.path, self.kind = path, kind
        self._len = count_rows(path) if rows is None else rows
        self._ds: Any = None  # opened where it is read: in each worker, or here with 0 workers

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, idx: int) -> dict[str, Any]:
        return self.__getitems__([idx])

    def __getitems__(self, indices: list[int]) -> dict[str, Any]:
        import torch

        if self._ds is None:
            self._ds = _lance().dataset(self.path)
        table = self._ds.take(indices, columns=["image", "label"])
        col = table.column("image").combine_chunks()
        labels = table.column("label").to_numpy()
        if self.kind == "images":
            images = np.stack([data.decode_jpeg(v.as_py()) for v in col])
        elif self.kind == "varjpeg":
            images = np.stack([data.decode_resize(v.as_py()) for v in col])
        elif self.kind == "embeddings":
            images = col.flatten().to_numpy().reshape(len(col), data.EMBEDDING_DIM)
        else:
            dtype, shape = data.ARRAY_KINDS[self.kind]
            width = data.sample_nbytes(self.kind)
            raw = np.frombuffer(col.buffers()[1], dtype=np.uint8, count=len(col) * width, offset=col.offset * width)
            images = raw.view(dtype).reshape(len(col), *shape)
        with warnings.catch_warnings():  # the taken buffer is fresh and ours: no copy needed
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return {"image": torch.from_numpy(images), "label": torch.from_numpy(labels)}


def _first(batch: Any) -> Any:
    return batch


def stream(path: str, kind: str, batch_size: int, workers: int, min_seconds: float,
           shuffle: bool = True) -> dict[str, Any]:
    """``DataLoader(LanceTake, batch_size, shuffle, num_workers, persistent_workers=True)``: a batch is one
    ``take``. Workers persist across epochs as ``get_safe_loader`` sets them up (each opens the dataset
    once, ~1 s, instead of every epoch)."""
    import torch
    from torch.utils.data import DataLoader

    loader = DataLoader(LanceTake(path, kind), batch_size=batch_size, shuffle=shuffle, num_workers=workers,
                        collate_fn=_first, generator=torch.Generator().manual_seed(0),
                        persistent_workers=workers > 0)
    return consume(lambda: loader, min_seconds=min_seconds)
