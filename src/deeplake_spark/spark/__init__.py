"""Spark integration: the ``deeplake`` data source, session helpers, SQL functions, ``fetch``.

The only package that imports pyspark.
"""

from __future__ import annotations

# Imported eagerly: a lazy wrapper named ``fetch`` is replaced by the submodule
# ``deeplake_spark.spark.fetch`` as soon as that module is first imported.
from deeplake_spark.spark.fetch import fetch
from deeplake_spark.spark.session import register, spark_session
from deeplake_spark.spark.spark_errors import deeplake_error, deeplake_errors
from deeplake_spark.spark.writer import write

__all__ = ["deeplake_error", "deeplake_errors", "fetch", "register", "spark_session", "write"]
