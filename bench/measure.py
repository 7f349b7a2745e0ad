"""Timing, batch accounting and process-tree RSS sampling shared by all cases.

Every system's loader or writer runs in a fresh subprocess (``bench.worker``) so that each gets the
same cores, starts cold, and its peak RSS (the process plus its loader workers) can be sampled from
the outside.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.config import REPO_DIR

log = logging.getLogger(__name__)
RESULT_MARK = "@@BENCH_RESULT@@"


class NotAvailable(Exception):
    """A system or feature cannot run this case (yet); the message says why and lands in the table."""


@dataclass
class Row:
    """One measurement: a system doing one case on one data kind."""

    case: str
    system: str
    kind: str = ""
    value: float | None = None
    unit: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def available(self) -> bool:
        return self.value is not None

    def to_dict(self) -> dict[str, Any]:
        return {"case": self.case, "system": self.system, "kind": self.kind, "value": self.value, "unit": self.unit,
                "extra": self.extra, "note": self.note}


def leaves(batch: Any) -> Iterator[Any]:
    """Array-like leaves of a batch (dicts, lists, tuples of tensors / numpy arrays)."""
    if isinstance(batch, dict):
        for value in batch.values():
            yield from leaves(value)
    elif isinstance(batch, (list, tuple)):
        for value in batch:
            yield from leaves(value)
    elif hasattr(batch, "shape"):
        yield batch


def _nbytes(arr: Any) -> int:
    if hasattr(arr, "nbytes"):
        return int(arr.nbytes)
    return int(arr.element_size() * arr.nelement())  # torch.Tensor


def touch(arr: Any) -> int:
    """Read one byte of every 4 KiB of an array leaf, as a training step reading the batch would:
    a batch counts as delivered when its memory is readable, so a loader that hands out lazily
    mapped memory pays its page faults here, as a training loop would."""
    import numpy as np

    a = arr if isinstance(arr, np.ndarray) else (arr.numpy() if hasattr(arr, "numpy") else np.asarray(arr))
    if a.dtype == object or a.size == 0:
        return 0
    flat = a.reshape(-1)  # a copy (reading everything) only for a non-contiguous array
    return int(flat.view(np.uint8)[::4096].sum()) if flat.flags.c_contiguous else int(flat[::4096].size)


def batch_stats(batch: Any) -> tuple[int, int]:
    """(samples, bytes) of one batch: samples = leading size of its largest leaf. Every leaf is
    touched (:func:`touch`), the same work for every system."""
    arrays = list(leaves(batch))
    for a in arrays:
        touch(a)
    if not arrays:
        return (len(batch), 0) if hasattr(batch, "__len__") else (0, 0)
    largest = max(arrays, key=_nbytes)
    samples = int(largest.shape[0]) if len(largest.shape) else 1
    return samples, sum(_nbytes(a) for a in arrays)


def consume(make_epoch: Callable[[], Iterable[Any]], *, min_seconds: float, max_epochs: int = 2000,
            max_seconds: float = 600) -> dict[str, Any]:
    """Iterate epochs until ``min_seconds`` have passed after the first batch (``max_epochs`` only stops a
    degenerate loop: small quick-mode stores epoch in milliseconds, and a cap that ends a run early lets
    its start-up dominate).

    Throughput excludes the first batch (reported as ``first_batch_s``, which includes worker
    start-up); later epochs' start-up is included, as a training loop would see it. An epoch that
    runs past ``max_seconds`` (e.g. an endless loader) is cut and flagged ``truncated``.
    """
    truncated = False
    cpu_start = cpu_seconds()
    start = time.perf_counter()
    first_batch_s: float | None = None
    t0 = start
    samples = nbytes = epochs = all_samples = 0
    epoch_samples = 0
    while True:
        epoch_samples = 0
        for batch in make_epoch():
            n, b = batch_stats(batch)
            epoch_samples += n
            all_samples += n
            if first_batch_s is None:
                first_batch_s = time.perf_counter() - start
                t0 = time.perf_counter()
                continue
            samples += n
            nbytes += b
            if time.perf_counter() - start > max_seconds:
                truncated = True
                break
        epochs += 1
        elapsed = time.perf_counter() - t0
        if truncated or epoch_samples == 0 or elapsed >= min_seconds or epochs >= max_epochs:
            break
    cpu = cpu_seconds() - cpu_start
    return {"cpu_ms_per_sample": 1e3 * cpu / max(1, all_samples),
            "samples": samples, "bytes": nbytes, "seconds": elapsed, "epochs": epochs,
            "epoch_samples": epoch_samples, "first_batch_s": first_batch_s,
            "samples_per_s": samples / elapsed if elapsed > 0 else None,
            "mb_per_s": nbytes / elapsed / 1e6 if elapsed > 0 else None, "truncated": truncated}


def cpu_seconds() -> float:
    """CPU time of this process, its threads, its reaped children (DataLoader workers joined when an
    epoch ends) and its live descendants (persistent workers, spawned helpers): a measure of work that
    a busy shared machine does not distort. Each process counts once: live ones by their own times,
    reaped ones in their parent's ``children_*``."""
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    try:
        import psutil
    except ImportError:
        return total
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.NoSuchProcess:
        return total
    for child in children:
        try:
            c = child.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += c.user + c.system + c.children_user + c.children_system
    return total


def tree_rss(pid: int) -> int:
    """Summed RSS of a process and all its descendants (0 when it has exited)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc] + proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def worker_python(system: str) -> str:
    """Interpreter for a system's worker: Deep Lake 4 may live in its own venv (bench/.venv-deeplake)."""
    if system == "deeplake4":
        env = os.environ.get("DEEPLAKE4_PYTHON")
        if env:
            return env
        own = os.path.join(REPO_DIR, "bench", ".venv-deeplake", "bin", "python")
        if os.path.exists(own):
            return own
    return sys.executable


def run_job(function: str, *, python: str | None = None, timeout: float = 900, env: dict[str, str] | None = None,
            **kwargs: Any) -> dict[str, Any]:
    """Run ``bench.<module>:<function>(**kwargs)`` in a fresh process; adds ``peak_rss`` (bytes).

    Raises :class:`NotAvailable` with the worker's reason when it reports one, ``RuntimeError``
    with the tail of its output when it fails otherwise.
    """
    cmd = [python or sys.executable, "-m", "bench.worker", function, json.dumps(kwargs)]
    proc = subprocess.Popen(cmd, cwd=REPO_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, tree_rss(proc.pid))
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        raise RuntimeError(f"{function} timed out after {timeout:.0f}s") from None
    finally:
        stop.set()
        sampler.join()
    result_lines = [line for line in output.splitlines() if line.startswith(RESULT_MARK)]
    if not result_lines:
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise RuntimeError(f"{function} exited {proc.returncode} without a result:\n{tail}")
    result = json.loads(result_lines[-1][len(RESULT_MARK):])
    if "not_available" in result:
        raise NotAvailable(result["not_available"])
    if "error" in result:
        raise RuntimeError(f"{function}: {result['error']}")
    result["peak_rss"] = peak
    return result


class Timer:
    """``with Timer() as t: ...; t.seconds``"""

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self._start


def stream_many(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """Run several ``bench.<module>:<function>(**kwargs)`` stream jobs one after another in this process
    (one interpreter start and one import of the system for all its data kinds).

    ``jobs``: ``{"function": "peers.mosaic:stream", "kwargs": {...}}`` each. Returns ``{"results": [...]}``,
    one per job, in order: the job's result dict plus ``peak_rss`` (bytes, this process tree while the job
    ran), or ``{"not_available": why}`` / ``{"error": text}``.
    """
    import gc
    import importlib
    import traceback

    out = []
    for job in jobs:
        module_name, _, function_name = job["function"].partition(":")
        with _RssPeak() as rss:
            try:
                function = getattr(importlib.import_module(f"bench.{module_name}"), function_name)
                result = dict(function(**job["kwargs"]))
            except NotAvailable as e:
                result = {"not_available": str(e)}
            except (ImportError, NotImplementedError) as e:
                result = {"not_available": f"{type(e).__name__}: {e}"}
            except Exception as e:  # noqa: BLE001 - one system failing on one kind is a row, not the end of the run
                traceback.print_exc()
                result = {"error": f"{type(e).__name__}: {e}"}
        result["peak_rss"] = rss.peak
        out.append(result)
        gc.collect()  # the job's DataLoader (and its persistent workers) goes before the next job starts
    return {"results": out}


class _RssPeak:
    """``with _RssPeak() as r: ...; r.peak``: the highest RSS of this process tree while the block ran."""

    def __enter__(self) -> _RssPeak:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(os.getpid()))
            self._stop.wait(0.05)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
