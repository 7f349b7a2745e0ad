"""The ``deeplake`` Spark data source (PySpark Python Data Source API).

>>> spark = deeplake_spark.spark_session()
>>> df = spark.read.format("deeplake").option("tensors", "bytes").load("/data/cats")
>>> spark.sql("CREATE TABLE cats USING deeplake OPTIONS (path '/data/cats')")

Read options (see ``read_options.py``): ``versionAsOf``, ``timestampAsOf``, ``tensors``
(``ref`` | ``bytes`` | ``array`` or ``col=mode,...``), ``columns`` (comma list), and storage
settings (``storage.<key>`` or ``aws_*``...).

Why the schema carries the options: for ``CREATE TABLE ... USING deeplake OPTIONS (...)``
PySpark 4.2 (as 4.3) calls ``schema()`` with the table's options but builds the reader from a source with
*empty* options. The schema that ``schema()`` returned is stored in the catalog and handed to
``reader()``, so its first field carries the read options (never storage credentials) in the
``deeplake.source`` metadata, and the reader falls back to them.

Which version a query reads (as Delta and its snapshot isolation):

* A DataFrame (``spark.read...load(path)``) and everything derived from it (``where``, ``select``,
  joins, a write made from it) reads the version that was the latest when ``load()`` ran (or the
  ``versionAsOf``/``timestampAsOf`` one), in every action, never a mix. Appends and overwrites
  committed later (even ones made from the DataFrame itself) are not seen; re-run
  ``spark.read...load()`` for a fresh DataFrame. Overwriting a dataset from a DataFrame of it is
  safe: the job reads the pinned version's files, which an overwrite commit leaves on storage.
* ``CREATE TEMPORARY VIEW v USING deeplake OPTIONS (...)`` is a saved DataFrame: it reads the
  version of its creation; ``CREATE OR REPLACE`` it to see newer commits.
* A catalog table (``CREATE TABLE t USING deeplake ...``) resolves the latest version at each
  query, as a Delta catalog table does (unless its options pin ``versionAsOf``/``timestampAsOf``).
  Each reference to the table in a query is resolved when it is planned, so a self-join planned
  across a concurrent commit can pair two versions; pin ``versionAsOf`` or use a DataFrame for that.
* A user-given schema (``spark.read.schema(...).load(path)``) skips ``schema()``: each planning
  (the first action, and each query with pushed filters) reads the latest version then.

Why pinned: ``schema()`` runs once per DataFrame (at analysis) and the DataSource object it ran on is
pickled and reused for every reader of that DataFrame, so the version it resolved is kept on that
object and handed to each reader. PySpark 4.2 (as 4.3) also caches the first planned partitions on the
relation and reuses them for later actions, so reading "the latest at each action" is not possible:
it would mix a cached plan of one version with fresh plans of another.
"""

from __future__ import annotations

from dataclasses import replace

from pyspark.sql.datasource import DataSource, DataSourceReader, DataSourceWriter
from pyspark.sql.types import StructType

import deeplake_spark.dataset as dls_dataset
from deeplake_spark.spark import types as T
from deeplake_spark.spark.read_options import ReadOptions


class DeepLakeDataSource(DataSource):
    """``spark.read.format("deeplake")`` / ``df.write.format("deeplake")``."""

    #: The version ``schema()`` resolved for this DataFrame (None: a catalog table's per-query source or a
    #: user-given schema, where schema() does not run); every reader made from this object reads it.
    _analysed_version: int | None = None

    @classmethod
    def name(cls) -> str:
        return "deeplake"

    def _options(self) -> ReadOptions:
        return ReadOptions.parse(dict(self.options))

    def schema(self) -> StructType:
        from deeplake_spark.spark.reader import source_schema

        options = self._options()
        ds = dls_dataset.open(options.path, version=options.version, timestamp=options.timestamp,
                              storage_options=options.storage_options)
        self._analysed_version = ds.version
        return source_schema(ds, options)

    def reader(self, schema: StructType) -> DataSourceReader:
        from deeplake_spark.spark.reader import make_reader

        return make_reader(self._read_options(schema), schema)

    def _read_options(self, schema: StructType) -> ReadOptions:
        source = (schema.fields[0].metadata or {}).get(T.META_SOURCE) if schema.fields else None
        if source is None:
            # A user-given schema (spark.read.schema(...)): options come from the source itself.
            options = self._options()
        elif "path" not in self.options:  # CREATE TABLE: the options only reach schema()
            options = ReadOptions.from_json(source)
        else:
            given = self._options()
            from_schema = ReadOptions.from_json(source, given.storage_options)
            # A schema copied from another dataset's DataFrame must not redirect the read.
            options = from_schema if from_schema.path == given.path else given
        if self._analysed_version is not None:
            # schema() ran on this very object for this path: read the version it planned against.
            options = replace(options, version=self._analysed_version, timestamp=None)
        return options

    def writer(self, schema: StructType, overwrite: bool) -> DataSourceWriter:
        from deeplake_spark.spark.writer import make_writer

        return make_writer(dict(self.options), schema, overwrite)
