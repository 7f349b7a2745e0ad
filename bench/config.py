"""Sizes of the quick and full runs, and the paths the suite works under."""

from __future__ import annotations

import os
from dataclasses import dataclass

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
WORK_DIR = os.path.join(BENCH_DIR, "_work")


@dataclass(frozen=True)
class Sizes:
    """How much data each case uses; ``quick`` fits in < 5 min on 2 cores, full in < 30 min."""

    mode: str
    images: int
    tensors: int
    embeddings: int
    query_rows: int
    commits: int
    random_access_reads: int
    stream_min_seconds: float
    #: loader cases of issue #13: uncompressed uint8[224,224,3], variable-size JPEG, float16[3,128,128],
    #: uint8[28,28] (batch ``tiny_batch_size``)
    raw: int = 500
    varjpeg: int = 1_000
    f16: int = 1_000
    tiny: int = 20_000
    tiny_batch_size: int = 256
    #: data kinds case 2 streams (quick leaves out embeddings, which no #13 target names)
    stream_kinds: tuple[str, ...] = ("tensors", "raw", "images", "varjpeg", "f16", "tiny", "embeddings")
    #: case 2 also runs ``make_spark_converter`` on images/tensors/embeddings (starts Spark in the bench)
    stream_converter: bool = True
    batch_size: int = 64
    workers: int = 2
    #: rounds of case 2, systems interleaved; the best round counts (the machine may be shared)
    rounds: int = 1
    #: rounds of num_workers=0 vs the default workers, interleaved in one process (case 2): at least
    #: ``workers_ab_rounds``, more while a kind has used less than ``workers_ab_budget_s``; each run
    #: ``workers_ab_run_s`` (a kind whose epoch is longer runs one epoch)
    workers_ab_rounds: int = 7
    workers_ab_budget_s: float = 20.0
    workers_ab_run_s: float = 0.2
    #: loader runs of case 3, each between two bound runs (bound, loader, bound, loader, ..., bound)
    bound_rounds: int = 2

    @property
    def work(self) -> str:
        return os.path.join(WORK_DIR, self.mode)


QUICK = Sizes(mode="quick", images=1_000, tensors=500, embeddings=10_000, query_rows=100_000, commits=200,
              random_access_reads=30, stream_min_seconds=1.0, raw=500, varjpeg=1_000, f16=1_000, tiny=20_000,
              stream_kinds=("tensors", "raw", "images", "varjpeg", "f16", "tiny"), stream_converter=False, rounds=1)
FULL = Sizes(mode="full", images=10_000, tensors=5_000, embeddings=100_000, query_rows=1_000_000, commits=1_000,
             random_access_reads=100, stream_min_seconds=8.0, raw=5_000, varjpeg=10_000, f16=10_000,
             tiny=200_000, rounds=2, workers_ab_rounds=9, workers_ab_budget_s=60.0, workers_ab_run_s=0.5,
             bound_rounds=3)
