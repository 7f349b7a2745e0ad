"""Which engine builds a loader's batches: the training thread, a thread pool, or worker processes.

See ``torch/loader.py`` for what each engine does; this module only decides, from the options and
what a batch costs to build.
"""

from __future__ import annotations

from typing import Any

from deeplake_spark.errors import InvalidOptionError
from deeplake_spark.torch.source import LoaderSource

ENGINES = ("auto", "threads", "processes")

def decodes_images(source: LoaderSource) -> bool:
    """Whether building a batch decodes images (JPEG/PNG samples): per-sample work a thread pool
    spreads over cores. LZ4 chunks are decompressed on the prefetcher's I/O threads whatever the
    engine, and gathering samples is a memory copy."""
    return any(t.spec.is_sample_compressed for t in source.tensors)


def choose_engine(engine: str, num_workers: int, *, transform: Any, collate: Any, decodes: bool = True) -> str:
    """``"main"`` (batches built in the training thread), ``"threads"`` or ``"processes"``.

    ``num_workers=0`` is always ``"main"``. ``"auto"`` picks processes when per-sample Python
    (``transform``, a callable ``collate``) needs them to run in parallel; threads when batches
    decode images (``decodes``); else the training thread, since the rest of a batch's work (LZ4
    decompression) already runs on the I/O threads and handing gathered batches between threads
    cost more CPU per sample than it saved (measured on a shared 2-core machine); pass
    ``engine="threads"`` to build batches on ``num_workers`` threads anyway.
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
    return "threads" if decodes else "main"
