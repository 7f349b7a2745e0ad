"""Writes split over many processes: each task writes chunks + one Parquet file, one driver commits.

Scalar tensors stored inline (``inline.py``) go into the Parquet file as plain columns, with stats.

Task side: :class:`TaskWriter` turns Arrow batches into chunk files and ONE Parquet file under the
table root, and describes that file as :class:`WrittenFiles` (the fields of a Delta ``AddAction``,
picklable). Driver side: :func:`commit_written` commits every task's file as ONE Delta transaction
(creating the table in that same commit when it does not exist yet), :func:`discard_written`
deletes what failed or aborted tasks wrote. Nothing a task writes is visible before the commit.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from deltalake.transaction import (
    AddAction,
    CommitProperties,
    create_table_with_add_actions,
)

from deeplake_spark.dataset import delta_log
from deeplake_spark.dataset.arrow_tensors import tensor_refs
from deeplake_spark.dataset.commit_info import commit_metadata
from deeplake_spark.dataset.create_target import check_create_target
from deeplake_spark.dataset.inline import inline_array
from deeplake_spark.dataset.part_files import PartFile
from deeplake_spark.dataset.partitioning import partition_columns, partition_folder, value_text
from deeplake_spark.dataset.schema import DatasetSchema
from deeplake_spark.dataset.writer import TensorColumnWriter
from deeplake_spark.errors import (
    CommitConflict,
    DatasetExistsError,
    DatasetNotFoundError,
    SchemaError,
    StorageError,
)
from deeplake_spark.format.images import image_format
from deeplake_spark.storage import Storage, delta_storage_options

log = logging.getLogger(__name__)

#: Buffered rows (tabular values + refs) per task before a Parquet row group is written.
DEFAULT_ROW_GROUP_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class WrittenFiles:
    """What one task wrote: a Parquet file (the fields of its Delta AddAction) and its chunk files.

    ``path`` is relative to the table root, as stored (delta-rs percent-encodes it in the log);
    ``compressions`` holds, per tensor whose image compression is detected from the data, the
    formats seen and how often. A task writing a partitioned table writes one file per partition
    value it sees: the first is described here, the others in ``partition_files``.
    """

    path: str | None
    size: int
    num_records: int
    stats: str
    chunk_paths: tuple[str, ...] = ()
    partition_values: dict[str, str | None] = field(default_factory=dict)
    compressions: dict[str, dict[str, int]] = field(default_factory=dict)
    partition_files: tuple[WrittenFiles, ...] = ()

    def data_files(self) -> list[WrittenFiles]:
        """Every Parquet file of the task (one, or one per partition), empty when it wrote no row."""
        return ([self] if self.path is not None else []) + list(self.partition_files)

    @property
    def total_records(self) -> int:
        return sum(f.num_records for f in self.data_files())

    def add_action(self, modification_time: int) -> AddAction:
        if self.path is None:
            raise ValueError("an empty task output has no add action")
        return AddAction(self.path, self.size, dict(self.partition_values), modification_time, True, self.stats)


class TaskWriter:
    """Writes one task's rows: chunks per tensor column and one Parquet file of tabular values + refs.

    ``detect_compression`` names image tensors whose jpeg/png compression is taken from the magic
    bytes of the first sample this task sees (the driver settles the dataset's spec at commit).
    Memory is bounded by one chunk per tensor plus ``row_group_bytes`` of buffered rows.

    >>> w = TaskWriter(uri, schema, task_id=3)
    >>> w.write({"image": binary_array, "label": int_array})
    >>> files = w.finish()   # -> WrittenFiles for the driver's commit_written()
    """

    def __init__(self, uri: str, schema: DatasetSchema, *, storage_options: Mapping[str, str] | None = None,
                 task_id: int = 0, detect_compression: Iterable[str] = (),
                 row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES, partition_by: Sequence[str] = ()) -> None:
        self.storage = Storage(uri, storage_options)
        self.schema = schema
        self.arrow_schema = schema.to_arrow()
        self.detect_compression = frozenset(detect_compression)
        self.row_group_bytes = row_group_bytes
        self.task_id = task_id
        #: partition columns (already checked by the caller): rows go to one file per partition value,
        #: under its Hive folder, without the partition columns
        self.partition_by = list(partition_by)
        self.file_schema = pa.schema([f for f in self.arrow_schema if f.name not in self.partition_by],
                                     metadata=self.arrow_schema.metadata)
        self.path = self._new_file_name()
        self._writers: dict[str, TensorColumnWriter] = {}
        self._compressions: dict[str, Counter[str]] = {}
        self._buffer: list[pa.RecordBatch] = []
        self._buffered_bytes = 0
        self._files: dict[tuple[Any, ...], PartFile] = {}
        self.rows = 0

    def _new_file_name(self) -> str:
        return f"part-{self.task_id:05d}-{uuid.uuid4().hex}.parquet"

    # ---------------------------------------------------------------- tensors
    def _writer(self, name: str, values: Any) -> TensorColumnWriter:
        writer = self._writers.get(name)
        if writer is None:
            spec = self.schema.tensors[name]
            if name in self.detect_compression:
                found = _first_image_format(values)
                if found is not None:
                    spec = replace(spec, compression=found)
            writer = self._writers[name] = TensorColumnWriter(self.storage, spec, dataset=self.storage.uri)
        return writer

    def _refs(self, name: str, values: Any) -> pa.Array:
        if name in self.detect_compression:
            for fmt in _image_formats(values):
                self._compressions.setdefault(name, Counter())[fmt] += 1
        return tensor_refs(self._writer(name, values), values, row_offset=self.rows)

    # ------------------------------------------------------------------ write
    def write(self, columns: Mapping[str, Any]) -> None:
        """Write one batch: ``columns`` maps every dataset column to an Arrow array (or, for
        tensors, a sequence of samples); missing columns are written as nulls."""
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise SchemaError(f"dataset {self.storage.uri}: batch columns have different lengths {lengths}")
        n = lengths.pop() if lengths else 0
        unknown = set(columns) - set(self.schema.order)
        if unknown:
            raise SchemaError(f"dataset {self.storage.uri}: unknown column(s) {sorted(unknown)}")
        arrays = []
        for f in self.arrow_schema:
            values = columns.get(f.name)
            if values is None:
                arrays.append(pa.nulls(n, f.type))
            elif f.name in self.schema.inline:
                arrays.append(inline_array(self.schema.tensors[f.name], values, row_offset=self.rows,
                                           where=f"dataset {self.storage.uri}, tensor {f.name!r}"))
            elif f.name in self.schema.tensors:
                arrays.append(self._refs(f.name, values))
            else:
                arrays.append(_tabular(values, f, self.storage.uri))
        batch = pa.RecordBatch.from_arrays(arrays, schema=self.arrow_schema)
        self.rows += n
        self._buffer.append(batch)
        self._buffered_bytes += batch.nbytes
        if self._buffered_bytes >= self.row_group_bytes:
            self._flush_rows()

    def _file(self, key: tuple[Any, ...]) -> PartFile:
        part = self._files.get(key)
        if part is None:
            path = self.path if not key else f"{partition_folder(self.partition_by, key)}/{self._new_file_name()}"
            part = self._files[key] = PartFile(self.storage, path, self.file_schema)
        return part

    def _flush_rows(self) -> None:
        if not self._buffer:
            return
        table = pa.Table.from_batches(self._buffer, schema=self.arrow_schema)
        self._buffer, self._buffered_bytes = [], 0
        if not self.partition_by:
            self._file(()).write(table)
            return
        keys = list(zip(*(table.column(c).to_pylist() for c in self.partition_by)))
        rows_of: dict[tuple[Any, ...], list[int]] = {}
        for i, key in enumerate(keys):
            # Spark and Delta store an empty string partition value as null
            rows_of.setdefault(tuple(None if v == "" else v for v in key), []).append(i)
        files = table.drop_columns(self.partition_by)
        for key, rows in rows_of.items():
            self._file(key).write(files.take(pa.array(rows, type=pa.int64())))

    def finish(self) -> WrittenFiles:
        """Flush chunks and rows, close the Parquet file(s) and describe what was written."""
        for writer in self._writers.values():
            writer.flush()
        self._flush_rows()
        chunks = tuple(p for w in self._writers.values() for p in w.written)
        counts = {name: dict(c) for name, c in self._compressions.items()}
        self._close()
        described = []
        for key, part in self._files.items():
            values = {c: value_text(v) for c, v in zip(self.partition_by, key)}
            described.append(WrittenFiles(part.path, part.size(), part.stats.num_records,
                                          part.stats.to_json(), partition_values=values))
        if not described:
            return WrittenFiles(None, 0, 0, "{}", chunks, compressions=counts)
        first, *others = described
        return replace(first, chunk_paths=chunks, compressions=counts, partition_files=tuple(others))

    def _close(self) -> None:
        for part in self._files.values():
            part.close()

    def discard(self) -> None:
        """Delete everything this task wrote (called when the task fails)."""
        try:
            self._close()
        except OSError as e:  # the sink may be broken already; the file is deleted below anyway
            log.warning("closing the Parquet files of task %d after a failure: %s", self.task_id, e)
        paths = [p for w in self._writers.values() for p in w.written] + [f.path for f in self._files.values()]
        _delete(self.storage, paths)


def _first_image_format(values: Any) -> str | None:
    for fmt in _image_formats(values, limit=1):
        return fmt
    return None


def _image_formats(values: Any, limit: int | None = None) -> Iterable[str]:
    """jpeg/png of each non-null encoded image in ``values`` (Arrow binary array or sequence)."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        if not (pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type)):
            return
        heads = pc.binary_slice(values, 0, 8).drop_null().to_pylist()
    else:
        heads = [bytes(v[:8]) for v in values if isinstance(v, (bytes, bytearray, memoryview))]
    for count, head in enumerate(heads):
        if limit is not None and count >= limit:
            return
        fmt = image_format(head)
        if fmt is not None:
            yield fmt


def _tabular(values: Any, f: pa.Field, dataset: str) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        values = pa.array(values)
    if values.type == f.type:
        return values
    try:
        return values.cast(f.type, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as e:
        raise SchemaError(f"dataset {dataset}: column {f.name!r}: {values.type} values do not fit {f.type}: {e}") from e


def _delete(storage: Storage, paths: Iterable[str]) -> list[str]:
    failed = []
    for path in paths:
        try:
            storage.delete(path)
        except StorageError as e:
            log.warning("could not delete %s (vacuum removes it later): %s", storage.uri_of(path), e)
            failed.append(path)
    return failed


# ---------------------------------------------------------------------- driver side
def existing_schema(uri: str, storage_options: Mapping[str, str] | None = None) -> DatasetSchema | None:
    """The schema of the dataset at ``uri``, or None when there is no dataset there."""
    found = existing_dataset(uri, storage_options)
    return found[0] if found is not None else None


def existing_dataset(uri: str, storage_options: Mapping[str, str] | None = None
                     ) -> tuple[DatasetSchema, list[str]] | None:
    """The schema and partition columns of the dataset at ``uri``, or None when there is none."""
    try:
        dt = delta_log.load_table(uri, storage_options)
    except DatasetNotFoundError:
        return None
    return DatasetSchema.from_arrow(delta_log.arrow_schema(dt)), partition_columns(dt)


def settle_compressions(schema: DatasetSchema, files: Sequence[WrittenFiles]) -> DatasetSchema:
    """The schema with each detected image compression set to the format most samples had."""
    seen: dict[str, Counter[str]] = {}
    for written in files:
        for name, counts in written.compressions.items():
            seen.setdefault(name, Counter()).update(counts)
    tensors = dict(schema.tensors)
    for name, counts in seen.items():
        if counts:
            tensors[name] = replace(tensors[name], compression=counts.most_common(1)[0][0])
    return DatasetSchema(schema.tabular, tensors, schema.order, schema.inline)


def commit_written(uri: str, schema: DatasetSchema, files: Sequence[WrittenFiles], *, mode: str = "append",
                   storage_options: Mapping[str, str] | None = None, create_only: bool = False,
                   operation: str = "distributed write", partition_by: Sequence[str] = (),
                   message: str | None = None) -> int:
    """Commit every task's Parquet file as ONE Delta transaction; returns the new version.

    Creates the table (with ``schema``, tensor specs included) in the same commit when it does not
    exist. ``mode``: ``"append"`` or ``"overwrite"`` (replaces all rows and the schema, not the partitioning).
    ``create_only``: fail with DatasetExistsError when the table exists by commit time.
    ``partition_by``: the partition columns the tasks wrote for (``TaskWriter(partition_by=...)``): the
    new table's partitioning, or (append) the existing table's, else nothing is committed.
    ``message``: the commit's message (Delta ``commitInfo.userMetadata``, see :mod:`commit_info`).
    """
    if mode not in ("append", "overwrite"):
        raise ValueError(f"mode must be 'append' or 'overwrite', not {mode!r}")
    delta_log.check_commit_safety(uri, storage_options)
    now_ms = int(time.time() * 1000)
    # One timestamp for all: readers order rows by (modification time, path) and paths start with
    # the task number, so rows keep the DataFrame's partition order.
    actions = [f.add_action(now_ms) for f in sorted((d for w in files for d in w.data_files()), key=lambda f: f.path or "")]
    arrow_schema = schema.to_arrow()
    properties = CommitProperties(
        custom_metadata=commit_metadata(message, {**delta_log.ENGINE_INFO, "deeplake.operation": operation}),
        max_commit_retries=delta_log.COMMIT_RETRIES)
    options = delta_storage_options(uri, storage_options)
    try:
        dt = DeltaTable(uri, storage_options=options)
    except TableNotFoundError:
        dt = None
    except (DeltaError, OSError) as e:
        raise StorageError(f"cannot open {uri}: {e}") from e
    try:
        if dt is None:
            # a first write owns the folder: refuse one that holds anything but this job's files
            check_create_target(uri, storage_options,
                                ignore=lambda name: _task_output_name(name) or name.split("=", 1)[0] in partition_by)
            try:
                create_table_with_add_actions(uri, DeltaSchema.from_arrow(arrow_schema), actions, mode="error",
                                              partition_by=list(partition_by) or None, storage_options=options,
                                              commit_properties=properties)
                return 0
            except DeltaError as e:
                if "already exists" not in str(e):
                    raise
                if create_only:
                    raise DatasetExistsError(f"{uri}: a dataset was created there while this write ran") from e
                dt = DeltaTable(uri, storage_options=options)
        elif create_only:
            raise DatasetExistsError(f"{uri} already holds a dataset")
        # delta-rs keeps a table's partitioning on overwrite too: files of another layout never fit
        table_partitions = partition_columns(dt)
        if table_partitions != list(partition_by):
            raise CommitConflict(f"{uri}: the files were written partitioned by {list(partition_by)} but the "
                                 f"dataset is partitioned by {table_partitions} (changed while the write ran?); "
                                 "nothing was committed")
        if mode == "append":
            current = DatasetSchema.from_arrow(delta_log.arrow_schema(dt))
            _check_same_schema(uri, current, schema)
            arrow_schema = current.to_arrow()
        dt.create_write_transaction(actions, mode, arrow_schema, partition_by=list(partition_by) or None,
                                    commit_properties=properties)
    except CommitFailedError as e:
        raise CommitConflict(f"{uri}: commit of {len(actions)} files failed: {e}") from e
    except DeltaError as e:
        raise StorageError(f"{uri}: commit of {len(actions)} files failed: {e}") from e
    dt.update_incremental()
    log.info("%s: committed %d files, %d rows as version %d", uri, len(actions),
             sum(f.total_records for f in files), dt.version())
    return dt.version()


#: Top-level names task writers create: their Parquet files (see TaskWriter.path) and the chunks.
_TASK_OUTPUT = re.compile(r"part-\d{5,}-[0-9a-f]{32}\.parquet|_tensors")


def _task_output_name(name: str) -> bool:
    """True for a top-level name a TaskWriter creates (this job's, or a killed attempt's leftover)."""
    return _TASK_OUTPUT.fullmatch(name) is not None


def _check_same_schema(uri: str, current: DatasetSchema, written: DatasetSchema) -> None:
    """Refuse an append whose files were written for another schema (changed while tasks ran)."""
    problems = []
    if set(current.order) != set(written.order):
        problems.append(f"columns {list(current.order)} vs {list(written.order)}")
    for name in current.order:
        if name not in written.order:
            continue
        if name in current.tensors or name in written.tensors:
            a, b = current.tensors.get(name), written.tensors.get(name)
            if a is None or b is None or (a.htype, a.dtype, a.shape) != (b.htype, b.dtype, b.shape):
                problems.append(f"tensor {name!r}")
            elif (name in current.inline) != (name in written.inline):
                problems.append(f"tensor {name!r} stored {'inline' if name in current.inline else 'in chunks'}")
        elif not current.tabular.field(name).type.equals(written.tabular.field(name).type):
            problems.append(f"column {name!r}: {current.tabular.field(name).type} vs {written.tabular.field(name).type}")
    if problems:
        raise CommitConflict(f"{uri}: the dataset's schema changed while the write ran ({'; '.join(problems)}); "
                             "nothing was committed, retry the write")


def discard_written(uri: str, files: Iterable[WrittenFiles], storage_options: Mapping[str, str] | None = None
                    ) -> list[str]:
    """Delete the Parquet and chunk files of tasks whose job failed; returns paths left behind."""
    storage = Storage(uri, storage_options)
    paths: list[str] = []
    for written in files:
        paths.extend(written.chunk_paths)
        paths.extend(f.path for f in written.data_files() if f.path)
    failed = _delete(storage, paths)
    log.info("%s: deleted %d files of an aborted write", uri, len(paths) - len(failed))
    return failed
