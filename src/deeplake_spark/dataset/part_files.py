"""One Parquet data file a task writes, with the Delta statistics of its rows."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from deeplake_spark.errors import StorageError
from deeplake_spark.storage import Storage

#: Delta truncates long string statistics; ours are only recorded when this short (exact min/max).
_MAX_STAT_STRING = 32


class ColumnStats:
    """numRecords/minValues/maxValues/nullCount of the top-level primitive columns (Delta stats)."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.num_records = 0
        self.null_count: dict[str, int] = {}
        self.min: dict[str, Any] = {}
        self.max: dict[str, Any] = {}
        self._no_minmax: set[str] = set()

    def update(self, table: pa.Table) -> None:
        self.num_records += table.num_rows
        for f in self.schema:
            t = f.type
            if pa.types.is_nested(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
                continue
            column = table.column(f.name)
            self.null_count[f.name] = self.null_count.get(f.name, 0) + column.null_count
            if f.name in self._no_minmax or not self._has_minmax(t, column):
                self._no_minmax.add(f.name)
                continue
            result = pc.min_max(column).as_py() if column.null_count < len(column) else {"min": None, "max": None}
            for key, store, pick in (("min", self.min, min), ("max", self.max, max)):
                value = result[key]
                if value is not None:
                    store[f.name] = value if f.name not in store else pick(store[f.name], value)

    @staticmethod
    def _has_minmax(t: pa.DataType, column: pa.ChunkedArray) -> bool:
        if pa.types.is_integer(t) or pa.types.is_date32(t):
            return True
        if pa.types.is_floating(t):
            return not pc.any(pc.is_nan(column)).as_py()
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            longest = pc.max(pc.utf8_length(column)).as_py()
            return longest is None or longest <= _MAX_STAT_STRING
        return False  # timestamps/decimals/bools: exact Delta stats need care; they are optional

    def to_json(self) -> str:
        def value(v: Any) -> Any:
            return v.isoformat() if hasattr(v, "isoformat") else v

        return json.dumps({
            "numRecords": self.num_records,
            "minValues": {k: value(v) for k, v in self.min.items() if k not in self._no_minmax},
            "maxValues": {k: value(v) for k, v in self.max.items() if k not in self._no_minmax},
            "nullCount": self.null_count,
        })


class PartFile:
    """A Parquet file at ``path`` (relative to the table root, as stored), opened at its first rows."""

    def __init__(self, storage: Storage, path: str, schema: pa.Schema) -> None:
        self.storage = storage
        self.path = path
        self.schema = schema
        self.stats = ColumnStats(schema)
        self._writer: pq.ParquetWriter | None = None
        self._sink: Any = None

    @property
    def opened(self) -> bool:
        return self._writer is not None

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            full = self.storage.full_path(self.path)
            try:
                if self.storage.is_local:
                    self.storage.fs.create_dir(full.rsplit("/", 1)[0], recursive=True)
                self._sink = self.storage.fs.open_output_stream(full)
            except OSError as e:
                raise StorageError(f"cannot create {self.storage.uri_of(self.path)}: {e}") from e
            self._writer = pq.ParquetWriter(self._sink, self.schema)
        self._writer.write_table(table)
        self.stats.update(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer = None

    def size(self) -> int:
        try:
            return self.storage.fs.get_file_info(self.storage.full_path(self.path)).size or 0
        except OSError as e:
            raise StorageError(f"cannot stat {self.storage.uri_of(self.path)}: {e}") from e
