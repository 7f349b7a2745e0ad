"""SQL functions over tensor refs that never open a chunk file.

They are SQL UDFs (``CREATE TEMPORARY FUNCTION ... RETURN``), inlined by Spark's optimizer, so no
Python worker runs:

>>> spark.sql("SELECT id, tensor_shape(image), tensor_ndim(image), tensor_nbytes(image) FROM cats")

* ``tensor_shape(ref)``  -> ``array<bigint>``: the sample shape;
* ``tensor_ndim(ref)``   -> ``int``: the sample rank;
* ``tensor_numel(ref)``  -> ``bigint``: the number of values (product of the shape);
* ``tensor_nbytes(ref)`` -> ``bigint``: the stored bytes of the sample (the encoded image size for jpeg/png).

All return NULL for a NULL ref (a missing sample).
"""

from __future__ import annotations

from pyspark.sql import SparkSession

_REF = "STRUCT<chunk: STRING, index: INT, shape: ARRAY<BIGINT>, nbytes: BIGINT>"

#: name -> (return type, SQL body over the parameter ``ref``)
FUNCTIONS: dict[str, tuple[str, str]] = {
    "tensor_shape": ("ARRAY<BIGINT>", "ref.shape"),
    "tensor_ndim": ("INT", "CASE WHEN ref IS NULL THEN NULL ELSE size(ref.shape) END"),
    "tensor_numel": ("BIGINT",
                     "CASE WHEN ref IS NULL THEN NULL ELSE aggregate(ref.shape, CAST(1 AS BIGINT), (a, d) -> a * d) END"),
    "tensor_nbytes": ("BIGINT", "ref.nbytes"),
}


def register_functions(spark: SparkSession) -> None:
    """Create (or replace) the tensor SQL functions as temporary functions of ``spark``'s session."""
    for name, (returns, body) in FUNCTIONS.items():
        spark.sql(f"CREATE OR REPLACE TEMPORARY FUNCTION {name}(ref {_REF}) RETURNS {returns} RETURN {body}")
