"""Hardware-bound baselines on the same bytes and cores (run inside ``bench.worker``).

- JPEG decode alone: the stored JPEG bytes, already in memory, decoded by PIL in ``workers``
  processes (what any JPEG loader must at least spend).
- LZ4 decompress + copy alone: the payloads of our tensor store's chunk files, already in memory,
  decompressed and copied into batch arrays in ``workers`` processes.
- Gather alone: the uncompressed arrays, already in memory, gathered in a seeded shuffled order into a
  reused batch array (``np.take(..., out=)``) in ``workers`` processes, each taking every
  ``workers``-th batch (what any loader of uncompressed samples must at least spend).
- JPEG decode + resize alone: the variable-size JPEGs decoded by PIL and resized to 224x224, as the
  varjpeg transform does, in ``workers`` processes.
- JPEG decode alone, libjpeg-turbo direct: the same JPEGs decoded by ``simplejpeg`` into a reused
  array (what our loader does since it stopped going through Pillow), to show how far from its own
  decoder's bound the loader is, beside the PIL bound the targets use.
"""

from __future__ import annotations

import io
import multiprocessing as mp
import os
import time
from typing import Any

import numpy as np

from bench import data

_SHARED: dict[str, Any] = {}


def _decode_share(args: tuple[int, int]) -> int:
    from PIL import Image

    wid, workers = args
    jpegs = _SHARED["jpegs"]
    for jpeg in jpegs[wid::workers]:
        with Image.open(io.BytesIO(jpeg)) as img:
            np.asarray(img.convert("RGB"))
    return len(jpegs[wid::workers])


def _turbo_share(args: tuple[int, int]) -> int:
    import simplejpeg

    wid, workers = args
    jpegs = _SHARED["jpegs"]
    out = np.empty((data.IMAGE_SIZE, data.IMAGE_SIZE, 3), np.uint8)
    for jpeg in jpegs[wid::workers]:
        simplejpeg.decode_jpeg(jpeg, colorspace="RGB", buffer=out)
    return len(jpegs[wid::workers])


def _lz4_share(args: tuple[int, int]) -> int:
    import lz4.block

    wid, workers = args
    count = 0
    batch = np.empty((64, data.TENSOR_SIZE, data.TENSOR_SIZE, 3), dtype=np.uint8)
    filled = 0
    for payload, raw_len, positions in _SHARED["chunks"][wid::workers]:
        raw = lz4.block.decompress(payload, uncompressed_size=raw_len)
        for k in range(len(positions) - 1):
            sample = np.frombuffer(raw, dtype=np.uint8, count=int(positions[k + 1] - positions[k]),
                                   offset=int(positions[k]))
            batch[filled] = sample.reshape(batch.shape[1:])
            filled = (filled + 1) % len(batch)
            count += 1
    return count


def _decode_resize_share(args: tuple[int, int]) -> int:
    wid, workers = args
    jpegs = _SHARED["jpegs"]
    for jpeg in jpegs[wid::workers]:
        data.decode_resize(jpeg)
    return len(jpegs[wid::workers])


def _gather_share(args: tuple[int, int]) -> int:
    wid, workers = args
    arr, order, batch_size = _SHARED["array"], _SHARED["order"], _SHARED["batch_size"]
    out = np.empty((batch_size, *arr.shape[1:]), dtype=arr.dtype)
    count = 0
    for b, lo in enumerate(range(0, len(order), batch_size)):
        if b % workers != wid:
            continue
        idx = order[lo : lo + batch_size]
        np.take(arr, idx, axis=0, out=out[: len(idx)])
        count += len(idx)
    return count


def _timed_pool(target: Any, workers: int, min_seconds: float) -> dict[str, Any]:
    ctx = mp.get_context("fork")  # children share _SHARED without copying
    with ctx.Pool(workers) as pool:
        pool.map(target, [(w, workers) for w in range(workers)])  # warm-up, page in
        samples, rounds = 0, 0
        start = time.perf_counter()
        while True:
            samples += sum(pool.map(target, [(w, workers) for w in range(workers)]))
            rounds += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
    return {"samples": samples, "seconds": elapsed, "samples_per_s": samples / elapsed, "rounds": rounds}


def jpeg_decode(n: int, workers: int, min_seconds: float) -> dict[str, Any]:
    _SHARED["jpegs"] = data.images(n).jpegs
    return _timed_pool(_decode_share, workers, min_seconds)


def jpeg_decode_turbo(n: int, workers: int, min_seconds: float) -> dict[str, Any]:
    _SHARED["jpegs"] = data.images(n).jpegs
    return _timed_pool(_turbo_share, workers, min_seconds)


def lz4_copy(path: str, workers: int, min_seconds: float) -> dict[str, Any]:
    from deeplake_spark.format.header import decode_header

    chunks = []
    folder = os.path.join(path, "_tensors", "image")
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as f:
            blob = f.read()
        header = decode_header(memoryview(blob))
        if header.compression != "lz4":
            raise RuntimeError(f"{name}: expected an LZ4 chunk, found {header.compression}")
        payload = blob[header.header_len : header.header_len + header.payload_len]
        chunks.append((payload, header.raw_payload_len, np.asarray(header.byte_positions, dtype=np.int64)))
    _SHARED["chunks"] = chunks
    result = _timed_pool(_lz4_share, workers, min_seconds)
    result["chunks"] = len(chunks)
    return result


def jpeg_decode_resize(n: int, workers: int, min_seconds: float) -> dict[str, Any]:
    _SHARED["jpegs"] = data.varjpegs(n).jpegs
    return _timed_pool(_decode_resize_share, workers, min_seconds)


def gather(kind: str, n: int, workers: int, min_seconds: float, batch_size: int = 64) -> dict[str, Any]:
    samples, _ = data.load(kind, n)
    _SHARED["array"] = np.array(samples)  # in memory, not a memory map of the cache file
    _SHARED["order"] = np.random.default_rng(0).permutation(n)
    _SHARED["batch_size"] = batch_size
    return _timed_pool(_gather_share, workers, min_seconds)
