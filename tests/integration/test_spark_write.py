"""Write side of the ``deeplake`` Spark source: real local Spark, real Delta log, real chunks."""

from __future__ import annotations

import io
import json
import os
import shutil

import numpy as np
import pyarrow as pa
import pytest

import deeplake_spark as dls

pytest.importorskip("pyspark")

from pyspark.sql import functions as F
from pyspark.sql.utils import AnalysisException

from deeplake_spark.errors import DatasetExistsError, DecodeError, InvalidOptionError, SchemaError
from deeplake_spark.spark.spark_errors import deeplake_errors
from deeplake_spark.spark.writer import make_writer, write


def deeplake_is_jvm(spark) -> bool:
    """Whether ``format("deeplake")`` is the JVM source in this session (docs/FORMAT_NAMES.md)."""
    return spark.conf.get("spark.deeplake.defaultFormat", "python") == "jvm"


def encode(array: np.ndarray, fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)))


def files_under(path: str) -> set[str]:
    out = set()
    for root, _, names in os.walk(path):
        for name in names:
            rel = os.path.relpath(os.path.join(root, name), path)
            if not rel.startswith("_delta_log"):
                out.add(rel)
    return out


ROWS = 12
SCHEMA = ("id long, name string, score double, jpg binary, png binary, label long, boxes array<array<float>>, "
          "emb array<float>, mask array<array<boolean>>, caption string, meta string, audio array<float>, "
          "grid array<array<int>>, scalar double")
OPTIONS = {
    "tensor.label.htype": "class_label",
    "tensor.boxes.htype": "bbox",
    "tensor.mask.htype": "binary_mask",
    "tensor.caption.htype": "text",
    "tensor.meta.htype": "json",
    "tensor.audio.htype": "audio",
    "tensor.grid.dtype": "int16",
    "tensor.scalar.htype": "generic",
    "tensor.scalar.dtype": "float64",
}


def make_rows() -> list[tuple]:
    rng = np.random.default_rng(7)
    rows = []
    for i in range(ROWS):
        rgb = rng.integers(0, 255, (6 + i % 3, 5, 3), dtype=np.uint8)
        gray = rng.integers(0, 255, (4, 3 + i % 2), dtype=np.uint8)
        rows.append((
            i,
            None if i == 3 else f"n{i}",
            None if i == 4 else i / 2,
            None if i == 5 else encode(rgb, "JPEG"),
            encode(gray, "PNG"),
            i % 4,
            [[float(i), 1.0, 2.0, 3.0]] * (i % 3),               # ragged: 0..2 boxes
            None if i == 6 else [float(i), -1.0, 0.5],
            [[bool((i + j) % 2) for j in range(3)] for _ in range(2)],
            f"caption {i}",
            json.dumps({"i": i, "even": i % 2 == 0}),
            [0.1 * i] * (i + 1),
            [[i] * (1 + i % 2)] * (2 + i % 3),                     # ragged 2-d
            float(i) * 1.5,
        ))
    return rows


@pytest.fixture(scope="module")
def source_rows():
    return make_rows()


@pytest.fixture(scope="module")
def written(spark, source_rows, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("write") / "ds")
    df = spark.createDataFrame(source_rows, SCHEMA).repartition(3, "id").sortWithinPartitions("id")
    df.write.format("deeplake").mode("append").options(**OPTIONS).save(path)
    return path


def test_inferred_and_optioned_schema(written):
    ds = dls.open(written)
    tensors = ds.schema.tensors
    assert set(tensors) == {"jpg", "png", "label", "boxes", "emb", "mask", "caption", "meta", "audio", "grid",
                            "scalar"}
    assert (tensors["jpg"].htype, tensors["jpg"].compression) == ("image", "jpeg")
    assert (tensors["png"].htype, tensors["png"].compression) == ("image", "png")
    assert (tensors["label"].htype, tensors["label"].shape) == ("class_label", ())
    assert (tensors["boxes"].htype, tensors["boxes"].shape) == ("bbox", (None, 4))
    assert (tensors["emb"].htype, tensors["emb"].dtype, tensors["emb"].shape) == ("embedding", "float32", (None,))
    assert (tensors["grid"].htype, tensors["grid"].dtype, tensors["grid"].shape) == ("generic", "int16", (None, None))
    assert (tensors["scalar"].dtype, tensors["scalar"].shape) == ("float64", ())
    assert ds.schema.tabular.names == ["id", "name", "score"]
    assert len(ds) == ROWS and ds.version == 0


def test_round_trip_python_api(written, source_rows):
    ds = dls.open(written)
    by_id = {int(ds[i]["id"]): ds[i] for i in range(len(ds))}
    assert sorted(by_id) == list(range(ROWS))
    for row in source_rows:
        got = by_id[row[0]]
        assert got["name"] == row[1] or (row[1] is None and got["name"] is None)
        assert (got["score"] == row[2]) or (row[2] is None and np.isnan(got["score"]))
        if row[3] is None:
            assert got["jpg"] is None
        else:
            np.testing.assert_array_equal(got["jpg"], decode(row[3]))
        np.testing.assert_array_equal(got["png"], decode(row[4]))
        assert got["label"] == row[5] and got["label"].shape == ()
        np.testing.assert_array_equal(got["boxes"], np.array(row[6], dtype=np.float32).reshape(-1, 4))
        if row[7] is None:
            assert got["emb"] is None
        else:
            np.testing.assert_array_equal(got["emb"], np.array(row[7], dtype=np.float32))
        np.testing.assert_array_equal(got["mask"], np.array(row[8], dtype=bool))
        assert got["caption"] == row[9]
        assert json.loads(got["meta"]) == json.loads(row[10])
        np.testing.assert_array_equal(got["audio"], np.array(row[11], dtype=np.float32))
        assert got["grid"].dtype == np.int16
        np.testing.assert_array_equal(got["grid"], np.array(row[12]))
        assert got["scalar"] == row[13] and got["scalar"].shape == ()


def test_images_are_passed_through_undecoded(written, source_rows):
    ds = dls.open(written)
    table = ds.table(["id", "jpg", "png"])
    ids = table.column("id").to_pylist()
    raw_jpg = ds.read_tensor("jpg", table.column("jpg").to_pylist(), raw=True)
    raw_png = ds.read_tensor("png", table.column("png").to_pylist(), raw=True)
    for i, jpg, png in zip(ids, raw_jpg, raw_png):
        assert jpg == source_rows[i][3]
        assert png == source_rows[i][4]


def test_round_trip_spark_read(spark, written, source_rows):
    df = (spark.read.format("deeplake")
          .option("tensors", "jpg=bytes,png=bytes,boxes=array,emb=array,grid=array,label=array,caption=array")
          .option("columns", "id,name,jpg,png,boxes,emb,grid,label,caption")
          .load(written))
    rows = {r["id"]: r for r in df.collect()}
    assert sorted(rows) == list(range(ROWS))
    for src in source_rows:
        got = rows[src[0]]
        assert got["name"] == src[1]
        assert (got["jpg"] is None) if src[3] is None else bytes(got["jpg"]["data"]) == src[3]
        assert bytes(got["png"]["data"]) == src[4]
        assert got["boxes"] == [[float(v) for v in box] for box in src[6]]
        assert got["emb"] == (None if src[7] is None else [np.float32(v) for v in src[7]])
        assert got["grid"] == src[12]
        assert got["label"] == src[5]
        assert got["caption"] == src[9]


def test_tables_are_standard_delta(written):
    import polars as pl
    from deltalake import DeltaTable

    frame = pl.read_delta(written)
    assert sorted(frame["id"].to_list()) == list(range(ROWS))
    assert frame.filter(pl.col("id") == 3)["name"].to_list() == [None]
    table = DeltaTable(written).to_pyarrow_table(columns=["id", "score"])
    assert sorted(table.column("id").to_pylist()) == list(range(ROWS))
    stats = DeltaTable(written).get_add_actions(flatten=True)
    stats = pa.table(stats)
    assert sum(stats.column("num_records").to_pylist()) == ROWS
    assert min(stats.column("min.id").to_pylist()) == 0 and max(stats.column("max.id").to_pylist()) == ROWS - 1


def test_rows_keep_partition_order_and_one_commit(spark, tmp_path):
    path = str(tmp_path / "ordered")
    df = spark.range(0, 30, numPartitions=3).withColumn("emb", F.array(F.col("id").cast("float"), F.lit(1.0)))
    df.write.format("deeplake").mode("append").save(path)
    ds = dls.open(path)
    assert ds.version == 0 and len(ds.history()) == 1
    assert ds.table(["id"]).column("id").to_pylist() == list(range(30))
    np.testing.assert_array_equal(ds[7]["emb"], np.array([7.0, 1.0], dtype=np.float32))
    df.write.format("deeplake").mode("append").save(path)
    ds = dls.open(path)
    assert ds.version == 1 and ds.table(["id"]).column("id").to_pylist() == list(range(30)) * 2


def test_save_modes(spark, tmp_path):
    path = str(tmp_path / "modes")
    df = spark.range(0, 6, numPartitions=2).withColumn("v", F.array(F.col("id").cast("double")))
    if deeplake_is_jvm(spark):
        # the JVM source takes every save mode itself
        df.write.format("deeplake").mode("ignore").save(path)
        with pytest.raises(DatasetExistsError, match="already holds a dataset"), deeplake_errors():
            df.write.format("deeplake").mode("errorifexists").save(path)
        assert len(dls.open(path)) == 6
        shutil.rmtree(path)
    else:
        # Spark's analyzer refuses these modes for any Python data source (PySpark 4.3).
        for mode in ("errorifexists", "ignore"):
            with pytest.raises(AnalysisException, match="UNSUPPORTED_DATA_SOURCE_SAVE_MODE"):
                df.write.format("deeplake").mode(mode).save(path)
    assert not os.path.exists(path)

    write(df, path)                                   # errorifexists on a new path creates it
    assert len(dls.open(path)) == 6
    with pytest.raises(DatasetExistsError, match="already holds a dataset"):
        write(df, path, mode="errorifexists")
    with pytest.raises(DatasetExistsError), deeplake_errors():
        df.write.format("deeplake").mode("append").option("saveMode", "errorifexists").save(path)
    write(df.limit(1), path, mode="ignore")
    df.limit(1).write.format("deeplake").mode("append").option("saveMode", "ignore").save(path)
    assert len(dls.open(path)) == 6 and dls.open(path).version == 0

    write(df, path, mode="append")
    df.write.format("deeplake").mode("append").save(path)
    assert len(dls.open(path)) == 18
    df.limit(2).write.format("deeplake").mode("overwrite").save(path)
    ds = dls.open(path)
    assert len(ds) == 2 and ds.version == 3
    assert len(dls.open(path, version=2)) == 18               # overwrite keeps history

    fresh = str(tmp_path / "ignored")
    write(df, fresh, mode="ignore")                            # ignore on a new path writes
    assert len(dls.open(fresh)) == 6


def test_overwrite_schema(spark, tmp_path):
    path = str(tmp_path / "schema")
    spark.range(3).write.format("deeplake").mode("append").save(path)
    other = spark.range(2).select(F.col("id").cast("string").alias("name"))
    with pytest.raises(SchemaError, match="not in the dataset"), deeplake_errors():
        other.write.format("deeplake").mode("overwrite").save(path)
    other.write.format("deeplake").mode("overwrite").option("overwriteSchema", "true").save(path)
    ds = dls.open(path)
    assert ds.schema.order == ("name",) and sorted(ds.table().column("name").to_pylist()) == ["0", "1"]


def test_failed_job_leaves_no_rows_and_no_files(spark, tmp_path):
    path = str(tmp_path / "fail")
    base = spark.range(0, 40, numPartitions=4).withColumn("emb", F.array(F.col("id").cast("float")))
    base.write.format("deeplake").mode("append").save(path)
    before = files_under(path)

    @F.udf("long")
    def explode_on_37(x):
        if x == 37:
            raise ValueError("boom at 37")
        return x

    bad = base.withColumn("id", explode_on_37("id"))
    with pytest.raises(Exception, match="boom at 37"):
        bad.write.format("deeplake").mode("append").save(path)
    ds = dls.open(path)
    assert ds.version == 0 and len(ds) == 40
    leftover = files_under(path) - before
    if leftover:  # a task killed mid-write cannot clean up: vacuum removes what it left
        ds.vacuum(0, enforce_retention_duration=False)
        assert files_under(path) - before == set()
    assert files_under(path) >= before
    assert dls.open(path).table(["id"]).column("id").to_pylist() == list(range(40))


def test_binary_file_source(spark, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(1)
    originals = {}
    for i in range(5):
        fmt, ext = ("JPEG", "jpg") if i < 3 else ("PNG", "png")
        data = encode(rng.integers(0, 255, (9, 7, 3), dtype=np.uint8), fmt)
        (folder / f"img{i}.{ext}").write_bytes(data)
        originals[f"img{i}.{ext}"] = data
    path = str(tmp_path / "files")
    df = spark.read.format("binaryFile").load(str(folder))
    df.write.format("deeplake").mode("append").save(path)
    ds = dls.open(path)
    spec = ds.schema.tensors["content"]
    assert (spec.htype, spec.compression) == ("image", "jpeg")    # the most common format
    table = ds.table(["path", "length", "content"])
    raw = ds.read_tensor("content", table.column("content").to_pylist(), raw=True)
    for p, data in zip(table.column("path").to_pylist(), raw):
        assert data == originals[p.rsplit("/", 1)[-1]]
    for i in range(len(ds)):
        name = ds[i]["path"].rsplit("/", 1)[-1]
        np.testing.assert_array_equal(ds[i]["content"], decode(originals[name]))


def test_image_source_struct(spark, tmp_path):
    folder = tmp_path / "pngs"
    folder.mkdir()
    rng = np.random.default_rng(2)
    originals = []
    for i in range(3):
        pixels = rng.integers(0, 255, (4 + i, 6, 3), dtype=np.uint8)
        (folder / f"p{i}.png").write_bytes(encode(pixels, "PNG"))
        originals.append(pixels)
    path = str(tmp_path / "structs")
    spark.read.format("image").load(str(folder)).write.format("deeplake").mode("append").save(path)
    ds = dls.open(path)
    assert (ds.schema.tensors["image"].htype, ds.schema.tensors["image"].compression) == ("image", "png")
    got = sorted((ds[i]["image"] for i in range(len(ds))), key=lambda a: a.shape[0])
    for pixels, arr in zip(originals, got):
        np.testing.assert_array_equal(arr, pixels)


def test_copy_dataset_through_spark(spark, written, tmp_path):
    copy = str(tmp_path / "copy")
    df = spark.read.format("deeplake").option("tensors", "bytes").option("columns", "id,jpg,grid,caption").load(written)
    df.write.format("deeplake").mode("append").save(copy)
    src, dst = dls.open(written), dls.open(copy)
    assert dst.schema.tensors["grid"] == src.schema.tensors["grid"]
    for i in range(len(dst)):
        row = dst[i]
        j = src.table(["id"]).column("id").to_pylist().index(int(row["id"]))
        for name in ("jpg", "grid", "caption"):
            a, b = row[name], src[j][name]
            assert (a is None and b is None) or np.array_equal(a, b)


def test_option_and_schema_errors(spark, written, tmp_path):
    from pyspark.sql.types import StructType

    schema = StructType.fromDDL("id long, emb array<float>, img binary")
    new = str(tmp_path / "new")
    with pytest.raises(InvalidOptionError, match="unknown option 'colour'"):
        make_writer({"path": new, "colour": "red"}, schema, False)
    with pytest.raises(InvalidOptionError, match="nope"):
        make_writer({"path": new, "tensor.nope.htype": "image"}, schema, False)
    with pytest.raises(InvalidOptionError, match="chunkSize"):
        make_writer({"path": new, "tensor.emb.chunksize": "-3"}, schema, False)
    with pytest.raises(InvalidOptionError, match="htype"):
        make_writer({"path": new, "tensor.emb.htype": "picture"}, schema, False)
    with pytest.raises(InvalidOptionError, match="shape"):
        make_writer({"path": new, "tensor.emb.shape": "(x, 2)"}, schema, False)
    with pytest.raises(InvalidOptionError, match="tensor.emb.color"):
        make_writer({"path": new, "tensor.emb.color": "1"}, schema, False)
    with pytest.raises(SchemaError, match="cannot be stored"):
        make_writer({"path": new, "tensor.id.htype": "text"}, schema, False)
    with pytest.raises(InvalidOptionError, match="path"):
        make_writer({}, schema, False)
    # appends must match the dataset's schema
    with pytest.raises(SchemaError, match="not in the dataset"):
        make_writer({"path": written}, StructType.fromDDL("id long, extra int"), False)
    with pytest.raises(SchemaError, match="cannot be stored in tensor 'jpg'"):
        make_writer({"path": written}, StructType.fromDDL("id long, jpg string"), False)
    with pytest.raises(SchemaError, match="does not fit"):
        make_writer({"path": written}, StructType.fromDDL("id long, name array<int>"), False)
    with pytest.raises(SchemaError, match="disagree"):
        make_writer({"path": written, "tensor.emb.dtype": "float64"}, StructType.fromDDL("id long, emb array<double>"),
                    False)
    # the same errors surface through Spark, and bad data fails the job without a commit
    df = spark.createDataFrame([(1, [1.0])], "id long, emb array<float>")
    with pytest.raises(InvalidOptionError, match="unknown option 'colour'"), deeplake_errors():
        df.write.format("deeplake").mode("append").option("colour", "red").save(new)
    ragged = spark.createDataFrame([(1, [[1, 2], [3]])], "id long, g array<array<int>>")
    with pytest.raises(SchemaError, match="nested arrays of different lengths"), deeplake_errors():
        ragged.write.format("deeplake").mode("append").save(new)
    not_image = spark.createDataFrame([(1, b"plain bytes")], "id long, blob binary")
    with pytest.raises(DecodeError, match="not a JPEG or PNG"), deeplake_errors():
        not_image.write.format("deeplake").mode("append").save(new)
    not_image.write.format("deeplake").mode("append").option("tabularColumns", "blob").save(new)
    assert dls.open(new).table().column("blob").to_pylist() == [b"plain bytes"]


def test_append_casts_compatible_types_and_fills_missing_columns(spark, tmp_path):
    path = str(tmp_path / "cast")
    spark.createDataFrame([(1, 2.5, [1, 2])], "id long, x double, m array<int>").write.format("deeplake") \
        .mode("append").option("tensor.m.dtype", "uint8").save(path)
    spark.createDataFrame([(2, 3)], "id int, x int").write.format("deeplake").mode("append").save(path)
    ds = dls.open(path)
    table = ds.table()
    assert table.column("id").to_pylist() == [1, 2] and table.column("x").to_pylist() == [2.5, 3.0]
    assert ds[1]["m"] is None and ds[0]["m"].dtype == np.uint8
    out_of_range = spark.createDataFrame([(3, 1.0, [300])], "id long, x double, m array<int>")
    with pytest.raises(SchemaError, match="out of range"), deeplake_errors():
        out_of_range.write.format("deeplake").mode("append").save(path)
    assert len(dls.open(path)) == 2


def test_empty_dataframe_creates_empty_dataset(spark, tmp_path):
    path = str(tmp_path / "empty")
    spark.createDataFrame([], "id long, emb array<float>").write.format("deeplake").mode("append").save(path)
    ds = dls.open(path)
    assert len(ds) == 0 and "emb" in ds.schema.tensors
