"""Worker -> main hand-off through a reused ring of shared-memory batch buffers.

torch's own hand-off copies every tensor a worker yields into a new shared-memory file and passes
its file descriptor to the main process, which maps and later unmaps it: for a 10 MB batch that
costs more than building it. Here each worker keeps a few shared-memory *slots* (``slots_per_worker``)
and writes the numeric tensors of a batch into a free one; what crosses the queue is a small
``SlotBatch`` (slot number + byte layout + the batch's other values). A slot's buffer itself
crosses once, with the first batch written into it, and the main process keeps it mapped.

Reuse is safe because a slot is only written again once the main process has let go of every
tensor of the batch it holds: the main process views the slot through a ``_Lease`` whose
finalizer marks the slot free in a small flags tensor shared with the workers (created before
they start). The training loop may keep batches as long as it likes; a worker that finds no free
slot simply hands the batch over the usual torch way.
"""

from __future__ import annotations

import itertools
import logging
import os
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

_ALIGN = 64
#: A batch bigger than this goes the usual torch way rather than pinning that much in a slot.
MAX_SLOT_BYTES = 1 << 30


# Flags and receivers by token, in the process that made them: a ``SlotBatch`` finds them here when
# it is unpickled, even one the DataLoader drops unopened (an epoch abandoned midway).
_FLAGS: weakref.WeakValueDictionary[tuple[int, int], torch.Tensor] = weakref.WeakValueDictionary()
_RECEIVERS: weakref.WeakValueDictionary[tuple[int, int], SlotReceiver] = weakref.WeakValueDictionary()
_TOKENS = itertools.count()


def new_flags(num_workers: int, slots_per_worker: int) -> tuple[tuple[int, int], torch.Tensor]:
    """A token and the busy flags of every worker's slots, in shared memory (made by the main
    process before its workers start)."""
    flags = torch.zeros((max(num_workers, 1), slots_per_worker), dtype=torch.int8).share_memory_()
    token = (os.getpid(), next(_TOKENS))
    _FLAGS[token] = flags
    return token, flags


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def _packable(value: Any) -> bool:
    return (isinstance(value, torch.Tensor) and value.device.type == "cpu" and not value.requires_grad
            and value.layout == torch.strided and value.dtype != torch.bool and not value.is_complex()
            and value.numel() > 0)


@dataclass
class SlotBatch:
    """What a worker sends for one batch: where its tensors lie in a slot, and its other values.

    ``buffer`` is the slot's shared tensor, sent only with the first batch written into it (or
    after it grew: ``generation`` tells). Unpickled in the main process, a ``SlotBatch`` that is
    dropped without being opened (an epoch abandoned by ``break``) frees its slot.
    """

    token: tuple[int, int]
    pid: int
    worker: int
    slot: int
    generation: int
    layout: list[tuple[str, int, torch.dtype, tuple[int, ...]]]
    rest: dict[str, Any]
    order: list[str]
    buffer: torch.Tensor | None = None
    flags: torch.Tensor | None = field(default=None, repr=False)
    _received: bool = field(default=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["flags"] = None  # the receiver has its own view of the flags
        state["_received"] = False
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.flags = _FLAGS.get(self.token)
        self._received = self.flags is not None
        receiver = _RECEIVERS.get(self.token)
        if receiver is not None and self.buffer is not None:
            receiver.register(self)  # the slot's buffer crosses once: keep it even if this batch is dropped

    def release(self) -> None:
        """Give the slot back unopened (only in the process that received this batch)."""
        if self._received and self.flags is not None:
            self.flags[self.worker, self.slot] = 0
            self.flags = None

    def __del__(self) -> None:
        self.release()


class WorkerRing:
    """A worker's slots: packs a batch's tensors into a free slot (runs in the worker process)."""

    def __init__(self, token: tuple[int, int], flags: torch.Tensor, worker: int) -> None:
        self.token = token
        self.flags = flags
        self.worker = worker
        self.pid = os.getpid()
        self.buffers: list[torch.Tensor | None] = [None] * flags.shape[1]
        self.generations = [0] * flags.shape[1]
        self.sent = [False] * flags.shape[1]

    def _free_slot(self) -> int | None:
        """The first free slot (slots already allocated come first: a new one is only made when
        every older one is busy)."""
        free = (self.flags[self.worker] == 0).nonzero()
        return int(free[0, 0]) if len(free) else None

    def pack(self, batch: Any) -> Any:
        """A ``SlotBatch`` for a dict batch whose tensors fit a free slot, else ``batch`` unchanged."""
        if not isinstance(batch, dict):
            return batch
        tensors = {k: v for k, v in batch.items() if _packable(v)}
        if not tensors:
            return batch
        total = sum(_aligned(t.numel() * t.element_size()) for t in tensors.values())
        if total > MAX_SLOT_BYTES:
            return batch
        slot = self._free_slot()
        if slot is None:
            return batch
        buffer = self.buffers[slot]
        if buffer is None or buffer.numel() < total:
            # room for a somewhat bigger batch (ragged images, padding) without growing again
            try:
                buffer = torch.empty(min(MAX_SLOT_BYTES, total + total // 4), dtype=torch.uint8).share_memory_()
            except RuntimeError as e:  # /dev/shm full: this batch goes the usual way
                log.warning("loader worker %d: no shared memory for a %d-byte batch slot (%s); handing the "
                            "batch over without a slot", self.worker, total, e)
                return batch
            self.buffers[slot] = buffer
            self.generations[slot] += 1
            self.sent[slot] = False
        layout = []
        offset = 0
        for name, t in tensors.items():
            nbytes = t.numel() * t.element_size()
            target = buffer[offset : offset + nbytes].view(t.dtype).view(t.shape)
            target.copy_(t)
            layout.append((name, offset, t.dtype, tuple(t.shape)))
            offset += _aligned(nbytes)
        self.flags[self.worker, slot] = 1
        message = SlotBatch(token=self.token, pid=self.pid, worker=self.worker, slot=slot, generation=self.generations[slot],
                            layout=layout, rest={k: v for k, v in batch.items() if k not in tensors},
                            order=list(batch), buffer=None if self.sent[slot] else buffer)
        self.sent[slot] = True
        return message


class _Lease:
    """Owns one slot while any tensor of the batch read from it is alive (main process)."""

    def __init__(self, buffer: np.ndarray, flags: torch.Tensor, worker: int, slot: int) -> None:
        self._buffer = buffer  # keeps the mapping alive
        self._flags = flags
        self._worker = worker
        self._slot = slot
        self.__array_interface__ = {"shape": buffer.shape, "typestr": "|u1", "version": 3,
                                    "data": (buffer.ctypes.data, False)}

    def __del__(self) -> None:
        self._flags[self._worker, self._slot] = 0


class SlotReceiver:
    """Turns ``SlotBatch`` messages back into batches of tensors (main process)."""

    def __init__(self, token: tuple[int, int], flags: torch.Tensor) -> None:
        self.flags = flags
        self._buffers: dict[tuple[int, int, int], tuple[int, np.ndarray]] = {}
        _RECEIVERS[token] = self

    def register(self, message: SlotBatch) -> None:
        """Keep the slot buffer ``message`` carries (its first batch, or after it grew)."""
        if message.buffer is not None:
            self._buffers[(message.pid, message.worker, message.slot)] = (message.generation, message.buffer.numpy())
            message.buffer = None

    def open(self, message: Any) -> Any:
        """The batch ``message`` stands for (anything that is not a ``SlotBatch`` is returned as is)."""
        if not isinstance(message, SlotBatch):
            return message
        key = (message.pid, message.worker, message.slot)
        self.register(message)
        generation, buffer = self._buffers[key]
        if generation != message.generation:
            raise RuntimeError(f"loader worker {message.worker}: slot {message.slot} generation "
                               f"{message.generation} arrived before its buffer (have {generation})")
        # The lease now owns the slot: the message must not free it when it goes.
        message._received = False
        message.flags = None
        flat = np.asarray(_Lease(buffer, self.flags, message.worker, message.slot))
        values: dict[str, Any] = {}
        for name, offset, dtype, shape in message.layout:
            nbytes = int(np.prod(shape, dtype=np.int64)) * torch.empty(0, dtype=dtype).element_size()
            values[name] = torch.from_numpy(flat[offset : offset + nbytes]).view(dtype).view(shape)
        return {name: values[name] if name in values else message.rest[name] for name in message.order}
