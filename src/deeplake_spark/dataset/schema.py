"""Dataset schema: tabular Arrow fields plus tensor specs, stored in the Delta schema itself.

Each tensor column is a Delta struct column of refs (``refs.REF_TYPE``) whose field metadata holds
the tensor spec as JSON under ``deeplake.tensor``, so the spec is versioned with the table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from deeplake_spark.dataset.refs import REF_TYPE, TENSOR_METADATA_KEY
from deeplake_spark.errors import CorruptDatasetError, SchemaError
from deeplake_spark.format.spec import TensorSpec

_RESERVED = frozenset({"_change_type", "_commit_version", "_commit_timestamp"})


def tensor(
    htype: str = "generic",
    *,
    dtype: str | None = None,
    shape: Any = "default",
    compression: str | None = None,
    chunk_size: int | None = None,
) -> TensorSpec:
    """Declare a tensor column for :func:`deeplake_spark.create` (its name comes from the schema key).

    >>> schema = {"image": tensor("image"), "label": "int64", "boxes": tensor("bbox")}
    """
    return TensorSpec.create("unnamed", htype, dtype=dtype, shape=shape, compression=compression, chunk_size=chunk_size)


def _arrow_type(value: Any, column: str) -> pa.DataType:
    if isinstance(value, pa.DataType):
        return value
    if isinstance(value, str):
        aliases = {"str": "string", "text": "string", "float": "float64", "int": "int64", "long": "int64",
                   "double": "float64", "boolean": "bool", "binary": "binary", "date": "date32"}
        name = aliases.get(value, value)
        try:
            return pa.type_for_alias(name)
        except ValueError as e:
            raise SchemaError(f"column {column!r}: unknown tabular type {value!r}") from e
    raise SchemaError(f"column {column!r}: expected a tensor(...) spec, a pyarrow type or a type name, got {value!r}")


def _spec_from_metadata(raw: bytes | str, column: str, dataset: str) -> TensorSpec:
    where = f"dataset {dataset}: " if dataset else ""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as e:  # JSONDecodeError/UnicodeDecodeError are ValueErrors
        raise CorruptDatasetError(f"{where}column {column!r}: its {TENSOR_METADATA_KEY} metadata is not valid JSON "
                                  f"({e}); the Delta schema was damaged or written by a foreign writer") from e
    if not isinstance(data, dict):
        raise CorruptDatasetError(f"{where}column {column!r}: its {TENSOR_METADATA_KEY} metadata is not a JSON object")
    try:
        return TensorSpec.from_dict({**data, "name": column})
    except SchemaError as e:
        raise CorruptDatasetError(f"{where}column {column!r}: its {TENSOR_METADATA_KEY} metadata holds an invalid "
                                  f"tensor spec: {e}") from e


@dataclass(frozen=True)
class DatasetSchema:
    """Ordered columns: ``tabular`` Arrow fields and ``tensors`` specs."""

    tabular: pa.Schema
    tensors: dict[str, TensorSpec]
    order: tuple[str, ...]

    @classmethod
    def from_mapping(cls, columns: Mapping[str, Any] | DatasetSchema) -> DatasetSchema:
        """Build from ``{name: tensor(...) | TensorSpec | pyarrow type | type name}``."""
        if isinstance(columns, DatasetSchema):
            return columns
        if not columns:
            raise SchemaError("a dataset needs at least one column")
        fields, tensors = [], {}
        seen: dict[str, str] = {}
        for name, value in columns.items():
            if not isinstance(name, str) or not name or name in _RESERVED:
                raise SchemaError(f"invalid column name {name!r}")
            # Delta (and Spark) resolve column names case-insensitively: "A" and "a" are one column
            if name.lower() in seen:
                raise SchemaError(f"columns {seen[name.lower()]!r} and {name!r} differ only in case; Delta column "
                                  "names are case-insensitive, rename one of them")
            seen[name.lower()] = name
            if isinstance(value, TensorSpec):
                tensors[name] = value.with_name(name)
            elif isinstance(value, Mapping):
                tensors[name] = TensorSpec.create(name, **value)
            else:
                fields.append(pa.field(name, _arrow_type(value, name)))
        return cls(pa.schema(fields), tensors, tuple(columns))

    def to_arrow(self) -> pa.Schema:
        """The Delta table's Arrow schema: tabular fields + one ref struct per tensor."""
        out = []
        for name in self.order:
            if name in self.tensors:
                meta = {TENSOR_METADATA_KEY: self.tensors[name].to_json()}
                out.append(pa.field(name, REF_TYPE, nullable=True, metadata=meta))
            else:
                out.append(self.tabular.field(name))
        return pa.schema(out)

    @classmethod
    def from_arrow(cls, schema: pa.Schema, *, dataset: str = "") -> DatasetSchema:
        """The schema of a Delta table; a tensor spec in the metadata that cannot be parsed is a
        :class:`CorruptDatasetError` naming ``dataset`` and the column."""
        fields, tensors, order = [], {}, []
        for f in schema:
            meta = f.metadata or {}
            raw = meta.get(TENSOR_METADATA_KEY.encode()) or meta.get(TENSOR_METADATA_KEY)
            if raw is not None:
                tensors[f.name] = _spec_from_metadata(raw, f.name, dataset)
            else:
                fields.append(f.remove_metadata())
            order.append(f.name)
        return cls(pa.schema(fields), tensors, tuple(order))

    @property
    def columns(self) -> tuple[str, ...]:
        return self.order

    def is_tensor(self, column: str) -> bool:
        return column in self.tensors

    def __repr__(self) -> str:
        parts = []
        for name in self.order:
            if name in self.tensors:
                t = self.tensors[name]
                shape = "ragged" if t.shape is None else str(t.shape)
                parts.append(f"  {name}: tensor(htype={t.htype}, dtype={t.dtype}, shape={shape}, compression={t.compression})")
            else:
                parts.append(f"  {name}: {self.tabular.field(name).type}")
        return "DatasetSchema(\n" + "\n".join(parts) + "\n)"
