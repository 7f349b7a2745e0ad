"""Which rows each loader worker reads, in which order: a pure function of the epoch's inputs.

``epoch_plan(layout, seed=..., epoch=..., rank=..., world_size=..., num_workers=..., batch_size=...)``
returns the batches (arrays of row positions) each worker of one rank yields in one epoch;
``loader_order(plans)`` is the order a ``torch.utils.data.DataLoader`` hands them to the training
loop (it asks its workers for batches in turn, skipping workers that are done). No I/O, no torch:
the whole shuffle and sharding logic is tested on its own (tests/unit/test_sampling.py).

How an epoch is laid out:

* ``shuffle=True``: the rows are grouped by the chunk of the *primary* tensor (the one whose chunks
  are read; see ``ChunkLayout``). The chunk order is permuted with ``(seed, epoch)`` (the same on
  every rank). The resulting sequence is cut into ``world_size`` contiguous, equal slices (sizes
  differ by at most one row; with ``drop_last`` the tail is dropped so every rank gets the same
  number of full batches). Each rank cuts its slice into ``num_workers`` contiguous parts at batch
  boundaries, so a worker reads whole chunks except at the edges of its part, and only the very
  last batch of a rank can be short. Inside a worker the rows of ``shuffle_window`` consecutive
  chunks are permuted together (a shuffle buffer whose memory is ``shuffle_window`` chunks).
* ``shuffle=False``: the rows keep their order; rank slices are contiguous and batch ``b`` of a
  rank goes to worker ``b % num_workers``, so the loader yields rows in order.

Across epochs the worker that starts the rotation moves on, so uneven batch counts do not pile up
on one worker when ``num_epochs > 1`` runs in one pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deeplake_spark.errors import InvalidOptionError


@dataclass(frozen=True)
class ChunkLayout:
    """Rows grouped by the chunk holding their primary-tensor sample.

    ``rows`` lists row positions block after block (a block = the rows of one chunk, in row
    order); block ``i`` is ``rows[offsets[i]:offsets[i + 1]]``. Blocks are ordered by the first row
    that uses them.
    """

    rows: np.ndarray
    offsets: np.ndarray

    @classmethod
    def from_chunk_codes(cls, chunk_codes: np.ndarray | Sequence[int]) -> ChunkLayout:
        """Layout from one chunk code per row (any integers; rows with equal codes share a chunk)."""
        codes = np.asarray(chunk_codes, dtype=np.int64)
        if codes.ndim != 1:
            raise InvalidOptionError(f"chunk codes must be one-dimensional, got shape {codes.shape}")
        n = len(codes)
        if n == 0:
            return cls(np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64))
        uniq, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        # Renumber blocks by first appearance so the layout follows row order.
        rank_of_block = np.empty(len(uniq), dtype=np.int64)
        rank_of_block[np.argsort(first, kind="stable")] = np.arange(len(uniq))
        block_of_row = rank_of_block[inverse]
        rows = np.argsort(block_of_row, kind="stable").astype(np.int64)
        counts = np.bincount(block_of_row, minlength=len(uniq))
        offsets = np.zeros(len(uniq) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return cls(rows, offsets)

    @classmethod
    def contiguous(cls, num_rows: int, rows_per_chunk: int) -> ChunkLayout:
        """Rows ``0..num_rows`` in chunks of ``rows_per_chunk`` (handy in tests and benchmarks)."""
        return cls.from_chunk_codes(np.arange(num_rows) // max(rows_per_chunk, 1))

    @property
    def num_rows(self) -> int:
        return len(self.rows)

    @property
    def num_chunks(self) -> int:
        return len(self.offsets) - 1


@dataclass(frozen=True)
class WorkerPlan:
    """The batches one worker yields in one epoch, as arrays of row positions."""

    worker: int
    batches: tuple[np.ndarray, ...]

    @property
    def rows(self) -> np.ndarray:
        return np.concatenate(self.batches) if self.batches else np.zeros(0, dtype=np.int64)


def _check(seed: int, epoch: int, rank: int, world_size: int, num_workers: int, batch_size: int,
           shuffle_window: int) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise InvalidOptionError(f"rank={rank} / world_size={world_size}: need 0 <= rank < world_size")
    if num_workers < 1:
        raise InvalidOptionError(f"num_workers={num_workers}: the plan needs at least one worker")
    if batch_size < 1:
        raise InvalidOptionError(f"batch_size={batch_size} must be a positive integer")
    if shuffle_window < 1:
        raise InvalidOptionError(f"shuffle_window={shuffle_window} must be at least one chunk")
    if seed < 0 or epoch < 0:
        raise InvalidOptionError(f"seed={seed} and epoch={epoch} must be non-negative")


def rank_rows(layout: ChunkLayout, *, seed: int, epoch: int, rank: int, world_size: int, batch_size: int,
              shuffle: bool, drop_last: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rows of one rank in one epoch, before the in-worker shuffle, and their block numbers.

    The block numbers (positions in the epoch's chunk order) let the worker shuffle within windows
    of whole chunks.
    """
    n = layout.num_rows
    if shuffle:
        rng = np.random.default_rng([seed, epoch])
        block_order = rng.permutation(layout.num_chunks)
        sizes = np.diff(layout.offsets)[block_order]
        starts = layout.offsets[:-1][block_order]
        # Concatenate blocks in the permuted order without a Python loop over rows.
        idx = np.repeat(starts - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes) + np.arange(n)
        sequence = layout.rows[idx]
        blocks = np.repeat(np.arange(layout.num_chunks), sizes)
    else:
        sequence = np.arange(n, dtype=np.int64)
        blocks = np.zeros(n, dtype=np.int64)
    if drop_last:
        per_rank = n // world_size
        per_rank -= per_rank % batch_size
        start, stop = rank * per_rank, (rank + 1) * per_rank
    else:
        base, extra = divmod(n, world_size)
        start = rank * base + min(rank, extra)
        stop = start + base + (1 if rank < extra else 0)
    return sequence[start:stop], blocks[start:stop]


def _window_shuffle(rows: np.ndarray, blocks: np.ndarray, window: int, rng: np.random.Generator) -> np.ndarray:
    """Permute rows within each run of ``window`` consecutive chunks (a bounded shuffle buffer)."""
    if len(rows) == 0:
        return rows
    # Number the chunk runs of this part 0, 1, 2, ... then group them by ``window``.
    run = np.concatenate([[0], np.cumsum(blocks[1:] != blocks[:-1])])
    group = run // window
    keys = rng.random(len(rows))
    order = np.lexsort((keys, group))
    return rows[order]


def epoch_plan(
    layout: ChunkLayout,
    *,
    seed: int = 0,
    epoch: int = 0,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 1,
    batch_size: int = 1,
    shuffle: bool = True,
    shuffle_window: int = 4,
    drop_last: bool = False,
) -> list[WorkerPlan]:
    """Every worker's batches for one rank and epoch (see the module docstring for the layout).

    Within an epoch, the plans of all ranks together hold every row exactly once (without
    ``drop_last``), and each worker's ``batches`` are in the order it yields them.
    """
    _check(seed, epoch, rank, world_size, num_workers, batch_size, shuffle_window)
    rows, blocks = rank_rows(layout, seed=seed, epoch=epoch, rank=rank, world_size=world_size,
                             batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
    n = len(rows)
    num_batches = n // batch_size if drop_last else -(-n // batch_size)
    rows = rows[: min(n, num_batches * batch_size)]
    blocks = blocks[: len(rows)]
    # Rotate which worker starts, epoch after epoch, so extra batches do not pile up on worker 0.
    rotation = (epoch * num_batches) % num_workers
    per_worker: list[list[np.ndarray]] = [[] for _ in range(num_workers)]
    if not shuffle:
        for b in range(num_batches):
            per_worker[(b + rotation) % num_workers].append(rows[b * batch_size : (b + 1) * batch_size])
        return [WorkerPlan(w, tuple(bs)) for w, bs in enumerate(per_worker)]
    base, extra = divmod(num_batches, num_workers)
    first_batch = 0
    for part in range(num_workers):
        count = base + (1 if part < extra else 0)
        lo, hi = first_batch * batch_size, min(len(rows), (first_batch + count) * batch_size)
        first_batch += count
        worker = (part + rotation) % num_workers
        rng = np.random.default_rng([seed, epoch, rank, part])
        part_rows = _window_shuffle(rows[lo:hi], blocks[lo:hi], shuffle_window, rng)
        per_worker[worker] = [part_rows[i : i + batch_size] for i in range(0, len(part_rows), batch_size)]
    return [WorkerPlan(w, tuple(bs)) for w, bs in enumerate(per_worker)]


def loader_order(plans: Sequence[Sequence[np.ndarray]] | Sequence[WorkerPlan]) -> list[np.ndarray]:
    """The batches in the order a DataLoader yields them: one from each worker in turn, skipping
    workers that have no batches left (how torch iterates an ``IterableDataset`` with workers).

    ``plans`` holds, per worker, the batches it yields during a whole pass (all its epochs).
    """
    lists = [list(p.batches) if isinstance(p, WorkerPlan) else list(p) for p in plans]
    out: list[np.ndarray] = []
    position = [0] * len(lists)
    active = [w for w in range(len(lists))]
    while active:
        still = []
        for w in active:
            if position[w] < len(lists[w]):
                out.append(lists[w][position[w]])
                position[w] += 1
                still.append(w)
        active = still
    return out


def pass_order(layout: ChunkLayout, *, first_epoch: int, num_epochs: int, num_workers: int,
               **options: object) -> list[np.ndarray]:
    """Batches a loader yields in one pass over ``num_epochs`` epochs starting at ``first_epoch``.

    ``num_workers=0`` (loading in the main process) behaves as one worker.
    """
    workers = max(num_workers, 1)
    per_worker: list[list[np.ndarray]] = [[] for _ in range(workers)]
    for epoch in range(first_epoch, first_epoch + num_epochs):
        for plan in epoch_plan(layout, epoch=epoch, num_workers=workers, **options):  # type: ignore[arg-type]
            per_worker[plan.worker].extend(plan.batches)
    return loader_order(per_worker)


def rank_num_batches(num_rows: int, *, rank: int, world_size: int, batch_size: int, drop_last: bool) -> int:
    """How many batches one rank yields per epoch (the same for every epoch and shuffle setting)."""
    if drop_last:
        per_rank = num_rows // world_size
        return per_rank // batch_size
    base, extra = divmod(num_rows, world_size)
    return -(-(base + (1 if rank < extra else 0)) // batch_size)
