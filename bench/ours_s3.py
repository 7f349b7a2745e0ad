"""deeplake-spark on S3 (a local SeaweedFS server): build a copy and stream it, inside ``bench.worker``
processes. The same samples, schema and loader options as :mod:`bench.ours` uses on local disk."""

from __future__ import annotations

import time
from typing import Any

from bench.measure import consume
from bench.ours import INGEST_BATCH, column, load, schema


def build(uri: str, kind: str, n: int, storage_options: dict[str, str]) -> dict[str, Any]:
    """Append ``n`` samples of ``kind`` to a new dataset at ``uri`` in commits of ``INGEST_BATCH`` rows."""
    import deeplake_spark as dls

    samples, labels = load(kind, n)
    name = column(kind)
    start = time.perf_counter()
    ds = dls.create(uri, schema(kind), storage_options=storage_options)
    for lo in range(0, n, INGEST_BATCH):
        hi = min(n, lo + INGEST_BATCH)
        ds.append({name: samples[lo:hi], "label": labels[lo:hi]})
    seconds = time.perf_counter() - start
    rows = len(dls.open(uri, storage_options=storage_options))
    if rows != n:
        raise RuntimeError(f"{uri} has {rows} rows after the build, expected {n}")
    return {"seconds": seconds, "rows": rows}


def stream(uri: str, kind: str, batch_size: int, workers: int, min_seconds: float,
           storage_options: dict[str, str]) -> dict[str, Any]:
    """Samples/s of ``open(uri, storage_options=...).pytorch(...)``, shuffled, as :func:`bench.ours.stream`."""
    import deeplake_spark as dls

    ds = dls.open(uri, storage_options=storage_options)
    loader = ds.pytorch(batch_size=batch_size, num_workers=workers, shuffle=True, seed=0, num_epochs=1)
    return consume(lambda: loader, min_seconds=min_seconds)
