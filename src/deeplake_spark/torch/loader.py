"""The streaming loader: an ``IterableDataset`` whose workers read chunks, and its ``DataLoader``.

Each worker (and the main process when ``num_workers=0``) follows the plan of
``sampling.epoch_plan`` for its rank and worker number, prefetches the chunks its batches need on
I/O threads (``prefetch.ChunkPrefetcher``), assembles whole batches with numpy
(``collate.gather_columns``) and hands torch tensors to the DataLoader (``batch_size=None``: the
dataset yields batches, so there is no per-sample collate in the main process).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Self

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from deeplake_spark.errors import InvalidOptionError
from deeplake_spark.torch import collate as collate_mod
from deeplake_spark.torch.device import resolve_device, to_device, wants_pinned_memory
from deeplake_spark.torch.prefetch import ChunkPrefetcher
from deeplake_spark.torch.sampling import epoch_plan, rank_num_batches
from deeplake_spark.torch.source import LoaderSource, from_dataset

log = logging.getLogger(__name__)


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidOptionError(f"{name}={value!r}: expected an integer >= {minimum}")
    return int(value)


def _distributed_defaults(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is None or world_size is None:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            rank = dist.get_rank() if rank is None else rank
            world_size = dist.get_world_size() if world_size is None else world_size
    world_size = 1 if world_size is None else _positive_int("world_size", world_size)
    rank = 0 if rank is None else _positive_int("rank", rank, 0)
    if rank >= world_size:
        raise InvalidOptionError(f"rank={rank} must be smaller than world_size={world_size}")
    return rank, world_size


class StreamingDataset(IterableDataset):
    """Yields whole batches (dicts of tensors) of a ``LoaderSource`` for one rank.

    Iterating it once runs ``num_epochs`` epochs (forever for ``None``) starting at
    ``first_epoch``; the owning ``DeepLakeDataLoader`` moves ``first_epoch`` on after each pass.
    """

    def __init__(self, source: LoaderSource, *, batch_size: int, num_epochs: int | None, shuffle: bool, seed: int,
                 rank: int, world_size: int, drop_last: bool, shuffle_window: int, prefetch_chunks: int,
                 io_threads: int, transform: Callable[[dict[str, Any]], Any] | None,
                 batch_transform: Callable[[Any], Any] | None, collate: collate_mod.CollateOption,
                 pad_value: float, verify: bool) -> None:
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
        self.first_epoch = 0
        self._tensor_names = frozenset(t.name for t in source.tensors) | source.inline

    @property
    def batches_per_epoch(self) -> int:
        return rank_num_batches(self.source.num_rows, rank=self.rank, world_size=self.world_size,
                                batch_size=self.batch_size, drop_last=self.drop_last)

    def __len__(self) -> int:
        if self.num_epochs is None:
            raise TypeError("a loader with num_epochs=None is endless and has no length")
        return self.batches_per_epoch * self.num_epochs

    def plan(self, epoch: int, worker: int, num_workers: int) -> Sequence[np.ndarray]:
        """Row positions of each batch ``worker`` yields in ``epoch``."""
        plans = epoch_plan(self.layout, seed=self.seed, epoch=epoch, rank=self.rank, world_size=self.world_size,
                           num_workers=num_workers, batch_size=self.batch_size, shuffle=self.shuffle,
                           shuffle_window=self.shuffle_window, drop_last=self.drop_last)
        return plans[worker].batches

    def assemble(self, rows: np.ndarray, chunks: Any) -> Any:
        """One batch from its rows and the loaded chunks."""
        columns = collate_mod.gather_columns(self.source, rows, chunks)
        if self.transform is None and not callable(self.collate):
            batch = collate_mod.collate_columns(columns, self.collate, self.pad_value, self._tensor_names)
        else:
            samples = collate_mod.split_samples(columns, len(rows))
            if self.transform is not None:
                samples = [self.transform(s) for s in samples]
            batch = collate_mod.collate_samples(samples, self.collate, self.pad_value)
        return self.batch_transform(batch) if self.batch_transform is not None else batch

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        epochs: Iterator[int] = itertools.count(self.first_epoch) if self.num_epochs is None \
            else iter(range(self.first_epoch, self.first_epoch + self.num_epochs))
        for epoch in epochs:
            batches = self.plan(epoch, worker, num_workers)
            with ChunkPrefetcher(self.source.tensors, batches, prefetch_chunks=self.prefetch_chunks,
                                 io_threads=self.io_threads, verify=self.verify) as prefetcher:
                for i, rows in enumerate(batches):
                    batch = self.assemble(rows, prefetcher.chunks_for(i))
                    prefetcher.release(i)
                    yield batch


class DeepLakeDataLoader(DataLoader):
    """A ``torch.utils.data.DataLoader`` over a ``StreamingDataset``.

    Each ``iter(loader)`` runs the next ``num_epochs`` epochs (epoch numbers, hence the shuffle,
    move on from pass to pass; ``set_epoch`` sets them as with ``DistributedSampler``). Batches
    are moved to ``device`` (pinned memory and non-blocking copies for CUDA). Usable as a context
    manager, like petastorm's.

    Workers start the platform's default way (fork on Linux), so lambdas work as ``transform``.
    In a Spark driver a forked child closes the py4j sockets of the parent's *other* threads
    (py4j retries a failed send, so this is harmless unless another thread is inside a Spark call
    at that moment); pass ``multiprocessing_context="forkserver"`` to avoid it (needs picklable
    options and an ``if __name__ == "__main__":`` guard in scripts).
    """

    def __init__(self, dataset: StreamingDataset, *, num_workers: int, device: Any = None, prefetch_factor: int = 2,
                 timeout: float = 0, multiprocessing_context: Any = None) -> None:
        self.target_device = resolve_device(device)
        super().__init__(dataset, batch_size=None, num_workers=num_workers,
                         pin_memory=wants_pinned_memory(self.target_device),
                         prefetch_factor=prefetch_factor if num_workers > 0 else None, timeout=timeout,
                         multiprocessing_context=multiprocessing_context if num_workers > 0 else None)
        self._next_epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass start at ``epoch``."""
        self._next_epoch = _positive_int("epoch", epoch, 0)

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        dataset: StreamingDataset = self.dataset  # type: ignore[assignment]
        dataset.first_epoch = self._next_epoch
        self._next_epoch += dataset.num_epochs or 0
        for batch in super().__iter__():
            yield to_device(batch, self.target_device)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def make_loader(source: LoaderSource, *, batch_size: int = 32, num_epochs: int | None = 1, shuffle: bool = True,
                seed: int = 0, num_workers: int = 2, transform: Callable[[dict[str, Any]], Any] | None = None,
                batch_transform: Callable[[Any], Any] | None = None, device: Any = None, rank: int | None = None,
                world_size: int | None = None, drop_last: bool = False, prefetch_chunks: int = 4,
                shuffle_window: int = 4, io_threads: int = 4, collate: collate_mod.CollateOption = "stack",
                pad_value: float = 0, prefetch_factor: int = 2, timeout: float = 0, verify: bool = True,
                multiprocessing_context: Any = None) -> DeepLakeDataLoader:
    """A streaming DataLoader over ``source`` (see :func:`make_dataset_loader` for the options)."""
    batch_size = _positive_int("batch_size", batch_size)
    num_workers = _positive_int("num_workers", num_workers, 0)
    if num_epochs is not None:
        num_epochs = _positive_int("num_epochs", num_epochs)
    seed = _positive_int("seed", seed, 0)
    rank, world_size = _distributed_defaults(rank, world_size)
    for name, fn in (("transform", transform), ("batch_transform", batch_transform)):
        if fn is not None and not callable(fn):
            raise InvalidOptionError(f"{name}={fn!r}: expected a callable or None")
    collate_mod.check_collate(collate, source.order)
    dataset = StreamingDataset(
        source, batch_size=batch_size, num_epochs=num_epochs, shuffle=bool(shuffle), seed=seed, rank=rank,
        world_size=world_size, drop_last=bool(drop_last), shuffle_window=_positive_int("shuffle_window", shuffle_window),
        prefetch_chunks=_positive_int("prefetch_chunks", prefetch_chunks, 0),
        io_threads=_positive_int("io_threads", io_threads), transform=transform, batch_transform=batch_transform,
        collate=collate, pad_value=pad_value, verify=verify,
    )
    return DeepLakeDataLoader(dataset, num_workers=num_workers, device=device,
                              prefetch_factor=_positive_int("prefetch_factor", prefetch_factor), timeout=timeout,
                              multiprocessing_context=multiprocessing_context)


def make_dataset_loader(ds: Any, *, columns: Sequence[str] | None = None, **options: Any) -> DeepLakeDataLoader:
    """A streaming torch DataLoader over a ``deeplake_spark.Dataset`` (``ds.pytorch(...)``).

    >>> loader = deeplake_spark.open("/data/digits").pytorch(batch_size=64, num_workers=2)
    >>> for batch in loader:
    ...     images, labels = batch["image"], batch["label"]

    Options: ``batch_size`` (32), ``num_epochs`` (1; ``None`` = endless), ``shuffle`` (True),
    ``seed`` (0), ``num_workers`` (2), ``transform`` (per-sample dict -> value), ``batch_transform``
    (batch -> batch), ``columns`` (all), ``device`` (e.g. ``"cuda"``), ``rank``/``world_size``
    (from ``torch.distributed`` when initialized), ``drop_last`` (False), ``prefetch_chunks`` (4
    chunks loaded ahead per worker), ``shuffle_window`` (rows of this many chunks are shuffled
    together), ``io_threads`` (4 per worker), ``collate`` ("stack" | "pad" | "list" | per-column
    dict | callable), ``pad_value`` (0).
    """
    return make_loader(from_dataset(ds, columns), **options)
