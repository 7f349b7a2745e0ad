"""deeplake-spark: Deep Lake's tensor-native chunk format next to a Delta table.

>>> import deeplake_spark as dls
>>> ds = dls.create("/tmp/pets", {"image": dls.tensor("image"), "label": "int64"})
>>> ds.append({"image": [jpeg_bytes], "label": [3]})
"""

from __future__ import annotations

import os
from typing import Any

from deeplake_spark import errors
from deeplake_spark._version import __version__
from deeplake_spark.dataset import Dataset, DatasetSchema, VacuumResult, create, open, tensor
from deeplake_spark.dataset.search_result import SearchResult
from deeplake_spark.dataset.view import DatasetView
from deeplake_spark.errors import DeepLakeSparkError
from deeplake_spark.format import TensorSpec
from deeplake_spark.format.video import VideoSample, read_video_frames

__all__ = [
    "Dataset",
    "DatasetSchema",
    "DatasetView",
    "DeepLakeSparkError",
    "SearchResult",
    "TensorSpec",
    "VideoSample",
    "VacuumResult",
    "__version__",
    "create",
    "errors",
    "fetch",
    "from_coco",
    "from_deeplake",
    "make_spark_converter",
    "register_delete_dir_handler",
    "open",
    "read_video_frames",
    "register",
    "spark_session",
    "tensor",
    "write",
]


def spark_session(master: str = "local[*]", app_name: str = "deeplake-spark", *, delta: bool = False,
                  **conf: Any) -> Any:
    """A local SparkSession with the deeplake source registered; ``delta=True`` makes it a Delta Lake
    session too (see :func:`deeplake_spark.spark.session.spark_session`)."""
    from deeplake_spark.spark import spark_session as _impl

    return _impl(master, app_name, delta=delta, **conf)


def register(spark: Any, *, default: str | None = None) -> None:
    """Register the ``deeplake`` sources, SQL functions and catalog on an existing SparkSession;
    ``default="python"|"jvm"`` picks what ``format("deeplake")`` means (docs/FORMAT_NAMES.md)."""
    from deeplake_spark.spark import register as _impl

    _impl(spark, default=default)


def fetch(df: Any, columns: list[str] | None = None, **options: Any) -> Any:
    """Resolve tensor refs in a Spark DataFrame to tensors for exactly its rows."""
    from deeplake_spark.spark import fetch as _impl

    return _impl(df, columns=columns, **options)


def write(df: Any, path: str, mode: str = "errorifexists", **options: Any) -> None:
    """Write a Spark DataFrame as a deeplake dataset with any Spark save mode
    (``append``, ``overwrite``, ``errorifexists``, ``ignore``); options as for ``df.write.format("deeplake")``."""
    from deeplake_spark.spark import write as _impl

    _impl(df, path, mode=mode, **options)


def make_spark_converter(df: Any, **options: Any) -> Any:
    """petastorm-style converter from a Spark DataFrame to torch DataLoaders."""
    from deeplake_spark.torch import make_spark_converter as _impl

    return _impl(df, **options)


def register_delete_dir_handler(handler: Any) -> None:
    """petastorm's hook: ``handler(url)`` deletes a converter's materialized cache (``None``: the default)."""
    from deeplake_spark.torch import register_delete_dir_handler as _impl

    _impl(handler)


def from_deeplake(src: str | Any, dst: str | os.PathLike[str], **options: Any) -> Dataset:
    """Import a Deep Lake 4 dataset into a new dataset at ``dst`` (see :mod:`deeplake_spark.interop.deeplake4`;
    needs the ``deeplake4`` extra)."""
    from deeplake_spark.interop import from_deeplake as _impl

    return _impl(src, dst, **options)


def from_coco(images_dir: str | os.PathLike[str], annotations: str | os.PathLike[str], dst: str | os.PathLike[str],
              **options: Any) -> Dataset:
    """Import a COCO-layout folder (images + instances JSON) into a new dataset at ``dst``
    (see :mod:`deeplake_spark.interop.coco`)."""
    from deeplake_spark.interop import from_coco as _impl

    return _impl(images_dir, annotations, dst, **options)
