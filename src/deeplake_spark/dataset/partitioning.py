"""Partitioned datasets: standard Delta partitioning of the tabular columns (``metaData.partitionColumns``).

Part files live in Hive-style ``<column>=<value>/`` folders, the partition columns are not stored in
them and each add action carries the file's ``partitionValues`` (delta-rs reads and writes all of
it). Chunk files stay under ``_tensors/<tensor>/``: a tensor column can never be a partition column.

Partition values are written in Delta's serialization: dates ``yyyy-MM-dd``; timestamps (Delta
``timestamp``: Arrow timestamps with a time zone) as ISO 8601 in UTC with microseconds
(``2024-01-02T03:04:05.123456Z``, what delta-spark 4 writes; delta-rs, Delta Kernel and the JVM reader
read it); decimals as plain numbers at the column's scale. Negative decimal values are refused by name:
delta-rs, through which this layer lists a version's files, misreads them (``-2.25`` as ``-2.-25``).
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable

from deeplake_spark.dataset.schema import DatasetSchema
from deeplake_spark.errors import SchemaError

SUPPORTED = "string, integer types, boolean, date, timestamp (with a time zone), decimal"


def _supported(t: pa.DataType) -> bool:
    return (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t)
            or pa.types.is_boolean(t) or pa.types.is_date32(t) or pa.types.is_decimal(t)
            or (pa.types.is_timestamp(t) and t.tz is not None))


def check_partition_columns(schema: DatasetSchema, columns: Sequence[str] | str, *, dataset: str) -> list[str]:
    """``columns`` as a list once each is a tabular column of a supported type; SchemaError naming the first
    that is not (a tensor, unknown, repeated, or of another type)."""
    if isinstance(columns, str):
        columns = [columns]
    names = list(columns)
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise SchemaError(f"dataset {dataset}: partition_by takes column names, got {name!r}")
        if name in names[:i]:
            raise SchemaError(f"dataset {dataset}: partition column {name!r} is listed twice")
        if name in schema.tensors:
            raise SchemaError(f"dataset {dataset}: {name!r} is a tensor column and cannot be a partition column "
                              "(chunks are not partitioned); partition by tabular columns")
        if name not in schema.order:
            raise SchemaError(f"dataset {dataset}: partition column {name!r} is not a column; columns: "
                              f"{list(schema.order)}")
        t = schema.tabular.field(name).type
        if not _supported(t):
            shown = f"timestamp_ntz ({t} without a time zone)" if pa.types.is_timestamp(t) else str(t)
            raise SchemaError(f"dataset {dataset}: partition column {name!r} is {shown}; supported partition column "
                              f"types: {SUPPORTED}")
    if names and len(names) == len(schema.order):
        raise SchemaError(f"dataset {dataset}: every column would be a partition column; keep at least one "
                          "column out of partition_by")
    return names


def partition_columns(dt: DeltaTable) -> list[str]:
    """The partition columns of ``dt``'s version, in partitioning order (empty when unpartitioned)."""
    return list(dt.metadata().partition_columns)


#: Spark's ``ExternalCatalogUtils.escapePathName`` set: these characters of a partition value are
#: written as ``%XX`` in the folder name (Delta and Hive read them back the same way)
_ESCAPED = set('"#%\'*/:=?\\\x7f{[]^') | {chr(c) for c in range(0x20)}
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def value_text(value: Any, *, column: str | None = None) -> str | None:
    """A partition value in Delta's serialization of ``partitionValues`` (None stays None = JSON null).

    A timezone-aware datetime becomes ISO 8601 in UTC with microseconds (a naive one is taken as UTC);
    a negative Decimal raises SchemaError naming ``column`` (see the module docstring)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.datetime):
        utc = value.astimezone(datetime.UTC) if value.tzinfo is not None else value
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        if value < 0:
            raise SchemaError(f"partition column {column!r} has the negative value {value}; negative decimal "
                              "partition values are not written because delta-rs, through which datasets are "
                              "read, misreads them; partition by another column or shift the values")
        return format(value, "f")
    return str(value)


def partition_folder(columns: Sequence[str], values: Sequence[Any]) -> str:
    """The Hive-style folder (as stored, relative) of a file whose partition values are ``values``."""
    parts = []
    for name, value in zip(columns, values):
        text = value_text(value, column=name)
        shown = HIVE_NULL if text is None or text == "" else "".join(
            f"%{ord(c):02X}" if c in _ESCAPED else c for c in text)
        parts.append(f"{name}={shown}")
    return "/".join(parts)

