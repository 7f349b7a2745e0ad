"""placeholder"""
from __future__ import annotations
def make_spark_converter(df, **options):
    raise NotImplementedError
class SparkDatasetConverter: ...
