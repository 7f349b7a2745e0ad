"""``StreamingDataset``: the ``IterableDataset`` that builds a rank's batches (one pass per
iteration), for ``DeepLakeDataLoader`` (``torch/loader.py``, which describes the engines).

It plans the pass (``sampling``), reads chunks ahead (``prefetch.ChunkPrefetcher``, the chunk
cache, the chunk share between worker processes) and assembles batches (``collate``) inline, on
threads (``threads.assemble_threaded``) or ahead of the training loop (``threads.run_ahead``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from deeplake_spark.torch import collate as collate_mod
from deeplake_spark.torch.batch_buffers import BufferPool
from deeplake_spark.torch.chunk_cache import ChunkCache
from deeplake_spark.torch.chunk_share import ChunkShare, SharedEpoch
from deeplake_spark.torch.device import pin
from deeplake_spark.torch.engines import block_batches
from deeplake_spark.torch.loader_state import layout_digest
from deeplake_spark.torch.prefetch import ChunkPrefetcher, chunk_users
from deeplake_spark.torch.sampling import batch_owners, next_offset, rank_batches, rank_num_batches, worker_batches
from deeplake_spark.torch.shm_batches import WorkerRing
from deeplake_spark.torch.source import LoaderSource
from deeplake_spark.torch.threads import MIN_OVERLAP_S, assemble_threaded, run_ahead


class StreamingDataset(IterableDataset):
    """Yields whole batches (dicts of tensors) of a ``LoaderSource`` for one rank.

    Iterating it once runs one pass: the epochs, first batch and pass number held in ``control``
    (a shared tensor the owning ``DeepLakeDataLoader`` sets before each pass, so persistent
    workers see it too). ``chunk_share`` (worker processes only) lets the workers read each chunk
    once per epoch between them.
    """

    def __init__(self, source: LoaderSource, *, batch_size: int, num_epochs: int | None, shuffle: bool, seed: int,
                 rank: int, world_size: int, drop_last: bool, shuffle_window: int, prefetch_chunks: int,
                 io_threads: int, transform: Callable[[dict[str, Any]], Any] | None,
                 batch_transform: Callable[[Any], Any] | None, collate: collate_mod.CollateOption,
                 pad_value: float, verify: bool, cache_bytes: int = 0,
                 pil_columns: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.source = source
        self.layout = source.layout()
        self.batch_size = batch_size
        self.num_epochs = num_epochs
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.shuffle_window = shuffle_window
        self.prefetch_chunks = prefetch_chunks
        self.io_threads = io_threads
        self.transform = transform
        self.batch_transform = batch_transform
        self.collate = collate
        self.pad_value = pad_value
        self.verify = verify
        #: Bound of the chunk cache kept across epochs where batches are built in this process
        #: (main and threads engines; 0: none). Made on first use, never sent to worker processes.
        self.cache_bytes = cache_bytes
        #: Image columns handed to ``transform`` as PIL images (``decode_method``).
        self.pil_columns = pil_columns
        self._chunk_cache: ChunkCache | None = None
        self._chunk_cache_pid = 0
        #: [first epoch, batches of it already done, epochs (-1: endless), pass number] of the next
        #: pass (shared with the workers).
        self.control = torch.zeros(4, dtype=torch.int64).share_memory_()
        self.chunk_share: ChunkShare | None = None
        #: Intervals of the first epoch's global sequence consumed before a resume (``sampling``).
        self.consumed: tuple[tuple[int, int], ...] = ()
        #: Threads assembling batches in each process that builds them.
        self.assembly_threads = 1
        #: Copy finished batches to page-locked memory where they are built (threads engine + CUDA).
        self.pin_batches = False
        #: Groups of batches built ahead on a background thread of the training process when the
        #: training loop does work between batches (main engine with ``num_workers >= 1``:
        #: ``threads.run_ahead``, at most this many waiting); 0: built when the training loop asks.
        self.ahead = 0
        #: Seconds per group a build and the training step must be able to overlap for ``run_ahead``
        #: to move to its thread (``threads.MIN_OVERLAP_S``; 0: always once probed).
        self.ahead_min_overlap = MIN_OVERLAP_S
        #: Assemble small batches in blocks (main and threads engines; ``block_batches``).
        self.blocks = True
        #: (token, flags) of the shared-memory slots when batches cross from worker processes.
        self.slots: tuple[tuple[int, int], torch.Tensor] | None = None
        self._ring: WorkerRing | None = None
        self._pool: BufferPool | None = None  # made by the process that builds batches
        self._layout_digest: str | None = None
        self._views: bool | None = None
        self._tensor_names = frozenset(t.name for t in source.tensors) | source.inline

    @property
    def first_epoch(self) -> int:
        return int(self.control[0])

    @property
    def layout_digest(self) -> str:
        if self._layout_digest is None:
            self._layout_digest = layout_digest(self.layout)
        return self._layout_digest

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pool"] = state["_ring"] = state["_chunk_cache"] = None  # per process (they hold locks)
        return state

    @property
    def batches_per_epoch(self) -> int:
        return rank_num_batches(self.source.num_rows, rank=self.rank, world_size=self.world_size,
                                batch_size=self.batch_size, drop_last=self.drop_last)

    def __len__(self) -> int:
        """Batches of a whole pass of ``num_epochs`` epochs (the loader's ``len`` counts a resumed one)."""
        if self.num_epochs is None:
            raise TypeError("a loader with num_epochs=None is endless and has no length")
        return self.batches_per_epoch * self.num_epochs

    def epoch_length(self, consumed: tuple[tuple[int, int], ...] = ()) -> int:
        """Batches of an epoch of this rank, without the positions ``consumed`` before a resume."""
        return rank_num_batches(self.source.num_rows, rank=self.rank, world_size=self.world_size,
                                batch_size=self.batch_size, drop_last=self.drop_last, consumed=consumed)

    def epoch_batches(self, epoch: int, *, first: bool) -> list[np.ndarray]:
        """Row positions of each batch this rank yields in ``epoch``, in order."""
        return rank_batches(self.layout, seed=self.seed, epoch=epoch, rank=self.rank, world_size=self.world_size,
                            batch_size=self.batch_size, shuffle=self.shuffle, shuffle_window=self.shuffle_window,
                            drop_last=self.drop_last, consumed=self.consumed if first else ())

    @property
    def views(self) -> bool:
        """Whether batches may be views of the chunks' buffers (``collate.gather_tensor``): no sample
        occurs twice in the source (``collate.samples_unique``; a dataset view can repeat rows), so no
        two batches of an epoch share one, and no per-sample ``transform`` or callable ``collate``
        sees them."""
        if self._views is None:
            self._views = self.transform is None and not callable(self.collate) \
                and collate_mod.samples_unique(self.source)
        return self._views

    @property
    def chunk_cache(self) -> ChunkCache | None:
        """The verified chunks kept across epochs (``chunk_cache``), for batches built in this process."""
        if self.cache_bytes > 0 and (self._chunk_cache is None or self._chunk_cache_pid != os.getpid()):
            self._chunk_cache = ChunkCache(self.cache_bytes)  # a forked copy of a loader gets its own
            self._chunk_cache_pid = os.getpid()
        return self._chunk_cache

    def assemble(self, rows: np.ndarray, chunks: Any) -> Any:
        """One batch from its rows and the loaded chunks."""
        columns = collate_mod.gather_columns(self.source, rows, chunks,
                                             self._pool.empty if self._pool is not None else None, self.views,
                                             self.pil_columns)
        if self.transform is None and not callable(self.collate):
            batch = collate_mod.collate_columns(columns, self.collate, self.pad_value, self._tensor_names)
        else:
            samples = collate_mod.split_samples(columns, len(rows))
            if self.transform is not None:
                samples = [self.transform(s) for s in samples]
            batch = collate_mod.collate_samples(samples, self.collate, self.pad_value,
                                                self._pool.empty if self._pool is not None else None)
        if self.batch_transform is not None:
            batch = self.batch_transform(batch)
        return pin(batch) if self.pin_batches else batch

    def block_batches(self) -> int:
        """How many consecutive batches are assembled at once (``engines.block_batches``; 1 with
        per-sample Python or when batches cross from worker processes one by one anyway)."""
        if not self.blocks or self.transform is not None or callable(self.collate):
            return 1
        return block_batches(self.source, self.batch_size)

    def assemble_block(self, block: tuple[np.ndarray, list[int]], chunks: Any) -> list[Any]:
        """The batches of a block (its rows, concatenated, and each batch's size) from one gather."""
        rows, sizes = block
        parts = collate_mod.gather_block(self.source, rows, sizes, chunks,
                                         self._pool.empty if self._pool is not None else None, self.views)
        batches = []
        for part in parts:
            batch = collate_mod.collate_columns(part, self.collate, self.pad_value, self._tensor_names)
            if self.batch_transform is not None:
                batch = self.batch_transform(batch)
            batches.append(pin(batch) if self.pin_batches else batch)
        return batches

    def _built(self, mine: list[np.ndarray], k: int, shared: SharedEpoch | None,
               io: ThreadPoolExecutor) -> Iterator[Any]:
        """This process's batches ``mine`` of an epoch in groups (a batch, or a block of ``k``), the
        chunks loaded on the pass's I/O threads ``io``."""
        cache = self.chunk_cache if shared is None and get_worker_info() is None else None
        if k <= 1:
            with ChunkPrefetcher(self.source.tensors, mine, prefetch_chunks=self.prefetch_chunks,
                                 io_threads=self.io_threads, verify=self.verify, shared=shared,
                                 pool=io, cache=cache) as prefetcher:
                for batch in assemble_threaded(prefetcher, mine, self.assemble, threads=self.assembly_threads):
                    yield (batch,)
            return
        groups = [mine[i:i + k] for i in range(0, len(mine), k)]
        blocks = [(np.concatenate(g), [len(b) for b in g]) for g in groups]
        with ChunkPrefetcher(self.source.tensors, [b[0] for b in blocks], prefetch_chunks=self.prefetch_chunks,
                             io_threads=self.io_threads, verify=self.verify, shared=shared, pool=io,
                             cache=cache) as prefetcher:
            yield from assemble_threaded(prefetcher, blocks, self.assemble_block, threads=self.assembly_threads)

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        worker, builders = (info.id, info.num_workers) if info is not None else (0, 1)
        if info is not None and self.slots is not None and self._ring is None:
            self._ring = WorkerRing(*self.slots, worker)
        if self._pool is None:
            self._pool = BufferPool()
        first_epoch, start, count, pass_id = (int(v) for v in self.control.tolist())
        epochs: Iterator[int] = itertools.count(first_epoch) if count < 0 else iter(range(first_epoch,
                                                                                          first_epoch + count))
        if self.ahead > 0 and info is None:
            yield from run_ahead(self._pass(epochs, first_epoch, start, pass_id, worker, builders),
                                 depth=self.ahead, min_overlap=self.ahead_min_overlap)
            return
        ring = self._ring
        for group in self._pass(epochs, first_epoch, start, pass_id, worker, builders):
            for batch in group:
                yield ring.pack(batch) if ring is not None else batch

    def _pass(self, epochs: Iterator[int], first_epoch: int, start: int, pass_id: int, worker: int,
              builders: int) -> Iterator[Sequence[Any]]:
        """The batches this process builds in the epochs of one pass, in groups (``_built``)."""
        with ThreadPoolExecutor(max_workers=self.io_threads, thread_name_prefix="deeplake-io") as io:
            yield from self._epochs(epochs, first_epoch, start, pass_id, worker, builders, io)

    def _epochs(self, epochs: Iterator[int], first_epoch: int, start: int, pass_id: int, worker: int,
                builders: int, io: ThreadPoolExecutor) -> Iterator[Sequence[Any]]:
        offset = 0
        block = self.block_batches()
        for epoch in epochs:
            first = epoch == first_epoch
            batches = self.epoch_batches(epoch, first=first)
            begin = start if first else 0
            mine = [batches[b] for b in worker_batches(len(batches), worker, builders, begin, offset)]
            shared = None
            if self.chunk_share is not None and builders > 1:
                owners = batch_owners(len(batches), builders, begin, offset)
                shared = self.chunk_share.epoch(epoch, worker=worker, pass_id=pass_id,
                                                users=chunk_users(self.source.tensors, batches, owners))
            offset = next_offset(len(batches), builders, begin, offset)
            yield from self._built(mine, block, shared, io)
