"""petastorm's rules for the converter (``converter.py``), kept in one place.

* ``check_dtype``: ``dtype`` is ``"float32"``, ``"float64"`` or None, in view and materialize mode.
* ``read_saved``: ``make_spark_converter("/path")`` over a saved DataFrame (a Delta table, a deeplake
  dataset or Parquet files).
* ``convert_vectors``: Spark ML ``Vector`` columns become float arrays (petastorm's
  ``vector_to_array(col, dtype)``).
* materialized caches: removed at interpreter exit (``atexit``) through the handler set with
  :func:`register_delete_dir_handler`; ``cache_url`` gives the ``file://`` URL of a local cache.
* ``env_rank_and_size``: ``HOROVOD_RANK``/``OMPI_COMM_WORLD_RANK``/``PMI_RANK`` (and ``_SIZE``).
* ``PetastormBatch``: booleans as uint8 in every batch, as petastorm's torch loader gives them.

pyspark is imported inside functions only.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from deeplake_spark.errors import DatasetNotFoundError, InvalidOptionError
from deeplake_spark.storage import Storage, normalize_uri

log = logging.getLogger(__name__)

DTYPES = ("float32", "float64")
#: petastorm's environment variables for the rank and world size, tried in this order.
RANK_ENV = (("HOROVOD_RANK", "HOROVOD_SIZE"), ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
            ("PMI_RANK", "PMI_SIZE"))


def check_dtype(dtype: Any) -> str | None:
    """petastorm's one rule for ``dtype``: ``"float32"``, ``"float64"`` or None, else InvalidOptionError."""
    if dtype is not None and dtype not in DTYPES:
        raise InvalidOptionError(f"make_spark_converter: dtype={dtype!r} is not supported; use 'float32', "
                                 "'float64' or None (floating columns keep their type)")
    return dtype


# --------------------------------------------------------------------------- saved DataFrames
def read_saved(path: str, spark: Any = None) -> Any:
    """The DataFrame saved at ``path``: a Delta table (a deeplake dataset is one; read with
    ``format("deeplake")``, so tensor columns stay refs) or Parquet files (``spark.read.parquet``)."""
    if spark is None:
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
        if spark is None:
            raise InvalidOptionError(f"make_spark_converter({path!r}): a path needs an active SparkSession "
                                     "(deeplake_spark.spark_session())")
    uri = normalize_uri(path)
    storage = Storage(uri)
    if storage.exists("_delta_log"):
        return spark.read.format("deeplake").load(uri)
    if not storage.exists(""):
        raise DatasetNotFoundError(f"make_spark_converter({path!r}): nothing at {uri} (expected a Delta table, "
                                   "a deeplake dataset or Parquet files)")
    spark_path = uri if "://" in uri else "file://" + uri
    return spark.read.parquet(spark_path)


# --------------------------------------------------------------------------- vectors
def convert_vectors(df: Any, dtype: str | None) -> Any:
    """Spark ML (and mllib) ``Vector`` columns, dense or sparse, as ``array<float>`` (``dtype`` float32
    or None) or ``array<double>`` (float64)."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.ml.linalg import VectorUDT
    from pyspark.mllib.linalg import VectorUDT as OldVectorUDT

    names = [f.name for f in df.schema.fields if isinstance(f.dataType, (VectorUDT, OldVectorUDT))]
    if not names:
        return df
    target = "float64" if dtype == "float64" else "float32"
    return df.withColumns({n: vector_to_array(df[f"`{n}`"], target) for n in names})


# --------------------------------------------------------------------------- caches
def default_delete_dir_handler(url: str) -> None:
    """Remove a cache folder (a local path, ``file://`` or object store URL); no error when it is gone."""
    from deeplake_spark.torch.cache import delete_tree

    delete_tree(normalize_uri(local_url(url)))


_delete_dir_handler: Callable[[str], None] = default_delete_dir_handler
_atexit_urls: set[str] = set()
_lock = threading.Lock()


def register_delete_dir_handler(handler: Callable[[str], None] | None) -> None:
    """petastorm's hook: ``handler(url)`` deletes a cache folder (``converter.delete()`` and at exit);
    None restores the default handler."""
    global _delete_dir_handler  # noqa: PLW0603 - petastorm's module-level registry
    if handler is not None and not callable(handler):
        raise InvalidOptionError(f"register_delete_dir_handler({handler!r}): expected a callable or None")
    _delete_dir_handler = handler or default_delete_dir_handler


def delete_cache(url: str) -> None:
    """Delete a cache folder with the registered handler."""
    _delete_dir_handler(url)
    with _lock:
        _atexit_urls.discard(url)


def _delete_at_exit(url: str) -> None:
    with _lock:
        if url not in _atexit_urls:
            return  # deleted already
    try:
        delete_cache(url)
    except Exception as e:  # noqa: BLE001 - at exit: report, never raise (petastorm does the same)
        log.warning("deleting converter cache %s at exit failed: %r", url, e)


def delete_at_exit(url: str) -> None:
    """Delete the cache folder ``url`` when the interpreter exits (once, however often asked)."""
    with _lock:
        if url in _atexit_urls:
            return
        _atexit_urls.add(url)
    atexit.register(_delete_at_exit, url)


def local_url(url: str) -> str:
    """petastorm's ``file:/a/b`` (one slash, as Databricks writes ``file:/dbfs/...``) as the local path
    ``/a/b``; other paths and URLs unchanged."""
    if url.startswith("file:/") and not url.startswith("file://"):
        return "/" + url[len("file:/"):].lstrip("/")
    return url


def cache_url(path: str) -> str:
    """``file:///abs/path`` for a local path, other URLs unchanged (petastorm's ``cache_dir_url``)."""
    uri = normalize_uri(local_url(path))
    return uri if "://" in uri else "file://" + uri


# --------------------------------------------------------------------------- distributed
def env_rank_and_size() -> tuple[int | None, int | None]:
    """(rank, size) from the first of ``HOROVOD_*``, ``OMPI_COMM_WORLD_*``, ``PMI_*`` set in pairs, else
    (None, None); a bad value is an InvalidOptionError naming the variable."""
    for rank_var, size_var in RANK_ENV:
        rank, size = os.environ.get(rank_var), os.environ.get(size_var)
        if rank is None and size is None:
            continue
        if rank is None or size is None:
            return None, None  # as petastorm: half a pair is ignored
        values = []
        for var, text in ((rank_var, rank), (size_var, size)):
            try:
                values.append(int(text))
            except ValueError:
                raise InvalidOptionError(f"environment variable {var}={text!r}: expected an integer") from None
        return values[0], values[1]
    return None, None


# --------------------------------------------------------------------------- batches
class PetastormBatch:
    """Batch transform of the converter's loaders: boolean tensors become uint8 (petastorm's torch
    loader), then the user's ``batch_transform`` runs. Picklable (loader workers run it)."""

    def __init__(self, then: Callable[[Any], Any] | None = None) -> None:
        self.then = then

    def __call__(self, batch: Any) -> Any:
        import torch

        if isinstance(batch, dict):
            batch = {k: v.to(torch.uint8) if isinstance(v, torch.Tensor) and v.dtype == torch.bool else v
                     for k, v in batch.items()}
        return self.then(batch) if self.then is not None else batch
