"""The ``deeplake`` Spark data source (PySpark Python Data Source API).

>>> spark = deeplake_spark.spark_session()
>>> df = spark.read.format("deeplake").option("tensors", "bytes").load("/data/cats")
>>> spark.sql("CREATE TABLE cats USING deeplake OPTIONS (path '/data/cats')")

Read options (see ``read_options.py``): ``versionAsOf``, ``timestampAsOf``, ``tensors``
(``ref`` | ``bytes`` | ``array`` or ``col=mode,...``), ``columns`` (comma list), and storage
settings (``storage.<key>`` or ``aws_*``...).

Why the schema carries the options: for ``CREATE TABLE ... USING deeplake OPTIONS (...)``
PySpark 4.3 calls ``schema()`` with the table's options but builds the reader from a source with
*empty* options. The schema that ``schema()`` returned is stored in the catalog and handed to
``reader()``, so its first field carries the read options (never storage credentials) in the
``deeplake.source`` metadata, and the reader falls back to them.
"""

from __future__ import annotations

from pyspark.sql.datasource import DataSource, DataSourceReader, DataSourceWriter
from pyspark.sql.types import StructType

import deeplake_spark.dataset as dls_dataset
from deeplake_spark.spark import types as T
from deeplake_spark.spark.read_options import ReadOptions


class DeepLakeDataSource(DataSource):
    """``spark.read.format("deeplake")`` / ``df.write.format("deeplake")``."""

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
        return source_schema(ds, options)

    def reader(self, schema: StructType) -> DataSourceReader:
        from deeplake_spark.spark.reader import DeepLakeReader

        source = (schema.fields[0].metadata or {}).get(T.META_SOURCE) if schema.fields else None
        if source is None:
            # A user-given schema (spark.read.schema(...)): options come from the source itself.
            return DeepLakeReader(self._options(), schema)
        if "path" not in self.options:  # CREATE TABLE: the options only reach schema()
            return DeepLakeReader(ReadOptions.from_json(source), schema)
        given = self._options()
        from_schema = ReadOptions.from_json(source, given.storage_options)
        # A schema copied from another dataset's DataFrame must not redirect the read.
        return DeepLakeReader(from_schema if from_schema.path == given.path else given, schema)

    def writer(self, schema: StructType, overwrite: bool) -> DataSourceWriter:
        from deeplake_spark.spark.writer import make_writer

        return make_writer(dict(self.options), schema, overwrite)
