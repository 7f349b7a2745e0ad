"""Batch assembly: samples of loaded chunks -> numpy columns -> torch tensors.

Collate modes, per column (``collate="stack"`` or ``collate={"boxes": "pad"}``):

* ``"stack"`` (default): one tensor ``(batch, *shape)``; samples of different shapes raise an
  error that names the column and suggests ``"pad"`` or ``"list"``.
* ``"pad"``: one tensor padded with ``pad_value`` to the largest shape in the batch, plus
  ``"<column>_shape"``, an int64 tensor ``(batch, ndim)`` of the true sample shapes (for ``bbox``
  tensors ``batch["boxes_shape"][:, 0]`` is the number of boxes of each sample).
* ``"list"``: a list of per-sample tensors (``None`` for null samples).

Modes apply to tensor columns; numeric tabular columns are always one stacked tensor.

Text tensors and non-numeric tabular columns always come as lists of Python values. A callable
``collate`` gets the list of per-sample dicts (after ``transform``) and returns the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from deeplake_spark.errors import InvalidOptionError
from deeplake_spark.format.spec import VIDEO_COMPRESSIONS
from deeplake_spark.torch.pil_decode import decode_pil
from deeplake_spark.torch.prefetch import ChunkKey, LoadedChunk, unique_codes
from deeplake_spark.torch.source import LoaderSource, TensorSource

MODES = ("stack", "pad", "list")
CollateOption = str | Mapping[str, str] | Callable[[list[dict[str, Any]]], Any]
#: Makes the (uninitialized) array a batch column is gathered into, e.g. ``BufferPool.empty``.
Alloc = Callable[[tuple[int, ...], np.dtype], np.ndarray]
#: Columns smaller than this are gathered into fresh arrays: small allocations are cheap.
ALLOC_MIN_BYTES = 256 * 1024
#: Rows at least this big are copied one by one into a shuffled batch that spans chunks, instead
#: of through a temporary of each chunk's share. A temporary of megabytes is fresh memory: built on
#: a thread (threads engine, ``run_ahead``), glibc's per-thread arena hands it back to the kernel
#: on free and the next one is zero-filled page by page again (perf, raw 224x224x3 shuffled, threads
#: engine: ~25% of all cycles in clear_page). A Python step per row is nothing next to 16 KiB.
ROW_COPY_MIN_BYTES = 16 << 10


def check_collate(collate: CollateOption, columns: Sequence[str]) -> None:
    """Reject unknown modes and columns before any worker starts."""
    if callable(collate):
        return
    modes = [collate] if isinstance(collate, str) else list(collate.values())
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise InvalidOptionError(f"collate={collate!r}: unknown mode(s) {bad}; expected one of {MODES} or a callable")
    if isinstance(collate, Mapping):
        unknown = [c for c in collate if c not in columns]
        if unknown:
            raise InvalidOptionError(f"collate={dict(collate)!r}: unknown column(s) {unknown}; columns are {list(columns)}")


def mode_of(collate: CollateOption, column: str) -> str:
    if isinstance(collate, str):
        return collate
    if isinstance(collate, Mapping):
        return collate.get(column, "stack")
    return "stack"


def samples_unique(source: LoaderSource) -> bool:
    """Whether no stored sample occurs twice among the source's rows (a dataset view can repeat
    rows): then no two batches of an epoch can be views of the same sample (``gather_tensor``)."""
    for t in source.tensors:
        valid = t.chunk_codes >= 0
        span = int(t.sample_index.max(initial=0)) + 1
        keys = t.chunk_codes[valid].astype(np.int64) * span + t.sample_index[valid]
        if len(np.unique(keys)) != len(keys):
            return False
    return True


def _run(index: np.ndarray) -> int | None:
    """The first sample index when ``index`` is one ascending run (``a, a+1, ...``), else None."""
    first = int(index[0])
    if int(index[-1]) - first + 1 != len(index) or (len(index) > 2 and not np.all(np.diff(index) == 1)):
        return None
    return first


def gather_tensor(tensor: TensorSource, t_pos: int, rows: np.ndarray, chunks: Mapping[ChunkKey, LoadedChunk],
                  alloc: Alloc | None = None, views: bool = False, pil: bool = False) -> np.ndarray | list[Any]:
    """Samples of ``rows``: one stacked array when every sample is a fixed-shape raw sample of the
    same shape (no per-sample Python work), else a list of arrays / str / None. The refs of
    ``rows`` were checked against their chunks when those were loaded (``ref_checks``).

    With ``alloc``, stacked arrays are written into arrays it makes (reused batch buffers), and
    image samples of one shape are decoded one by one into such an array instead of a list.
    With ``views`` (no sample occurs twice in the loader's epoch), rows that are one run of
    samples in one chunk whose buffer the chunk owns (``LoadedChunk.owned``) come as a view of
    that buffer, without a copy: no other batch sees those samples. ``pil``: image samples come as
    PIL images (``pil_decode``), in a list.
    """
    codes = tensor.chunk_codes[rows]
    index = tensor.sample_index[rows]
    uniq = unique_codes(codes)
    fixed = [chunks[(t_pos, int(c))].fixed for c in uniq if c >= 0]
    if len(uniq) and uniq[0] >= 0 and all(f is not None for f in fixed):
        arrays = [f for f in fixed if f is not None]
        if len({a.shape[1:] for a in arrays}) == 1:
            if views and len(arrays) == 1 and len(rows) and chunks[(t_pos, int(uniq[0]))].owned:
                first = _run(index)
                if first is not None:
                    return arrays[0][first:first + len(rows)]
            if alloc is not None and len(rows) * arrays[0][:1].nbytes < ALLOC_MIN_BYTES:
                alloc = None
            if alloc is None and len(arrays) == 1:
                return arrays[0][index]
            out = (alloc or np.empty)((len(rows), *arrays[0].shape[1:]), arrays[0].dtype)
            if len(arrays) == 1:
                np.take(arrays[0], index, axis=0, out=out, mode="clip")  # indices checked at load
                return out
            for code, array in zip(uniq, arrays):
                where = np.flatnonzero(codes == code)
                if where[-1] - where[0] + 1 == len(where):  # one run (unshuffled): no temporary
                    np.take(array, index[where], axis=0, out=out[where[0]:where[-1] + 1], mode="clip")
                elif array[:1].nbytes >= ROW_COPY_MIN_BYTES:  # big rows: copied one by one, no temporary
                    for k, i in zip(where.tolist(), index[where].tolist()):
                        out[k] = array[i]
                else:  # a temporary of this chunk's share of the rows
                    out[where] = array[index[where]]
            return out
    if not pil and len(uniq) and uniq[0] >= 0 and tensor.spec.dtype != "str" and tensor.spec.compression not in \
            VIDEO_COMPRESSIONS:
        readers = [chunks[(t_pos, code)].reader for code in codes.tolist()]
        shapes = {r.shape(i) for r, i in zip(readers, index.tolist())}
        if len(shapes) == 1:  # decoded straight into the batch array (JPEGs without a copy)
            out = (alloc or np.empty)((len(rows), *shapes.pop()), np.dtype(readers[0].header.dtype).newbyteorder("<"))
            for k, (r, i) in enumerate(zip(readers, index.tolist())):
                r.sample(i, out[k, ...])
            return out
    values: list[Any] = []
    for code, i in zip(codes.tolist(), index.tolist()):
        if code < 0:
            values.append(None)
            continue
        ch = chunks[(t_pos, code)]
        if pil:
            values.append(decode_pil(ch.reader, i))
        else:
            values.append(ch.fixed[i] if ch.fixed is not None else ch.reader.sample(i))
    return values


def gather_columns(source: LoaderSource, rows: np.ndarray, chunks: Mapping[ChunkKey, LoadedChunk],
                   alloc: Alloc | None = None, views: bool = False,
                   pil: frozenset[str] = frozenset()) -> dict[str, np.ndarray | list[Any]]:
    """Every column of ``rows`` as numpy arrays (stacked) or lists of samples, in source order
    (tensor columns stacked into arrays from ``alloc`` when given, or views, see ``gather_tensor``;
    image columns in ``pil`` as lists of PIL images)."""
    out: dict[str, np.ndarray | list[Any]] = {}
    by_name = {t.name: (pos, t) for pos, t in enumerate(source.tensors)}
    for name in source.order:
        if name in by_name:
            pos, tensor = by_name[name]
            out[name] = gather_tensor(tensor, pos, rows, chunks, alloc, views, name in pil)
        else:
            out[name] = source.tabular_column(name, rows)
    return out


def _view_runs(tensor: TensorSource, t_pos: int, rows: np.ndarray, bounds: np.ndarray,
               chunks: Mapping[ChunkKey, LoadedChunk]) -> list[np.ndarray | None]:
    """For each batch ``rows[bounds[b]:bounds[b + 1]]``: a view of its samples when they are one run
    of samples in one chunk whose fixed-shape buffer the chunk owns, else None (to be gathered)."""
    codes = tensor.chunk_codes[rows]
    index = tensor.sample_index[rows]
    step = np.zeros(len(rows), dtype=np.int64)
    if len(rows) > 1:
        step[1:] = np.cumsum((np.diff(index) == 1) & (np.diff(codes) == 0))
    out: list[np.ndarray | None] = []
    for b in range(len(bounds) - 1):
        s, e = int(bounds[b]), int(bounds[b + 1])
        code = int(codes[s]) if e > s else -1
        if code < 0 or int(step[e - 1] - step[s]) != e - s - 1:
            out.append(None)
            continue
        chunk = chunks[(t_pos, code)]
        first = int(index[s])
        out.append(chunk.fixed[first:first + e - s] if chunk.owned and chunk.fixed is not None else None)
    return out


def gather_block(source: LoaderSource, rows: np.ndarray, sizes: Sequence[int], chunks: Mapping[ChunkKey, LoadedChunk],
                 alloc: Alloc | None = None, views: bool = False) -> list[dict[str, np.ndarray | list[Any]]]:
    """The columns of each batch of a block (``rows`` = the batches' rows one after the other,
    ``sizes`` their lengths), as :func:`gather_columns` would give them batch by batch, with one
    gather per column for the whole block. With ``views``, a batch that is one run of samples in
    one owned chunk is a view of it (``gather_tensor``) and only the other batches are gathered."""
    bounds = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=bounds[1:])
    out: list[dict[str, np.ndarray | list[Any]]] = [{} for _ in sizes]
    by_name = {t.name: (pos, t) for pos, t in enumerate(source.tensors)}
    for name in source.order:
        if name not in by_name:
            values = source.tabular_column(name, rows)
            for b, batch in enumerate(out):
                batch[name] = values[bounds[b]:bounds[b + 1]]
            continue
        pos, tensor = by_name[name]
        runs = _view_runs(tensor, pos, rows, bounds, chunks) if views else [None] * len(sizes)
        rest = [b for b, view in enumerate(runs) if view is None]
        if rest:
            part = rows if len(rest) == len(sizes) else np.concatenate([rows[bounds[b]:bounds[b + 1]] for b in rest])
            values = gather_tensor(tensor, pos, part, chunks, alloc)
            start = 0
            for b in rest:
                out[b][name] = values[start:start + sizes[b]]
                start += sizes[b]
        for b, view in enumerate(runs):
            if view is not None:
                out[b][name] = view
    return out


def _as_tensor(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype == object or value.dtype.kind in "USM":
            return value.tolist()
        return torch.from_numpy(value if value.flags.writeable else value.copy())
    if isinstance(value, (np.generic, int, float, bool)):
        return torch.as_tensor(value)
    return value


def _stack(name: str, values: Sequence[Any], mode: str, pad_value: float, alloc: Alloc | None = None) -> dict[str, Any]:
    """Collate one column given as a list of per-sample values (same-shape numpy samples of
    ``ALLOC_MIN_BYTES`` or more are stacked into an array from ``alloc`` when given)."""
    if any(v is None for v in values):
        if mode != "list":
            raise InvalidOptionError(
                f"column {name!r} has null samples in this batch; collate={{{name!r}: 'list'}} yields them as None"
            )
        return {name: [None if v is None else _as_tensor(np.asarray(v)) for v in values]}
    if not values:
        return {name: []}
    first = values[0]
    if isinstance(first, str) or not isinstance(first, (np.ndarray, np.generic, torch.Tensor, int, float, bool)):
        return {name: list(values)}
    if isinstance(first, torch.Tensor):
        arrays = list(values)
        same = all(v.shape == first.shape for v in arrays)
        if mode == "list":
            return {name: arrays}
        if same:
            return {name: torch.stack(arrays)}
        arrays = [v.numpy() for v in arrays]
    else:
        arrays = [np.asarray(v) for v in values]
        if mode == "list":
            return {name: [_as_tensor(a) for a in arrays]}
        if all(a.shape == arrays[0].shape for a in arrays):
            out = None
            if alloc is not None and arrays[0].nbytes * len(arrays) >= ALLOC_MIN_BYTES and arrays[0].dtype != object \
                    and all(a.dtype == arrays[0].dtype for a in arrays):
                out = alloc((len(arrays), *arrays[0].shape), arrays[0].dtype)
            return {name: _as_tensor(np.stack(arrays, out=out))}
    if mode == "stack":
        shapes = sorted({tuple(a.shape) for a in arrays})
        raise InvalidOptionError(
            f"column {name!r}: samples in one batch have different shapes {shapes[:3]}; pass collate='pad' "
            f"(padded tensor + {name}_shape) or collate='list', e.g. collate={{{name!r}: 'pad'}}"
        )
    return pad(name, arrays, pad_value)


def pad(name: str, arrays: Sequence[np.ndarray], pad_value: float) -> dict[str, Any]:
    """Pad samples of equal rank to the largest shape; also returns their true shapes."""
    ranks = {a.ndim for a in arrays}
    if len(ranks) != 1:
        raise InvalidOptionError(f"column {name!r}: cannot pad samples of different ranks {sorted(ranks)}")
    shapes = np.array([a.shape for a in arrays], dtype=np.int64).reshape(len(arrays), -1)
    target = shapes.max(axis=0) if len(arrays) else np.zeros(0, dtype=np.int64)
    out = np.full((len(arrays), *target.tolist()), pad_value, dtype=arrays[0].dtype)
    for i, a in enumerate(arrays):
        out[(i, *(slice(0, d) for d in a.shape))] = a
    return {name: torch.from_numpy(out), f"{name}_shape": torch.from_numpy(shapes)}


def collate_columns(columns: Mapping[str, np.ndarray | list[Any]], collate: CollateOption, pad_value: float,
                    tensor_columns: frozenset[str] | set[str]) -> dict[str, Any]:
    """Batch dict from gathered columns (the no-transform fast path); tabular columns always stack."""
    out: dict[str, Any] = {}
    for name, values in columns.items():
        mode = mode_of(collate, name) if name in tensor_columns else "stack"
        if isinstance(values, np.ndarray) and values.dtype != object:
            out[name] = list(_as_tensor(values)) if mode == "list" else _as_tensor(values)
        else:
            out.update(_stack(name, values if isinstance(values, list) else values.tolist(), mode, pad_value))
    return out


def collate_samples(samples: list[Any], collate: CollateOption, pad_value: float, alloc: Alloc | None = None) -> Any:
    """Batch from per-sample values (after a ``transform``; big same-shape columns stacked into
    arrays from ``alloc`` when given, e.g. reused batch buffers)."""
    if callable(collate):
        return collate(samples)
    if samples and all(isinstance(s, Mapping) for s in samples):
        out: dict[str, Any] = {}
        for name in samples[0]:
            out.update(_stack(name, [s[name] for s in samples], mode_of(collate, name), pad_value, alloc))
        return out
    return torch.utils.data.default_collate(samples)


def split_samples(columns: Mapping[str, np.ndarray | list[Any]], n: int) -> list[dict[str, Any]]:
    """Per-sample dicts (for ``transform`` and callable ``collate``)."""
    return [{name: values[i] for name, values in columns.items()} for i in range(n)]
