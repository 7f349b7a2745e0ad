"""Batch assembly on a small thread pool, yielding batches in plan order.

One producer thread walks the plan: it waits for the chunks batch ``i`` needs (loaded ahead by the
``ChunkPrefetcher``'s I/O threads), hands the assembly of batch ``i`` to the pool and moves on.
The consumer (the loader's iterator) takes the assembled batches in plan order, so the output is
the same whatever the thread count. Assembly is numpy gathers, Arrow's LZ4 codec and Pillow's
decoders, which all release the GIL, so the threads of one process run in parallel; the batches
never cross a process boundary (no pickling, no shared-memory copy).

At most ``depth`` batches are queued or being built at once: memory stays bounded by the
prefetch depth and ``depth`` batches whatever the speed of the training loop.

``run_ahead`` (the main engine with ``num_workers >= 1``) moves the whole build of a pass to one
background thread, ahead of the training step, when timing the first groups shows the two could
overlap; else it builds inline, as with ``num_workers=0``.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from deeplake_spark.torch.prefetch import ChunkKey, ChunkPrefetcher, LoadedChunk

log = logging.getLogger(__name__)

#: Builds item ``i`` of a plan (a batch's rows, or a block of batches) from the chunks it needs.
BuildBatch = Callable[[Any, dict[ChunkKey, LoadedChunk]], Any]
_DONE = object()


def assemble_inline(prefetcher: ChunkPrefetcher, batches: Sequence[Any], build: BuildBatch) -> Iterator[Any]:
    """Batches built one after the other on the calling thread (I/O still runs ahead on threads)."""
    for i, rows in enumerate(batches):
        batch = build(rows, prefetcher.chunks_for(i))
        prefetcher.release(i)
        yield batch


def assemble_threaded(prefetcher: ChunkPrefetcher, batches: Sequence[Any], build: BuildBatch, *,
                      threads: int, depth: int | None = None) -> Iterator[Any]:
    """Batches built by ``threads`` threads, yielded in the order of ``batches``.

    ``batches[i]`` is what ``build`` gets with the chunks ``prefetcher.chunks_for(i)``: a batch's
    rows, or a block of batches (``StreamingDataset.assemble_block``).

    ``depth`` (default ``2 * threads``) bounds the batches queued or in progress. Closing the
    iterator early (``break`` in the training loop) stops the producer and waits for the batches
    in progress, so no thread outlives it; an error while building batch ``i`` is raised when the
    consumer reaches batch ``i``.
    """
    if threads <= 1 or len(batches) <= 1:
        yield from assemble_inline(prefetcher, batches, build)
        return
    depth = max(depth or 2 * threads, 1)
    slots = threading.Semaphore(depth)
    ready: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="deeplake-batch")

    def produce() -> None:
        try:
            for i, rows in enumerate(batches):
                while not slots.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                chunks = prefetcher.chunks_for(i)
                ready.put(pool.submit(build, rows, chunks))
                prefetcher.release(i)
        except BaseException as e:  # handed to the consumer, raised there at the batch that failed
            failed: Future[Any] = Future()
            failed.set_exception(e)
            ready.put(failed)
        finally:
            ready.put(_DONE)

    producer = threading.Thread(target=produce, name="deeplake-batch-plan", daemon=True)
    producer.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            batch = item.result()
            slots.release()
            yield batch
    finally:
        stop.set()
        producer.join()
        pool.shutdown(wait=True, cancel_futures=True)


class _Failed:
    """An error raised while building ahead, re-raised by the consumer where it occurred."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


#: Groups ``run_ahead`` builds in the consumer's thread before deciding whether to build ahead.
PROBE_GROUPS = 4
#: Build ahead only when a group's build and the training loop's *idle* time between groups could
#: overlap by at least this much (the smaller of the two, per group, over the probe): the hand-off
#: (a queue, the GIL passing between threads) costs ~0.1-0.2 ms per group and ~2 ms at the start
#: of a pass (measured), which a loop doing no work between batches would pay for nothing.
MIN_OVERLAP_S = 0.0005


class BusyClock:
    """Seconds the thread that made it has been running *or waiting for a core*: ``wall - busy``
    is the time the thread waited of its own accord (a sleep, a CUDA sync, I/O, a lock).

    Linux: the thread's ``schedstat`` (time on a CPU + time runnable on a run queue), read with one
    ``pread`` (~1 us). ``time.thread_time`` alone counts the time a busy thread is descheduled on a
    loaded machine as idle. Elsewhere, once closed, or read from another thread: ``time.thread_time``.
    """

    def __init__(self) -> None:
        self._owner = threading.get_ident()
        self._fd: int | None = None
        try:
            fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        except OSError:
            return
        try:
            self._read(fd)
        except (OSError, ValueError):
            os.close(fd)
            return
        self._fd = fd

    @staticmethod
    def _read(fd: int) -> float:
        run, wait = os.pread(fd, 128, 0).split()[:2]
        return (int(run) + int(wait)) * 1e-9

    def __call__(self) -> float:
        if self._fd is None or threading.get_ident() != self._owner:
            return time.thread_time()
        return self._read(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def run_ahead(groups: Iterator[Sequence[Any]], *, depth: int, probe: int = PROBE_GROUPS,
              min_overlap: float = MIN_OVERLAP_S) -> Iterator[Any]:
    """The items of ``groups`` (a batch, or a block of batches, per group), built ahead on one
    background thread when the training loop waits between batches.

    The first ``probe`` groups are built in the calling thread while timing the build and the
    training loop's time between groups, less the time the calling thread spent running or ready
    to run in it (``BusyClock``): what is left is the time the loop waited (a CUDA step, I/O, a
    sleep, its own threads), which a build on another thread can fill. If the two could overlap by
    ``min_overlap`` seconds per group or more, the generator moves to a background thread for the
    rest of the pass: building the next groups overlaps the training step (numpy copies, LZ4 and
    torch ops release the GIL), at most ``depth`` finished groups wait in a queue, and the order
    stays the generator's. Else the rest is built in the calling thread as before: a loop that does
    nothing between batches, or only Python/numpy work on this thread (which holds the GIL a
    background build would need), pays nothing, even on a machine so loaded that the thread waits
    for a core. An error is raised where the consumer reaches it; closing the iterator early stops
    the thread (after the group it is building) and waits for it.
    """
    clock = time.perf_counter
    inside = idle = 0.0
    handed_off = False
    busy = BusyClock()
    try:
        for _ in range(probe):
            t0 = clock()
            group = next(groups, _DONE)
            t1, c1 = clock(), busy()
            if group is _DONE:
                return
            inside += t1 - t0
            yield from group
            idle += max(0.0, (clock() - t1) - (busy() - c1))
        busy.close()
        if min(inside, idle) < min_overlap * probe:
            for group in groups:
                yield from group
            return
        handed_off = True
    finally:
        busy.close()
        if not handed_off:
            close = getattr(groups, "close", None)
            if close is not None:
                close()
    yield from _background(groups, depth=depth)


def _background(groups: Iterator[Sequence[Any]], *, depth: int) -> Iterator[Any]:
    """The items of ``groups``, advanced (and closed) on a background thread."""
    ready: queue.Queue[Any] = queue.Queue(maxsize=max(depth, 1))
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for group in groups:
                if not put(group):
                    return
        except BaseException as e:  # raised by the consumer at the group that failed
            put(_Failed(e))
        finally:
            close = getattr(groups, "close", None)
            if close is not None:
                close()
            put(_DONE)

    producer = threading.Thread(target=produce, name="deeplake-ahead", daemon=True)
    producer.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield from item
    finally:
        stop.set()
        producer.join()
