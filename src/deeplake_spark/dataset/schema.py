"""Dataset schema: tabular Arrow fields plus tensor specs, stored in the Delta schema itself.

A chunked tensor column is a Delta struct column of refs (``refs.REF_TYPE``); a scalar tensor
(``TensorSpec.is_scalar``) is stored inline as a plain column of its values (``inline.py``). Either
way the field metadata holds the tensor spec as JSON under ``deeplake.tensor``, so the spec is
versioned with the table, and the column type says which storage the tensor uses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from deeplake_spark.dataset.inline import inline_type, matches_inline_type
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
    class_names: Any = None,
    link_to: str | None = None,
) -> TensorSpec:
    """Declare a tensor column for :func:`deeplake_spark.create` (its name comes from the schema key).

    ``class_names`` (class_label tensors only): a list of unique str, ``class_names[i]`` naming label i.
    ``link_to`` (link tensors only): what a linked file is read as, ``"bytes"`` (default), ``"image"`` (a
    decoded array) or ``"video"``; ``tensor("link[image]")`` says the same.

    >>> schema = {"image": tensor("image"), "label": tensor("class_label", class_names=["cat", "dog"]),
    ...           "boxes": tensor("bbox"), "clip": tensor("video"), "lidar": tensor("point_cloud"),
    ...           "photo": tensor("link", link_to="image")}
    """
    return TensorSpec.create("unnamed", htype, dtype=dtype, shape=shape, compression=compression, chunk_size=chunk_size,
                             class_names=class_names, link_to=link_to)


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
    """Ordered columns: ``tabular`` Arrow fields and ``tensors`` specs.

    ``inline`` names the tensors stored as plain columns of their values (not chunks + refs). When not
    given it is every scalar tensor (``TensorSpec.is_scalar``), the storage of a new dataset; a schema
    read from a Delta table takes it from the column types, so older datasets keep their refs.
    """

    tabular: pa.Schema
    tensors: dict[str, TensorSpec]
    order: tuple[str, ...]
    inline: frozenset[str] = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.inline is None:
            object.__setattr__(self, "inline", frozenset(n for n, t in self.tensors.items() if t.is_scalar))
        else:
            object.__setattr__(self, "inline", frozenset(self.inline))
        bad = sorted(n for n in self.inline if n not in self.tensors or not self.tensors[n].is_scalar)
        if bad:
            raise SchemaError(f"tensor(s) {bad} cannot be stored inline: only scalar tensors (shape (), dtype other "
                              "than uint64) are plain columns")

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
        """The Delta table's Arrow schema: tabular fields, one value column per inline tensor and one
        ref struct per chunked tensor."""
        out = []
        for name in self.order:
            if name in self.tensors:
                spec = self.tensors[name]
                meta = {TENSOR_METADATA_KEY: spec.to_json()}
                column_type = inline_type(spec) if name in self.inline else REF_TYPE
                out.append(pa.field(name, column_type, nullable=True, metadata=meta))
            else:
                out.append(self.tabular.field(name))
        return pa.schema(out)

    @classmethod
    def from_arrow(cls, schema: pa.Schema, *, dataset: str = "") -> DatasetSchema:
        """The schema of a Delta table; a tensor spec in the metadata that cannot be parsed is a
        :class:`CorruptDatasetError` naming ``dataset`` and the column."""
        fields, tensors, order, inline = [], {}, [], set()
        where = f"dataset {dataset}: " if dataset else ""
        for f in schema:
            meta = f.metadata or {}
            raw = meta.get(TENSOR_METADATA_KEY.encode()) or meta.get(TENSOR_METADATA_KEY)
            if raw is not None:
                spec = tensors[f.name] = _spec_from_metadata(raw, f.name, dataset)
                if not pa.types.is_struct(f.type):
                    if not matches_inline_type(spec, f.type):
                        want = inline_type(spec) if spec.is_scalar else "a ref struct"
                        raise CorruptDatasetError(
                            f"{where}column {f.name!r} is {f.type} but its tensor spec (htype {spec.htype}, dtype "
                            f"{spec.dtype}, shape {spec.shape}) is stored as {want}; the Delta schema was damaged "
                            "or written by a foreign writer")
                    inline.add(f.name)
            else:
                fields.append(f.remove_metadata())
            order.append(f.name)
        return cls(pa.schema(fields), tensors, tuple(order), frozenset(inline))

    @property
    def columns(self) -> tuple[str, ...]:
        return self.order

    def is_tensor(self, column: str) -> bool:
        return column in self.tensors

    def is_inline(self, column: str) -> bool:
        """True for a tensor stored as a plain column of its values (no chunks, no refs)."""
        return column in self.inline

    @property
    def chunked(self) -> dict[str, TensorSpec]:
        """The tensors stored in chunk files, whose columns hold refs."""
        return {name: spec for name, spec in self.tensors.items() if name not in self.inline}

    def __repr__(self) -> str:
        parts = []
        for name in self.order:
            if name in self.tensors:
                t = self.tensors[name]
                shape = "ragged" if t.shape is None else str(t.shape)
                storage = "inline" if name in self.inline else f"compression={t.compression}"
                names = "" if t.class_names is None else f", class_names={list(t.class_names)}"
                names += "" if t.link_to is None else f", link_to={t.link_to}"
                parts.append(f"  {name}: tensor(htype={t.htype}, dtype={t.dtype}, shape={shape}, {storage}{names})")
            else:
                parts.append(f"  {name}: {self.tabular.field(name).type}")
        return "DatasetSchema(\n" + "\n".join(parts) + "\n)"
