"""The jar's SQL functions on the shared session: ``cosine_similarity`` / ``l2_distance`` /
``inner_product`` / ``dot_product`` over embeddings read by both sources (``tensors="array"``) and over
plain Spark arrays, checked against numpy; and the optimizer rule that evaluates the array-sum
``aggregate`` natively, checked against Spark's own evaluation (rule switched off) on random arrays with
NULLs, NaN, infinities and empty arrays. One test starts a separate Spark application without our SQL
extensions to check that ``register()`` adds both to a running session.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys

import numpy as np
import pytest

import deeplake_spark as dls

pytest.importorskip("pyspark")

from py4j.protocol import Py4JJavaError  # noqa: E402
from pyspark.errors import AnalysisException, PySparkException  # noqa: E402

from deeplake_spark.spark import functions as sqlf  # noqa: E402
from deeplake_spark.spark import jvm  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("mvn") is None and not jvm.jar_file().exists(),
                                reason="no mvn to build the deeplake-jvm jar and no prebuilt jar")

DIM = 16
ROWS = 300
SOURCES = ("deeplake-jvm", "deeplake-python")


@pytest.fixture(scope="module")
def embeddings(tmp_path_factory):
    """A dataset of ROWS float32 embeddings (row 7 all zeros) in two commits; returns (path, values)."""
    path = str(tmp_path_factory.mktemp("vectors") / "ds")
    values = np.random.default_rng(3).standard_normal((ROWS, DIM)).astype(np.float32)
    values[7] = 0
    ds = dls.create(path, {"id": "int64", "emb": dls.tensor("embedding", dtype="float32", shape=(DIM,))})
    for start in (0, ROWS // 2):
        stop = start + ROWS // 2
        ds.append({"id": np.arange(start, stop), "emb": list(values[start:stop])})
    return path, values


def _query() -> np.ndarray:
    return np.random.default_rng(5).standard_normal(DIM)


def _sql_array(vector: np.ndarray) -> str:
    return "array(" + ", ".join(f"{float(v)!r}D" for v in vector) + ")"


def _expected(values: np.ndarray, query: np.ndarray) -> dict[str, np.ndarray]:
    a = values.astype(np.float64)
    dot = a @ query
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(query)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.where(norms == 0, np.nan, dot / norms)
    return {"cosine_similarity": cosine, "l2_distance": np.linalg.norm(a - query, axis=1),
            "inner_product": dot, "dot_product": dot}


@pytest.mark.parametrize("source", SOURCES)
def test_vector_functions_match_numpy_on_both_sources(spark, embeddings, source):
    path, values = embeddings
    query = _query()
    spark.read.format(source).option("tensors", "array").load(path).createOrReplaceTempView("vec_t")
    names = list(_expected(values, query))
    select = ", ".join(f"{name}(emb, {_sql_array(query)}) AS {name}" for name in names)
    rows = sorted(spark.sql(f"SELECT id, {select} FROM vec_t").collect(), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == list(range(ROWS))
    for name, expected in _expected(values, query).items():
        got = np.array([np.nan if r[name] is None else r[name] for r in rows])
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=name)
    assert rows[7]["cosine_similarity"] is None  # the zero vector has no direction


@pytest.mark.parametrize("source", SOURCES)
def test_order_by_limit_gives_numpys_top_k(spark, embeddings, source):
    path, values = embeddings
    query = _query()
    expected = _expected(values, query)
    # the docs/SQL_FUNCTIONS.md form: a temp view over the dataset, embeddings as arrays
    spark.sql(f"CREATE OR REPLACE TEMP VIEW vec_top USING `{source}` OPTIONS (path '{path}', tensors 'array')")
    df = spark.table("vec_top")
    top = spark.sql(f"SELECT id FROM vec_top ORDER BY cosine_similarity(emb, {_sql_array(query)}) DESC "
                    "LIMIT 10").collect()
    assert [r["id"] for r in top] == list(np.argsort(-np.nan_to_num(expected["cosine_similarity"], nan=-2))[:10])
    nearest = df.orderBy(sqlf.l2_distance("emb", query)).limit(5).select("id").collect()
    assert [r["id"] for r in nearest] == list(np.argsort(expected["l2_distance"])[:5])
    best = df.orderBy(sqlf.inner_product("emb", query).desc()).limit(3).select("id").collect()
    assert [r["id"] for r in best] == list(np.argsort(-expected["inner_product"])[:3])


def test_call_reads_as_written_and_runs_in_generated_code(spark, embeddings):
    path, _ = embeddings
    df = spark.read.format("deeplake-jvm").option("tensors", "array").load(path)
    named = df.select(sqlf.cosine_similarity("emb", [1.0] * DIM))
    assert named.columns == [f"cosine_similarity(emb, array({', '.join(['1.0'] * DIM)}))"]
    df.createOrReplaceTempView("vec_plan")
    plan = spark.sql(f"EXPLAIN SELECT cosine_similarity(emb, array({', '.join(['1'] * DIM)})) FROM vec_plan"
                     ).collect()[0][0]
    # the float column against the constant query vector, converted once to doubles, inside a codegen stage
    assert "VectorMath.cosineFD(emb" in plan
    assert "*(1) Project" in plan


def test_nulls_zero_vectors_empty_and_mixed_types(spark):
    row = spark.sql(
        "SELECT cosine_similarity(array(0F, 0F), array(1D, 2D)) AS zero, "
        "cosine_similarity(array(1F, NULL), array(1D, 2D)) AS null_element, "
        "l2_distance(NULL, array(1D)) AS null_arg, "
        "cosine_similarity(CAST(array() AS ARRAY<FLOAT>), CAST(array() AS ARRAY<FLOAT>)) AS empty_cosine, "
        "l2_distance(CAST(array() AS ARRAY<DOUBLE>), CAST(array() AS ARRAY<FLOAT>)) AS empty_l2, "
        "inner_product(array(1, 2, 3), array(4L, 5L, 6L)) AS ints, "
        "dot_product(array(1.5F, 2F), array(2D, 0.25D)) AS mixed, "
        "l2_distance(array(0.5, 1.5), array(3.5D, 5.5D)) AS decimals, "
        "cosine_similarity(array(1D, 0D), array(CAST('NaN' AS DOUBLE), 1D)) AS nan").collect()[0]
    assert row["zero"] is None and row["null_element"] is None and row["null_arg"] is None
    assert row["empty_cosine"] is None and row["empty_l2"] == 0.0
    assert row["ints"] == 32.0 and row["mixed"] == 3.5 and row["decimals"] == 5.0
    assert math.isnan(row["nan"])


def test_wrong_calls_fail_with_the_function_and_the_cause(spark):
    spark.createDataFrame([([1.0, 2.0, 3.0], "x")], "v ARRAY<FLOAT>, s STRING").createOrReplaceTempView("vec_bad")
    with pytest.raises((Py4JJavaError, PySparkException), match=r"cosine_similarity: the vectors have different "
                                                                 r"lengths, 3 and 2"):
        spark.sql("SELECT cosine_similarity(v, array(1D, 2D)) FROM vec_bad").collect()
    with pytest.raises(AnalysisException, match=r"DATATYPE_MISMATCH.*l2_distance.*second parameter.*STRING"):
        spark.sql("SELECT l2_distance(v, s) FROM vec_bad")
    with pytest.raises(AnalysisException, match=r"WRONG_NUM_ARGS.*`inner_product` requires 2 parameters"):
        spark.sql("SELECT inner_product(v) FROM vec_bad")


# ---------------------------------------------------------------- aggregate(a, 0D, (acc, x) -> acc + x)

def _random_arrays(rng: np.random.Generator, rows: int) -> list[list[float | None] | None]:
    """Arrays of random lengths (0..40) with NULL arrays, NULL elements, NaN and +-inf sprinkled in."""
    out: list[list[float | None] | None] = []
    specials = [None, float("nan"), float("inf"), float("-inf"), -0.0]
    for _ in range(rows):
        if rng.random() < 0.05:
            out.append(None)
            continue
        scale = 10.0 ** int(rng.integers(-3, 8))
        values: list[float | None] = [float(v) * scale for v in rng.standard_normal(int(rng.integers(0, 41)))]
        if values and rng.random() < 0.2:
            values[int(rng.integers(len(values)))] = specials[int(rng.integers(len(specials)))]
        out.append(values)
    return out


@pytest.fixture(scope="module")
def sum_table(spark, tmp_path_factory):
    """A Parquet table (read back: a real scan, generated code) of float, double, int and bigint arrays."""
    rng = np.random.default_rng(11)
    rows = 400
    doubles = _random_arrays(rng, rows)
    ints = [None if a is None else [int(v) if v is not None and math.isfinite(v) and abs(v) < 2**31 else None
                                    for v in a] for a in _random_arrays(rng, rows)]
    data = [(i, d, d, n, n) for i, (d, n) in enumerate(zip(doubles, ints, strict=True))]
    schema = "id INT, f ARRAY<FLOAT>, d ARRAY<DOUBLE>, i ARRAY<INT>, l ARRAY<BIGINT>"
    path = str(tmp_path_factory.mktemp("sums") / "t.parquet")
    frame = spark.createDataFrame(data, schema)
    # FLOAT cells hold the doubles rounded to float32 (inf/overflow included), as Spark casts them
    frame.write.parquet(path)
    spark.read.parquet(path).createOrReplaceTempView("sum_t")
    return "sum_t"


def _run(spark, sql: str, *, enabled: bool) -> tuple[list[tuple], str]:
    spark.conf.set(sqlf.ARRAY_SUM_CONF, str(enabled).lower())
    try:
        rows = [tuple(r) for r in spark.sql(sql).orderBy("id").collect()]
        plan = spark.sql(f"EXPLAIN {sql}").collect()[0][0]
    finally:
        spark.conf.unset(sqlf.ARRAY_SUM_CONF)
    return rows, plan


def _same(a: list[tuple], b: list[tuple]) -> bool:
    """Equal row by row, NaN equal to NaN and 0.0 told apart from -0.0 (identical results)."""
    def key(v):
        if not isinstance(v, float):
            return v
        return ("nan",) if math.isnan(v) else (v, math.copysign(1.0, v))
    return [tuple(map(key, r)) for r in a] == [tuple(map(key, r)) for r in b]


SUM_CASES = {
    "f": "aggregate(f, 0D, (acc, x) -> acc + CAST(x AS DOUBLE))",
    "f_swapped": "aggregate(f, 0D, (acc, x) -> x + acc)",
    "d": "aggregate(d, 0D, (acc, x) -> acc + x)",
    "d_start": "aggregate(d, -0D, (acc, x) -> acc + x, acc -> acc)",
    "i": "aggregate(i, 1.5D, (acc, x) -> acc + x)",
    "l": "aggregate(l, CAST(0 AS DOUBLE), (acc, x) -> acc + CAST(x AS DOUBLE))",
    # inside another higher-order function's lambda (interpreted there, the native call included)
    "nested": "element_at(transform(array(d, d), a -> aggregate(a, 0D, (acc, x) -> acc + x)), 2)",
}


def test_array_sum_rewrite_gives_identical_results(spark, sum_table):
    select = ", ".join(f"{expr} AS {name}" for name, expr in SUM_CASES.items())
    sql = f"SELECT id, {select} FROM {sum_table}"
    native, native_plan = _run(spark, sql, enabled=True)
    spark_rows, spark_plan = _run(spark, sql, enabled=False)
    assert "aggregate(" not in native_plan.split("== Physical Plan ==")[-1]
    for loop in ("sumFloat", "sumDouble", "sumInt", "sumLong"):
        assert f"ArraySum.{loop}(" in native_plan
    assert "aggregate(" in spark_plan and "ArraySum" not in spark_plan
    assert _same(native, spark_rows)
    values = [r[1:] for r in native]
    assert any(v is None for row in values for v in row)  # the data has NULL sums, NaN sums and empty arrays
    assert any(isinstance(v, float) and math.isnan(v) for row in values for v in row)
    assert any(v == 0.0 for row in values for v in row)
    # the case-9 benchmark's shape: inside sum(), over the float column
    plan = spark.sql(f"EXPLAIN SELECT sum({SUM_CASES['f']}) FROM {sum_table}").collect()[0][0]
    assert "sum(static_invoke(deeplake.spark.jvm.functions.ArraySum.sumFloat(f" in plan


OTHER_AGGREGATES = {
    "product": "aggregate(d, 1D, (acc, x) -> acc * x)",
    "plus_one": "aggregate(d, 0D, (acc, x) -> acc + x + 1)",
    "finish": "aggregate(d, 0D, (acc, x) -> acc + x, acc -> acc * 2)",
    "twice": "aggregate(i, 0L, (acc, x) -> acc + x * 2)",
    "acc_only": "aggregate(d, 0D, (acc, x) -> acc + acc)",
}


def test_other_aggregates_are_left_alone(spark, sum_table):
    select = ", ".join(f"{expr} AS {name}" for name, expr in OTHER_AGGREGATES.items())
    sql = f"SELECT id, {select} FROM {sum_table} WHERE id < 100"
    with_rule, plan = _run(spark, sql, enabled=True)
    without_rule, _ = _run(spark, sql, enabled=False)
    assert "ArraySum" not in plan
    assert plan.split("== Physical Plan ==")[-1].count("aggregate(") >= len(OTHER_AGGREGATES)
    assert _same(with_rule, without_rule)


INTEGER_SUMS = {
    "l": "aggregate(l, 0L, (acc, x) -> acc + x)",
    "i_bigint": "aggregate(i, 0L, (acc, x) -> x + acc)",
    "i_int": "aggregate(i, 0, (acc, x) -> acc + x)",
    "i_start": "aggregate(i, -7, (acc, x) -> acc + x, acc -> acc)",
}


def test_integer_sums_are_native_unless_null_or_overflow(spark, sum_table):
    """BIGINT/INT sums run the native loop, with Spark's own aggregate kept for rows whose sum has a NULL
    element or overflows: the same results, and the same overflow error (ANSI) or wrapped sum (not ANSI)."""
    select = ", ".join(f"{expr} AS {name}" for name, expr in INTEGER_SUMS.items())
    sql = f"SELECT id, {select} FROM {sum_table}"
    native, plan = _run(spark, sql, enabled=True)
    spark_rows, _ = _run(spark, sql, enabled=False)
    assert "ArraySum.sumLongExact(" in plan and "ArraySum.sumIntExact(" in plan and "coalesce(" in plan
    assert native == spark_rows
    assert any(v is None for row in native for v in row[1:])

    near_max = ("SELECT id, aggregate(i, 0, (acc, x) -> acc + x) AS s, aggregate(l, 0L, (acc, x) -> acc + x) AS t "
                "FROM (SELECT id, array(2147483647, CAST(id AS INT)) AS i, "
                "array(9223372036854775807L, id) AS l FROM range(2))")
    ansi = spark.conf.get("spark.sql.ansi.enabled")
    try:
        spark.conf.set("spark.sql.ansi.enabled", "true")
        for enabled in (True, False):
            with pytest.raises((Py4JJavaError, PySparkException), match="ARITHMETIC_OVERFLOW"):
                _run(spark, near_max, enabled=enabled)
        spark.conf.set("spark.sql.ansi.enabled", "false")
        wrapped, plan = _run(spark, near_max, enabled=True)
        assert "sumIntExact" in plan
        assert wrapped == _run(spark, near_max, enabled=False)[0] == [(0, 2147483647, 9223372036854775807),
                                                                      (1, -2147483648, -9223372036854775808)]
    finally:
        spark.conf.set("spark.sql.ansi.enabled", ansi)


@pytest.mark.slow
def test_register_adds_functions_and_rule_to_a_session_without_our_extensions(tmp_path):
    """A plain SparkSession with the jar on spark.jars but not our spark.sql.extensions: register() adds
    the vector functions (SQL works) and the sum rule (the plan calls ArraySum)."""
    from deeplake_spark.spark.session import jar_path

    script = tmp_path / "app.py"
    script.write_text(
        "import os, sys\n"
        "os.environ['PYSPARK_PYTHON'] = sys.executable\n"
        "from pyspark.sql import SparkSession\n"
        "import deeplake_spark as dls\n"
        f"spark = (SparkSession.builder.master('local[1]').config('spark.jars', {jar_path()!r})\n"
        "         .config('spark.ui.enabled', 'false').getOrCreate())\n"
        "print('EXTENSIONS', spark.conf.get('spark.sql.extensions', None))\n"
        "from deeplake_spark.spark.functions import register_functions\n"
        "dls.register(spark)\n"
        "print('AGAIN', register_functions(spark))\n"
        "print('COSINE', spark.sql('SELECT cosine_similarity(array(1F, 0F), array(1D, 1D))').first()[0])\n"
        "print('PLAN', 'ArraySum.sumDouble' in spark.sql('EXPLAIN SELECT aggregate(array(1D, 2D, id), 0D, "
        "(acc, x) -> acc + x) FROM range(3)').first()[0])\n"
        "spark.stop()\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "EXTENSIONS None" in done.stdout
    assert "AGAIN []" in done.stdout  # the first register() added them; a second call adds nothing
    assert f"COSINE {1 / math.sqrt(2)!r}" in done.stdout
    assert "PLAN True" in done.stdout
