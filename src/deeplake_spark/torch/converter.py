"""petastorm-style converter: a Spark DataFrame -> torch DataLoaders.

>>> from deeplake_spark import make_spark_converter        # was: from petastorm.spark import ...
>>> converter = make_spark_converter(df)
>>> with converter.make_torch_dataloader(batch_size=64, num_epochs=1) as loader:
...     for batch in loader:
...         batch["image"], batch["label"]
>>> converter.delete()

Two ways, picked per DataFrame (``mode="auto"``):

* ``view``: every tensor column is still a deeplake ref (``spark.read.format("deeplake")`` in its
  default ``tensors=ref`` mode, through joins, filters, aliases). Only the refs and the tabular
  columns are collected to the driver (``toArrow``: a few bytes per row and ref column); loader
  workers read the chunks straight from the source datasets. Nothing is written.
* ``materialize``: some column is computed (decoded arrays, binary, Spark arrays, ML vectors), or
  there is no ref column at all. The DataFrame is written once into a cache dataset keyed by its
  plan and source versions (see ``cache.py``), and the loader streams that dataset; the same query
  reuses it in this process; ``converter.delete()`` or the interpreter's exit removes it.

petastorm's rules (dtype, vectors, saved paths, cache deletion, Horovod ranks, uint8 booleans) live
in ``converter_compat.py``; the differences that remain are listed in docs/PETASTORM.md. This is
the one module of ``torch/`` that touches Spark objects; pyspark is imported inside functions only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from deeplake_spark.dataset import SampleReader
from deeplake_spark.dataset import open as open_dataset
from deeplake_spark.dataset.progress import show_progress
from deeplake_spark.errors import InvalidOptionError
from deeplake_spark.format.spec import TensorSpec
from deeplake_spark.storage import Storage
from deeplake_spark.torch import cache, converter_compat
from deeplake_spark.torch.converter_compat import PetastormBatch, check_dtype, register_delete_dir_handler
from deeplake_spark.torch.loader import DeepLakeDataLoader, make_loader
from deeplake_spark.torch.source import (
    LoaderSource,
    from_dataset,
    from_ref_table,
    ref_column_info,
    select,
)

log = logging.getLogger(__name__)

__all__ = ["SparkDatasetConverter", "make_spark_converter", "register_delete_dir_handler"]

_TABULAR_TYPES = frozenset({"byte", "short", "integer", "long", "float", "double", "boolean", "string", "date",
                            "timestamp", "timestamp_ntz", "decimal", "varchar", "char"})
_ENCODING_KEY = "deeplake.encoding"
_SPEC_KEY = "deeplake.spec"
#: petastorm argument names accepted as aliases.
_ALIASES = {"workers_count": "num_workers", "cur_shard": "rank", "shard_count": "world_size"}


def _type_name(data_type: Any) -> str:
    name = data_type.typeName()
    return "decimal" if name.startswith("decimal") else name


def _is_ref_struct(data_type: Any) -> bool:
    return data_type.typeName() == "struct" and {"chunk", "index"} <= set(data_type.fieldNames())


def classify(schema: Any) -> tuple[dict[str, tuple[str, int | None, TensorSpec]], list[str], dict[str, dict[str, Any]]]:
    """(ref columns, computed columns, per-column facts for the driver writer) of a Spark schema."""
    refs: dict[str, tuple[str, int | None, TensorSpec]] = {}
    computed: list[str] = []
    meta: dict[str, dict[str, Any]] = {}
    for field in schema.fields:
        info = ref_column_info(field.metadata)
        if info is not None and _is_ref_struct(field.dataType):
            refs[field.name] = info
            meta[field.name] = {"ref_spec": info[2]}
            continue
        if _type_name(field.dataType) in _TABULAR_TYPES:
            scalar = _inline_spec(field)
            if scalar is not None:
                meta[field.name] = {"inline_spec": scalar}
            continue
        computed.append(field.name)
        spec_json = (field.metadata or {}).get(_SPEC_KEY)
        if spec_json and (field.metadata or {}).get(_ENCODING_KEY) == "bytes":
            meta[field.name] = {"bytes_spec": TensorSpec.from_dict(_json(spec_json))}
    return refs, computed, meta


def _inline_spec(field: Any) -> TensorSpec | None:
    """The spec of a scalar tensor column read by a deeplake source (a plain value with ``array``
    metadata, as inline scalars always are), else None."""
    metadata = field.metadata or {}
    spec_json = metadata.get(_SPEC_KEY)
    if not spec_json or metadata.get(_ENCODING_KEY) != "array":
        return None
    spec = TensorSpec.from_dict(_json(spec_json))
    return spec if spec.is_scalar else None


def _json(raw: Any) -> dict[str, Any]:
    import json

    return json.loads(raw) if isinstance(raw, (str, bytes)) else dict(raw)


def _cast_floats(df: Any, dtype: str | None) -> Any:
    """petastorm's ``dtype``: floating columns (and arrays of floats) become ``dtype``."""
    if dtype is None:
        return df
    from pyspark.sql import functions as F

    target = {"float32": "float", "float64": "double"}[check_dtype(dtype)]  # type: ignore[index]
    columns, changed = [], False
    for field in df.schema.fields:
        t = field.dataType
        if _inline_spec(field) is not None:  # a stored scalar tensor keeps its dtype
            columns.append(F.col(f"`{field.name}`"))
            continue
        depth = 0
        while t.typeName() == "array":
            t, depth = t.elementType, depth + 1
        if t.typeName() in ("float", "double") and t.typeName() != target:
            spark_type = "array<" * depth + target + ">" * depth
            columns.append(F.col(f"`{field.name}`").cast(spark_type).alias(field.name, metadata=field.metadata))
            changed = True
        else:
            columns.append(F.col(f"`{field.name}`"))
    return df.select(*columns) if changed else df


class SparkDatasetConverter:
    """What ``make_spark_converter`` returns: rows of a DataFrame ready for torch DataLoaders.

    ``len(converter)`` is the row count; ``mode`` is ``"view"`` or ``"materialize"``;
    ``cache_dir_url`` is the cache dataset's URL (``file:///...`` for a local one, as petastorm's) in
    materialize mode, else None. A materialized cache is deleted by ``delete()`` or at interpreter exit.
    """

    def __init__(self, *, mode: str, source: LoaderSource | None = None, dataset_path: str | None = None,
                 storage_options: Mapping[str, str] | None = None) -> None:
        self.mode = mode
        self._source = source
        self.cache_dir_url = converter_compat.cache_url(dataset_path) if dataset_path else None
        self.storage_options = dict(storage_options or {})
        self._deleted = False

    def _loader_source(self, columns: Sequence[str] | None) -> LoaderSource:
        if self._deleted:
            raise InvalidOptionError("this converter was deleted; make a new one with make_spark_converter(df)")
        if self._source is None:
            self._source = from_dataset(open_dataset(self.cache_dir_url))  # type: ignore[arg-type]
        return select(self._source, columns)

    def __len__(self) -> int:
        return self._loader_source(None).num_rows

    @property
    def dataset_size(self) -> int:
        """Row count (petastorm's name)."""
        return len(self)

    def make_torch_dataloader(self, batch_size: int = 32, num_epochs: int | None = None, *, shuffle: bool = False,
                              seed: int = 0, num_workers: int = 2, transform: Callable[[dict[str, Any]], Any] | None = None,
                              columns: Sequence[str] | None = None, device: Any = None, rank: int | None = None,
                              world_size: int | None = None, drop_last: bool = False,
                              **options: Any) -> DeepLakeDataLoader:
        """A streaming DataLoader over the rows; also a context manager (``with ... as loader``).

        petastorm's defaults: ``num_epochs=None`` loops forever, no shuffling unless asked
        (``shuffle=True``, or petastorm's ``shuffling_queue_capacity`` > 0 or ``shuffle_row_groups=True``),
        booleans come as uint8 tensors. petastorm's ``workers_count``, ``cur_shard`` and ``shard_count``
        are accepted for ``num_workers``, ``rank`` and ``world_size``; ``reader_pool_type`` is accepted
        and ignored. ``rank``/``world_size`` default to torch.distributed's, else to the
        ``HOROVOD_RANK``/``HOROVOD_SIZE`` (``OMPI_COMM_WORLD_*``, ``PMI_*``) environment variables.
        Other options as for ``Dataset.pytorch`` (collate, pad_value, batch_transform,
        prefetch_chunks, shuffle_window, io_threads).
        """
        named = {"num_workers": num_workers, "rank": rank, "world_size": world_size}
        for old, new in _ALIASES.items():
            if old in options:
                named[new] = options.pop(old)
        if "shuffle_row_groups" in options:
            shuffle = bool(options.pop("shuffle_row_groups"))
        capacity = options.pop("shuffling_queue_capacity", None)
        if capacity:
            shuffle = True
        ignored = [k for k in ("reader_pool_type",) if options.pop(k, None) is not None]
        if ignored:
            log.info("make_torch_dataloader: petastorm option(s) %s have no effect (chunk order + shuffle_window "
                     "shuffle; torch worker processes)", ignored)
        unsupported = [k for k in ("transform_spec", "data_loader_fn") if k in options]
        if unsupported:
            raise InvalidOptionError(
                f"petastorm option(s) {unsupported} are not supported: use transform= (per sample dict) and "
                "batch_transform= (per batch of tensors) instead"
            )
        named["rank"], named["world_size"] = _rank_and_size(named["rank"], named["world_size"])
        options["batch_transform"] = PetastormBatch(options.get("batch_transform"))
        return make_loader(self._loader_source(columns), batch_size=batch_size, num_epochs=num_epochs,
                           shuffle=shuffle, seed=seed, transform=transform, device=device, drop_last=drop_last,
                           **named, **options)

    def delete(self) -> None:
        """Remove the cache dataset (materialize mode, through the handler set with
        ``register_delete_dir_handler``); a view has nothing to remove."""
        if self.mode == "materialize" and self.cache_dir_url:
            converter_compat.delete_cache(self.cache_dir_url)
        self._source = None
        self._deleted = True

    def __repr__(self) -> str:
        where = f", cache={self.cache_dir_url!r}" if self.cache_dir_url else ""
        return f"SparkDatasetConverter(mode={self.mode!r}{where})"


def _rank_and_size(rank: int | None, world_size: int | None) -> tuple[int | None, int | None]:
    """Given values first, then torch.distributed's (in ``make_loader``), then petastorm's environment."""
    if rank is not None and world_size is not None:
        return rank, world_size
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return rank, world_size
    env_rank, env_size = converter_compat.env_rank_and_size()
    return (env_rank if rank is None else rank), (env_size if world_size is None else world_size)


def _ref_resolver(refs: Mapping[str, tuple[str, int | None, TensorSpec]],
                  storage_options: Mapping[str, str] | None) -> Callable[[str, pa.Array], list[Any]]:
    readers: dict[str, SampleReader] = {}

    def resolve(column: str, array: pa.Array) -> list[Any]:
        uri, _, spec = refs[column]
        if column not in readers:
            readers[column] = SampleReader(Storage(uri, storage_options), {spec.name: spec}, dataset=uri)
        # Encoded images are copied as stored (no decode/re-encode).
        return readers[column].read(spec.name, array.to_pylist(), raw=spec.is_sample_compressed)

    return resolve


def make_spark_converter(df: Any, *, cache_dir_url: str | None = None, mode: str = "auto",
                         storage_options: Mapping[str, str] | None = None, dtype: str | None = "float32",
                         progress: bool | None = None, writer: str = "auto",
                         **petastorm_options: Any) -> SparkDatasetConverter:
    """Prepare a Spark DataFrame for torch (see the module docstring for ``view``/``materialize``).

    ``df``: a DataFrame, or the path of a saved one (a Delta table or deeplake dataset, read with
    ``format("deeplake")``; else Parquet files) read with the active SparkSession.
    ``cache_dir_url``: folder (``file://`` or petastorm's ``file:/`` URL, local path, ``s3://``) for
    materialized datasets; default: Spark conf ``deeplake_spark.converter.cacheDirUrl`` (or petastorm's
    ``petastorm.spark.converter.parentCacheDirUrl``), env ``DEEPLAKE_SPARK_CACHE_DIR``, else the
    temp dir. A materialized dataset is deleted by ``converter.delete()`` or at interpreter exit.
    ``storage_options``: credentials for the source datasets' storage. ``dtype`` (petastorm's rule,
    default ``"float32"``; ``"float64"`` or None, anything else is an InvalidOptionError): floating
    tabular and array columns are cast to it, Spark ML ``Vector`` columns become arrays of it
    (float32 for None); stored tensors keep their dtype. A DataFrame without deeplake ref columns is
    materialized (never collected whole to the driver). ``progress``: tqdm bar while materializing;
    None (default) shows it only on a terminal or in a notebook. ``writer``: ``"auto"`` (Spark's
    deeplake writer, else streamed batch by batch through the driver), ``"spark"`` or ``"driver"``.
    """
    check_dtype(dtype)
    if mode not in ("auto", "view", "materialize"):
        raise InvalidOptionError(f"mode={mode!r}: expected 'auto', 'view' or 'materialize'")
    ignored = sorted(k for k in petastorm_options if k in ("parquet_row_group_size_bytes", "compression_codec"))
    unknown = sorted(k for k in petastorm_options if k not in ignored)
    if unknown:
        raise InvalidOptionError(f"make_spark_converter: unknown option(s) {unknown}")
    if ignored:
        log.info("make_spark_converter: petastorm option(s) %s have no effect here", ignored)
    if isinstance(df, (str, os.PathLike)):
        df = converter_compat.read_saved(os.fspath(df))
    df = converter_compat.convert_vectors(df, dtype)
    refs, computed, meta = classify(df.schema)
    if mode == "view" and computed:
        raise InvalidOptionError(
            f"mode='view' needs every tensor column to be a deeplake ref; column(s) {computed} are computed "
            "(arrays/binary). Use mode='materialize' (or 'auto'), or read them with tensors='ref'"
        )
    if mode == "view" and not refs:
        raise InvalidOptionError("mode='view' needs a deeplake ref column (a tensor read with tensors='ref'); "
                                 "this DataFrame has only tabular columns: use mode='materialize' (or 'auto')")
    if mode != "materialize" and refs and not computed:
        table = df.toArrow()  # refs and tabular values only: 3x faster than streaming them (docs/PETASTORM.md)
        inline = {name: m["inline_spec"] for name, m in meta.items() if "inline_spec" in m}
        source = from_ref_table(table, refs, storage_options=storage_options, inline=inline)
        if dtype is not None:  # stored tensors, inline scalars included, keep their dtype
            source.tabular = {k: v.astype(dtype) if v.dtype.kind == "f" and k not in inline else v
                              for k, v in source.tabular.items()}
        log.info("converter: view over %d rows (%d tensor columns read from their datasets)", source.num_rows,
                 len(refs))
        return SparkDatasetConverter(mode="view", source=source, storage_options=storage_options)
    df = _cast_floats(df, dtype)
    if refs and writer == "auto":
        writer = "driver"  # the Spark writer does not copy refs into another dataset; the driver resolves them
    parent = converter_compat.local_url(cache_dir_url or cache.default_cache_dir(df))
    path = cache.materialize(df, cache_dir_url=parent, dtype=dtype, writer=writer,
                             progress=show_progress(progress), field_meta=meta,
                             resolve_refs=_ref_resolver(refs, storage_options))
    converter_compat.delete_at_exit(converter_compat.cache_url(path))
    return SparkDatasetConverter(mode="materialize", dataset_path=path, storage_options=storage_options)

