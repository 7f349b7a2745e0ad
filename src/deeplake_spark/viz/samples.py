"""Fetch the first rows of a Dataset, a Spark DataFrame or an Arrow table as decoded samples.

A Spark DataFrame is duck-typed (``df.schema``, ``df.select``, ``df.limit(n).toArrow()``) so this
module never imports pyspark. Its tensor columns are resolved through the dataset layer, using the
metadata that the Spark source puts on each ref column's StructField::

    {"deeplake.dataset": uri, "deeplake.version": int, "deeplake.tensor": "<TensorSpec JSON>"}

Columns the source read in ``bytes`` or ``array`` mode carry ``deeplake.encoding`` and
``deeplake.spec`` instead and are decoded here without touching the dataset.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from deeplake_spark.dataset import Dataset
from deeplake_spark.dataset import open as open_dataset
from deeplake_spark.dataset.refs import TENSOR_METADATA_KEY
from deeplake_spark.errors import InvalidOptionError, SchemaError
from deeplake_spark.format import TensorSpec, decode_sample

log = logging.getLogger(__name__)

DATASET_METADATA_KEY = "deeplake.dataset"
VERSION_METADATA_KEY = "deeplake.version"
ENCODING_METADATA_KEY = "deeplake.encoding"
SPEC_METADATA_KEY = "deeplake.spec"
_REF_FIELDS = frozenset({"chunk", "index", "shape", "nbytes"})


@dataclass
class SampleTable:
    """Decoded values of the shown rows: ``rows[i][column]`` plus each tensor column's spec."""

    columns: list[str]
    rows: list[dict[str, Any]]
    specs: dict[str, TensorSpec] = field(default_factory=dict)
    title: str = ""


@dataclass(frozen=True)
class _RefColumn:
    spec: TensorSpec
    dataset: str | None
    version: int | None
    encoding: str = "ref"  # "ref", "bytes" ({data, shape} structs) or "array" (decoded values)


def _meta_get(meta: Mapping[Any, Any] | None, key: str) -> Any:
    if not meta:
        return None
    value = meta.get(key)
    if value is None:
        value = meta.get(key.encode())
    return value.decode() if isinstance(value, bytes) else value


def _ref_column(name: str, meta: Mapping[Any, Any] | None) -> _RefColumn | None:
    raw = _meta_get(meta, TENSOR_METADATA_KEY)
    encoding = "ref"
    if raw is None:
        raw = _meta_get(meta, SPEC_METADATA_KEY)
        encoding = _meta_get(meta, ENCODING_METADATA_KEY) or "array"
    if raw is None:
        return None
    spec_dict = json.loads(raw) if isinstance(raw, str) else dict(raw)
    spec = TensorSpec.from_dict({**spec_dict, "name": spec_dict.get("name") or name})
    version = _meta_get(meta, VERSION_METADATA_KEY)
    return _RefColumn(spec, _meta_get(meta, DATASET_METADATA_KEY), None if version is None else int(version),
                      encoding)


def _decode_inline(ref: _RefColumn, column: str, values: list[Any]) -> list[Any]:
    """Samples of a column read in ``bytes`` or ``array`` mode."""
    spec = ref.spec
    out: list[Any] = []
    for i, value in enumerate(values):
        if value is None:
            out.append(None)
        elif ref.encoding == "bytes" and isinstance(value, dict):
            compression = spec.compression if spec.is_sample_compressed else "none"
            out.append(decode_sample(spec.dtype, compression, value["data"], tuple(value["shape"] or ()),
                                     where=f"column {column!r}, row {i}"))
        elif spec.dtype == "str" or isinstance(value, str):
            out.append(value)
        else:  # array mode: nested lists of a widened Spark type
            out.append(np.asarray(value).astype(spec.numpy_dtype, copy=False))
    return out


def _check_columns(columns: Sequence[str] | None, available: Sequence[str], where: str) -> list[str]:
    if columns is None:
        return list(available)
    if isinstance(columns, str):
        columns = [columns]
    unknown = [c for c in columns if c not in available]
    if unknown:
        raise InvalidOptionError(f"{where}: unknown column(s) {unknown} in columns=; available: {list(available)}")
    return list(columns)


def from_dataset(ds: Dataset, n: int, columns: Sequence[str] | None) -> SampleTable:
    """The first ``n`` rows of ``ds`` with tensors decoded."""
    names = _check_columns(columns, ds.schema.order, f"dataset {ds.path}")
    table = ds.arrow_dataset().head(n, columns=names) if n > 0 else ds.table(columns=names).slice(0, 0)
    values: dict[str, list[Any]] = {}
    for name in names:
        column = table.column(name).to_pylist()
        values[name] = ds.read_tensor(name, column) if name in ds.schema.tensors else column
    rows = [{name: values[name][i] for name in names} for i in range(table.num_rows)]
    specs = {name: ds.schema.tensors[name] for name in names if name in ds.schema.tensors}
    title = f"{ds.path} @ version {ds.version}: {table.num_rows} of {len(ds)} rows"
    return SampleTable(names, rows, specs, title)


class _DatasetCache:
    """Datasets opened while resolving one table's refs, keyed by (uri, version)."""

    def __init__(self, storage_options: Mapping[str, str] | None) -> None:
        self.storage_options = storage_options
        self._open: dict[tuple[str, int | None], Dataset] = {}

    def get(self, uri: str, version: int | None) -> Dataset:
        key = (uri, version)
        if key not in self._open:
            self._open[key] = open_dataset(uri, version=version, storage_options=self.storage_options)
        return self._open[key]


def _looks_like_refs(values: list[Any]) -> bool:
    return any(isinstance(v, dict) and _REF_FIELDS.issubset(v) for v in values)


def from_arrow(table: pa.Table, ref_columns: Mapping[str, _RefColumn], *, title: str,
               storage_options: Mapping[str, str] | None = None) -> SampleTable:
    """Decode the ref columns of ``table`` (described by ``ref_columns``) through their datasets."""
    cache = _DatasetCache(storage_options)
    values: dict[str, list[Any]] = {}
    specs: dict[str, TensorSpec] = {}
    for name in table.column_names:
        column = table.column(name).to_pylist()
        ref = ref_columns.get(name)
        if ref is None:
            values[name] = column
            continue
        specs[name] = ref.spec.with_name(name)
        if ref.encoding != "ref":
            values[name] = _decode_inline(ref, name, column)
            continue
        if not _looks_like_refs(column) and any(v is not None for v in column):
            values[name] = column  # already resolved by the caller: show as is
            continue
        if ref.dataset is None:
            raise SchemaError(f"column {name!r} holds tensor refs but its field metadata has no "
                              f"{DATASET_METADATA_KEY!r}; cannot tell which dataset to read")
        ds = cache.get(ref.dataset, ref.version)
        tensor = ref.spec.name if ref.spec.name in ds.schema.tensors else name
        values[name] = ds.read_tensor(tensor, column)
    rows = [{name: values[name][i] for name in table.column_names} for i in range(table.num_rows)]
    return SampleTable(list(table.column_names), rows, specs, title)


def is_spark_dataframe(obj: Any) -> bool:
    """Duck-typed check for a pyspark (classic or Connect) DataFrame."""
    return all(hasattr(obj, a) for a in ("schema", "limit", "select", "toArrow"))


def from_dataframe(df: Any, n: int, columns: Sequence[str] | None,
                   storage_options: Mapping[str, str] | None = None) -> SampleTable:
    """The first ``n`` rows of a Spark DataFrame with tensor ref columns resolved."""
    fields = {f.name: f for f in df.schema.fields}
    names = _check_columns(columns, list(fields), "DataFrame")
    if columns is not None:
        df = df.select(*names)
    table = df.limit(n).toArrow()
    refs = {}
    for name in names:
        ref = _ref_column(name, getattr(fields[name], "metadata", None))
        if ref is not None:
            refs[name] = ref
    return from_arrow(table, refs, title=f"DataFrame: first {table.num_rows} rows", storage_options=storage_options)


def from_arrow_table(table: pa.Table, n: int, columns: Sequence[str] | None,
                     storage_options: Mapping[str, str] | None = None) -> SampleTable:
    """The first ``n`` rows of an Arrow table whose ref fields carry the deeplake metadata."""
    names = _check_columns(columns, table.column_names, "Arrow table")
    table = table.select(names).slice(0, n)
    refs = {}
    for f in table.schema:
        ref = _ref_column(f.name, f.metadata)
        if ref is not None:
            refs[f.name] = ref
    return from_arrow(table, refs, title=f"Arrow table: first {table.num_rows} rows", storage_options=storage_options)


def collect(source: Any, n: int, columns: Sequence[str] | None,
            storage_options: Mapping[str, str] | None = None) -> SampleTable:
    """Dispatch on the kind of ``source``."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise InvalidOptionError(f"n must be an int >= 0, not {n!r}")
    if isinstance(source, Dataset):
        return from_dataset(source, n, columns)
    if isinstance(source, pa.Table):
        return from_arrow_table(source, n, columns, storage_options)
    if is_spark_dataframe(source):
        return from_dataframe(source, n, columns, storage_options)
    raise InvalidOptionError(
        f"cannot show {type(source).__name__}; pass a deeplake_spark Dataset, a Spark DataFrame or a pyarrow Table"
    )
