"""Spark integration: the ``deeplake`` data source, session helpers, SQL functions, ``fetch``.

The only package that imports pyspark.
"""

from __future__ import annotations

from deeplake_spark.spark.session import register, spark_session

__all__ = ["fetch", "register", "spark_session"]


def fetch(df, columns=None, **options):  # type: ignore[no-untyped-def]
    from deeplake_spark.spark.fetch import fetch as _impl

    return _impl(df, columns=columns, **options)
