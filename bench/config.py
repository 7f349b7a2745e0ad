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
    batch_size: int = 64
    workers: int = 2
    #: rounds of case 2, systems interleaved; the best round counts (the machine may be shared)
    rounds: int = 1

    @property
    def work(self) -> str:
        return os.path.join(WORK_DIR, self.mode)


QUICK = Sizes(mode="quick", images=1_000, tensors=500, embeddings=10_000, query_rows=100_000, commits=200,
              random_access_reads=30, stream_min_seconds=1.5, rounds=1)
FULL = Sizes(mode="full", images=10_000, tensors=5_000, embeddings=100_000, query_rows=1_000_000, commits=1_000,
             random_access_reads=100, stream_min_seconds=8.0, rounds=2)
