"""Importers from other dataset layouts: Deep Lake 4 datasets and COCO folders.

A top integration layer: it builds on the dataset layer (and the format) only, and writes each
import as one commit of a new dataset.
"""

from __future__ import annotations

from deeplake_spark.interop.coco import from_coco
from deeplake_spark.interop.deeplake4 import from_deeplake

__all__ = ["from_coco", "from_deeplake"]
