"""``fetch``: resolve tensor ref columns of any DataFrame into tensors, inside the executors.

Refs survive joins, filters and projections as plain structs; their field metadata (written by the
``deeplake`` source in ref mode: ``deeplake.dataset``, ``deeplake.version``, ``deeplake.tensor``)
says where the chunks live. ``fetch`` reads only the chunks the surviving rows point to:

>>> cats = spark.read.format("deeplake").load("/data/cats")
>>> labels = spark.read.parquet("/data/labels")
>>> rows = cats.join(labels, "id").where("label = 3").select("id", "image")
>>> fetch(rows, ["image"], mode="bytes").collect()
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql.types import StructField, StructType

from deeplake_spark.dataset import ChunkCache, SampleReader
from deeplake_spark.errors import InvalidOptionError, SchemaError
from deeplake_spark.format.spec import TensorSpec
from deeplake_spark.spark import types as T
from deeplake_spark.storage import Storage

log = logging.getLogger(__name__)

FETCH_MODES = ("array", "bytes")
#: Upper bound of tensor bytes in one output batch.
TARGET_BATCH_BYTES = 8 * 1024 * 1024
CACHE_BYTES = 64 * 1024 * 1024


def ref_columns(schema: StructType) -> dict[str, tuple[str, TensorSpec]]:
    """``{column: (dataset uri, tensor spec)}`` for every ref column carrying deeplake metadata."""
    out = {}
    for f in schema.fields:
        spec = T.ref_spec(f)
        dataset = (f.metadata or {}).get(T.META_DATASET)
        if spec is not None and dataset:
            out[f.name] = (str(dataset), spec)
    return out


def inline_columns(schema: StructType) -> list[str]:
    """Columns holding a scalar tensor stored inline (their values, with array-mode metadata)."""
    out = []
    for f in schema.fields:
        meta = f.metadata or {}
        if meta.get(T.META_ENCODING) == "array" and T.META_SPEC in meta and T.spec_of_json(meta[T.META_SPEC]).is_scalar:
            out.append(f.name)
    return out


def fetch(df: DataFrame, columns: Sequence[str] | None = None, mode: str = "array", *,
          storage_options: Mapping[str, str] | None = None) -> DataFrame:
    """A DataFrame with the ref ``columns`` (all ref columns when None) replaced by tensors.

    A scalar tensor stored inline (class_label, text, json, 0-d numerics) already holds its values;
    naming it in ``columns`` is allowed and leaves it as it is.

    ``mode="array"``: decoded values as (nested) Spark arrays; ``mode="bytes"``: ``struct<data:
    binary, shape: array<bigint>>`` with the stored sample bytes (e.g. the JPEG). Other columns and
    the row order pass through unchanged. ``storage_options`` (credentials, endpoint) are used for
    every dataset; without them the storage layer reads the environment (``AWS_*``).
    """
    if mode not in FETCH_MODES:
        raise InvalidOptionError(f"fetch: bad mode {mode!r}; allowed: {FETCH_MODES}")
    found = ref_columns(df.schema)
    if columns is None:
        if not found:
            raise SchemaError(
                "fetch: the DataFrame has no tensor ref column with deeplake metadata; read the dataset with "
                "spark.read.format('deeplake') (tensors='ref', the default) and keep the ref columns as they are"
            )
        columns = list(found)
    names = set(df.schema.fieldNames())
    values = set(inline_columns(df.schema))
    for name in columns:
        if name not in names:
            raise SchemaError(f"fetch: no column {name!r}; columns: {df.schema.fieldNames()}")
    columns = [name for name in columns if name not in values]
    for name in columns:
        if name not in found:
            raise SchemaError(
                f"fetch: column {name!r} carries no deeplake ref metadata (deeplake.dataset/deeplake.tensor), so "
                "its dataset is unknown. Ref columns keep it through select/alias/filter/join; it is lost when "
                "the struct is rebuilt, cast, passed through a UDF or read with tensors='bytes'/'array'"
            )
    if not columns:
        return df  # only scalar tensors named: their values are in the rows already
    wanted = {name: found[name] for name in columns}
    fields = []
    for f in df.schema.fields:
        if f.name in wanted:
            dataset, spec = wanted[f.name]
            version = int((f.metadata or {}).get(T.META_VERSION, -1))
            fields.append(T.tensor_field(f.name, spec, mode, dataset=dataset, version=version))
        else:
            fields.append(StructField(f.name, f.dataType, f.nullable, f.metadata))
    out_schema = StructType(fields)
    resolve = _Resolver(wanted, mode, dict(storage_options or {}), out_schema)
    return df.mapInArrow(resolve, out_schema)


class _Resolver:
    """The ``mapInArrow`` function (pickled to executors): holds names, specs and options only."""

    def __init__(self, wanted: dict[str, tuple[str, TensorSpec]], mode: str, storage_options: dict[str, str],
                 schema: StructType) -> None:
        self.wanted = wanted
        self.mode = mode
        self.storage_options = storage_options
        self.schema = schema

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        target = T.arrow_schema(self.schema)
        readers: dict[str, SampleReader] = {}  # one per dataset, for this task only

        def reader_of(dataset: str) -> SampleReader:
            if dataset not in readers:
                specs = {spec.name: spec for uri, spec in self.wanted.values() if uri == dataset}
                readers[dataset] = SampleReader(Storage(dataset, self.storage_options), specs, dataset=dataset,
                                                cache=ChunkCache(CACHE_BYTES))
            return readers[dataset]

        for batch in batches:
            sizes = np.zeros(batch.num_rows, dtype=np.int64)
            for name, (_, spec) in self.wanted.items():
                sizes += T.sample_sizes(batch.column(name), spec, self.mode)
            for start, stop in T.byte_slices(sizes, TARGET_BATCH_BYTES):
                part = batch.slice(start, stop - start)
                yield pa.RecordBatch.from_arrays(
                    [self._column(part, f, reader_of) for f in target], schema=target
                )

    def _column(self, batch: pa.RecordBatch, target_field: pa.Field, reader_of: Any) -> pa.Array:
        column = batch.column(target_field.name)
        if target_field.name not in self.wanted:
            return column if column.type == target_field.type else column.cast(target_field.type)
        dataset, spec = self.wanted[target_field.name]
        return T.resolve_refs(reader_of(dataset), spec, column.to_pylist(), self.mode, target_field.type)
