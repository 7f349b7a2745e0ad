"""PyTorch integration: a streaming loader over datasets and a petastorm-style Spark converter.

The only package that imports torch. ``make_spark_converter`` takes a Spark DataFrame but imports
pyspark only when called.
"""

from __future__ import annotations

from deeplake_spark.torch.converter import SparkDatasetConverter, make_spark_converter
from deeplake_spark.torch.converter_compat import register_delete_dir_handler
from deeplake_spark.torch.loader import (
    DeepLakeDataLoader,
    StreamingDataset,
    make_dataset_loader,
)

__all__ = ["DeepLakeDataLoader", "SparkDatasetConverter", "StreamingDataset", "make_dataset_loader",
           "make_spark_converter", "register_delete_dir_handler"]
