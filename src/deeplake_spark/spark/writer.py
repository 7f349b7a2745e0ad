"""Write side of the ``deeplake`` Spark source: ``df.write.format("deeplake").mode(m).save(path)``.

Every Spark task writes its own chunk files and ONE Parquet file and sends their description to
the driver in its commit message; the driver commits all files as ONE Delta transaction. A failed
task deletes what it wrote; a failed job's ``abort`` deletes the files of the tasks that
succeeded, so no row of a failed write ever becomes visible. Retried task attempts do not
duplicate rows: only the messages of successful attempts reach ``commit``.

Save modes. PySpark 4.2 (as 4.3) lets only ``append`` and ``overwrite`` reach a Python data source;
``errorifexists`` (Spark's default) and ``ignore`` fail in Spark's analyzer with
``UNSUPPORTED_DATA_SOURCE_SAVE_MODE`` before any deeplake code runs. Use either

* :func:`write`: ``write(df, path, mode="ignore", **options)`` (all four modes), or
* ``.mode("append").option("saveMode", "errorifexists" | "ignore")``.

Partitioned datasets: writes into an existing one follow its partitioning (each task writes one
file per partition value under ``<column>=<value>/``); a new one is partitioned with option
``partitionBy`` (``write(df, path, partition_by=[...])``). Spark's own ``.partitionBy(...)`` never
reaches a Python data source: PySpark 4.2 refuses it (``IllegalArgumentException: The provided
partitioning or clustering columns do not match the existing table's``) before any deeplake code runs.

Commit message: option ``message`` (or delta-spark's spelling ``userMetadata``) is stored as the
commit's ``commitInfo.userMetadata`` (``ds.history()[i]["message"]``, ``deeplake-spark history``,
delta-spark's ``DESCRIBE HISTORY``), as ``ds.append(..., message=...)`` does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark import TaskContext
from pyspark.sql import DataFrame
from pyspark.sql.datasource import (
    DataSourceArrowWriter,
    DataSourceWriter,
    WriterCommitMessage,
)
from pyspark.sql.types import StructType

from deeplake_spark.dataset.create_target import check_create_target
from deeplake_spark.dataset.delta_log import check_commit_safety
from deeplake_spark.dataset.distributed import (
    TaskWriter,
    WrittenFiles,
    commit_written,
    discard_written,
    existing_dataset,
    existing_schema,
    settle_compressions,
)
from deeplake_spark.dataset.partitioning import check_partition_columns
from deeplake_spark.errors import (
    CommitConflict,
    DatasetExistsError,
    InvalidOptionError,
    SchemaError,
)
from deeplake_spark.format.spec import TensorSpec
from deeplake_spark.spark import types as T
from deeplake_spark.spark.write_options import (
    WriteOptions,
    WritePlan,
    normalize_save_mode,
    plan_write,
)

log = logging.getLogger(__name__)


@dataclass
class DeepLakeCommitMessage(WriterCommitMessage):
    """What one successful task attempt wrote (files are not visible until the driver commits)."""

    files: WrittenFiles
    partition: int
    attempt: int


@dataclass
class _Skipped(WriterCommitMessage):
    """Message of a task that wrote nothing (``ignore`` mode on an existing dataset)."""


class DeepLakeArrowWriter(DataSourceArrowWriter):
    """Writes Arrow batches of one Spark task; commits or aborts the whole job on the driver.

    Holds options and the plan only (picklable); files are opened inside ``write``.
    """

    def __init__(self, options: WriteOptions, plan: WritePlan, *, mode: str, create_only: bool = False,
                 quiet_if_exists: bool = False, source_specs: dict[str, TensorSpec] | None = None,
                 partition_by: Sequence[str] = ()) -> None:
        self.options = options
        self.partition_by = tuple(partition_by)
        self.plan = plan
        self.mode = mode
        self.create_only = create_only
        self.quiet_if_exists = quiet_if_exists
        self.source_specs = dict(source_specs or {})

    def write(self, iterator: Iterator[pa.RecordBatch]) -> WriterCommitMessage:
        context = TaskContext.get()
        partition = context.partitionId() if context is not None else 0
        attempt = context.attemptNumber() if context is not None else 0
        task = TaskWriter(self.options.path, self.plan.schema, storage_options=self.options.storage_options,
                          task_id=partition, detect_compression=self.plan.detect_compression,
                          row_group_bytes=self.options.row_group_bytes, partition_by=self.partition_by)
        try:
            for batch in iterator:
                task.write(self._columns(batch))
            files = task.finish()
        except BaseException:
            task.discard()
            raise
        log.info("task %d (attempt %d) wrote %d rows to %s", partition, attempt, files.total_records, self.options.path)
        return DeepLakeCommitMessage(files, partition, attempt)

    def _columns(self, batch: pa.RecordBatch) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for plan in self.plan.columns:
            values = batch.column(plan.source)
            if plan.kind == "image_struct":
                out[plan.target] = _image_struct_samples(values)
            elif plan.kind == "bytes_struct":
                out[plan.target] = _bytes_struct_samples(values, self.source_specs[plan.source])
            else:
                out[plan.target] = values
        return out

    def commit(self, messages: list[WriterCommitMessage | None]) -> None:
        files = [m.files for m in messages if isinstance(m, DeepLakeCommitMessage)]
        if any(isinstance(m, _Skipped) for m in messages):
            return
        schema = settle_compressions(self.plan.schema, files) if self.plan.new_schema else self.plan.schema
        try:
            version = commit_written(self.options.path, schema, files, mode=self.mode,
                                     storage_options=self.options.storage_options, create_only=self.create_only,
                                     operation=f"spark {self.mode}", partition_by=self.partition_by,
                                     message=self.options.message)
        except (CommitConflict, DatasetExistsError, SchemaError) as e:
            # Definitely not committed: remove what the tasks wrote.
            discard_written(self.options.path, files, self.options.storage_options)
            if isinstance(e, DatasetExistsError) and self.quiet_if_exists:
                log.info("%s: dataset created concurrently; mode 'ignore' leaves it untouched", self.options.path)
                return
            raise
        log.info("%s: Spark %s of %d rows committed as version %d", self.options.path, self.mode,
                 sum(f.total_records for f in files), version)

    def abort(self, messages: list[WriterCommitMessage | None]) -> None:
        files = [m.files for m in messages if isinstance(m, DeepLakeCommitMessage)]
        left = discard_written(self.options.path, files, self.options.storage_options)
        log.warning("%s: write aborted; deleted the files of %d finished tasks%s", self.options.path, len(files),
                    f" ({len(left)} left for vacuum)" if left else "")


class _SkipWriter(DataSourceArrowWriter):
    """``ignore`` on an existing dataset: tasks read nothing, the driver commits nothing."""

    def write(self, iterator: Iterator[pa.RecordBatch]) -> WriterCommitMessage:
        return _Skipped()


def _image_struct_samples(values: pa.Array) -> list[np.ndarray | None]:
    """Spark image source rows (BGR[A] pixel bytes + height/width/nChannels) as RGB[A] arrays."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    out: list[np.ndarray | None] = []
    for row in values.to_pylist():
        if row is None or row.get("data") is None:
            out.append(None)
            continue
        channels = int(row["nChannels"])
        pixels = np.frombuffer(row["data"], dtype=np.uint8).reshape(int(row["height"]), int(row["width"]), channels)
        if channels >= 3:
            pixels = pixels[..., [2, 1, 0, *range(3, channels)]]
        out.append(pixels)
    return out


def _bytes_struct_samples(values: pa.Array, spec: TensorSpec) -> list[Any]:
    """``tensors='bytes'`` rows (stored bytes + shape) of a tensor with ``spec`` as samples."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    dtype = None if spec.is_sample_compressed or spec.dtype == "str" else np.dtype(spec.dtype).newbyteorder("<")
    out: list[Any] = []
    for row in values.to_pylist():
        if row is None or row.get("data") is None:
            out.append(None)
        elif spec.dtype == "str":
            out.append(row["data"].decode("utf-8"))
        elif dtype is None:
            out.append(row["data"])
        else:
            out.append(np.frombuffer(row["data"], dtype=dtype).reshape(row["shape"]))
    return out


def make_writer(options: dict[str, str], schema: StructType, overwrite: bool) -> DataSourceWriter:
    """The writer for ``DeepLakeDataSource.writer``: validates options and the schema up front."""
    opts = WriteOptions.parse(options)
    mode = opts.save_mode or ("overwrite" if overwrite else "append")
    if overwrite and mode != "overwrite":
        raise InvalidOptionError(f"option saveMode={opts.save_mode!r} contradicts Spark's mode('overwrite')")
    if not overwrite and mode == "overwrite":
        raise InvalidOptionError("option saveMode='overwrite' needs Spark's mode('overwrite')")
    # Refuse unsafe object-store commits before any task writes a byte.
    check_commit_safety(opts.path, opts.storage_options)
    found = existing_dataset(opts.path, opts.storage_options)
    existing, table_partitions = found if found is not None else (None, [])
    if existing is None:
        # A first write creates the dataset: refuse a folder that holds a user's files before any
        # task writes into it (commit_written checks again when it creates version 0).
        check_create_target(opts.path, opts.storage_options)
    if existing is not None and mode == "errorifexists":
        raise DatasetExistsError(f"{opts.path} already holds a dataset (save mode errorifexists); use mode "
                                 "'append' or 'overwrite', or 'ignore' to leave it untouched")
    if existing is not None and mode == "ignore":
        log.info("%s exists; save mode 'ignore' writes nothing", opts.path)
        return _SkipWriter()
    replace_schema = mode == "overwrite" and opts.overwrite_schema
    plan = plan_write(schema, opts, None if replace_schema else existing)
    source_specs = {f.name: T.spec_of_json(f.metadata[T.META_SPEC]) for f in schema.fields
                    if any(p.source == f.name and p.kind == "bytes_struct" for p in plan.columns)}
    partition_by = _partitioning(opts, plan, table_partitions if existing is not None else None)
    return DeepLakeArrowWriter(opts, plan, mode="overwrite" if mode == "overwrite" else "append",
                               create_only=mode in ("errorifexists", "ignore"), quiet_if_exists=mode == "ignore",
                               source_specs=source_specs, partition_by=partition_by)


def _partitioning(opts: WriteOptions, plan: WritePlan, table_partitions: list[str] | None) -> list[str]:
    """The partition columns the tasks write for: an existing dataset's own (its partitioning never
    changes, on overwrite neither), or option ``partitionBy`` for a new one (checked by name)."""
    by_lower = {name.lower(): name for name in plan.schema.order}
    asked = [by_lower.get(c.lower(), c) for c in opts.partition_by]
    if table_partitions is not None:
        if asked and asked != table_partitions:
            raise InvalidOptionError(f"option 'partitionBy' {asked}: dataset {opts.path} is partitioned by "
                                     f"{table_partitions}, and a write cannot change a dataset's partitioning")
        return table_partitions
    return check_partition_columns(plan.schema, asked, dataset=opts.path)


def _option_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def write(df: DataFrame, path: str, *, mode: str = "errorifexists", partition_by: Sequence[str] | None = None,
          **options: Any) -> None:
    """Write ``df`` to the dataset at ``path`` with any Spark save mode.

    ``mode``: ``append``, ``overwrite``, ``errorifexists`` (default, as in Spark; raises
    DatasetExistsError) or ``ignore`` (returns without running a job when the dataset exists).
    ``partition_by``: tabular columns to partition a new dataset by (option ``partitionBy``; an
    existing dataset keeps its own partitioning). ``options``: as for
    ``df.write.format("deeplake").options(...)``; use ``**{"tensor.image.htype": "image"}`` for dotted names.

    >>> write(df, "/data/pets", mode="append", **{"tensor.label.htype": "class_label"})
    >>> write(df, "/data/by_split", partition_by=["split"])
    """
    mode = normalize_save_mode(mode)
    text = {k: _option_text(v) for k, v in options.items()}
    if partition_by is not None:
        text["partitionBy"] = partition_by if isinstance(partition_by, str) else ",".join(partition_by)
    if mode in ("errorifexists", "ignore"):
        parsed = WriteOptions.parse({**text, "path": path})
        if existing_schema(parsed.path, parsed.storage_options) is not None:
            if mode == "ignore":
                log.info("%s exists; save mode 'ignore' writes nothing", parsed.path)
                return
            raise DatasetExistsError(f"{parsed.path} already holds a dataset (save mode errorifexists); use mode "
                                     "'append' or 'overwrite', or 'ignore' to leave it untouched")
        text["saveMode"] = mode
    spark_mode = "overwrite" if mode == "overwrite" else "append"
    df.write.format("deeplake").mode(spark_mode).options(**text).save(path)
