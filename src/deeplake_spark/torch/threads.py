"""Batch assembly on a small thread pool, yielding batches in plan order.

One producer thread walks the plan: it waits for the chunks batch ``i`` needs (loaded ahead by the
``ChunkPrefetcher``'s I/O threads), hands the assembly of batch ``i`` to the pool and moves on.
The consumer (the loader's iterator) takes the assembled batches in plan order, so the output is
the same whatever the thread count. Assembly is numpy gathers, Arrow's LZ4 codec and Pillow's
decoders, which all release the GIL, so the threads of one process run in parallel; the batches
never cross a process boundary (no pickling, no shared-memory copy).

At most ``depth`` batches are queued or being built at once: memory stays bounded by the
prefetch depth and ``depth`` batches whatever the speed of the training loop.
"""

from __future__ import annotations

import logging
import queue
import threading
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
