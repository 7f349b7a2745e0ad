"""Peer: Mosaic Streaming (``streaming-community==0.14.2``): ``MDSWriter`` shards + ``StreamingDataset``
in a torch ``DataLoader`` (run inside ``bench.worker``).

Same samples as ours. Columns: ``image`` is ``bytes`` (the JPEG as stored; decoded by PIL per sample in
``__getitem__``, the way Mosaic's image examples do) or ``ndarray:<dtype>:<shape>`` for the array kinds
(decoded by Mosaic as a zero-copy ``np.frombuffer``); ``label`` is ``int64``. Shards are uncompressed:
MDS has no LZ4 (its codecs are zstd, gz, bz2, br, snappy, which a local dataset must unpack to a cache
before reading), so on the ``tensors`` kind Mosaic reads 1.5-2x the bytes ours does but decompresses none.
``StreamingDataset(local=path, shuffle=..., batch_size=...)``: its own shuffle (``py1e`` over shuffle
blocks), its own split of samples over DataLoader workers.
"""

from __future__ import annotations

import shutil
import time
import warnings
from typing import Any

import numpy as np

from bench import data
from bench.measure import NotAvailable, consume


def _streaming() -> Any:
    try:
        import streaming
    except ImportError as e:
        raise NotAvailable(f"streaming not importable ({e}); pip install -r bench/requirements.txt") from e
    return streaming


def columns(kind: str) -> dict[str, str]:
    """MDS column encodings of ``kind``."""
    if kind in data.JPEG_KINDS:
        image = "bytes"
    elif kind in data.ARRAY_KINDS:
        dtype, shape = data.ARRAY_KINDS[kind]
        image = f"ndarray:{dtype}:{','.join(str(d) for d in shape)}"
    elif kind == "embeddings":
        image = f"ndarray:float32:{data.EMBEDDING_DIM}"
    else:
        raise NotAvailable(f"no Mosaic layout for data kind {kind!r}")
    return {"image": image, "label": "int64"}


def build(path: str, kind: str, n: int) -> dict[str, Any]:
    """``MDSWriter`` over the kind's samples, uncompressed shards of Mosaic's default size."""
    streaming = _streaming()
    samples, labels = data.load(kind, n)
    shutil.rmtree(path, ignore_errors=True)
    start = time.perf_counter()
    with streaming.MDSWriter(out=path, columns=columns(kind), compression=None) as writer:
        for i in range(n):
            writer.write({"image": samples[i] if kind in data.JPEG_KINDS else np.asarray(samples[i]),
                          "label": np.int64(labels[i])})
    seconds = time.perf_counter() - start
    from bench.ours import disk_bytes

    return {"seconds": seconds, "rows": n, "disk_bytes": disk_bytes(path)}


def make_dataset(path: str, kind: str, *, batch_size: int, shuffle: bool, seed: int = 0) -> Any:
    """A ``StreamingDataset`` over ``path`` whose items are ``{"image", "label"}`` ready to collate."""
    streaming = _streaming()
    from streaming.base.util import clean_stale_shared_memory

    clean_stale_shared_memory()  # a killed earlier run leaves its /dev/shm segments behind

    class _Dataset(streaming.StreamingDataset):
        def __getitem__(self, idx: int) -> dict[str, Any]:
            obj = super().__getitem__(idx)
            image = obj["image"]
            if kind == "images":
                image = data.decode_jpeg(image)
            elif kind == "varjpeg":
                image = data.decode_resize(image)
            return {"image": image, "label": obj["label"]}

    return _Dataset(local=path, remote=None, shuffle=shuffle, shuffle_seed=seed, batch_size=batch_size)


def stream(path: str, kind: str, batch_size: int, workers: int, min_seconds: float,
           shuffle: bool = True) -> dict[str, Any]:
    """``DataLoader(StreamingDataset(...), batch_size, num_workers)``; the dataset shuffles (or not)."""
    from torch.utils.data import DataLoader

    # np.frombuffer views of the shard are read-only; default_collate copies them into the batch anyway
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    ds = make_dataset(path, kind, batch_size=batch_size, shuffle=shuffle)
    loader = DataLoader(ds, batch_size=batch_size, num_workers=workers)
    return consume(lambda: loader, min_seconds=min_seconds)
