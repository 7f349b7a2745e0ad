"""Where batches go: pinned host memory + non-blocking copies for CUDA, CPU fallback with a warning."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch

log = logging.getLogger(__name__)


def resolve_device(device: str | torch.device | None) -> torch.device | None:
    """The device batches are moved to, or ``None`` to leave them on the CPU where workers made them.

    A CUDA device asked for on a machine without CUDA falls back to the CPU with a warning, so the
    same training script runs on a laptop.
    """
    if device is None:
        return None
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        message = f"device={str(device)!r} requested but CUDA is not available; batches stay on the CPU"
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        log.warning(message)
        return torch.device("cpu")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        message = f"device={str(device)!r} requested but MPS is not available; batches stay on the CPU"
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        log.warning(message)
        return torch.device("cpu")
    return dev


def wants_pinned_memory(device: torch.device | None) -> bool:
    """Page-locked host buffers make host->GPU copies asynchronous (``non_blocking=True``)."""
    return device is not None and device.type == "cuda"


def pin(batch: Any) -> Any:
    """The batch with every CPU tensor copied to page-locked memory (other values as they are)."""
    if isinstance(batch, torch.Tensor):
        return batch.pin_memory() if batch.device.type == "cpu" else batch
    if isinstance(batch, dict):
        return {k: pin(v) for k, v in batch.items()}
    if isinstance(batch, list):
        return [pin(v) for v in batch]
    return batch


def to_device(batch: Any, device: torch.device | None) -> Any:
    """Move every tensor of a (nested) batch to ``device``; other values are left as they are."""
    if device is None or device.type == "cpu":
        return batch
    non_blocking = device.type == "cuda"
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list):
        return [to_device(v, device) for v in batch]
    if isinstance(batch, tuple):
        return type(batch)(*(to_device(v, device) for v in batch)) if hasattr(batch, "_fields") \
            else tuple(to_device(v, device) for v in batch)
    return batch
