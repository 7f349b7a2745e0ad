"""deeplake's Spark SQL functions (docs/SQL_FUNCTIONS.md).

Tensor refs, without opening a chunk file: SQL UDFs (``CREATE TEMPORARY FUNCTION ... RETURN``), inlined
by Spark's optimizer, so no Python worker runs:

>>> spark.sql("SELECT id, tensor_shape(image), tensor_ndim(image), tensor_nbytes(image) FROM cats")

* ``tensor_shape(ref)``  -> ``array<bigint>``: the sample shape;
* ``tensor_ndim(ref)``   -> ``int``: the sample rank;
* ``tensor_numel(ref)``  -> ``bigint``: the number of values (product of the shape);
* ``tensor_nbytes(ref)`` -> ``bigint``: the stored bytes of the sample (the encoded image size for jpeg/png).

All return NULL for a NULL ref (a missing sample).

Vectors, on the JVM (the jar's ``deeplake.spark.jvm.functions``; generated code, no Python UDF), over
arrays of numbers (``tensors="array"`` reads of an embedding tensor, or any Spark array column):

>>> spark.sql("SELECT id FROM docs ORDER BY cosine_similarity(embedding, array(0.1, 0.2, 0.3)) DESC LIMIT 10")

* ``cosine_similarity(a, b)`` -> ``double``: a.b / (|a| |b|); NULL when a or b has norm 0 (all zeros);
* ``l2_distance(a, b)``       -> ``double``: the Euclidean distance;
* ``inner_product(a, b)`` / ``dot_product(a, b)`` -> ``double``: sum(a_i * b_i).

NULL when a, b or one of their elements is NULL; arrays of different lengths fail the query with an
error naming the function and both lengths. With them comes an optimizer rule that evaluates
``aggregate(a, 0D, (acc, x) -> acc + x)`` (the sum of an array; also with ``0L`` / ``0`` over integer
arrays) natively with identical results (``spark.deeplake.optimizer.arraySum.enabled=false`` turns it off). Sessions made by
:func:`deeplake_spark.spark_session` get both through the jar's SQL extensions; :func:`register_functions`
adds them to a running classic session that has the jar on its classpath but not the extensions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

log = logging.getLogger(__name__)

_REF = "STRUCT<chunk: STRING, index: INT, shape: ARRAY<BIGINT>, nbytes: BIGINT>"

#: name -> (return type, SQL body over the parameter ``ref``)
FUNCTIONS: dict[str, tuple[str, str]] = {
    "tensor_shape": ("ARRAY<BIGINT>", "ref.shape"),
    "tensor_ndim": ("INT", "CASE WHEN ref IS NULL THEN NULL ELSE size(ref.shape) END"),
    "tensor_numel": ("BIGINT",
                     "CASE WHEN ref IS NULL THEN NULL ELSE aggregate(ref.shape, CAST(1 AS BIGINT), (a, d) -> a * d) END"),
    "tensor_nbytes": ("BIGINT", "ref.nbytes"),
}

#: The vector functions of the jar (``deeplake.spark.jvm.functions.VectorFunctions``).
VECTOR_FUNCTIONS = ("cosine_similarity", "l2_distance", "inner_product", "dot_product")
#: The session setting that turns the ``aggregate`` sum rewrite off (``false``); on by default.
ARRAY_SUM_CONF = "spark.deeplake.optimizer.arraySum.enabled"
_REGISTRAR = "deeplake.spark.jvm.functions.SqlFunctions"


def register_functions(spark: SparkSession) -> list[str]:
    """Create (or replace) the tensor SQL functions as temporary functions of ``spark``'s session, and
    add the jar's vector functions and ``aggregate`` sum rule when the session lacks them.

    Returns the vector functions added here: none in a session made by :func:`deeplake_spark.spark_session`
    (its SQL extensions have them), nor where they cannot be added (a Spark Connect session, whose
    server needs ``spark.sql.extensions=deeplake.spark.jvm.DeepLakeSparkSessionExtensions``, or a session
    without the jar; both are logged).
    """
    for name, (returns, body) in FUNCTIONS.items():
        spark.sql(f"CREATE OR REPLACE TEMPORARY FUNCTION {name}(ref {_REF}) RETURNS {returns} RETURN {body}")
    return _register_jvm_functions(spark)


def _register_jvm_functions(spark: SparkSession) -> list[str]:
    """The jar's registrar called on a running classic session (the one place this package uses Py4J:
    a session's function registry and optimizer rules cannot be reached otherwise)."""
    jvm = getattr(spark, "_jvm", None)
    session = getattr(spark, "_jsparkSession", None)
    if jvm is None or session is None:
        log.info("deeplake vector SQL functions: not added to this Spark Connect session; start its server with "
                 "spark.sql.extensions=deeplake.spark.jvm.DeepLakeSparkSessionExtensions")
        return []
    from py4j.java_gateway import JavaClass

    registrar = jvm
    for part in _REGISTRAR.split("."):
        registrar = getattr(registrar, part)
    if not isinstance(registrar, JavaClass):
        log.info("deeplake vector SQL functions: the deeplake-spark jar is not on this session's classpath")
        return []
    return list(registrar.register(session))


def cosine_similarity(column: str | Column, vector: Iterable[float] | Column) -> Column:
    """``cosine_similarity(column, vector)`` as a DataFrame column: ``df.orderBy(cosine_similarity("emb",
    query).desc()).limit(10)``; ``vector`` is a column or an iterable of numbers (a literal array of doubles)."""
    return F.call_function("cosine_similarity", _column(column), _column(vector))


def l2_distance(column: str | Column, vector: Iterable[float] | Column) -> Column:
    """``l2_distance(column, vector)`` as a DataFrame column (see :func:`cosine_similarity`)."""
    return F.call_function("l2_distance", _column(column), _column(vector))


def inner_product(column: str | Column, vector: Iterable[float] | Column) -> Column:
    """``inner_product(column, vector)`` as a DataFrame column (see :func:`cosine_similarity`)."""
    return F.call_function("inner_product", _column(column), _column(vector))


def _column(value: str | Column | Iterable[float]) -> Column:
    if isinstance(value, Column):
        return value
    if isinstance(value, str):
        return F.col(value)
    return F.array(*[F.lit(float(v)) for v in value])
