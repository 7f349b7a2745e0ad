"""deeplake-spark driven through its Python API (functions run inside ``bench.worker`` processes)."""

from __future__ import annotations

import os
import shutil
import statistics
import time
from typing import Any

import numpy as np

from bench import data
from bench.measure import NotAvailable, consume

INGEST_BATCH = 1_000


def schema(kind: str) -> dict[str, Any]:
    import deeplake_spark as dls

    if kind == "images":
        return {"image": dls.tensor("image"), "label": "int64"}
    if kind == "tensors":
        return {"image": dls.tensor("image", shape=(data.TENSOR_SIZE, data.TENSOR_SIZE, 3), compression="lz4"),
                "label": "int64"}
    if kind == "embeddings":
        return {"embedding": dls.tensor("embedding", shape=(data.EMBEDDING_DIM,)), "label": "int64"}
    if kind == "varjpeg":
        return {"image": dls.tensor("image"), "label": "int64"}
    if kind in data.ARRAY_KINDS:  # raw, f16, tiny: uncompressed
        dtype, shape = data.ARRAY_KINDS[kind]
        return {"image": dls.tensor("generic", dtype=dtype, shape=shape, compression="none"), "label": "int64"}
    raise ValueError(kind)


def column(kind: str) -> str:
    return "embedding" if kind == "embeddings" else "image"


def load(kind: str, n: int) -> tuple[Any, np.ndarray]:
    """The samples of ``kind`` (JPEG bytes for images, arrays otherwise) and labels."""
    return data.load(kind, n)


def build(path: str, kind: str, n: int) -> dict[str, Any]:
    """Append ``n`` samples in commits of ``INGEST_BATCH`` rows; returns the time it took."""
    import deeplake_spark as dls

    samples, labels = load(kind, n)
    shutil.rmtree(path, ignore_errors=True)
    name = column(kind)
    start = time.perf_counter()
    ds = dls.create(path, schema(kind))
    for lo in range(0, n, INGEST_BATCH):
        hi = min(n, lo + INGEST_BATCH)
        ds.append({name: samples[lo:hi], "label": labels[lo:hi]})
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": n, "disk_bytes": disk_bytes(path)}


def disk_bytes(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def resize_transform(sample: dict[str, Any]) -> dict[str, Any]:
    """The varjpeg case's per-sample transform: the decoded image resized to 224x224 (PIL bilinear).

    The loader hands the image as a PIL image (``decode_method="pil"``), so this is the work of
    ``data.decode_resize`` that Mosaic's and Lance's rows do: decode, resize, one ``np.asarray``."""
    from PIL import Image

    image = sample["image"]
    if isinstance(image, Image.Image):
        resized = np.asarray(image.resize((data.RESIZE_TO, data.RESIZE_TO), Image.BILINEAR))
    else:
        resized = data.resize_sample(image)
    return {"image": resized, "label": sample["label"]}


def make_loader(path: str, kind: str, *, batch_size: int, workers: int, seed: int = 0, shuffle: bool = True,
                cache_bytes: int | None = None) -> Any:
    import deeplake_spark as dls

    ds = dls.open(path)
    options: dict[str, Any] = {"batch_size": batch_size, "num_workers": workers, "shuffle": shuffle, "seed": seed,
                               "num_epochs": 1}
    if cache_bytes is not None:
        options["cache_bytes"] = cache_bytes
    if kind == "varjpeg":
        options["transform"] = resize_transform
        options["decode_method"] = "pil"
    try:
        return ds.pytorch(**options)
    except TypeError as e:
        raise NotAvailable(f"ds.pytorch({', '.join(options)}) rejected: {e}") from e


def stream(path: str, kind: str, batch_size: int, workers: int, min_seconds: float,
           shuffle: bool = True, cache_bytes: int | None = None) -> dict[str, Any]:
    """Samples/s of ``ds.pytorch(...)`` (batch, workers, shuffle as given; varjpeg: + resize transform;
    ``cache_bytes``: the loader's chunk cache bound, default its own; 0 for a loader that keeps no
    chunk across epochs, e.g. to measure streaming memory)."""
    loader = make_loader(path, kind, batch_size=batch_size, workers=workers, shuffle=shuffle,
                         cache_bytes=cache_bytes)
    return consume(lambda: loader, min_seconds=min_seconds)


def stream_workers_ab(path: str, kind: str, batch_size: int, workers: int, min_seconds: float,
                      rounds: int = 5, shuffle: bool = True, budget_seconds: float = 0.0,
                      max_rounds: int = 121) -> dict[str, Any]:
    """``num_workers=0`` and ``num_workers=workers`` interleaved in this one process: one loader of
    each, made and run one pass first (start-up, worker start, first chunk reads), then at least
    ``rounds`` rounds, each a run of each loader back to back (alternating which goes first, each
    ``min_seconds`` of whole passes, every pass an epoch with its own start-up, as a training loop
    sees them), more rounds while less than ``budget_seconds`` have passed, up to ``max_rounds``.
    Runs back to back see the same machine, and short runs give many rounds, so the median of the
    rounds' ratios resolves a few percent on a shared machine where fresh loaders for each run
    (0.5 s apart) differed by +-30% a round with the same code path. Returns the 0-worker result
    (its median round by samples/s) with the ``workers`` one under ``"paired"`` and
    ``"round_ratios"``, each round's ``workers`` / 0-worker samples/s."""
    loaders = {w: make_loader(path, kind, batch_size=batch_size, workers=w, shuffle=shuffle) for w in (0, workers)}
    for loader in loaders.values():
        for _ in loader:  # one pass: start-up and first reads, measured by the stream rows, not here
            pass
    runs: dict[int, list[dict[str, Any]]] = {0: [], workers: []}
    start = time.perf_counter()
    r = 0
    while r < rounds or (r < max_rounds and time.perf_counter() - start < budget_seconds):
        for w in (workers, 0) if r % 2 else (0, workers):
            runs[w].append(consume(lambda w=w: loaders[w], min_seconds=min_seconds))  # type: ignore[misc]
        r += 1

    def median(results: list[dict[str, Any]]) -> dict[str, Any]:
        return sorted(results, key=lambda x: x["samples_per_s"] or 0)[len(results) // 2]

    out = dict(median(runs[0]))
    out["paired"] = median(runs[workers])
    out["round_ratios"] = [(a["samples_per_s"] or 0) / (b["samples_per_s"] or 1) for a, b in zip(runs[workers], runs[0])]
    out["rounds"] = r
    return out


def random_access(path: str, reads: int) -> dict[str, Any]:
    """Median latency of ``ds[i]`` (image + label) for random ``i`` on an opened dataset."""
    import deeplake_spark as dls

    ds = dls.open(path)
    n = len(ds)
    rng = np.random.default_rng(5)
    start = time.perf_counter()
    first = ds[int(rng.integers(n))]
    first_s = time.perf_counter() - start
    if first["image"].shape != (data.IMAGE_SIZE, data.IMAGE_SIZE, 3):
        raise RuntimeError(f"ds[i]['image'] has shape {first['image'].shape}")
    times = []
    for i in rng.integers(0, n, size=reads):
        t = time.perf_counter()
        row = ds[int(i)]
        _ = row["image"].shape
        times.append(time.perf_counter() - t)
    return {"median_s": statistics.median(times), "p90_s": float(np.percentile(times, 90)), "first_s": first_s,
            "reads": reads}


def build_commits(path: str, commits: int) -> dict[str, Any]:
    """A dataset with ``commits`` appends of 5 rows each (a small tensor + a label)."""
    import deeplake_spark as dls

    shutil.rmtree(path, ignore_errors=True)
    ds = dls.create(path, {"x": dls.tensor("generic", dtype="float32", shape=(16,)), "label": "int64"})
    rng = np.random.default_rng(9)
    start = time.perf_counter()
    for c in range(commits):
        ds.append({"x": rng.standard_normal((5, 16), dtype=np.float32), "label": np.full(5, c, dtype=np.int64)})
    return {"seconds": time.perf_counter() - start, "version": ds.version}


def open_versions(path: str, version: int, repeats: int) -> dict[str, Any]:
    """Median time to open latest vs ``version`` and read its first row."""
    import deeplake_spark as dls

    def timed(v: int | None) -> float:
        t = time.perf_counter()
        ds = dls.open(path, version=v)
        n = len(ds)
        _ = ds[n - 1]["x"]
        return time.perf_counter() - t

    latest, past = [], []
    expected_rows = 5 * version
    for _ in range(repeats):
        latest.append(timed(None))
        past.append(timed(version))
    rows = len(dls.open(path, version=version))
    if rows != expected_rows:
        raise RuntimeError(f"version {version} has {rows} rows, expected {expected_rows}")
    return {"latest_s": statistics.median(latest), "version_s": statistics.median(past)}
