"""The streaming loader: an ``IterableDataset`` that yields whole batches, and its ``DataLoader``.

Which rows a rank yields, batch by batch and in which order, is the pure function
``sampling.rank_batches`` (the same whatever ``num_workers`` or the engine). The chunks the batches
need are read ahead on I/O threads (``prefetch.ChunkPrefetcher``); batches are assembled with numpy
(``collate.gather_columns``) by one of three engines:

* ``"threads"``: in the training process, by ``num_workers`` threads (``threads.assemble_threaded``).
  The work (Arrow LZ4, numpy gathers, Pillow decodes) releases the GIL, and no batch crosses a
  process boundary. Chosen by ``engine="auto"`` (``engines.choose_engine``) when batches decode
  images and no per-sample ``transform`` or callable ``collate`` runs Python per sample, or the
  ``transform`` gets its images as PIL images (``decode_method="pil"``: Pillow work).
* ``"processes"``: ``num_workers`` DataLoader worker processes, worker ``w`` building batches
  ``w, w + n, ...`` (``sampling.worker_batches``); they hand batches over through reused
  shared-memory slots (``shm_batches``) and stay alive between epochs (``persistent_workers``).
  Images are decoded on 2 threads inside each worker where there are cores for them.
* ``"main"``: one batch after the other in the training thread (``num_workers=0``, or auto for
  data without images: LZ4 chunks are still decompressed ahead on the I/O threads). With
  ``num_workers >= 1`` the batches move to one background thread that builds them ahead of the
  training step, once the first groups showed that the training loop does work between batches
  the build could overlap (``threads.run_ahead``); a loop that does none keeps them inline.

Fast paths of the main and threads engines, with no per-sample ``transform`` or callable
``collate``: small batches are assembled in blocks of ~2 MiB of consecutive batches (one gather
per chunk, each batch collated from its slice: ``engines.block_batches``), and a batch whose rows
are one run of samples in one LZ4 chunk is a view of the chunk's decompressed buffer, which no
other batch shares (``collate.gather_tensor``, ``collate.gather_block``). Batches, order and
``state_dict`` are the same. The main and threads engines keep verified chunks across epochs
(``chunk_cache``, ``cache_bytes``): later epochs of a dataset that fits read no file and verify no
checksum; their batches are gathered from the cached bytes into arrays of their own.

``StreamingDataset`` (``torch/streaming.py``) plans and builds the batches; this module holds the
``DataLoader`` around it (engine choice, resume, device) and the ``make_loader`` options.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Self

import numpy as np
import torch
from torch.utils.data import DataLoader, default_convert

from deeplake_spark.errors import InvalidOptionError
from deeplake_spark.torch import collate as collate_mod
from deeplake_spark.torch.chunk_cache import check_cache_bytes
from deeplake_spark.torch.chunk_share import ChunkShare
from deeplake_spark.torch.device import pin, resolve_device, to_device, wants_pinned_memory
from deeplake_spark.torch.engines import choose_engine, decodes_images
from deeplake_spark.torch.loader_state import LoaderState
from deeplake_spark.torch.pil_decode import pil_columns
from deeplake_spark.torch.shm_batches import SlotReceiver, new_flags
from deeplake_spark.torch.source import LoaderSource, from_dataset
from deeplake_spark.torch.streaming import StreamingDataset

__all__ = ["DeepLakeDataLoader", "StreamingDataset", "make_dataset_loader", "make_loader"]

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



class DeepLakeDataLoader(DataLoader):
    """A ``torch.utils.data.DataLoader`` over a ``StreamingDataset``.

    Each ``iter(loader)`` runs the next ``num_epochs`` epochs (epoch numbers, hence the shuffle,
    move on from pass to pass; ``set_epoch`` sets them as with ``DistributedSampler``). Batches
    are moved to ``device`` (pinned memory and non-blocking copies for CUDA). ``state_dict()``
    after any batch and ``load_state_dict`` on a new loader continue with exactly the batches not
    yet received, in the same order. Usable as a context manager (leaving it stops persistent
    workers), like petastorm's.

    ``engine`` is the one ``choose_engine`` picked (``"main"``, ``"threads"`` or ``"processes"``;
    ``"main"`` with ``num_workers > 0`` for data without images).
    Worker processes start the platform's default way (fork on Linux), so lambdas work as
    ``transform``. In a Spark driver a forked child closes the py4j sockets of the parent's
    *other* threads (py4j retries a failed send, so this is harmless unless another thread is
    inside a Spark call at that moment); pass ``multiprocessing_context="forkserver"`` to avoid it
    (needs picklable options and an ``if __name__ == "__main__":`` guard in scripts). The threads
    engine starts no process at all.
    """

    def __init__(self, dataset: StreamingDataset, *, num_workers: int, engine: str = "auto",
                 persistent_workers: bool | None = None, device: Any = None, prefetch_factor: int = 2,
                 timeout: float = 0, multiprocessing_context: Any = None) -> None:
        self.engine = choose_engine(engine, num_workers, transform=dataset.transform, collate=dataset.collate,
                                    decodes=decodes_images(dataset.source), pil=bool(dataset.pil_columns))
        self.target_device = resolve_device(device)
        processes = self.engine == "processes"
        if persistent_workers is not None and not isinstance(persistent_workers, bool):
            raise InvalidOptionError(f"persistent_workers={persistent_workers!r}: expected True, False or None")
        persistent = processes and persistent_workers is not False
        self._pin = wants_pinned_memory(self.target_device)
        if self.engine == "threads":
            dataset.assembly_threads = num_workers
            dataset.pin_batches = self._pin  # on the assembly threads, not the training thread
        elif num_workers > 0 and not processes:
            # main engine: the requested workers build batches ahead of the training step
            dataset.ahead = num_workers
            dataset.pin_batches = self._pin
        elif processes:
            # Image decoding is the one per-sample cost a second thread per worker halves, where
            # the machine has a core for it.
            spare = (os.cpu_count() or 1) // num_workers
            dataset.assembly_threads = 2 if decodes_images(dataset.source) and spare >= 2 else 1
            dataset.slots = new_flags(num_workers, prefetch_factor + 3)
            dataset.blocks = False  # each worker's batches cross one by one through the slots anyway
            if num_workers > 1:
                dataset.chunk_share = ChunkShare.create()
        self._receiver = SlotReceiver(*dataset.slots) if dataset.slots is not None else None
        super().__init__(dataset, batch_size=None, num_workers=num_workers if processes else 0,
                         pin_memory=self._pin and self.engine == "main", timeout=timeout,
                         prefetch_factor=prefetch_factor if processes else None, persistent_workers=persistent,
                         multiprocessing_context=multiprocessing_context if processes else None)
        #: [epoch, batches of it done] after the last batch handed out (a list: updated in place per
        #: batch, DataLoader.__setattr__ costs microseconds)
        self._position = [0, 0]
        self._pass_first, self._pass_consumed, self._pass_end = 0, (), None
        self._passes = 0
        self._plan_next(0, 0, ())

    def _plan_next(self, epoch: int, start: int, consumed: tuple[tuple[int, int], ...],
                   end: int | None = None) -> None:
        """What the next pass runs: from ``epoch`` (planned without the positions ``consumed`` before
        a resume with another plan, ``sampling.consumed_after``) at its batch ``start``, up to epoch
        ``end`` (default: ``num_epochs`` epochs; None with an endless loader)."""
        dataset: StreamingDataset = self.dataset  # type: ignore[assignment]
        if end is None and dataset.num_epochs is not None:
            end = epoch + dataset.num_epochs
        self._next = (epoch, start, consumed, end)

    def __len__(self) -> int:
        dataset: StreamingDataset = self.dataset  # type: ignore[assignment]
        epoch, start, consumed, end = self._next
        if end is None:
            raise TypeError("a loader with num_epochs=None is endless and has no length")
        if end <= epoch:
            return 0
        return dataset.epoch_length(consumed) - start + dataset.batches_per_epoch * (end - epoch - 1)

    def _stop_workers(self) -> None:
        if getattr(self, "_iterator", None) is not None:
            self._iterator = None  # its __del__ shuts the worker processes down

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass start at ``epoch``."""
        self._plan_next(_positive_int("epoch", epoch, 0), 0, ())

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        dataset: StreamingDataset = self.dataset  # type: ignore[assignment]
        first_epoch, start, consumed, end = self._next
        if consumed != dataset.consumed:
            dataset.consumed = consumed
            self._stop_workers()  # persistent workers hold the old value: start new ones
        self._passes += 1
        # Read by the workers (persistent ones too) or threads when they start this pass.
        count = -1 if end is None else max(end - first_epoch, 0)
        dataset.control.copy_(torch.tensor([first_epoch, start, count, self._passes]))
        length = dataset.epoch_length(consumed)
        per_epoch = dataset.batches_per_epoch
        self._position[:] = (first_epoch, start)
        self._pass_first, self._pass_consumed, self._pass_end = first_epoch, consumed, end
        iterator = super().__iter__() if self.engine == "processes" else self._in_process(dataset)
        self._plan_next(first_epoch + count if count >= 0 else first_epoch, 0, ())
        epoch, done = first_epoch, start
        position = self._position
        for batch in iterator:
            if self._receiver is not None:
                batch = self._receiver.open(batch)
                if self._pin:
                    batch = pin(batch)
            done += 1
            if done >= length:  # the epoch is complete: the state points at the next one
                epoch, done, length = epoch + 1, 0, per_epoch
            position[0], position[1] = epoch, done
            yield to_device(batch, self.target_device)

    def _in_process(self, dataset: StreamingDataset) -> Iterator[Any]:
        """The batches of the main and threads engines, straight from the dataset: what
        ``DataLoader``'s single-process iterator does (convert numpy to tensors, pin memory), without
        its per-batch profiler scope and conversion walk over batches that are tensors already."""
        # a user's batch_transform or collate may return numpy; the loader's own batches are tensors
        convert = dataset.batch_transform is not None or callable(dataset.collate)
        pin_here = self._pin and self.engine == "main" and not dataset.ahead
        for batch in dataset:
            if convert:
                batch = default_convert(batch)
            yield pin(batch) if pin_here else batch

    def state_dict(self) -> dict[str, Any]:
        """Where the training loop stands, after the batches it has received (``LoaderState.to_dict``):
        the epoch, the batches of it done, and what decides the order (checked on resume)."""
        dataset: StreamingDataset = self.dataset  # type: ignore[assignment]
        epoch, done = self._position
        consumed = self._pass_consumed if epoch == self._pass_first else ()
        return LoaderState(epoch=epoch, batches_done=done, seed=dataset.seed, shuffle=dataset.shuffle,
                           shuffle_window=dataset.shuffle_window, num_rows=dataset.source.num_rows,
                           layout_digest=dataset.layout_digest, world_size=dataset.world_size, rank=dataset.rank,
                           batch_size=dataset.batch_size, drop_last=dataset.drop_last, consumed=consumed,
                           pass_end=self._pass_end).to_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Make the next pass continue where ``state`` (from ``state_dict``, possibly of a job with
        another world size or batch size) stood, up to the end of the pass that was running.

        A different seed, shuffle, shuffle window or dataset is refused (``InvalidOptionError``).
        """
        dataset: StreamingDataset = self.dataset  # type: ignore[assignment]
        saved = LoaderState.from_dict(state)
        saved.check_compatible(seed=dataset.seed, shuffle=dataset.shuffle, shuffle_window=dataset.shuffle_window,
                               num_rows=dataset.source.num_rows, layout_digest=dataset.layout_digest)
        point = saved.resume_point(world_size=dataset.world_size, batch_size=dataset.batch_size,
                                   drop_last=dataset.drop_last)
        end = saved.pass_end if saved.pass_end is not None or dataset.num_epochs is None \
            else point.epoch + dataset.num_epochs
        if end is not None and point.epoch >= end and dataset.num_epochs is not None:
            end = point.epoch + dataset.num_epochs  # the saved pass was over: the next pass is a whole one
        self._plan_next(point.epoch, point.start, point.consumed, end)
        self._position[:] = (point.epoch, point.start)
        self._pass_first, self._pass_consumed, self._pass_end = point.epoch, point.consumed, end

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_workers()


def make_loader(source: LoaderSource, *, batch_size: int = 32, num_epochs: int | None = 1, shuffle: bool = True,
                seed: int = 0, num_workers: int = 2, transform: Callable[[dict[str, Any]], Any] | None = None,
                batch_transform: Callable[[Any], Any] | None = None, device: Any = None, rank: int | None = None,
                world_size: int | None = None, drop_last: bool = False, prefetch_chunks: int = 4,
                shuffle_window: int = 4, io_threads: int = 4, collate: collate_mod.CollateOption = "stack",
                pad_value: float = 0, prefetch_factor: int = 2, timeout: float = 0, verify: bool = True,
                multiprocessing_context: Any = None, engine: str = "auto",
                persistent_workers: bool | None = None, cache_bytes: int | None = None,
                decode_method: str | dict[str, str] | None = None) -> DeepLakeDataLoader:
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
    choose_engine(engine, num_workers, transform=transform, collate=collate)  # refuse bad engines early
    dataset = StreamingDataset(
        source, batch_size=batch_size, num_epochs=num_epochs, shuffle=bool(shuffle), seed=seed, rank=rank,
        world_size=world_size, drop_last=bool(drop_last), shuffle_window=_positive_int("shuffle_window", shuffle_window),
        prefetch_chunks=_positive_int("prefetch_chunks", prefetch_chunks, 0),
        io_threads=_positive_int("io_threads", io_threads), transform=transform, batch_transform=batch_transform,
        collate=collate, pad_value=pad_value, verify=verify, cache_bytes=check_cache_bytes(cache_bytes),
        pil_columns=pil_columns(decode_method, {t.name: t.spec.compression in ("jpeg", "png") for t in source.tensors}),
    )
    return DeepLakeDataLoader(dataset, num_workers=num_workers, engine=engine, persistent_workers=persistent_workers,
                              device=device, prefetch_factor=_positive_int("prefetch_factor", prefetch_factor),
                              timeout=timeout, multiprocessing_context=multiprocessing_context)


def make_dataset_loader(ds: Any, *, columns: Sequence[str] | None = None, **options: Any) -> DeepLakeDataLoader:
    """A streaming torch DataLoader over a ``deeplake_spark.Dataset`` (``ds.pytorch(...)``).

    >>> loader = deeplake_spark.open("/data/digits").pytorch(batch_size=64, num_workers=2)
    >>> for batch in loader:
    ...     images, labels = batch["image"], batch["label"]

    Options: ``batch_size`` (32), ``num_epochs`` (1; ``None`` = endless), ``shuffle`` (True),
    ``seed`` (0), ``num_workers`` (2: threads or worker processes, see ``engine``), ``engine``
    ("auto" | "threads" | "processes"; auto = processes when a ``transform`` or callable
    ``collate`` runs Python per sample, else threads when images are decoded, else the training
    thread, with LZ4 decompression on the I/O threads and, when the training loop does work between
    batches, the batches built ahead on one thread; threads too for a transform of images
    decoded to PIL), ``persistent_workers`` (processes engine: keep workers
    between passes; default True), ``transform`` (per-sample dict -> value), ``batch_transform``
    (batch -> batch), ``columns`` (all), ``device`` (e.g. ``"cuda"``), ``rank``/``world_size``
    (from ``torch.distributed`` when initialized), ``drop_last`` (False), ``prefetch_chunks`` (4
    chunks loaded ahead per worker), ``shuffle_window`` (rows of this many chunks are shuffled
    together), ``io_threads`` (4 per worker), ``collate`` ("stack" | "pad" | "list" | per-column
    dict | callable), ``pad_value`` (0), ``cache_bytes`` (main and threads engines: verified chunks
    kept in memory across epochs, so later epochs of a dataset that fits read no file; None =
    ``min(1 GiB, RAM / 16)``, 0 = off; see ``chunk_cache``), ``decode_method`` ("numpy" default; "pil"
    or ``{column: "pil"}``: JPEG/PNG columns reach ``transform`` as PIL images, as in Deep Lake 3).
    """
    return make_loader(from_dataset(ds, columns), **options)
