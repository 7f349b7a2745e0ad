"""Which engine builds a loader's batches: the training thread, a thread pool, or worker processes.

See ``torch/loader.py`` for what each engine does; this module only decides, from the options and
what a batch costs to build.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deeplake_spark.errors import InvalidOptionError
from deeplake_spark.torch.source import LoaderSource

ENGINES = ("auto", "threads", "processes")
#: Small batches are assembled about this many bytes at a time (``block_batches``).
BLOCK_BYTES = 2 << 20
#: At most this many batches per block (bounds how far chunk loads reach ahead).
MAX_BLOCK_BATCHES = 64

def decodes_images(source: LoaderSource) -> bool:
    """Whether building a batch decodes images (JPEG/PNG samples): per-sample work a thread pool
    spreads over cores. LZ4 chunks are decompressed on the prefetcher's I/O threads whatever the
    engine, and gathering samples is a memory copy."""
    return any(t.spec.is_sample_compressed for t in source.tensors)


def choose_engine(engine: str, num_workers: int, *, transform: Any, collate: Any, decodes: bool = True,
                  pil: bool = False) -> str:
    """``"main"`` (batches built in the training thread), ``"threads"`` or ``"processes"``.

    ``num_workers=0`` is always ``"main"``. ``"auto"`` picks processes when per-sample Python
    (``transform``, a callable ``collate``) needs them to run in parallel; threads when batches
    decode images (``decodes``); else the training thread, since the rest of a batch's work (LZ4
    decompression) already runs on the I/O threads and handing gathered batches between threads
    cost more CPU per sample than it saved (measured on a shared 2-core machine); pass
    ``engine="threads"`` to build batches on ``num_workers`` threads anyway. With ``pil`` (images
    reach the ``transform`` as PIL images, ``decode_method="pil"``) a transform is Pillow work, which
    releases the GIL: threads then (measured: ~13% less CPU per sample than processes, no worker
    start-up nor hand-off); pass ``engine="processes"`` for a transform heavy in pure Python.
    """
    if engine not in ENGINES:
        raise InvalidOptionError(f"engine={engine!r}: expected one of {ENGINES}")
    if num_workers == 0:
        if engine == "processes":
            raise InvalidOptionError("engine='processes' needs num_workers >= 1")
        return "main"
    if engine != "auto":
        return engine
    if callable(collate) or (transform is not None and not pil):
        return "processes"
    return "threads" if decodes else "main"


def block_batches(source: LoaderSource, batch_size: int) -> int:
    """How many consecutive batches to assemble at once when no per-sample Python runs (1: batch
    by batch).

    Building a batch of small samples costs more in per-batch Python (chunk lookups, gather
    calls) than in copying, so the rows of ~``BLOCK_BYTES`` of consecutive batches are gathered at
    once (one call per chunk) and each batch is collated from its slice of that block: the same
    batches, in the same order. Not for decoded images (per-sample work either way). A row whose
    size the spec does not fix counts as the tensor's average (``total_nbytes``), or as a whole
    block when that is unknown.
    """
    if decodes_images(source):
        return 1
    rows = max(source.num_rows, 1)
    row_bytes = 8 * len(source.tabular)
    for t in source.tensors:
        shape = t.spec.shape
        if shape is not None and all(d is not None for d in shape):
            row_bytes += int(np.prod(shape, dtype=np.int64)) * np.dtype(t.spec.dtype).itemsize
        else:
            row_bytes += t.total_nbytes // rows if t.total_nbytes else BLOCK_BYTES
    return int(min(MAX_BLOCK_BATCHES, max(1, BLOCK_BYTES // max(1, row_bytes * batch_size))))
