"""Reused batch buffers: batches are gathered into arrays that come back once the training loop
drops them.

A fresh 10 MB array per batch costs page faults and zeroing (allocated on one thread, freed on
another, glibc hands the memory back to the kernel), about as much as the gather itself. The pool
keeps a few freed buffers per (shape, dtype) and hands them out again. A buffer goes back only
when nothing references it any more: the array handed out is a view through a small ``_Loan``
object whose finalizer returns the buffer, and torch tensors made with ``torch.from_numpy`` keep
that view (hence the loan) alive for as long as any tensor or view of the batch lives.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

#: Free buffers kept per (shape, dtype); more are dropped (the training loop keeping many batches).
KEEP_FREE = 4


class _Loan:
    """Owns one pool buffer while the array made from it is referenced."""

    def __init__(self, pool: BufferPool, key: tuple[tuple[int, ...], str], buffer: np.ndarray) -> None:
        self._pool = pool
        self._key = key
        self._buffer = buffer
        self.__array_interface__ = {"shape": buffer.shape, "typestr": buffer.dtype.str, "version": 3,
                                    "data": (buffer.ctypes.data, False)}

    def __del__(self) -> None:
        self._pool._give_back(self._key, self._buffer)


class BufferPool:
    """Arrays of a given shape and dtype, reused once the previous user let go of them (thread-safe)."""

    def __init__(self, keep_free: int = KEEP_FREE) -> None:
        self.keep_free = keep_free
        self._free: dict[tuple[tuple[int, ...], str], list[np.ndarray]] = {}
        self._lock = threading.Lock()
        self.allocated = 0  # buffers made (not reused), for tests

    def empty(self, shape: Sequence[int], dtype: np.dtype) -> np.ndarray:
        """A writable array of ``shape``/``dtype`` with unspecified contents."""
        key = (tuple(int(d) for d in shape), np.dtype(dtype).str)
        with self._lock:
            free = self._free.get(key)
            buffer = free.pop() if free else None
        if buffer is None:
            buffer = np.empty(key[0], dtype=np.dtype(dtype))
            self.allocated += 1
        return np.asarray(_Loan(self, key, buffer))

    def _give_back(self, key: tuple[tuple[int, ...], str], buffer: np.ndarray) -> None:
        with self._lock:
            free = self._free.setdefault(key, [])
            if len(free) < self.keep_free:
                free.append(buffer)
