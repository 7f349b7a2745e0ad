"""Read side of the ``deeplake`` source: schema, file planning with stats pruning, Arrow batches.

Scalar tensors stored inline are plain columns here, in every ``tensors`` mode: SQL filters, GROUP BY
and joins see their values, and their Delta min/max stats prune files like a tabular column's.

Planning (driver) opens the Delta log once, keeps the add actions of the version read and turns them
into partitions that carry the Parquet paths, so executors never list or replay the log. Executors
read Parquet with pyarrow and, for ``bytes``/``array`` columns, chunks through the dataset layer's
``SampleReader`` (each chunk read once per partition while it stays in the cache).

Partitioned tables (Delta ``partitionColumns``, Hive-style ``<col>=<value>/`` folders): partition
columns are not stored in the Parquet files; each file's values come from its add action
(``partitionValues``, typed by delta-rs) and are put back at the column's place in the schema. They
also act as exact min/max stats for pruning.

Every add action's path is checked at planning (``check_data_path``): a version naming a file outside
the dataset folder (``../x.parquet``, ``file:///...``, ``/abs/...``) is refused with
``UnsafePathError`` before anything is read, and executors re-check each path they open.

Partitions never depend on the filters of one query. PySpark 4.2 (as 4.3) keeps the partitions planned while
pushing one query's filters on the DataFrame's relation and reuses them for its later actions that
push none (``df.where("id < 2").count()`` then ``df.count()``), so files pruned for the first filter
would silently drop rows from the second. Min/max pruning is therefore on only where Spark scopes
pushdown planning to one scan (:data:`STATS_PRUNING`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql.datasource import (
    DataSourceReader,
    EqualNullSafe,
    EqualTo,
    Filter,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    InputPartition,
    IsNotNull,
    IsNull,
    LessThan,
    LessThanOrEqual,
)
from pyspark.sql.types import StructField, StructType

import deeplake_spark.dataset as dls_dataset
from deeplake_spark.dataset import ChunkCache, SampleReader
from deeplake_spark.dataset.paths import check_data_path
from deeplake_spark.errors import InvalidOptionError, SchemaError
from deeplake_spark.format.spec import TensorSpec
from deeplake_spark.spark import types as T
from deeplake_spark.spark.read_options import ReadOptions
from deeplake_spark.storage import Storage

log = logging.getLogger(__name__)

#: Upper bound of tensor bytes (stored bytes, or decoded bytes in array mode) in one Arrow batch.
TARGET_BATCH_BYTES = 8 * 1024 * 1024
#: Rows per Parquet batch (tabular columns and refs are small).
PARQUET_BATCH_ROWS = 65536
#: Chunk cache of one partition's reader.
PARTITION_CACHE_BYTES = 64 * 1024 * 1024
#: Small files are grouped into partitions of about this many Parquet bytes (ref mode only).
GROUP_TARGET_BYTES = 64 * 1024 * 1024
MIN_SPLIT_PARTITIONS = 16
# Delta's writers truncate string statistics (32 chars): a max that long may be below the real max.
_STRING_STATS_PREFIX = 32
#: Whether pushed filters may prune files. Spark 5 keeps the read planned during filter pushdown to that
#: one scan (SPARK-58551, the change that also added ``DataSourceReader.pushLimit``); PySpark <= 4.3
#: stores it on the relation, where it leaks into the DataFrame's later unfiltered actions.
STATS_PRUNING = hasattr(DataSourceReader, "pushLimit")


# ------------------------------------------------------------------------------ schema
def source_schema(ds: dls_dataset.Dataset, options: ReadOptions) -> StructType:
    """The Spark schema of ``ds`` read with ``options``; the first field carries the options."""
    order = list(ds.schema.order)
    columns = list(options.columns) if options.columns is not None else order
    unknown = [c for c in columns if c not in order]
    if unknown:
        raise InvalidOptionError(f"option 'columns': unknown column(s) {unknown} in dataset {ds.path}; allowed: {order}")
    bad_modes = [c for c in options.tensor_modes if c not in ds.schema.tensors]
    if bad_modes:
        raise InvalidOptionError(
            f"option 'tensors': {bad_modes} are not tensor columns of dataset {ds.path}; "
            f"tensor columns: {list(ds.schema.tensors)}"
        )
    fields = []
    for name in columns:
        spec = ds.schema.tensors.get(name)
        if spec is not None and name in ds.schema.inline:
            # a scalar stored inline is a plain column in every mode: its value, as array mode gives it
            fields.append(T.tensor_field(name, spec, "array", dataset=ds.path, version=ds.version))
        elif spec is not None:
            fields.append(T.tensor_field(name, spec, options.mode_of(name), dataset=ds.path, version=ds.version))
        else:
            fields.append(StructField(name, T.tabular_spark_type(name, ds.schema.tabular.field(name).type), True))
    if options.pinned:
        options = replace(options, version=ds.version, timestamp=None)
    first = fields[0]
    fields[0] = StructField(first.name, first.dataType, first.nullable,
                            {**(first.metadata or {}), T.META_SOURCE: options.to_json()})
    return StructType(fields)


def _same_types(expected: StructType, actual: StructType, dataset: str) -> None:
    by_name = {f.name: f for f in expected.fields}
    for f in actual.fields:
        want = by_name.get(f.name)
        if want is None:
            raise SchemaError(
                f"dataset {dataset}: column {f.name!r} of the Spark schema is not in the dataset (columns: "
                f"{list(by_name)}); reload the DataFrame or re-create the table"
            )
        if want.dataType != f.dataType:
            raise SchemaError(
                f"dataset {dataset}: column {f.name!r} is {want.dataType.simpleString()} in the dataset but "
                f"{f.dataType.simpleString()} in the Spark schema; reload the DataFrame or re-create the table"
            )


# ---------------------------------------------------------------------------- planning
@dataclass
class DataFile:
    """One Parquet file of the version read, with the stats used for pruning."""

    path: str
    size: int
    rows: int
    mtime: int
    stats: dict[str, tuple[Any, Any, int | None]] = field(default_factory=dict)
    #: values of the table's partition columns for this file (None: a null partition value)
    partition_values: dict[str, Any] = field(default_factory=dict)


class FilesPartition(InputPartition):
    """Parquet files (relative to the dataset root) that one Spark task reads, with each file's
    partition values (empty for an unpartitioned table)."""

    def __init__(self, paths: Sequence[str], rows: int, partition_values: Sequence[dict[str, Any]] | None = None
                 ) -> None:
        super().__init__(tuple(paths))
        self.paths = tuple(paths)
        self.rows = rows
        self.partition_values = tuple(partition_values) if partition_values is not None else tuple({} for _ in paths)


def _data_files(ds: dls_dataset.Dataset, tabular: Sequence[str]) -> list[DataFile]:
    # Tables with reader features we cannot read file by file (deletion vectors, column mapping)
    # were refused when the dataset was opened (dataset/features.py).
    dt = ds.delta_table
    actions = pa.table(dt.get_add_actions(flatten=True))
    names = set(actions.column_names)
    cols = {n: actions.column(n).to_pylist() for n in ("path", "size_bytes", "num_records")}
    mtimes = actions.column("modification_time").cast(pa.int64()).to_pylist()
    stats_cols: dict[str, tuple[list[Any], list[Any], list[Any]]] = {}
    for name in tabular:
        lists = []
        for prefix in ("min", "max", "null_count"):
            key = f"{prefix}.{name}"
            lists.append(actions.column(key).to_pylist() if key in names else [None] * actions.num_rows)
        stats_cols[name] = (lists[0], lists[1], lists[2])
    for path in cols["path"]:
        check_data_path(path, table=ds.path, action="add")  # nothing outside the dataset is ever read
    partition_columns = list(dt.metadata().partition_columns)
    # delta-rs parses each add action's partitionValues (Delta's strings) into the column's type
    partitions = {n: actions.column(f"partition.{n}").to_pylist() if f"partition.{n}" in names
                  else [None] * actions.num_rows for n in partition_columns}
    files = []
    for i in range(actions.num_rows):
        rows = int(cols["num_records"][i] or 0)
        stats = {n: (mins[i], maxs[i], nulls[i]) for n, (mins, maxs, nulls) in stats_cols.items()}
        values = {n: partitions[n][i] for n in partition_columns}
        # a partition value is the exact min and max of its column in the file
        stats.update({n: (v, v, rows if v is None else 0) for n, v in values.items() if n in tabular})
        files.append(DataFile(cols["path"][i], int(cols["size_bytes"][i] or 0), rows, int(mtimes[i] or 0),
                              stats, values))
    files.sort(key=lambda f: (f.mtime, f.path))  # commit order, as Dataset.table() returns rows
    return files


def _compare(op: str, low: Any, high: Any, value: Any) -> bool:
    """May a file whose column lies in [low, high] hold a row with ``column <op> value``?"""
    if op == "eq":
        return (low is None or low <= value) and (high is None or value <= high)
    if op == "gt":
        return high is None or high > value
    if op == "ge":
        return high is None or high >= value
    if op == "lt":
        return low is None or low < value
    return low is None or low <= value  # le


_OPS = {EqualTo: "eq", EqualNullSafe: "eq", GreaterThan: "gt", GreaterThanOrEqual: "ge", LessThan: "lt",
        LessThanOrEqual: "le"}


def may_match(file: DataFile, flt: Filter) -> bool:
    """False only when the file's min/max/null-count stats prove no row passes ``flt``."""
    attribute = getattr(flt, "attribute", ())
    if len(attribute) != 1 or attribute[0] not in file.stats:
        return True
    low, high, nulls = file.stats[attribute[0]]
    if isinstance(high, str) and len(high) >= _STRING_STATS_PREFIX:
        high = None
    if isinstance(flt, IsNull) or (isinstance(flt, EqualNullSafe) and flt.value is None):
        return nulls is None or nulls > 0
    if isinstance(flt, IsNotNull):
        return nulls is None or nulls < file.rows
    if file.rows and nulls == file.rows:
        return False  # every value is null: no comparison is true
    try:
        if isinstance(flt, In):
            return any(v is not None and _compare("eq", low, high, v) for v in flt.value)
        op = _OPS.get(type(flt))
        if op is None or flt.value is None:
            return True
        floats = isinstance(low, float) or isinstance(high, float) or isinstance(flt.value, float)
        # Spark orders NaN above every number, and Delta's min/max leave NaN out.
        if floats and (op in ("gt", "ge") or flt.value != flt.value):
            return True
        return _compare(op, low, high, flt.value)
    except TypeError:  # stats and literal of incomparable Python types (e.g. naive vs aware datetime)
        return True


def _partition_of(files: Sequence[DataFile]) -> FilesPartition:
    return FilesPartition([f.path for f in files], sum(f.rows for f in files), [f.partition_values for f in files])


def group_files(files: Sequence[DataFile], *, group: bool) -> list[FilesPartition]:
    """One partition per file; with ``group``, many small files are packed into fewer partitions."""
    if not group or len(files) <= MIN_SPLIT_PARTITIONS:
        return [_partition_of([f]) for f in files]
    total = sum(f.size for f in files)
    target = max(GROUP_TARGET_BYTES, math.ceil(total / MIN_SPLIT_PARTITIONS))
    out: list[FilesPartition] = []
    current: list[DataFile] = []
    size = 0
    for f in files:
        if current and size + f.size > target:
            out.append(_partition_of(current))
            current, size = [], 0
        current.append(f)
        size += f.size
    if current:
        out.append(_partition_of(current))
    return out


# ------------------------------------------------------------------------------ reader
class DeepLakeReader(DataSourceReader):
    """Reads one version of a dataset. Picklable: holds options, specs and file names only."""

    def __init__(self, options: ReadOptions, schema: StructType) -> None:
        ds = dls_dataset.open(options.path, version=options.version, timestamp=options.timestamp,
                              storage_options=options.storage_options)
        present = tuple(n for n in schema.fieldNames() if n in ds.schema.order) or None
        expected = source_schema(ds, replace(options, columns=present))
        _same_types(expected, schema, ds.path)
        self.options = options
        self.schema = schema
        self.uri = ds.path
        self.version = ds.version
        # chunked tensors only: inline scalars are read (and pruned by stats) like tabular columns
        self.tensors: dict[str, TensorSpec] = {
            f.name: ds.schema.tensors[f.name] for f in schema.fields if f.name in ds.schema.chunked
        }
        self.modes = {name: options.mode_of(name) for name in self.tensors}
        tabular = [f.name for f in schema.fields if f.name not in self.tensors]
        self._files: list[DataFile] | None = _data_files(ds, tabular)
        self._filters: list[Filter] = []

    def __getstate__(self) -> dict[str, Any]:
        # Spark pickles the reader into the read function before it calls partitions(): leave the
        # per-file stats (planning only) on the driver.
        return {**self.__dict__, "_files": None}

    def partitions(self) -> list[InputPartition]:
        files = self._files or []
        kept = [f for f in files if all(may_match(f, flt) for flt in self._filters)]
        if len(kept) != len(files):
            log.info("%s@%d: stats pruning kept %d of %d files", self.uri, self.version, len(kept), len(files))
        only_refs = all(mode == "ref" for mode in self.modes.values())
        return list(group_files(kept, group=only_refs))

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        paths = getattr(partition, "paths", None)
        if paths is None:  # Spark's default partition for an empty plan
            return iter(())
        return BatchReader(self).batches(paths, getattr(partition, "partition_values", None))


class StatsPruningReader(DeepLakeReader):
    """A reader that also prunes files by pushed filters; only used where STATS_PRUNING is safe."""

    def pushFilters(self, filters: list[Filter]) -> list[Filter]:
        """Keep filters for file pruning; all of them stay with Spark, which re-applies them."""
        self._filters = list(filters)
        return filters


def make_reader(options: ReadOptions, schema: StructType) -> DeepLakeReader:
    """The source's reader. Without pushFilters (PySpark 4.2, 4.3) it also works with Python filter pushdown off."""
    return (StatsPruningReader if STATS_PRUNING else DeepLakeReader)(options, schema)


class BatchReader:
    """Turns Parquet rows of one partition into Arrow batches of the Spark schema."""

    def __init__(self, reader: DeepLakeReader) -> None:
        self.reader = reader
        self.storage = Storage(reader.uri, reader.options.storage_options)
        self.target = T.arrow_schema(reader.schema)
        self.decoded = {n: m for n, m in reader.modes.items() if m != "ref"}
        self._samples: SampleReader | None = None

    @property
    def samples(self) -> SampleReader:
        if self._samples is None:
            self._samples = SampleReader(self.storage, self.reader.tensors, dataset=self.reader.uri,
                                         cache=ChunkCache(PARTITION_CACHE_BYTES))
        return self._samples

    def batches(self, paths: Sequence[str], partition_values: Sequence[dict[str, Any]] | None = None
                ) -> Iterator[pa.RecordBatch]:
        names = self.target.names
        for i, path in enumerate(paths):
            # Partitions come from planning, which checked every path; check again before opening.
            # Delta percent-encodes the path of a file in a partition folder (``k=a%20b/part-...``).
            stored_path = unquote(check_data_path(path, table=self.reader.uri, action="add"))
            constants = dict(partition_values[i]) if partition_values is not None else {}
            with self.storage.fs.open_input_file(self.storage.full_path(stored_path)) as handle:
                parquet = pq.ParquetFile(handle)
                rows = PARQUET_BATCH_ROWS if not self.decoded else 4096
                # a file written before a column was added (ALTER TABLE ADD COLUMNS, mergeSchema) lacks it:
                # Delta reads it as NULL there (see _convert); a partition column's value is the add action's
                stored = set(parquet.schema_arrow.names) - set(constants)
                present = [name for name in names if name in stored]
                for batch in parquet.iter_batches(batch_size=rows, columns=present, use_threads=False):
                    if not self.decoded:
                        yield self._convert(batch, constants)
                        continue
                    for start, stop in self._byte_slices(batch):
                        yield self._convert(batch.slice(start, stop - start), constants)

    def _byte_slices(self, batch: pa.RecordBatch) -> list[tuple[int, int]]:
        sizes = np.zeros(batch.num_rows, dtype=np.int64)
        for name, mode in self.decoded.items():
            if name in batch.schema.names:
                sizes += T.sample_sizes(batch.column(name), self.reader.tensors[name], mode)
        return T.byte_slices(sizes, TARGET_BATCH_BYTES)

    def _convert(self, batch: pa.RecordBatch, constants: dict[str, Any] | None = None) -> pa.RecordBatch:
        arrays = []
        for target_field in self.target:
            name = target_field.name
            if constants and name in constants:  # a partition column: one value for the whole file
                value = constants[name]
                arrays.append(pa.nulls(batch.num_rows, target_field.type) if value is None else
                              pa.repeat(pa.array([value]).cast(target_field.type)[0], batch.num_rows))
                continue
            if name not in batch.schema.names:  # not in this file: a column added later, NULL here
                arrays.append(pa.nulls(batch.num_rows, target_field.type))
                continue
            column = batch.column(name)
            mode = self.decoded.get(name)
            if mode is None:
                arrays.append(column if column.type == target_field.type else column.cast(target_field.type))
                continue
            arrays.append(T.resolve_refs(self.samples, self.reader.tensors[name], column.to_pylist(), mode,
                                         target_field.type))
        return pa.RecordBatch.from_arrays(arrays, schema=self.target)
