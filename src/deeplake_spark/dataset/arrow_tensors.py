"""Arrow columns -> tensor chunks, vectorized: the conversion behind distributed (Spark) writes.

Numeric (nested) list arrays and numeric scalars become samples without per-value Python (a batch
of same-shape samples goes to the chunk as one block); binary arrays are encoded JPEG/PNG images
passed through; string arrays feed text/json tensors.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deeplake_spark.dataset.refs import REF_TYPE
from deeplake_spark.dataset.writer import TensorColumnWriter
from deeplake_spark.errors import SchemaError
from deeplake_spark.format.limits import MAX_DIM, MAX_NDIM, shape_problem
from deeplake_spark.format.samples import EncodedSample, encode_block, encode_sample
from deeplake_spark.format.spec import TensorSpec


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def tensor_refs(writer: TensorColumnWriter, values: Any, *, row_offset: int = 0) -> pa.Array:
    """Store ``values`` (an Arrow array, or a sequence of samples) with ``writer``; returns refs.

    Numeric (nested) lists and numeric scalars are converted without per-value Python: same-shape
    batches go to the chunk in one block. Binary values are encoded images passed through; strings
    feed text/json tensors. Nulls become null refs.
    """
    spec = writer.spec
    where = f"dataset {writer.dataset}, tensor {spec.name!r}"
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        return pa.array([writer.add(v, row=row_offset + i) for i, v in enumerate(values)], type=REF_TYPE)
    t = values.type
    if pa.types.is_null(t):
        return pa.nulls(len(values), REF_TYPE)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
        textual = pa.types.is_string(t) or pa.types.is_large_string(t)
        if textual != (spec.dtype == "str") or (not textual and not spec.is_sample_compressed):
            need = "a text/json tensor" if textual else "an image tensor with jpeg or png compression"
            raise SchemaError(f"{where}: {t} values need {need}; the tensor is htype {spec.htype}, dtype "
                              f"{spec.dtype}, compression {spec.compression}")
        return pa.array([writer.add(v, row=row_offset + i) for i, v in enumerate(values.to_pylist())], type=REF_TYPE)
    if spec.dtype == "str":
        raise SchemaError(f"{where}: {t} values cannot be stored in a str tensor (htype {spec.htype})")
    return _numeric_refs(writer, values, row_offset, where)


def _ranges_hold(mask: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per range [start, end): does ``mask`` hold anywhere inside it?"""
    counts = np.concatenate(([0], np.cumsum(mask, dtype=np.int64)))
    return counts[ends] - counts[starts] > 0


def _numeric_refs(writer: TensorColumnWriter, arr: pa.Array, row_offset: int, where: str) -> pa.Array:
    spec = writer.spec
    n = len(arr)
    valid = np.ones(n, dtype=bool) if not arr.null_count else ~arr.is_null().to_numpy(zero_copy_only=False)
    starts, ends = np.arange(n, dtype=np.int64), np.arange(1, n + 1, dtype=np.int64)
    dims: list[np.ndarray] = []
    cur = arr
    while _is_list(cur.type):
        if pa.types.is_fixed_size_list(cur.type):
            cur = cur.cast(pa.list_(cur.type.value_field))
        if dims and cur.null_count and _ranges_hold(cur.is_null().to_numpy(zero_copy_only=False), starts, ends).any():
            raise SchemaError(f"{where}: a null nested array inside a sample (only whole samples may be null)")
        offsets = cur.offsets.to_numpy().astype(np.int64)
        lengths = np.diff(offsets)
        nonempty = ends > starts
        first = np.minimum(starts, max(len(lengths) - 1, 0))
        dim = np.where(nonempty, lengths[first] if len(lengths) else 0, 0)
        if len(lengths) > 1:
            changes = np.concatenate(([0], np.cumsum(lengths[1:] != lengths[:-1])))
            ragged = nonempty & (changes[np.maximum(ends - 1, 0)] != changes[first])
            if ragged.any():
                row = row_offset + int(np.argmax(ragged))
                raise SchemaError(f"{where}, row {row}: nested arrays of different lengths are not a tensor")
        dims.append(np.where(valid, dim, 0) if len(dims) == 0 else dim)
        starts, ends = offsets[starts], offsets[ends]
        if len(dims) == 1:
            ends = np.where(valid, ends, starts)
        cur = cur.values
    if not (pa.types.is_integer(cur.type) or pa.types.is_floating(cur.type) or pa.types.is_boolean(cur.type)):
        raise SchemaError(f"{where}: {arr.type} values cannot be stored in a {spec.dtype} tensor")
    if not dims:  # 0-d samples: one value per row
        ends = np.where(valid, ends, starts)
    if cur.null_count:
        if _ranges_hold(cur.is_null().to_numpy(zero_copy_only=False), starts, ends).any():
            raise SchemaError(f"{where}: null values inside a sample (only whole samples may be null)")
        cur = pc.fill_null(cur, False if pa.types.is_boolean(cur.type) else 0)
    leaf = cur.to_numpy(zero_copy_only=False)
    flat_spec = replace(spec, shape=None, compression="none")
    flat = encode_block(flat_spec, leaf, where=where) if len(leaf) else np.zeros(0, dtype=spec.numpy_dtype)
    shapes = np.stack(dims, axis=1) if dims else np.zeros((n, 0), dtype=np.int64)
    _check_shapes(spec, shapes, valid, row_offset, where)
    if (n and valid.all() and not spec.is_sample_compressed and shapes[0].all() and (shapes == shapes[0]).all()
            and (starts[1:] == ends[:-1]).all()):
        block = flat[starts[0]:ends[-1]].reshape((n, *shapes[0].tolist()))
        return writer.add_block(block)
    u8, itemsize = flat.view(np.uint8), flat.itemsize
    refs: list[dict[str, Any] | None] = []
    for i, shape_list in enumerate(shapes.tolist()):
        if not valid[i]:
            refs.append(None)
            continue
        shape = tuple(shape_list)
        if spec.is_sample_compressed:
            sample = encode_sample(spec, flat[starts[i]:ends[i]].reshape(shape), where=f"{where}, row {row_offset + i}")
        else:
            sample = EncodedSample(u8[starts[i] * itemsize:ends[i] * itemsize].tobytes(), shape)
        refs.append(writer.add_encoded(sample))
    return pa.array(refs, type=REF_TYPE)


def _check_shapes(spec: TensorSpec, shapes: np.ndarray, valid: np.ndarray, row_offset: int, where: str) -> None:
    if not valid.any():
        return
    rank = shapes.shape[1]
    # the chunk header's limits, checked here since these samples skip format.samples' validation
    if rank > MAX_NDIM or (shapes.size and int(shapes.max()) > MAX_DIM):
        bad = valid if rank > MAX_NDIM else valid & (shapes > MAX_DIM).any(axis=1)
        i = int(np.argmax(bad))
        problem = shape_problem(tuple(int(d) for d in shapes[i]))
        raise SchemaError(f"{where}, row {row_offset + i}: a sample cannot be stored: {problem}")
    if spec.shape is None:
        return
    if rank != len(spec.shape):
        row = row_offset + int(np.argmax(valid))
        raise SchemaError(f"{where}, row {row}: rank {rank} samples do not match tensor shape {spec.shape}")
    if spec.htype == "point_cloud":  # format/samples.py's rule; an empty cloud (0 points) stays valid
        bad = valid & (shapes[:, 0] > 0) & (shapes[:, 1] < 3)
        if bad.any():
            i = int(np.argmax(bad))
            raise SchemaError(f"{where}, row {row_offset + i}: a point cloud of shape {tuple(int(d) for d in shapes[i])} has "
                              f"{int(shapes[i, 1])} values per point; a point_cloud tensor needs at least 3 (x, y, z)")
    empty_above = np.zeros(len(shapes), dtype=bool)
    for k, want in enumerate(spec.shape):
        if want is not None:
            # an empty outer dimension (e.g. no boxes) leaves inner sizes unknown: take the spec's
            shapes[empty_above, k] = want
            bad = valid & (shapes[:, k] != want)
            if bad.any():
                row = row_offset + int(np.argmax(bad))
                raise SchemaError(f"{where}, row {row}: shape {tuple(shapes[np.argmax(bad)].tolist())} does not "
                                  f"match tensor shape {spec.shape}")
        empty_above |= shapes[:, k] == 0
