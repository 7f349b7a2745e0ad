"""``make_spark_converter`` as a petastorm drop-in, each test modelled on petastorm's own
``petastorm/tests/test_spark_dataset_converter.py`` (named after it where one exists); real Spark
session, real torch DataLoaders with worker processes, real Delta logs. Remaining differences:
docs/PETASTORM.md."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import deeplake_spark as dls
from deeplake_spark.errors import DatasetNotFoundError, InvalidOptionError
from deeplake_spark.torch import converter_compat
from deeplake_spark.torch.converter import register_delete_dir_handler


def _rows(converter, **options):
    with converter.make_torch_dataloader(batch_size=4, num_epochs=1, num_workers=2, **options) as loader:
        batches = list(loader)
    return batches


def _column(batches, name):
    return torch.cat([b[name] for b in batches])


def test_primitive_defaults_no_shuffle_and_bool_as_uint8(spark, tmp_path):
    """petastorm's test_primitive: every scalar type, petastorm's dtypes; its torch loader does not
    shuffle by default (shuffling_queue_capacity=0) and gives booleans as uint8."""
    df = spark.createDataFrame(
        [(i, i % 2 == 0, float(i) + 0.5, float(i) * 2, i, i, i) for i in range(40)],
        "id long, bool_col boolean, float_col float, double_col double, short_col short, int_col int, "
        "byte_col byte").coalesce(1)
    converter = dls.make_spark_converter(df, cache_dir_url=str(tmp_path))
    batches = _rows(converter)
    assert _column(batches, "id").tolist() == list(range(40))  # no shuffling unless asked
    dtypes = {k: batches[0][k].dtype for k in batches[0]}
    assert dtypes == {"id": torch.int64, "bool_col": torch.uint8, "float_col": torch.float32,
                      "double_col": torch.float32, "short_col": torch.int16, "int_col": torch.int32,
                      "byte_col": torch.int8}
    assert _column(batches, "bool_col").tolist() == [int(i % 2 == 0) for i in range(40)]
    assert _column(batches, "double_col").tolist() == [float(i) * 2 for i in range(40)]
    shuffled = _column(_rows(converter, shuffling_queue_capacity=64, seed=3), "id").tolist()
    assert sorted(shuffled) == list(range(40)) and shuffled != list(range(40))
    # ds.pytorch() keeps this library's defaults: torch.bool
    ds = dls.open(converter.cache_dir_url)
    with ds.pytorch(batch_size=40, num_workers=0, shuffle=False) as loader:
        assert next(iter(loader))["bool_col"].dtype == torch.bool
    converter.delete()


def test_dtype_one_rule_for_view_and_materialize(spark, tmp_path):
    """petastorm's test_dtype, plus the view mode (deeplake refs) under the same rule."""
    df = spark.range(10).selectExpr("id", "cast(id as float) as float_col", "cast(id as double) as double_col")
    expected = {"float32": (torch.float32, torch.float32), "float64": (torch.float64, torch.float64),
                None: (torch.float32, torch.float64)}
    for dtype, (float_type, double_type) in expected.items():
        converter = dls.make_spark_converter(df, dtype=dtype, cache_dir_url=str(tmp_path))
        batch = _rows(converter)[0]
        assert (batch["float_col"].dtype, batch["double_col"].dtype) == (float_type, double_type), dtype
        converter.delete()
    path = str(tmp_path / "src")
    ds = dls.create(path, {"feat": dls.tensor("embedding", shape=(2,)), "w": "float64"})
    ds.append({"feat": np.ones((6, 2), dtype="float32"), "w": np.arange(6) * 0.5})
    view = spark.read.format("deeplake").load(path)
    assert dls.make_spark_converter(view, dtype="float64").mode == "view"
    assert _rows(dls.make_spark_converter(view, dtype="float64"))[0]["w"].dtype == torch.float64
    for frame in (df, view):
        with pytest.raises(InvalidOptionError, match="dtype='float16'"):
            dls.make_spark_converter(frame, dtype="float16", cache_dir_url=str(tmp_path))


def test_vector_to_array(spark, tmp_path):
    """petastorm's test_vector_to_array: dense and sparse Spark ML vectors come as float arrays."""
    from pyspark.ml.linalg import Vectors
    from pyspark.mllib.linalg import Vectors as OldVectors

    df = spark.createDataFrame([(0, Vectors.dense([1.0, 2.0, 3.0]), Vectors.sparse(3, {1: 5.0}),
                                 OldVectors.dense(10.0, 20.0, 30.0)),
                                (1, Vectors.dense([4.0, 5.0, 6.0]), Vectors.sparse(3, {0: 7.0, 2: 8.0}),
                                 OldVectors.dense(50.0, 60.0, 70.0))],
                               ["id", "dense", "sparse", "oldVec"]).coalesce(1)
    converter = dls.make_spark_converter(df, cache_dir_url=str(tmp_path))
    batch = _rows(converter)[0]
    assert {batch[c].dtype for c in ("dense", "sparse", "oldVec")} == {torch.float32}
    assert batch["dense"].tolist() == [[1, 2, 3], [4, 5, 6]]
    assert batch["sparse"].tolist() == [[0, 5, 0], [7, 0, 8]]
    assert batch["oldVec"].tolist() == [[10, 20, 30], [50, 60, 70]]
    wide = dls.make_spark_converter(df, dtype="float64", cache_dir_url=str(tmp_path))
    assert _rows(wide)[0]["dense"].dtype == torch.float64
    converter.delete()
    wide.delete()


def test_array_field_and_unexpected_param(spark, tmp_path):
    """petastorm's test_array_field / test_array (array<double> -> float32, batch shape) and
    test_torch_unexpected_param."""
    df = spark.range(10).selectExpr("id", "transform(sequence(1, 10), x -> cast(x * id as double)) as v")
    converter = dls.make_spark_converter(df, cache_dir_url=str(tmp_path))
    batch = _rows(converter)[0]
    assert batch["v"].shape == (4, 10) and batch["v"].dtype == torch.float32
    assert torch.equal(batch["v"][:, 0].long(), batch["id"])
    with pytest.raises(TypeError, match="unexpected keyword argument 'xyz'"):
        converter.make_torch_dataloader(xyz=1)
    converter.delete()


def test_df_caching(spark, tmp_path):
    """petastorm's test_df_caching: the same plan finds its cache; another plan, dtype or parent cache
    dir does not; petastorm's conf with a ``file:/`` URL (and a trailing slash) is honoured."""
    conf = "petastorm.spark.converter.parentCacheDirUrl"
    first = dls.make_spark_converter(spark.range(10), cache_dir_url=str(tmp_path / "a"))
    assert dls.make_spark_converter(spark.range(10), cache_dir_url=str(tmp_path / "a")).cache_dir_url == \
        first.cache_dir_url
    assert dls.make_spark_converter(spark.range(20), cache_dir_url=str(tmp_path / "a")).cache_dir_url != \
        first.cache_dir_url
    assert dls.make_spark_converter(spark.range(10), cache_dir_url=str(tmp_path / "a"),
                                    dtype="float64").cache_dir_url != first.cache_dir_url
    spark.conf.set(conf, f"file:{tmp_path}/b")
    try:
        in_b = dls.make_spark_converter(spark.range(10))
        assert in_b.cache_dir_url.startswith(f"file://{tmp_path}/b/") and in_b.cache_dir_url != first.cache_dir_url
        spark.conf.set(conf, f"file://{tmp_path}/b/")
        assert dls.make_spark_converter(spark.range(10)).cache_dir_url == in_b.cache_dir_url
    finally:
        spark.conf.unset(conf)
    assert len(in_b) == 10
    in_b.delete()
    first.delete()


def test_torch_pickling_remotely(spark, tmp_path):
    """petastorm's test_torch_pickling_remotely: a converter sent to a Spark task loads there."""
    converter = dls.make_spark_converter(spark.range(100, 101), cache_dir_url=str(tmp_path))

    def map_fn(_):
        with converter.make_torch_dataloader(num_epochs=1, num_workers=0) as loader:
            return [int(b["id"][0]) for b in loader][0]

    assert spark.sparkContext.parallelize(range(1), 1).map(map_fn).collect() == [100]
    converter.delete()
    path = str(tmp_path / "src")  # a view (refs into a deeplake dataset) travels too
    dls.create(path, {"feat": dls.tensor("embedding", shape=(2,)), "id": "int64"}).append(
        {"feat": np.full((3, 2), 7, dtype="float32"), "id": np.arange(100, 103)})
    converter = dls.make_spark_converter(spark.read.format("deeplake").load(path))
    assert converter.mode == "view"

    def view_fn(_):
        with converter.make_torch_dataloader(num_epochs=1, num_workers=0) as loader:
            return [(int(i), float(f[0])) for b in loader for i, f in zip(b["id"], b["feat"])]

    assert spark.sparkContext.parallelize(range(1), 1).flatMap(view_fn).collect() == [(100, 7.0), (101, 7.0),
                                                                                      (102, 7.0)]


def test_saved_dataframe_path(spark, tmp_path):
    """make_spark_converter('/path'): Parquet written by Spark, a Delta table written by delta-rs, a
    deeplake dataset (its tensors stay refs: view mode)."""
    deltalake = pytest.importorskip("deltalake")
    import pyarrow as pa

    parquet = str(tmp_path / "pq")
    spark.range(12).selectExpr("id", "id * 2 as twice").write.parquet(parquet)
    delta = str(tmp_path / "delta")
    deltalake.write_deltalake(delta, pa.table({"id": np.arange(12), "twice": np.arange(12) * 2}))
    for path in (parquet, delta):
        converter = dls.make_spark_converter(path, cache_dir_url=str(tmp_path / "cache"))
        batches = _rows(converter)
        ids = _column(batches, "id")
        assert sorted(ids.tolist()) == list(range(12)) and torch.equal(_column(batches, "twice"), ids * 2), path
        converter.delete()
    lake = str(tmp_path / "lake")
    dls.create(lake, {"feat": dls.tensor("embedding", shape=(2,)), "id": "int64"}).append(
        {"feat": np.arange(24, dtype="float32").reshape(12, 2), "id": np.arange(12)})
    converter = dls.make_spark_converter(lake)
    assert converter.mode == "view" and len(converter) == 12
    batches = _rows(converter)
    assert torch.equal(_column(batches, "feat")[:, 0].long(), _column(batches, "id") * 2)
    with pytest.raises(DatasetNotFoundError, match="nothing at"):
        dls.make_spark_converter(str(tmp_path / "missing"))


def test_scalar_only_dataframe_is_materialized_not_collected(spark, tmp_path):
    """Only tabular columns: written by the executors (materialize), never collected whole to the
    driver; mode='view' says why it cannot apply."""
    df = spark.range(0, 30, numPartitions=3).selectExpr("id", "id % 3 as cls")
    with pytest.raises(InvalidOptionError, match="only tabular columns"):
        dls.make_spark_converter(df, mode="view")
    converter = dls.make_spark_converter(df, cache_dir_url=str(tmp_path))
    assert converter.mode == "materialize" and len(converter) == 30
    batches = _rows(converter)
    assert sorted(_column(batches, "id").tolist()) == list(range(30))
    converter.delete()


def test_delete_and_set_delete_handler(spark, tmp_path):
    """petastorm's test_delete and test_set_delete_handler; cache_dir_url is a file:// URL."""
    df = spark.createDataFrame([(1, 2), (4, 5)], ["col1", "col2"])
    converter = dls.make_spark_converter(df, cache_dir_url=str(tmp_path))
    assert converter.cache_dir_url.startswith("file://" + str(tmp_path))
    local_path = converter.cache_dir_url[len("file://"):]
    assert os.path.exists(local_path)
    deleted = []

    def handler(url):
        deleted.append(url)
        raise RuntimeError("Not implemented delete handler.")

    register_delete_dir_handler(handler)
    try:
        with pytest.raises(RuntimeError, match="Not implemented delete handler"):
            converter.delete()
    finally:
        register_delete_dir_handler(None)
    assert deleted == [converter.cache_dir_url] and os.path.exists(local_path)
    converter.delete()
    assert not os.path.exists(local_path)
    with pytest.raises(InvalidOptionError, match="callable"):
        register_delete_dir_handler("rm -rf")


def test_atexit(tmp_path):
    """petastorm's test_atexit: a process that converts and exits leaves no cache behind."""
    out = tmp_path / "url.txt"
    code = textwrap.dedent(f"""
        import deeplake_spark as dls
        from deeplake_spark.spark import spark_session
        spark = spark_session(master="local[1]")
        df = spark.createDataFrame([(1, 2), (4, 5)], ["col1", "col2"])
        converter = dls.make_spark_converter(df, cache_dir_url={str(tmp_path / "cache")!r})
        import os
        assert os.path.isdir(converter.cache_dir_url[len("file://"):])
        open({str(out)!r}, "w").write(converter.cache_dir_url)
    """)
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    url = out.read_text()
    assert url.startswith("file://") and not os.path.exists(url[len("file://"):])


def test_horovod_rank_compatibility(spark, tmp_path, monkeypatch):
    """petastorm's test_horovod_rank_compatibility, and the ranks honoured as torch.distributed's are."""
    for rank_var, size_var in converter_compat.RANK_ENV:
        monkeypatch.delenv(rank_var, raising=False)
        monkeypatch.delenv(size_var, raising=False)
    assert converter_compat.env_rank_and_size() == (None, None)
    for rank_var, size_var in converter_compat.RANK_ENV:
        with monkeypatch.context() as m:
            m.setenv(rank_var, "1")
            m.setenv(size_var, "3")
            assert converter_compat.env_rank_and_size() == (1, 3)
            m.delenv(size_var)
            assert converter_compat.env_rank_and_size() == (None, None)  # half a pair: ignored
    df = spark.range(20).coalesce(1)
    converter = dls.make_spark_converter(df, cache_dir_url=str(tmp_path))
    explicit = _column(_rows(converter, cur_shard=1, shard_count=2), "id").tolist()
    monkeypatch.setenv("HOROVOD_RANK", "1")
    monkeypatch.setenv("HOROVOD_SIZE", "2")
    from_env = _column(_rows(converter), "id").tolist()
    assert from_env == explicit and len(from_env) == 10
    monkeypatch.setenv("HOROVOD_SIZE", "two")
    with pytest.raises(InvalidOptionError, match="HOROVOD_SIZE"):
        converter.make_torch_dataloader()
    converter.delete()


def test_register_says_how_to_fix_a_worker_python_without_pyarrow(spark, tmp_path, caplog):
    """A session whose workers run an interpreter without pyarrow (a plain SparkSession without
    PYSPARK_PYTHON): register() names it and the fix."""
    from deeplake_spark.spark import session
    from deeplake_spark.spark.python_check import worker_python_problem

    bare = tmp_path / "python3"  # the same interpreter without site-packages: no pyarrow
    bare.write_text(f"#!/bin/sh\nexec {sys.executable} -S -I \"$@\"\n")
    bare.chmod(0o755)
    assert worker_python_problem(sys.executable, master="local[2]") is None
    assert worker_python_problem(str(bare), master="yarn") is None  # not checkable from the driver
    problem = worker_python_problem(str(bare), master="local[2]")
    assert problem is not None and "pyarrow" in problem and f"PYSPARK_PYTHON={sys.executable}" in problem
    assert "not found" in worker_python_problem(str(tmp_path / "nope"), master="local")
    context = spark.sparkContext
    saved = context.pythonExec
    context.pythonExec = str(bare)
    try:
        with caplog.at_level(logging.WARNING, logger=session.__name__):
            session.register(spark)
    finally:
        context.pythonExec = saved
        # register() registered the Python source with the bare interpreter: register it again with
        # the real one, or later tests of this shared session start workers without pyspark
        session.register(spark)
    assert any("PYSPARK_PYTHON" in r.getMessage() and str(bare) in r.getMessage() for r in caplog.records)


def test_materialize_prints_no_bar_into_a_log(spark, tmp_path, capfd):
    """Two small conversions into a non-terminal stderr: no progress bar lines (progress=None)."""
    from deeplake_spark.dataset.progress import show_progress

    for n in (12, 13):
        converter = dls.make_spark_converter(spark.range(n).selectExpr("id", "array(id, id) as pair"),
                                             cache_dir_url=str(tmp_path))
        assert len(converter) == n
        converter.delete()
    err = capfd.readouterr().err
    assert "materializing" not in err
    assert show_progress(None) is False and show_progress(True) is True and show_progress(False) is False
