"""The converter's materialize path: write a DataFrame once into a cache dataset, reuse it after.

The cache folder is ``<cache_dir_url>/<key>``, where ``key`` hashes the query plan
(``df.semanticHash()``), the schema (whose field metadata carries the source datasets, their
versions and read options) and the converter settings, so the same query over the same source
versions finds its dataset again. A marker file written after the data makes a half-written cache
(crash, Ctrl-C) count as missing: it is deleted and written again.

Writing uses ``df.write.format("deeplake")`` (chunks written by the executors). Where that writer
is not available (or ``writer="driver"``), the rows are streamed to the driver one Arrow batch at a
time (``pyarrow.RecordBatchReader.from_stream(df)``, one partition at a time) and appended with
``deeplake_spark.create``/``Dataset.append``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Self

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs

from deeplake_spark.dataset import create as create_dataset
from deeplake_spark.dataset import open as open_dataset
from deeplake_spark.errors import InvalidOptionError, SchemaError, StorageError
from deeplake_spark.format.images import JPEG_MAGIC, PNG_MAGIC
from deeplake_spark.format.spec import TensorSpec, normalize_dtype
from deeplake_spark.storage import Storage, normalize_uri

log = logging.getLogger(__name__)

MARKER = "_deeplake_spark_converter.json"
CACHE_DIR_CONF = ("deeplake_spark.converter.cacheDirUrl", "petastorm.spark.converter.parentCacheDirUrl")
_APPEND_BYTES = 64 * 1024 * 1024


def default_cache_dir(df: Any) -> str:
    """Spark conf ``deeplake_spark.converter.cacheDirUrl`` (or petastorm's key), env
    ``DEEPLAKE_SPARK_CACHE_DIR``, else a folder in the system temp dir."""
    for key in CACHE_DIR_CONF:
        value = df.sparkSession.conf.get(key, None)
        if value:
            return str(value)
    return os.environ.get("DEEPLAKE_SPARK_CACHE_DIR") or os.path.join(tempfile.gettempdir(), "deeplake_spark_cache")


def cache_key(df: Any, *, dtype: str | None) -> str:
    """Hash of the plan, schema (with source versions in its metadata) and settings."""
    parts = {"plan": df.semanticHash(), "schema": df.schema.json(), "dtype": dtype, "layout": 1}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def _fs(uri: str) -> tuple[pafs.FileSystem, str]:
    storage = Storage(uri)
    return storage.fs, storage.full_path("")


def is_complete(path: str) -> bool:
    return Storage(path).exists(MARKER)


def delete_tree(path: str) -> None:
    """Remove a cache dataset folder (no error when it is already gone)."""
    fs, root = _fs(path)
    try:
        if fs.get_file_info(root).type != pafs.FileType.NotFound:
            fs.delete_dir(root)
    except OSError as e:
        raise StorageError(f"deleting converter cache {path} failed: {e}") from e


# --------------------------------------------------------------------------- progress
class _StageProgress:
    """A tqdm bar over the tasks of the Spark stages that run while it is open."""

    def __init__(self, spark: Any, description: str, enabled: bool) -> None:
        self._tracker = None
        if enabled:
            try:
                self._tracker = spark.sparkContext.statusTracker()
            except (AttributeError, RuntimeError) as e:  # Spark Connect has no SparkContext
                log.debug("no Spark status tracker, materializing without a progress bar: %s", e)
        self._description = description
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        from tqdm.auto import tqdm

        seen: dict[int, tuple[int, int]] = {}
        with tqdm(total=0, desc=self._description, unit="task", leave=False, delay=2.0) as bar:
            while not self._stop.wait(0.25):
                for stage_id in self._tracker.getActiveStageIds():  # type: ignore[union-attr]
                    info = self._tracker.getStageInfo(stage_id)  # type: ignore[union-attr]
                    if info is not None:
                        seen[stage_id] = (info.numTasks, info.numCompletedTasks)
                bar.total = sum(t for t, _ in seen.values())
                bar.n = sum(c for _, c in seen.values())
                bar.refresh()

    def __enter__(self) -> Self:
        if self._tracker is not None:
            self._thread = threading.Thread(target=self._run, name="deeplake-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


# --------------------------------------------------------------------------- driver-side writer
def _binary_spec(name: str, sample: bytes | None) -> TensorSpec:
    if sample is not None and bytes(sample[:3]) == JPEG_MAGIC:
        return TensorSpec.create(name, "image", compression="jpeg", shape=None)
    if sample is not None and bytes(sample[:8]) == PNG_MAGIC:
        return TensorSpec.create(name, "image", compression="png", shape=None)
    return TensorSpec.create(name, "generic", dtype="uint8", shape=(None,))


def _list_dtype(t: pa.DataType) -> tuple[str, int]:
    rank = 0
    while pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        t, rank = t.value_type, rank + 1
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        raise SchemaError(f"array elements of type {t} cannot be a tensor")
    return str(np.dtype(t.to_pandas_dtype()).name), rank


class _DriverWriter:
    """Column conversions from Arrow batches of the DataFrame to a cache dataset's append input."""

    def __init__(self, field_meta: dict[str, dict[str, Any]], dtype: str | None,
                 resolve_refs: Callable[[str, pa.Array], list[Any]]) -> None:
        self.field_meta = field_meta
        self.dtype = dtype
        self.resolve_refs = resolve_refs
        self.schema: dict[str, Any] | None = None
        self._convert: dict[str, Callable[[pa.Array], Any]] = {}

    def _plan(self, batch: pa.RecordBatch) -> dict[str, Any]:
        schema: dict[str, Any] = {}
        for field in batch.schema:
            name, t, meta = field.name, field.type, self.field_meta.get(field.name, {})
            column = batch.column(name)
            if meta.get("inline_spec") is not None:  # a scalar tensor's values: stay a scalar tensor
                schema[name] = meta["inline_spec"].with_name(name)
                self._convert[name] = lambda a: a
            elif meta.get("ref_spec") is not None:
                spec: TensorSpec = meta["ref_spec"]
                schema[name] = spec.with_name(name)
                self._convert[name] = lambda a, n=name: self.resolve_refs(n, a)
            elif meta.get("bytes_spec") is not None and pa.types.is_struct(t):
                spec = meta["bytes_spec"]
                schema[name] = spec.with_name(name)
                self._convert[name] = lambda a, s=spec: _bytes_values(a, s)
            elif pa.types.is_binary(t) or pa.types.is_large_binary(t):
                first = next((v for v in column.to_pylist() if v is not None), None)
                spec = _binary_spec(name, first)
                schema[name] = spec
                self._convert[name] = (lambda a: a.to_pylist()) if spec.is_sample_compressed else \
                    (lambda a: [None if v is None else np.frombuffer(v, dtype=np.uint8) for v in a.to_pylist()])
            elif pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
                try:
                    elem, rank = _list_dtype(t)
                except SchemaError as e:
                    raise SchemaError(f"column {name!r}: {e}; the converter cannot turn it into a tensor") from e
                if self.dtype is not None and elem.startswith("float"):
                    elem = self.dtype
                schema[name] = TensorSpec.create(name, "generic", dtype=elem, shape=(None,) * rank, compression="lz4")
                self._convert[name] = lambda a, d=elem: [None if v is None else np.asarray(v, dtype=d)
                                                         for v in a.to_pylist()]
            elif pa.types.is_struct(t) or pa.types.is_map(t):
                raise SchemaError(f"column {name!r} ({t}): struct/map columns cannot be converted; select its "
                                  "fields as columns")
            else:
                target = pa.float32() if self.dtype == "float32" and pa.types.is_floating(t) else t
                schema[name] = target
                self._convert[name] = lambda a, tt=target: a.cast(tt) if a.type != tt else a
        return schema

    def columns(self, batch: pa.RecordBatch) -> dict[str, Any]:
        if self.schema is None:
            self.schema = self._plan(batch)
        return {name: self._convert[name](batch.column(name)) for name in batch.schema.names}


def _bytes_values(array: pa.Array, spec: TensorSpec) -> list[Any]:
    out: list[Any] = []
    dtype = np.dtype(spec.dtype).newbyteorder("<") if spec.dtype != "str" else None
    for cell in array.to_pylist():
        if cell is None or cell.get("data") is None:
            out.append(None)
        elif spec.is_sample_compressed:
            out.append(cell["data"])
        elif dtype is None:
            out.append(bytes(cell["data"]).decode("utf-8"))
        else:
            out.append(np.frombuffer(cell["data"], dtype=dtype).reshape(cell["shape"]))
    return out


def write_with_driver(df: Any, path: str, *, field_meta: dict[str, dict[str, Any]], dtype: str | None,
                      resolve_refs: Callable[[str, pa.Array], list[Any]], progress: bool) -> int:
    """Stream ``df`` to the driver in Arrow batches and append them to a new dataset at ``path``."""
    from tqdm.auto import tqdm

    writer = _DriverWriter(field_meta, dtype, resolve_refs)
    reader = pa.RecordBatchReader.from_stream(df)
    ds = None
    pending: list[dict[str, Any]] = []
    pending_bytes = rows = 0

    def flush() -> None:
        nonlocal ds, pending, pending_bytes
        if not pending:
            return
        merged = {k: [v for part in pending for v in _as_list(part[k])] for k in pending[0]}
        if ds is None:
            ds = create_dataset(path, writer.schema or {})
        ds.append(merged)
        pending, pending_bytes = [], 0

    with tqdm(desc="materializing", unit="row", disable=not progress, leave=False, delay=2.0) as bar:
        for batch in _batches(reader):
            pending.append(writer.columns(batch))
            pending_bytes += batch.nbytes
            rows += batch.num_rows
            bar.update(batch.num_rows)
            if pending_bytes >= _APPEND_BYTES:
                flush()
        flush()
    if ds is None:
        if writer.schema is None:
            writer.schema = writer._plan(pa.RecordBatch.from_pylist([], schema=reader.schema))
        create_dataset(path, writer.schema)
    return rows


def _as_list(values: Any) -> list[Any]:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.to_pylist()
    return list(values)


def _batches(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    for batch in reader:
        if batch.num_rows:
            yield batch


def write_with_spark(df: Any, path: str, *, progress: bool) -> None:
    """``df.write.format("deeplake")`` into a new dataset at ``path``, with a progress bar."""
    with _StageProgress(df.sparkSession, "materializing", progress):
        df.write.format("deeplake").mode("overwrite").save(path)


def materialize(df: Any, *, cache_dir_url: str | None, dtype: str | None, writer: str, progress: bool,
                field_meta: dict[str, dict[str, Any]], resolve_refs: Callable[[str, pa.Array], list[Any]]) -> str:
    """Path of the cache dataset for ``df``, writing it first unless a complete one exists."""
    if writer not in ("auto", "spark", "driver"):
        raise InvalidOptionError(f"writer={writer!r}: expected 'auto', 'spark' or 'driver'")
    if dtype is not None:
        normalize_dtype(dtype, "dtype")
    base = normalize_uri(cache_dir_url or default_cache_dir(df))
    key = cache_key(df, dtype=dtype)
    path = f"{base}/{key}"
    if is_complete(path):
        log.info("converter: reusing cached dataset %s", path)
        return path
    delete_tree(path)  # a half-written cache from an interrupted run
    start = time.perf_counter()
    used = writer
    if writer in ("auto", "spark"):
        from py4j.protocol import Py4JError
        from pyspark.errors import PySparkException

        try:
            write_with_spark(df, path, progress=progress)
            used = "spark"
        except (PySparkException, Py4JError) as e:
            if writer == "spark":
                raise
            log.warning("converter: df.write.format('deeplake') failed (%s); materializing through the driver "
                        "instead", str(e).strip().splitlines()[0][:300])
            delete_tree(path)
            used = "driver"
    if used == "driver":
        write_with_driver(df, path, field_meta=field_meta, dtype=dtype, resolve_refs=resolve_refs,
                          progress=progress)
    rows = len(open_dataset(path))
    Storage(path).write(MARKER, json.dumps({"key": key, "rows": rows, "writer": used,
                                            "created": time.time()}).encode())
    log.info("converter: materialized %d rows into %s with the %s writer in %.1fs", rows, path, used,
             time.perf_counter() - start)
    return path
