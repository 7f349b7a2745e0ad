"""Scalar tensors stored inline: a plain Delta column of the row instead of chunk files + refs.

A 0-d tensor of an inline dtype (``TensorSpec.is_scalar``: class_label, text, json, link, generic
scalars) is one value per row (a link tensor's value is its URL/path text; ``links.py`` reads the
target when a row is read). New datasets store it as a column of :func:`inline_type` so SQL
filters, GROUP BY, joins and min/max file statistics work on it; the column keeps the tensor spec
in its field metadata, which gives the values back their dtype on read (a uint8 label is stored as
int16 and read back as uint8). Which storage a tensor uses is told by its Delta column type: a ref
struct is chunked (every dataset written before inline storage existed), a primitive is inline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deeplake_spark.errors import SchemaError
from deeplake_spark.format.samples import encode_block, encode_sample
from deeplake_spark.format.spec import TensorSpec

#: tensor dtype -> Delta/Arrow column type of an inline scalar tensor (unsigned types widened to the next
#: signed type, float16 to float32: Delta has neither).
INLINE_TYPES: dict[str, pa.DataType] = {
    "bool": pa.bool_(),
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint8": pa.int16(),
    "uint16": pa.int32(),
    "uint32": pa.int64(),
    "float16": pa.float32(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "str": pa.string(),
}

#: dtypes whose inline column type holds values the tensor cannot (a uint8 label is an int16 column)
WIDENED_DTYPES = frozenset({"uint8", "uint16", "uint32", "float16"})


def inline_type(spec: TensorSpec) -> pa.DataType:
    """The column type of ``spec`` stored inline (only for ``spec.is_scalar``)."""
    return INLINE_TYPES[spec.dtype]


def matches_inline_type(spec: TensorSpec, column_type: pa.DataType) -> bool:
    """Whether a Delta column of ``column_type`` can hold ``spec`` inline (large/view strings included)."""
    if not spec.is_scalar:
        return False
    if spec.dtype == "str":
        return pa.types.is_string(column_type) or pa.types.is_large_string(column_type) or \
            pa.types.is_string_view(column_type)
    return column_type.equals(INLINE_TYPES[spec.dtype])


def inline_array(spec: TensorSpec, values: Any, *, where: str, row_offset: int = 0) -> pa.Array:
    """``values`` (Arrow array, numpy array or sequence; None = null) as the tensor's inline column.

    Every value is validated as a chunked sample would be: range and integrality for integer dtypes,
    0/1 for bool, str (or any JSON value for htype json) for str tensors. A SchemaError names
    ``where`` and the first bad row (``row_offset`` + its position in ``values``).
    """
    try:
        return _inline_array(spec, values, where)
    except SchemaError as e:
        _raise_first_bad_row(spec, values, where, row_offset)
        raise e


def _raise_first_bad_row(spec: TensorSpec, values: Any, where: str, row_offset: int) -> None:
    """Re-check ``values`` one by one (only after the batch check failed) to name the first bad row."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        t = values.type
        if spec.dtype != "str" and (pa.types.is_string(t) or pa.types.is_large_string(t)):
            return  # the batch error (a string column for a numeric tensor) says it all
        values = values.to_pylist()
    for i, value in enumerate(values):
        if value is not None:
            encode_sample(spec, value, where=f"{where}, row {row_offset + i}")  # raises for a bad value


def _inline_array(spec: TensorSpec, values: Any, where: str) -> pa.Array:
    target = inline_type(spec)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        return _from_arrow(spec, values, target, where)
    if spec.dtype == "str":
        texts = [None if v is None else bytes(encode_sample(spec, v, where=f"{where}, row {i}").data).decode("utf-8")
                 for i, v in enumerate(values)]
        return pa.array(texts, type=target)
    if isinstance(values, np.ndarray) and values.dtype != object:
        arr = values.reshape(-1) if values.ndim == 0 else values
        if arr.ndim != 1:
            raise SchemaError(f"{where}: samples of shape {arr.shape[1:]} do not match tensor shape ()")
        return pa.array(_checked(spec, arr, where), type=target)
    items: Sequence[Any] = list(values)
    mask = np.array([v is None for v in items], dtype=bool)
    present = [v for v in items if v is not None]
    try:
        block = np.asarray(present)
    except ValueError as e:  # ragged nested lists
        raise SchemaError(f"{where}: values are not scalars: {e}") from e
    if block.dtype == object:
        bad = next((i for i, v in enumerate(items) if isinstance(v, str) or (v is not None and np.ndim(v) != 0)), 0)
        raise SchemaError(f"{where}, row {bad}: {type(items[bad]).__name__} cannot be stored in a {spec.dtype} tensor")
    if block.ndim != 1 and present:
        shape = np.shape(present[0])
        raise SchemaError(f"{where}: samples of shape {shape} do not match tensor shape ()")
    out = np.zeros(len(items), dtype=spec.numpy_dtype)
    if present:
        out[~mask] = _checked(spec, block, where)
    return pa.array(out, type=target, mask=mask if mask.any() else None)


def _checked(spec: TensorSpec, values: np.ndarray, where: str) -> np.ndarray:
    if values.dtype.kind in "USV":
        raise SchemaError(f"{where}: values of type {values.dtype} cannot be stored in a {spec.dtype} tensor")
    block = encode_block(spec, values, where=where) if len(values) else np.zeros(0, dtype=spec.numpy_dtype)
    if block is None:  # not reachable for numeric 1-d input; kept typed for mypy
        raise SchemaError(f"{where}: values cannot be stored in a {spec.dtype} tensor")
    return block.astype(spec.numpy_dtype, copy=False)


def _from_arrow(spec: TensorSpec, values: pa.Array, target: pa.DataType, where: str) -> pa.Array:
    t = values.type
    if pa.types.is_null(t):
        return pa.nulls(len(values), target)
    textual = pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
    if textual != (spec.dtype == "str"):
        need = "a text/json (str) tensor" if textual else "a numeric or bool tensor"
        raise SchemaError(f"{where}: {t} values need {need}; the tensor is htype {spec.htype}, dtype {spec.dtype}")
    if textual:
        return values.cast(target)
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        raise SchemaError(f"{where}: {t} values cannot be stored in a scalar {spec.dtype} tensor (htype {spec.htype})")
    if spec.dtype == "bool" and not pa.types.is_boolean(t):
        bad = pc.and_(pc.not_equal(values, 0), pc.not_equal(values, 1))
        if pc.any(bad).as_py():
            raise SchemaError(f"{where}: only 0/1 values can be stored in a bool tensor")
        return pc.not_equal(values, 0).cast(target)
    if pa.types.is_floating(t) and spec.dtype not in ("float16", "float32", "float64"):
        finite = pc.is_finite(values)
        if not pc.all(pc.fill_null(finite, True)).as_py():
            raise SchemaError(f"{where}: non-finite values cannot be stored in a {spec.dtype} tensor")
    if spec.dtype == "float16":  # round to what the tensor holds; Arrow has few float16 casts
        halves = values.to_numpy(zero_copy_only=False).astype(np.float16).astype(np.float32)
        return pa.array(halves, type=target, mask=values.is_null().to_numpy(zero_copy_only=False))
    floating = spec.dtype in ("float32", "float64")
    try:
        exact = values.cast(pa.from_numpy_dtype(np.dtype(spec.dtype)), safe=not floating)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise SchemaError(f"{where}: {t} values do not fit a {spec.dtype} tensor: {e}") from e
    return exact.cast(target)


def inline_samples(column: pa.Array | pa.ChunkedArray, spec: TensorSpec) -> np.ndarray | list[Any]:
    """The samples of an inline column in the tensor's dtype: one numpy array (str: object array) when
    no value is null, else a list of 0-d arrays (str) with None for nulls."""
    if column.null_count == 0:
        if spec.dtype == "str":
            return np.array(column.to_pylist(), dtype=object)
        return column.to_numpy(zero_copy_only=False).astype(spec.numpy_dtype, copy=False)
    out: list[Any] = []
    for value in column.to_pylist():
        if value is None or spec.dtype == "str":
            out.append(value)
        else:
            out.append(np.array(value, dtype=spec.numpy_dtype))
    return out


def inline_sample(samples: np.ndarray | list[Any], i: int) -> Any:
    """Sample ``i`` of :func:`inline_samples`' result: a 0-d array of the tensor's dtype, a str or None.

    Also takes a link column's resolved samples (``links.resolve_link_columns``): a stacked array of
    images gives its ``i``-th image.
    """
    value = samples[i]
    if isinstance(samples, np.ndarray) and samples.dtype != object and samples.ndim == 1:
        return samples[i:i + 1].reshape(())
    return value
