"""Dataset layer: Delta log + chunk files. The only layer that imports ``deltalake``."""

from __future__ import annotations

from deeplake_spark.dataset.dataset import Dataset, create, open
from deeplake_spark.dataset.reader import ChunkCache, SampleReader
from deeplake_spark.dataset.refs import REF_TYPE, TENSORS_DIR, chunk_relpath
from deeplake_spark.dataset.schema import DatasetSchema, tensor
from deeplake_spark.dataset.vacuum import VacuumResult

__all__ = ["REF_TYPE", "TENSORS_DIR", "ChunkCache", "Dataset", "DatasetSchema", "SampleReader", "VacuumResult",
           "chunk_relpath", "create", "open", "tensor"]
