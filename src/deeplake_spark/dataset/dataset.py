"""``Dataset``: a Delta table of tabular columns, inline scalar tensors and tensor refs, and the chunk
files the refs point to."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
from deltalake import DeltaTable

from deeplake_spark.dataset import delta_log, dml, tags
from deeplake_spark.dataset.commit_info import check_message
from deeplake_spark.dataset.ingest import tabular_array, to_columns
from deeplake_spark.dataset.inline import inline_array, inline_sample, inline_samples, inline_type
from deeplake_spark.dataset.links import LinkResolver, resolve_link_columns
from deeplake_spark.dataset.partitioning import check_partition_columns, partition_columns
from deeplake_spark.dataset.progress import progress_bar
from deeplake_spark.dataset.reader import ChunkCache, SampleReader
from deeplake_spark.dataset.rows import FEW_ROWS, RowLocator, row_values
from deeplake_spark.dataset.schema import DatasetSchema
from deeplake_spark.dataset.vacuum import DEFAULT_RETENTION_HOURS, VacuumResult, vacuum
from deeplake_spark.dataset.view import DatasetView, pick_positions
from deeplake_spark.dataset.writer import TensorColumnWriter, settle_failed_write, write_tensor_column
from deeplake_spark.errors import CommitConflict, InvalidOptionError, ReadOnlyError, SchemaError, VersionNotFound
from deeplake_spark.storage import Storage, normalize_uri

log = logging.getLogger(__name__)


class Dataset:
    """A deeplake dataset at one version. Get one with :func:`create` or :func:`open`.

    >>> ds = deeplake_spark.open("/data/cats")
    >>> ds[0]["image"].shape
    (256, 256, 3)
    """

    def __init__(self, uri: str, table: DeltaTable, *, storage_options: Mapping[str, str] | None = None,
                 read_only: bool = False, link_roots: Sequence[str] | None = None) -> None:
        self.path = uri
        self.storage_options = dict(storage_options or {})
        self.storage = Storage(uri, self.storage_options)
        #: folders/prefixes besides the dataset's own that link tensors may point into (dataset/links.py)
        self.link_roots = tuple(link_roots or ())
        self._links = LinkResolver(uri, roots=self.link_roots, storage_options=self.storage_options)
        self.read_only = read_only
        self._dt = table
        self._snapshot: pa.Table | None = None
        # for ds[i] before the whole snapshot is loaded
        self._locator: RowLocator | None = None
        self._schema: DatasetSchema | None = None
        self._reader: SampleReader | None = None

    # ----------------------------------------------------------------- state
    @property
    def version(self) -> int:
        return self._dt.version()

    @property
    def schema(self) -> DatasetSchema:
        if self._schema is None:
            self._schema = DatasetSchema.from_arrow(delta_log.arrow_schema(self._dt), dataset=self.path)
        return self._schema

    @property
    def tensors(self) -> dict[str, Any]:
        """Every tensor's spec by column name (``ds.tensors["label"].class_names``), inline ones included."""
        return dict(self.schema.tensors)

    @property
    def partition_columns(self) -> list[str]:
        """The Delta table's partition columns (empty when it is not partitioned)."""
        return partition_columns(self._dt)

    @property
    def delta_table(self) -> DeltaTable:
        """The underlying ``deltalake.DeltaTable`` (at this dataset's version)."""
        return self._dt

    def _invalidate(self) -> None:
        self._snapshot = None
        self._locator = None
        self._schema = None

    def __repr__(self) -> str:
        return f"Dataset(path={self.path!r}, version={self.version}, rows={len(self)}, columns={list(self.schema.order)})"

    def __len__(self) -> int:
        if self._snapshot is not None:
            return self._snapshot.num_rows
        if self._locator is not None:
            return self._locator.num_rows
        return delta_log.row_count(self._dt)

    # ------------------------------------------------------------------ read
    def arrow_dataset(self) -> pds.Dataset:
        """The rows (tabular columns, inline scalar tensors, refs) as a pyarrow dataset in row order."""
        return delta_log.ordered_fragments_dataset(self._dt, self.schema.to_arrow())

    def table(self, columns: Sequence[str] | None = None, filter: pc.Expression | None = None) -> pa.Table:
        """Rows as an Arrow table: tabular columns and inline (scalar) tensors as values, chunked tensor
        columns as ref structs."""
        if columns is not None:
            unknown = [c for c in columns if c not in self.schema.order]
            if unknown:
                raise SchemaError(f"dataset {self.path}: unknown column(s) {unknown}; has {list(self.schema.order)}")
        try:
            if columns is None and filter is None:
                if self._snapshot is None:
                    self._snapshot = self.arrow_dataset().to_table()
                return self._snapshot
            return self.arrow_dataset().to_table(columns=list(columns) if columns is not None else None, filter=filter)
        except FileNotFoundError as e:
            raise self._files_gone(e) from e

    def _files_gone(self, error: OSError | str) -> VersionNotFound:
        return VersionNotFound(f"dataset {self.path}: a data file of version {self.version} is gone: the version was "
                               f"vacuumed after it left the retention window, open a later version ({error})")

    def reader(self, *, cache_bytes: int | None = None) -> SampleReader:
        """A sample reader with its own chunk cache (one per thread/worker is a good default)."""
        if cache_bytes is None and self._reader is not None:
            return self._reader
        reader = SampleReader(self.storage, self.schema.chunked, dataset=self.path,
                              cache=ChunkCache(cache_bytes) if cache_bytes else None)
        if cache_bytes is None:
            self._reader = reader
        return reader

    def read_tensor(self, column: str, refs: Sequence[Any], *, raw: bool = False) -> list[Any]:
        """Samples of tensor ``column`` for the cells of its column (as found in this dataset's rows).

        For a chunked tensor the cells are refs and ``raw=True`` gives the stored bytes; for an inline
        (scalar) tensor the cells are the values themselves, returned in the tensor's dtype either way.
        """
        if column not in self.schema.tensors:
            raise SchemaError(f"dataset {self.path}: {column!r} is not a tensor column; tensors: {list(self.schema.tensors)}")
        if column in self.schema.inline:
            spec = self.schema.tensors[column]
            samples = inline_samples(pa.array(list(refs), type=inline_type(spec)), spec)
            return [inline_sample(samples, i) for i in range(len(samples))]
        return self.reader().read(column, refs, raw=raw)

    def _take(self, indices: np.ndarray, columns: Sequence[str]) -> pa.Table:
        """``columns`` of the rows at ``indices`` (non-negative). A few rows of a not-yet-loaded
        snapshot are read from just the data files that hold them (``rows.RowLocator``), so ``ds[i]``
        right after ``open`` does not scan every file of the version."""
        indices = np.asarray(indices, dtype=np.int64)
        try:
            if self._snapshot is None and len(indices) <= FEW_ROWS:
                if self._locator is None:
                    self._locator = RowLocator.build(self._dt, self.schema.to_arrow())
                if self._locator is not None:
                    return self._locator.take(indices, columns)
            return self.table().select(list(columns)).take(pa.array(indices, type=pa.int64()))
        except FileNotFoundError as e:  # a Parquet file of this version (chunks are read later)
            raise self._files_gone(e) from e

    def _rows(self, indices: np.ndarray, columns: Sequence[str]) -> dict[str, Any]:
        """{column: values} of the rows at ``indices`` (see ``rows.row_values``)."""
        values = row_values(self._take(indices, columns), self.schema, columns, self.read_tensor)
        return resolve_link_columns(values, self.schema, self._links, indices)

    def __getitem__(self, key: int | slice | Sequence[int] | np.ndarray) -> Any:
        """``ds[i]`` -> {column: value} of one row; ``ds[i:j]``, ``ds[[i, j]]``, ``ds[np_array]``
        (positions or a boolean mask) -> a :class:`DatasetView` of those rows at this version."""
        if isinstance(key, str):
            raise TypeError(f"use ds[:][{key!r}], ds.table(columns=[{key!r}]) or ds[i][{key!r}]; "
                            "a dataset takes row positions, a view takes column names")
        if isinstance(key, (int, np.integer)):
            n, i = len(self), int(key)
            if not -n <= i < n:
                raise IndexError(f"dataset {self.path} (version {self.version}): index {i} out of range for {n} rows")
            row = self._rows(np.array([i % n]), self.schema.order)
            return {name: inline_sample(values, 0) if name in self.schema.inline else values[0]
                    for name, values in row.items()}
        return DatasetView(self, pick_positions(key, len(self), f"dataset {self.path} (version {self.version})"))

    def filter(self, predicate: str | pc.Expression) -> DatasetView:
        """A view of the rows for which ``predicate`` is true, pinned to this version (see
        :meth:`DatasetView.filter`): ``ds.filter("label = 3 and split = 'train'")``."""
        return DatasetView(self).filter(predicate)

    def query(self, sql: str) -> DatasetView:
        """The rows a SQL ``SELECT ... FROM ds`` picks, in its order, as a view pinned to this version
        (DuckDB, see :meth:`DatasetView.query`): ``ds.query("SELECT * FROM ds WHERE label = 3 ORDER BY id LIMIT 10")``."""
        return DatasetView(self).query(sql)

    def sql(self, sql: str) -> pa.Table:
        """Any one SQL ``SELECT`` over ``ds`` (aggregates, GROUP BY ...) as an Arrow table (see :meth:`DatasetView.sql`)."""
        return DatasetView(self).sql(sql)

    def search(self, query: Any, k: int = 10, *, column: str | None = None, metric: str = "cosine",
               filter: str | pc.Expression | None = None, columns: Sequence[str] | None = None) -> Any:
        """The ``k`` rows nearest to ``query`` in an embedding tensor, best first: a ``SearchResult``
        (a list of them for a ``(q, d)`` batch of queries); see :func:`deeplake_spark.dataset.search.search`."""
        from deeplake_spark.dataset.search import search  # search.py imports view.py, which this module imports

        return search(self, query, k, column=column, metric=metric, filter=filter, columns=columns)

    def video_frames(self, column: str, index: int, *, start: int | None = None, stop: int | None = None,
                     step: int | None = None) -> np.ndarray:
        """uint8 ``(T, H, W, 3)`` frames of row ``index``'s video in ``column`` (needs the ``video`` extra, PyAV)."""
        return self[index][column].frames(start=start, stop=stop, step=step)

    # ----------------------------------------------------------------- write
    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnlyError(
                f"dataset {self.path} is open read-only at version {self.version}; "
                "open it without version/timestamp to write"
            )
        # delete/update/restore/vacuum commit through delta-rs directly: same S3 rule as append
        delta_log.check_commit_safety(self.path, self.storage_options)

    def _write(self, data: Any, mode: str, progress: bool | None, message: str | None) -> int:
        self._check_writable()
        message = check_message(message, dataset=self.path, operation=mode)
        schema = self.schema
        columns, n = to_columns(data, schema, dataset=self.path)
        bar = progress_bar(n * max(len(schema.chunked), 1), f"{mode} {os.path.basename(self.path)}", "sample", progress)
        writers = [TensorColumnWriter(self.storage, spec, dataset=self.path) for spec in schema.chunked.values()]
        by_name = {w.spec.name: w for w in writers}
        start_version, write_id = self._dt.version(), uuid.uuid4().hex
        committing = False
        try:
            arrays = []
            for name in schema.order:
                if name in by_name:
                    refs, _ = write_tensor_column(self.storage, by_name[name].spec, columns[name],
                                                  dataset=self.path, writer=by_name[name])
                    arrays.append(refs)
                    bar.update(n)
                elif name in schema.inline:
                    arrays.append(inline_array(schema.tensors[name], columns[name],
                                               where=f"dataset {self.path}, tensor {name!r}"))
                else:
                    arrays.append(tabular_array(columns[name], schema.tabular.field(name), dataset=self.path))
            table = pa.Table.from_arrays(arrays, schema=schema.to_arrow())
            committing = True
            version = delta_log.write_rows(self._dt, table, mode=mode, storage_options=self.storage_options,
                                           operation=mode, write_id=write_id, message=message)
        except BaseException as e:
            landed = settle_failed_write(self.storage, writers, e, committing=committing, write_id=write_id,
                                         start_version=start_version)
            if committing:
                self._invalidate()  # the handle may have moved to a newer version
            if landed is None:
                raise
            version = landed  # the commit is in the log after all: the write succeeded
        finally:
            bar.close()
        self._invalidate()
        log.info("%s %d rows to %s -> version %d", mode, n, self.path, version)
        return version

    def append(self, data: Any, *, progress: bool | None = None, message: str | None = None) -> int:
        """Append rows in one atomic commit; returns the new version.

        ``data``: a dict of columns (numpy arrays, lists, Arrow arrays; encoded JPEG/PNG bytes for
        image tensors), a list of row dicts, a pyarrow Table/RecordBatch or a pandas DataFrame.
        Chunks are written first; if anything fails, no row becomes visible. ``progress``: tqdm bar
        (None: only for big appends on a terminal; False: silent). ``message``: the commit message,
        kept as the commit's ``userMetadata`` and shown by :meth:`history` (and Spark's DESCRIBE HISTORY).
        """
        return self._write(data, "append", progress, message)

    extend = append

    def overwrite(self, data: Any, *, progress: bool | None = None, message: str | None = None) -> int:
        """Replace all rows in one commit (old versions stay readable until vacuumed)."""
        return self._write(data, "overwrite", progress, message)

    def delete(self, predicate: str | None = None, *, message: str | None = None) -> int:
        """Delete rows matching a SQL predicate on tabular columns (all rows when None); returns the
        new version. ``message``: the commit message (see :meth:`append`)."""
        return dml.delete_rows(self, predicate, message=message)

    def update(self, updates: Mapping[str, str] | None = None, *, new_values: Mapping[str, Any] | None = None,
               predicate: str | None = None, message: str | None = None) -> int:
        """Update tabular columns and inline (scalar) tensors: ``updates`` holds SQL expressions,
        ``new_values`` literal values (checked against the tensor's dtype, e.g. ``{"label": 3}``)."""
        return dml.update_rows(self, updates, new_values, predicate, message=message)

    def restore(self, version: int | str | datetime, *, message: str | None = None) -> int:
        """Make ``version`` (or a timestamp) the content of a new latest version; returns that version
        (``ds.restore(ds.tags()["v1.0"])`` for a tag).

        Restoring the latest version itself is a no-op: nothing is committed and the latest version
        is returned (Delta has nothing to restore).
        """
        return dml.restore_version(self, version, message=message)

    def _after_commit(self) -> int:
        # delta-rs leaves the handle at the version it committed; other writers may already follow
        version = self._dt.version()
        self._dt.update_incremental()
        self._invalidate()
        return version

    def _conflict(self, operation: str, error: Exception) -> CommitConflict:
        return CommitConflict(f"dataset {self.path}: {operation} lost to a concurrent commit ({error}); nothing of it "
                              "was committed, retry it")

    def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Commits, newest first (Delta's commitInfo: version, timestamp, operation, message, ...)."""
        return delta_log.history(self._dt, self.storage, limit)

    # ------------------------------------------------------------------ tags
    def tag(self, name: str, version: int | None = None) -> int:
        """Name ``version`` (default: this dataset's version) ``name``; returns the version tagged.

        A tag is never overwritten (:meth:`delete_tag` first) and keeps its version from vacuum.
        ``deeplake_spark.open(path, tag=name)`` opens it (see docs/VERSIONING.md).
        """
        tags.check_tag_name(name, dataset=self.path)
        target = self.version if version is None else version
        table = delta_log.load_table(self.path, self.storage_options, version=target)
        missing = delta_log.first_missing_file(table, self.storage)
        if missing is not None:
            raise VersionNotFound(f"dataset {self.path}: cannot tag version {target}: its data file {missing} was "
                                  "vacuumed")
        tags.create_tag(self.storage, name, target)
        return target

    def tags(self) -> dict[str, int]:
        """Every tag of the dataset: {name: version}."""
        return tags.read_tags(self.storage)

    def delete_tag(self, name: str) -> None:
        """Remove tag ``name`` (its version's files become vacuumable once outside the retention window)."""
        tags.delete_tag(self.storage, name)

    def vacuum(self, retention_hours: float = DEFAULT_RETENTION_HOURS, *, dry_run: bool = False,
               enforce_retention_duration: bool = True, progress: bool | None = None) -> VacuumResult:
        """Delete Parquet and chunk files that no version inside the retention window needs.

        ``progress``: tqdm bars (None: only for big vacuums on a terminal; False: silent).
        """
        self._check_writable()
        result = vacuum(self._dt, self.storage, retention_hours=retention_hours, dry_run=dry_run,
                        enforce_retention_duration=enforce_retention_duration, progress=progress)
        self._invalidate()
        return result

    def show(self, n: int = 8, columns: Sequence[str] | None = None, **options: Any) -> Any:
        """An HTML grid of the first ``n`` samples (Jupyter / Databricks); see ``deeplake_spark.viz.show``."""
        from deeplake_spark.viz import show  # integration layer, imported lazily

        return show(self, n, columns, **options)

    def pytorch(self, **loader_options: Any) -> Any:
        """A streaming torch ``DataLoader`` over this dataset (see ``deeplake_spark.torch``)."""
        return torch_loader(self, **loader_options)


def torch_loader(rows: Dataset | DatasetView, **loader_options: Any) -> Any:
    """``rows.pytorch(...)`` for a dataset or a view: the one place the dataset layer hands rows to
    the torch integration (imported lazily; see .importlinter)."""
    from deeplake_spark.torch import make_dataset_loader  # integration layer, imported lazily

    return make_dataset_loader(rows, **loader_options)


def create(path: str | os.PathLike[str], schema: Mapping[str, Any] | DatasetSchema, *,
           storage_options: Mapping[str, str] | None = None, description: str | None = None,
           partition_by: Sequence[str] | str | None = None, link_roots: Sequence[str] | None = None) -> Dataset:
    """Create an empty dataset (version 0) at ``path``.

    ``partition_by``: tabular columns (string, integer, boolean or date) to partition the Delta table
    by; appends then write each partition's rows under ``<column>=<value>/`` (see docs/FORMAT.md).
    ``link_roots``: where ``link`` tensors may point besides the dataset folder (as for :func:`open`).

    >>> ds = create("/tmp/ds", {"image": tensor("image"), "label": "int64"})
    >>> ds = create("/tmp/ds2", {"image": tensor("image"), "split": "string"}, partition_by=["split"])
    """
    uri = normalize_uri(path)
    parsed = DatasetSchema.from_mapping(schema)
    partitions = check_partition_columns(parsed, partition_by, dataset=uri) if partition_by is not None else None
    table = delta_log.create_table(uri, parsed.to_arrow(), storage_options, description=description,
                                   partition_by=partitions)
    return Dataset(uri, table, storage_options=storage_options, link_roots=link_roots)


def open(path: str | os.PathLike[str], version: int | None = None, timestamp: str | datetime | None = None, *,
         storage_options: Mapping[str, str] | None = None, tag: str | None = None,
         link_roots: Sequence[str] | None = None) -> Dataset:  # noqa: A001
    """Open a dataset at its latest version, or read-only at a past ``version``/``timestamp``/``tag``.

    ``link_roots``: folders or URL prefixes (``s3://bucket/images/``) that ``link`` tensors may point into
    besides the dataset's own folder; a link anywhere else is refused when read (docs/FORMAT.md, link).
    """
    uri = normalize_uri(path)
    if tag is not None:
        if version is not None or timestamp is not None:
            raise InvalidOptionError(f"dataset {uri}: pass one of version, timestamp and tag, not several")
        version = tags.tag_version(Storage(uri, storage_options), tag)
    table = delta_log.load_table(uri, storage_options, version=version, timestamp=timestamp)
    past = version is not None or timestamp is not None
    ds = Dataset(uri, table, storage_options=storage_options, read_only=past, link_roots=link_roots)
    _ = ds.schema  # damaged or hostile tensor specs fail here, typed, not at a later read
    if past:
        missing = delta_log.first_missing_file(ds.delta_table, ds.storage)
        if missing is not None:
            raise ds._files_gone(f"{missing} is missing")
    return ds

