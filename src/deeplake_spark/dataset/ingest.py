"""Turn the inputs ``append``/``extend`` accept into named columns of Python/numpy values."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from deeplake_spark.dataset.schema import DatasetSchema
from deeplake_spark.errors import SchemaError


def _column_values(values: Any, column: str, dataset: str) -> Sequence[Any]:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.to_pylist()
    if isinstance(values, np.ndarray):
        return values if values.ndim else [values.item()]
    if hasattr(values, "to_numpy") and hasattr(values, "dtype"):  # pandas / polars Series
        return list(values.to_numpy())
    if isinstance(values, (list, tuple)):
        return values
    raise SchemaError(f"dataset {dataset}: column {column!r}: expected a list, numpy array or Arrow array, "
                      f"got {type(values).__name__}")


def _check_unique(names: Sequence[str], dataset: str) -> None:
    # which of two same-named columns is meant cannot be guessed; Delta would also see one column
    counts = Counter(name.lower() for name in names)
    repeated = sorted({name for name in names if counts[name.lower()] > 1})
    if repeated:
        raise SchemaError(f"dataset {dataset}: the data has column name(s) {repeated} more than once (names are "
                          "case-insensitive); pass each column once")


def to_columns(data: Any, schema: DatasetSchema, *, dataset: str) -> tuple[dict[str, Sequence[Any]], int]:
    """Columns keyed by name and the row count, checking column names and lengths.

    ``data``: a dict of columns (numpy/lists/Arrow), a list of row dicts, a pyarrow Table or
    RecordBatch, or a pandas DataFrame.
    """
    if isinstance(data, (pa.Table, pa.RecordBatch)):
        _check_unique(data.schema.names, dataset)
        columns: dict[str, Any] = {name: data.column(i) for i, name in enumerate(data.schema.names)}
    elif isinstance(data, Mapping):
        columns = dict(data)
    elif isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        if not all(isinstance(row, Mapping) for row in data):
            raise SchemaError(f"dataset {dataset}: a list input must hold one dict per row")
        names = list(schema.order)
        for i, row in enumerate(data):
            extra = set(row) - set(names)
            if extra:
                raise SchemaError(f"dataset {dataset}: row {i} has unknown column(s) {sorted(extra)}; schema has {names}")
            missing = [n for n in names if n not in row]
            if missing:
                raise SchemaError(f"dataset {dataset}: row {i} is missing column(s) {missing}")
        columns = {n: [row[n] for row in data] for n in names}
    elif hasattr(data, "columns") and hasattr(data, "__getitem__"):  # pandas.DataFrame
        _check_unique([str(c) for c in data.columns], dataset)
        columns = {str(c): data[c] for c in data.columns}
    else:
        raise SchemaError(f"dataset {dataset}: cannot append {type(data).__name__}; pass a dict of columns, "
                          "a list of row dicts or a pyarrow Table")
    unknown = [c for c in columns if c not in schema.order]
    if unknown:
        raise SchemaError(f"dataset {dataset}: unknown column(s) {unknown}; schema has {list(schema.order)}")
    missing = [c for c in schema.order if c not in columns]
    if missing:
        raise SchemaError(f"dataset {dataset}: missing column(s) {missing}")
    out = {name: _column_values(columns[name], name, dataset) for name in schema.order}
    lengths = {name: len(v) for name, v in out.items()}
    if len(set(lengths.values())) > 1:
        raise SchemaError(f"dataset {dataset}: columns have different lengths {lengths}")
    return out, next(iter(lengths.values()))


def tabular_array(values: Sequence[Any], field: pa.Field, *, dataset: str) -> pa.Array:
    """Arrow array of ``field``'s type, refusing lossy or mistyped values with a SchemaError."""
    try:
        if isinstance(values, np.ndarray):
            arr = pa.array(values)
            if arr.type != field.type:
                arr = arr.cast(field.type, safe=True)
            return arr
        if pa.types.is_integer(field.type):
            # pa.array([1.5], type=pa.int64()) silently truncates to 1: infer, then cast safely
            return pa.array(list(values)).cast(field.type, safe=True)
        return pa.array(list(values), type=field.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as e:
        raise SchemaError(f"dataset {dataset}: column {field.name!r} ({field.type}): {e}") from e
