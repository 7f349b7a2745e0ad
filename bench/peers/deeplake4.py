"""Deep Lake 4 (``deeplake==4.7.4``, compiled core) on local paths, driven in a subprocess.

The functions here run inside ``bench.worker`` under the interpreter ``measure.worker_python
("deeplake4")`` picks (env DEEPLAKE4_PYTHON, else bench/.venv-deeplake, else the bench's own).
Same samples as ours: JPEG bytes appended as-is to an ``Image(sample_compression="jpg")`` column,
uint8[224,224,3] to an ``Array`` column (Deep Lake 4 picks the chunk compression itself), float32[768]
rows to an ``Array`` column.
"""

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


def _deeplake() -> Any:
    os.environ.setdefault("DEEPLAKE_TELEMETRY_ENABLED", "false")
    try:
        import deeplake
    except ImportError as e:
        raise NotAvailable(f"deeplake not importable ({e}); pip install deeplake==4.7.4") from e
    return deeplake


def version() -> dict[str, Any]:
    return {"version": _deeplake().__version__}


def column(kind: str) -> str:
    return "embedding" if kind == "embeddings" else "image"


def _create(path: str, kind: str) -> Any:
    deeplake = _deeplake()
    shutil.rmtree(path, ignore_errors=True)
    ds = deeplake.create(path)
    types = deeplake.types
    if kind in data.JPEG_KINDS:
        ds.add_column("image", types.Image(dtype="uint8", sample_compression="jpg"))
    elif kind in data.ARRAY_KINDS:
        dtype, shape = data.ARRAY_KINDS[kind]
        ds.add_column("image", types.Array(dtype, shape=list(shape)))
    else:
        ds.add_column("embedding", types.Array("float32", shape=[data.EMBEDDING_DIM]))
    ds.add_column("label", types.Int64())
    ds.commit("schema")
    return ds


def build(path: str, kind: str, n: int) -> dict[str, Any]:
    """Append ``n`` samples in commits of ``INGEST_BATCH`` rows."""
    from bench.ours import disk_bytes, load

    samples, labels = load(kind, n)
    name = column(kind)
    start = time.perf_counter()
    ds = _create(path, kind)
    for lo in range(0, n, INGEST_BATCH):
        hi = min(n, lo + INGEST_BATCH)
        values = samples[lo:hi] if isinstance(samples, list) else [np.asarray(s) for s in samples[lo:hi]]
        ds.append({name: values, "label": labels[lo:hi].tolist()})
        ds.commit(f"rows {lo}-{hi}")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": n, "disk_bytes": disk_bytes(path)}


def _resize_row(row: Any) -> dict[str, Any]:
    """The varjpeg transform on a Deep Lake 4 row: decoded image resized to 224x224, label."""
    return {"image": data.resize_sample(np.asarray(row["image"])), "label": int(row["label"])}


def stream_torch(path: str, kind: str, batch_size: int, workers: int, min_seconds: float,
                 shuffle: bool = True) -> dict[str, Any]:
    """``DataLoader(ds.pytorch(), batch_size, num_workers, shuffle)`` (varjpeg: ``pytorch(transform=resize)``)."""
    import torch
    from torch.utils.data import DataLoader

    ds = _deeplake().open_read_only(path)
    torch_ds = ds.pytorch(transform=_resize_row) if kind == "varjpeg" else ds.pytorch()
    loader = DataLoader(torch_ds, batch_size=batch_size, num_workers=workers, shuffle=shuffle,
                        generator=torch.Generator().manual_seed(0))
    return consume(lambda: loader, min_seconds=min_seconds)


def stream_batches(path: str, kind: str, batch_size: int, workers: int, min_seconds: float,
                   shuffle: bool = False) -> dict[str, Any]:
    """``ds.batches(batch_size)``: Deep Lake 4's own prefetcher (its own threads, not shuffled)."""
    if shuffle:
        raise NotAvailable("ds.batches() has no shuffle")
    ds = _deeplake().open_read_only(path)
    return consume(lambda: ds.batches(batch_size), min_seconds=min_seconds)


def random_access(path: str, reads: int) -> dict[str, Any]:
    """Median latency of ``ds[i]["image"]`` + ``["label"]`` for random ``i``."""
    ds = _deeplake().open_read_only(path)
    n = len(ds)
    rng = np.random.default_rng(5)
    start = time.perf_counter()
    row = ds[int(rng.integers(n))]
    image = np.asarray(row["image"])
    first_s = time.perf_counter() - start
    if image.shape != (data.IMAGE_SIZE, data.IMAGE_SIZE, 3):
        raise RuntimeError(f"ds[i]['image'] has shape {image.shape}")
    times = []
    for i in rng.integers(0, n, size=reads):
        t = time.perf_counter()
        row = ds[int(i)]
        _ = np.asarray(row["image"]).shape, row["label"]
        times.append(time.perf_counter() - t)
    return {"median_s": statistics.median(times), "p90_s": float(np.percentile(times, 90)), "first_s": first_s,
            "reads": reads}


def build_commits(path: str, commits: int) -> dict[str, Any]:
    """``commits`` commits of 5 rows each (float32[16] + label), like ``ours.build_commits``."""
    deeplake = _deeplake()
    shutil.rmtree(path, ignore_errors=True)
    ds = deeplake.create(path)
    ds.add_column("x", deeplake.types.Array("float32", shape=[16]))
    ds.add_column("label", deeplake.types.Int64())
    ds.commit("schema")
    rng = np.random.default_rng(9)
    start = time.perf_counter()
    for c in range(commits):
        ds.append({"x": list(rng.standard_normal((5, 16), dtype=np.float32)), "label": [c] * 5})
        ds.commit(f"commit {c}")
    return {"seconds": time.perf_counter() - start}


def open_versions(path: str, version: int, repeats: int) -> dict[str, Any]:
    """Median time to open latest vs the ``version``-th data commit and read its last row."""
    deeplake = _deeplake()
    # History entries carry no messages on reopen and include non-data entries: find the first
    # entry holding ``version`` data commits (5 rows each) by binary search on its row count.
    ds = deeplake.open(path)
    ids = [v.id for v in ds.history]
    lo, hi = 0, len(ids) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if len(ds.history[ids[mid]].open()) >= 5 * version:
            hi = mid
        else:
            lo = mid + 1
    target = ids[lo]

    def timed(v: str | None) -> float:
        t = time.perf_counter()
        ds = deeplake.open(path)
        if v is not None:
            ds = ds.history[v].open()
        n = len(ds)
        _ = np.asarray(ds[n - 1]["x"])
        return time.perf_counter() - t

    latest, past = [], []
    for _ in range(repeats):
        latest.append(timed(None))
        past.append(timed(target))
    rows = len(deeplake.open(path).history[target].open())
    if rows != 5 * version:
        raise RuntimeError(f"Deep Lake 4 version {target} has {rows} rows, expected {5 * version}")
    return {"latest_s": statistics.median(latest), "version_s": statistics.median(past)}


def query_first_batch(path: str, keep_days: int, labels_path: str, batch_size: int) -> dict[str, Any]:
    """TQL filter on the clustered ``day`` column, join with the label table in pandas, first batch."""
    import pyarrow.parquet as pq

    deeplake = _deeplake()
    start = time.perf_counter()
    ds = deeplake.open_read_only(path)
    view = ds.query(f"SELECT * WHERE day < {keep_days}")
    names = pq.read_table(labels_path).to_pandas().set_index("label")["name"]
    kept = len(view)
    batch = next(iter(view.batches(batch_size)))
    joined = names.reindex(np.asarray(batch["label"])).to_numpy()
    seconds = time.perf_counter() - start
    if len(joined) != min(batch_size, kept):
        raise RuntimeError("join lost rows")
    return {"seconds": seconds, "rows_kept": kept}


def build_query(path: str, rows: int, days: int) -> dict[str, Any]:
    """The query case's dataset: id, day (clustered), label, float32[64] features."""
    from bench.cases.query import query_columns

    deeplake = _deeplake()
    shutil.rmtree(path, ignore_errors=True)
    ds = deeplake.create(path)
    ds.add_column("id", deeplake.types.Int64())
    ds.add_column("day", deeplake.types.Int64())
    ds.add_column("label", deeplake.types.Int64())
    ds.add_column("features", deeplake.types.Array("float32", shape=[64]))
    step = 100_000
    for lo in range(0, rows, step):
        cols = query_columns(lo, min(rows, lo + step), rows, days)
        ds.append({"id": cols["id"], "day": cols["day"], "label": cols["label"], "features": cols["features"]})
    ds.commit("rows")
    return {"rows": rows}
