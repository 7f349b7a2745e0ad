"""Hostile refs: chunk ids that leave the dataset, shapes and indices that lie, samples that
contradict the tensor's fixed shape. Every entry point refuses them with a typed error naming the
dataset, tensor and chunk, and never opens a file outside the dataset.

Each dataset is written by our writer, then a "foreign writer" (delta-rs' ``write_deltalake``)
appends one row whose ref was made by hand: the way a damaged or hostile table reaches a user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

import deeplake_spark as dls
from deeplake_spark.dataset.reader import SampleReader
from deeplake_spark.errors import CorruptChunkError, UnsafePathError

TRAVERSAL = "../../../secret"
GOOD_ROWS = 3
LIE = [10**12, 10**6]


def make_dataset(root, shape=(12,)) -> str:
    """``<root>/parent/ds``: ids 0..2 and a fixed-shape uint8 tensor ``v`` (one chunk)."""
    path = str(root / "parent" / "ds")
    ds = dls.create(path, {"id": "int64", "v": dls.tensor(dtype="uint8", shape=shape)})
    n = int(np.prod(shape))
    ds.append({"id": np.arange(GOOD_ROWS), "v": (np.arange(GOOD_ROWS * n) % 251).astype(np.uint8)
              .reshape(GOOD_ROWS, *shape)})
    return path


def good_ref(path: str, row: int = 0) -> dict:
    return dls.open(path).table(columns=["v"]).column("v")[row].as_py()


def append_foreign_row(path: str, ref: dict | None, row_id: int = 99) -> None:
    """One row committed by delta-rs itself (not our writer), with ``ref`` as its ``v`` cell."""
    schema = pa.schema(DeltaTable(path).schema().to_arrow())
    write_deltalake(path, pa.Table.from_pylist([{"id": row_id, "v": ref}], schema=schema), mode="append")


def chunk_file(path: str, ref: dict) -> str:
    return os.path.join(path, "_tensors", "v", ref["chunk"] + ".dltc")


@pytest.fixture
def io_log(tmp_path, monkeypatch):
    """Every file our storage layer reads, from this process and the loader workers it forks."""
    log = tmp_path / "io.log"
    log.write_text("")
    monkeypatch.setenv("DEEPLAKE_SPARK_IO_LOG", str(log))
    return log


@pytest.fixture
def traversal(tmp_path):
    """A dataset whose last row's ref names chunk ``../../../secret``, and a valid chunk at
    ``<parent>/secret.dltc`` (where that id leads): reading it would return its samples."""
    path = make_dataset(tmp_path)
    ref = good_ref(path)
    secret = os.path.join(os.path.dirname(path), "secret.dltc")
    shutil.copy(chunk_file(path, ref), secret)
    append_foreign_row(path, {**ref, "chunk": TRAVERSAL})
    return path, secret


def assert_names_traversal(message: str, path: str) -> None:
    assert TRAVERSAL in message and "'v'" in message and os.path.basename(path) in message, message


def assert_secret_untouched(io_log, secret: str) -> None:
    assert os.path.exists(secret)
    assert "secret" not in io_log.read_text()


# --------------------------------------------------------------------------- chunk ids
@pytest.mark.parametrize("chunk_id", [TRAVERSAL, "a/b", "..", ".", "x.y", "abc\x00", "", "a" * 129])
def test_getitem_refuses_chunk_ids_that_are_not_plain_names(tmp_path, io_log, chunk_id):
    path = make_dataset(tmp_path)
    ref = good_ref(path)
    secret = os.path.join(os.path.dirname(path), "secret.dltc")
    shutil.copy(chunk_file(path, ref), secret)
    append_foreign_row(path, {**ref, "chunk": chunk_id})
    ds = dls.open(path)
    assert ds[0]["id"] == 0  # the good rows still read
    with pytest.raises(UnsafePathError) as error:
        ds[GOOD_ROWS]
    assert repr(chunk_id) in str(error.value) and "'v'" in str(error.value) and path in str(error.value)
    with pytest.raises(UnsafePathError):
        ds[:].numpy()
    assert_secret_untouched(io_log, secret)


@pytest.mark.parametrize("chunk_id", [None, 7, b"abc", ["x"]])
def test_sample_reader_refuses_chunk_ids_that_are_not_strings(tmp_path, chunk_id):
    path = make_dataset(tmp_path)
    ds = dls.open(path)
    reader = SampleReader(ds.storage, ds.schema.tensors, dataset=path)
    with pytest.raises(UnsafePathError, match="invalid chunk id"):
        reader.read("v", [{**good_ref(path), "chunk": chunk_id}])


def test_torch_loader_with_two_workers_refuses_a_traversal_ref(traversal, io_log):
    path, secret = traversal
    with pytest.raises(UnsafePathError) as error:
        for _ in dls.open(path).pytorch(batch_size=2, num_workers=2, shuffle=False):
            pass
    assert_names_traversal(str(error.value), path)
    assert_secret_untouched(io_log, secret)


def test_show_and_cli_show_refuse_a_traversal_ref(traversal, io_log, tmp_path):
    path, secret = traversal
    with pytest.raises(UnsafePathError) as error:
        dls.open(path).show(n=8)
    assert_names_traversal(str(error.value), path)
    out = tmp_path / "grid.png"
    done = subprocess.run([sys.executable, "-m", "deeplake_spark.cli", "show", path, "--out", str(out), "-n", "8"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "UnsafePathError" in done.stderr and "Traceback" not in done.stderr
    assert_names_traversal(done.stderr, path)
    assert not out.exists()
    assert_secret_untouched(io_log, secret)


# --------------------------------------------------------------------------- lying shapes and indices
def test_getitem_refuses_a_ref_whose_shape_is_not_the_chunks(tmp_path):
    path = make_dataset(tmp_path)
    ref = good_ref(path, 1)
    append_foreign_row(path, {**ref, "shape": LIE})
    ds = dls.open(path)
    with pytest.raises(CorruptChunkError) as error:
        ds[GOOD_ROWS]
    message = str(error.value)
    assert str(LIE) in message and "[12]" in message and "sample 1" in message
    assert f"_tensors/v/{ref['chunk']}.dltc" in message and path in message
    assert np.array_equal(ds[1]["v"], (np.arange(12, 24) % 251).astype(np.uint8))


def test_sample_reader_refuses_a_ref_without_a_shape(tmp_path):
    path = make_dataset(tmp_path)
    ds = dls.open(path)
    reader = SampleReader(ds.storage, ds.schema.tensors, dataset=path)
    with pytest.raises(CorruptChunkError, match=r"says shape None but the chunk header says \[12\]"):
        reader.read("v", [{**good_ref(path), "shape": None}], raw=True)


@pytest.mark.parametrize("hostile", [{"shape": LIE}, {"shape": [12, 1]}, {"shape": []}, {"index": 99},
                                     {"index": -1}, {"index": None}])
def test_torch_loader_refuses_refs_the_chunk_contradicts(tmp_path, hostile):
    path = make_dataset(tmp_path)
    ref = good_ref(path, 1)
    append_foreign_row(path, {**ref, **hostile})
    loader = dls.open(path).pytorch(batch_size=2, num_workers=2, shuffle=True)
    with pytest.raises(CorruptChunkError) as error:  # was IndexError for index 99, silence for shapes
        for _ in loader:
            pass
    message = str(error.value)
    assert f"_tensors/v/{ref['chunk']}.dltc" in message and "row 3" in message and path in message
    if "shape" in hostile:
        assert str(hostile["shape"]) in message and "[12]" in message


def test_torch_loader_reads_honest_refs_across_chunks_and_nulls(tmp_path):
    """The checks refuse nothing a real dataset holds: ragged ranks, nulls, several chunks."""
    path = str(tmp_path / "ragged")
    ds = dls.create(path, {"id": "int64", "r": dls.tensor(dtype="float32", chunk_size=64),
                           "b": dls.tensor("bbox", chunk_size=64)})
    rows = [{"id": i, "r": np.full((2,) * (i % 3 + 1), i, np.float32),
             "b": None if i % 4 == 0 else np.full((i % 3, 4), i, np.float32)} for i in range(40)]
    ds.append(rows)
    seen = []
    for batch in ds.pytorch(batch_size=8, num_workers=2, collate="list"):
        for i, r, b in zip(batch["id"].tolist(), batch["r"], batch["b"]):
            assert tuple(r.shape) == (2,) * (i % 3 + 1) and float(r.flatten()[0]) == i
            assert (b is None) == (i % 4 == 0)
            seen.append(i)
    assert sorted(seen) == list(range(40))


# --------------------------------------------------------------------------- fixed spec shape
def test_sample_contradicting_the_fixed_spec_shape_is_corrupt(tmp_path):
    """A chunk whose header says (5,) in a tensor of fixed shape (4,): refused on read, in ds[i]
    and in the loader, naming both shapes (not a silently wrong-shaped array)."""
    path = make_dataset(tmp_path, shape=(4,))
    other = make_dataset(tmp_path / "other", shape=(5,))
    foreign = good_ref(other)
    shutil.copy(chunk_file(other, foreign), chunk_file(path, foreign))
    append_foreign_row(path, foreign)
    ds = dls.open(path)
    with pytest.raises(CorruptChunkError) as error:
        ds[GOOD_ROWS]
    message = str(error.value)
    assert "(5,)" in message and "(4,)" in message and f"_tensors/v/{foreign['chunk']}.dltc" in message
    assert "sample 0" in message
    assert ds[0]["v"].shape == (4,)
    with pytest.raises(CorruptChunkError, match=r"fixed shape \(4,\)"):
        for _ in ds.pytorch(batch_size=2, num_workers=2):
            pass


# --------------------------------------------------------------------------- Spark
def spark_errors() -> tuple[type[BaseException], ...]:
    """What a failed Spark job raises in the driver (the executor's error is in its message)."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    return Py4JJavaError, PySparkException


@pytest.mark.parametrize("mode", ["bytes", "array"])
def test_spark_python_source_refuses_a_traversal_ref(spark, traversal, mode):
    path, secret = traversal
    df = spark.read.format("deeplake").option("tensors", mode).load(path)
    with pytest.raises(spark_errors()) as error:
        df.collect()
    assert "UnsafePathError" in str(error.value)
    assert_names_traversal(str(error.value), path)
    assert os.path.exists(secret)


def test_fetch_refuses_a_traversal_ref(spark, traversal):
    path, _ = traversal
    refs = spark.read.format("deeplake").load(path)
    assert refs.count() == GOOD_ROWS + 1  # refs alone read no chunk
    with pytest.raises(spark_errors()) as error:
        dls.fetch(refs, ["v"], mode="bytes").collect()
    assert "UnsafePathError" in str(error.value)
    assert_names_traversal(str(error.value), path)


def test_spark_bytes_mode_and_fetch_refuse_a_lying_shape(spark, tmp_path):
    """``tensors=bytes`` used to hand out the ref's shape ([10**12, 10**6] over 12 bytes)."""
    path = make_dataset(tmp_path)
    ref = good_ref(path, 2)
    honest = spark.read.format("deeplake").option("tensors", "bytes").load(path).collect()
    assert [tuple(r["v"]["shape"]) for r in honest] == [(12,)] * GOOD_ROWS
    append_foreign_row(path, {**ref, "shape": LIE})
    for df in (spark.read.format("deeplake").option("tensors", "bytes").load(path),
               dls.fetch(spark.read.format("deeplake").load(path), ["v"], mode="bytes")):
        with pytest.raises(spark_errors()) as error:
            df.collect()
        message = str(error.value)
        assert "CorruptChunkError" in message and str(LIE) in message and "[12]" in message
        assert f"_tensors/v/{ref['chunk']}.dltc" in message


def test_jvm_source_refuses_a_traversal_ref(spark, traversal):
    from deeplake_spark.spark import jvm

    if shutil.which("mvn") is None and not jvm.jar_file().exists():
        pytest.skip("no mvn to build the deeplake-jvm jar and no prebuilt jar")
    path, secret = traversal
    with pytest.raises(spark_errors()) as error:
        spark.read.format("deeplake-jvm").option("tensors", "bytes").load(path).collect()
    message = str(error.value)
    assert "UnsafePathException" in message and f"invalid chunk id '{TRAVERSAL}'" in message and "'v'" in message
    assert os.path.exists(secret)


def test_a_tensor_column_name_that_leaves_the_dataset_is_refused(spark, tmp_path):
    """A foreign table whose tensor column is named ``../../v``: its chunks would be read from
    ``<parent>/v/`` (``_tensors/../../v/<chunk>.dltc``), where a valid chunk waits."""
    from deltalake import DeltaTable as Table

    from deeplake_spark.dataset.refs import REF_TYPE, TENSOR_METADATA_KEY
    from deeplake_spark.errors import DeepLakeSparkError

    honest = make_dataset(tmp_path / "honest")
    ref = good_ref(honest)
    path = str(tmp_path / "parent" / "ds")
    os.makedirs(os.path.join(tmp_path, "parent", "v"))
    secret = os.path.join(tmp_path, "parent", "v", ref["chunk"] + ".dltc")
    shutil.copy(chunk_file(honest, ref), secret)
    spec = dls.open(honest).schema.tensors["v"].to_json()
    schema = pa.schema([pa.field("id", pa.int64()),
                        pa.field("../../v", REF_TYPE, metadata={TENSOR_METADATA_KEY: spec})])
    Table.create(path, schema)
    write_deltalake(path, pa.Table.from_pylist([{"id": 0, "../../v": ref}], schema=schema), mode="append")
    os.makedirs(os.path.join(path, "_tensors"))  # so that _tensors/../../v resolves on a local disk
    with pytest.raises(DeepLakeSparkError, match=r"\.\./\.\./v"):
        dls.open(path)[0]
    with pytest.raises(spark_errors()) as error:
        spark.read.format("deeplake").option("tensors", "bytes").load(path).collect()
    assert "../../v" in str(error.value)

    from deeplake_spark.spark import jvm

    if shutil.which("mvn") is None and not jvm.jar_file().exists():
        return
    with pytest.raises(spark_errors()) as error:
        spark.read.format("deeplake-jvm").option("tensors", "bytes").load(path).collect()
    message = str(error.value)
    assert "UnsafePathException" in message and "invalid tensor column name '../../v'" in message
    assert os.path.exists(secret)
