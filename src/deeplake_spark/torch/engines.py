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

#: Below this many bytes per batch (and without image decoding) a batch costs less to build than to
#: hand from one thread to another: ``engine="auto"`` then builds batches in the training thread.
INLINE_BATCH_BYTES = 1 << 20


def batch_cost(source: LoaderSource, batch_size: int) -> tuple[int, bool]:
    """(estimated bytes of a batch's tensor samples, whether samples need image decoding)."""
    decodes = any(t.spec.is_sample_compressed for t in source.tensors)
    per_row = 0
    for t in source.tensors:
        if t.spec.dtype == "str":
            continue  # decoded by Python under the GIL: a thread would not help
        if t.total_nbytes and source.num_rows:
            per_row += t.total_nbytes // source.num_rows
        elif t.spec.shape is not None and all(d is not None for d in t.spec.shape):
            per_row += int(np.prod(t.spec.shape, dtype=np.int64)) * np.dtype(t.spec.dtype).itemsize
        else:
            per_row += INLINE_BATCH_BYTES  # unknown: assume worth threads
    return per_row * batch_size, decodes


def choose_engine(engine: str, num_workers: int, *, transform: Any, collate: Any, batch_bytes: int = 0,
                  decodes: bool = True) -> str:
    """``"main"`` (batches built in the training thread), ``"threads"`` or ``"processes"``.

    ``num_workers=0`` is always ``"main"``. ``"auto"`` picks processes when per-sample Python
    (``transform``, a callable ``collate``) needs them to run in parallel; else threads, unless
    batches are small and need no decoding (``batch_bytes < INLINE_BATCH_BYTES``): building one
    then takes microseconds, less than handing it between threads, so the training thread does it.
    """
    if engine not in ENGINES:
        raise InvalidOptionError(f"engine={engine!r}: expected one of {ENGINES}")
    if num_workers == 0:
        if engine == "processes":
            raise InvalidOptionError("engine='processes' needs num_workers >= 1")
        return "main"
    if engine != "auto":
        return engine
    if transform is not None or callable(collate):
        return "processes"
    return "threads" if decodes or batch_bytes >= INLINE_BATCH_BYTES else "main"
