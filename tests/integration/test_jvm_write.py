"""The JVM writer (``df.write.format("deeplake-jvm")``): real local Spark, real Delta log, real chunks.

Every dataset written here is read back by the Python dataset layer (``deeplake_spark.open``), by
delta-rs (``deltalake.DeltaTable``: the log is standard Delta) and by the JVM reader.
"""

from __future__ import annotations

import glob
import io
import json
import os
import shutil
import threading

import numpy as np
import pytest

import deeplake_spark as dls

pytest.importorskip("pyspark")

from py4j.protocol import Py4JJavaError  # noqa: E402
from pyspark.errors import PySparkException  # noqa: E402

from deeplake_spark.errors import DatasetExistsError  # noqa: E402
from deeplake_spark.spark import jvm  # noqa: E402
from deeplake_spark.spark.spark_errors import deeplake_errors  # noqa: E402

SPARK_ERRORS = (Py4JJavaError, PySparkException)
FMT = "deeplake-jvm"

pytestmark = pytest.mark.skipif(shutil.which("mvn") is None and not jvm.jar_file().exists(),
                                reason="no Maven to build the deeplake-jvm jar and no prebuilt jar")


def encode(array: np.ndarray, fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def log_lines(path: str, version: int) -> list[dict]:
    with open(os.path.join(path, "_delta_log", f"{version:020d}.json")) as f:
        return [json.loads(line) for line in f if line.strip()]


def versions(path: str) -> list[int]:
    return sorted(int(os.path.basename(p)[:20]) for p in glob.glob(os.path.join(path, "_delta_log", "*.json")))


def data_files(path: str) -> set[str]:
    out = set()
    for root, _, names in os.walk(path):
        for name in names:
            rel = os.path.relpath(os.path.join(root, name), path)
            if not rel.startswith("_delta_log"):
                out.add(rel)
    return out


ROWS = 12
SCHEMA = ("id long, name string, jpg binary, png binary, emb array<float>, label long, "
          "boxes array<array<float>>, grid array<array<int>>, caption string, mask array<array<boolean>>")
OPTIONS = {
    "tensor.label.htype": "class_label",
    "tensor.boxes.htype": "bbox",
    "tensor.grid.dtype": "int16",
    "tensor.caption.htype": "text",
    "tensor.mask.htype": "binary_mask",
}


def make_rows() -> list[tuple]:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(ROWS):
        rows.append((
            i,
            None if i == 3 else f"n{i}",
            None if i == 5 else encode(rng.integers(0, 255, (6 + i % 3, 5, 3), dtype=np.uint8), "JPEG"),
            encode(rng.integers(0, 255, (4, 3 + i % 2), dtype=np.uint8), "PNG"),
            None if i == 6 else [float(i), -1.0, 0.5],
            i % 4,
            [[float(i), 1.0, 2.0, 3.0]] * (i % 3),
            [[i, 1], [2, -3]],
            f"caption {i}",
            [[True, False], [bool(i % 2), True]],
        ))
    return rows


@pytest.fixture(scope="module")
def written(spark, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("jvmw") / "ds")
    df = spark.createDataFrame(make_rows(), SCHEMA).repartition(3)
    df.write.format(FMT).options(**OPTIONS).save(path)
    return path


def run_in_threads(call, args, timeout: float | None = None) -> list[BaseException]:
    """``call(a)`` for each of ``args`` in its own thread, all at once; the exceptions they raised."""
    errors: list[BaseException] = []

    def one(arg) -> None:
        try:
            call(arg)
        except BaseException as e:  # noqa: BLE001 - returned to the test
            errors.append(e)

    threads = [threading.Thread(target=one, args=(a,)) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return errors

def test_new_dataset_is_one_commit_read_by_python(written):
    assert versions(written) == [0]
    actions = log_lines(written, 0)
    kinds = [next(iter(a)) for a in actions]
    assert kinds[:3] == ["commitInfo", "protocol", "metaData"] and kinds.count("add") == 3
    ds = dls.open(written)
    assert len(ds) == ROWS
    by_id = {int(ds[i]["id"]): ds[i] for i in range(ROWS)}
    rows = {r[0]: r for r in make_rows()}
    for i, sample in by_id.items():
        want = rows[i]
        assert sample["name"] == want[1]
        if want[2] is None:
            assert sample["jpg"] is None
        else:
            assert sample["jpg"].shape == (6 + i % 3, 5, 3)
        assert sample["png"].shape == (4, 3 + i % 2)
        if want[4] is None:
            assert sample["emb"] is None
        else:
            np.testing.assert_array_equal(sample["emb"], np.array(want[4], np.float32))
        assert int(sample["label"]) == i % 4
        assert sample["boxes"].shape == (i % 3, 4)
        assert sample["grid"].dtype == np.int16
        np.testing.assert_array_equal(sample["grid"], [[i, 1], [2, -3]])
        assert str(sample["caption"]) == f"caption {i}"
        np.testing.assert_array_equal(sample["mask"], np.array(want[9]))


def test_specs_and_storage_match_the_python_writer(written):
    schema = dls.open(written).schema
    specs = {name: spec for name, spec in schema.tensors.items()}
    assert specs["jpg"].compression == "jpeg" and specs["png"].compression == "png"
    assert specs["emb"].htype == "embedding" and specs["emb"].shape == (None,)
    assert specs["label"].htype == "class_label" and specs["label"].dtype == "int32"
    assert specs["grid"].dtype == "int16" and specs["mask"].compression == "lz4"
    meta = next(a["metaData"] for a in log_lines(written, 0) if "metaData" in a)
    fields = {f["name"]: f for f in json.loads(meta["schemaString"])["fields"]}
    # scalar tensors are inline: plain columns of their type with the spec in field metadata
    assert fields["label"]["type"] == "integer" and "deeplake.tensor" in fields["label"]["metadata"]
    assert fields["caption"]["type"] == "string" and "deeplake.tensor" in fields["caption"]["metadata"]
    assert fields["emb"]["type"]["type"] == "struct"
    assert not glob.glob(os.path.join(written, "_tensors", "label", "*"))


def test_images_are_stored_untouched(written):
    from deeplake_spark.format.chunk_reader import ChunkReader  # noqa: F401  (format layer reads the chunk)

    rows = {r[0]: r for r in make_rows()}
    from deltalake import DeltaTable

    table = DeltaTable(written).to_pyarrow_table(columns=["id", "png"]).to_pylist()
    for row in table:
        ref = row["png"]
        with open(os.path.join(written, "_tensors", "png", ref["chunk"] + ".dltc"), "rb") as f:
            chunk = f.read()
        from deeplake_spark.format.header import decode_header

        header = decode_header(chunk)
        start = header.header_len + int(header.byte_positions[ref["index"]])
        end = header.header_len + int(header.byte_positions[ref["index"] + 1])
        assert chunk[start:end] == rows[row["id"]][3]


def test_log_is_standard_delta_with_stats(written):
    from deltalake import DeltaTable

    dt = DeltaTable(written)
    assert dt.version() == 0
    table = dt.to_pyarrow_table(columns=["id", "name", "label"])
    assert sorted(table.column("id").to_pylist()) == list(range(ROWS))
    adds = [a["add"] for a in log_lines(written, 0) if "add" in a]
    stats = [json.loads(a["stats"]) for a in adds]
    assert sum(s["numRecords"] for s in stats) == ROWS
    assert min(s["minValues"]["id"] for s in stats) == 0 and max(s["maxValues"]["id"] for s in stats) == ROWS - 1
    assert sum(s["nullCount"]["name"] for s in stats) == 1
    assert all("emb" not in s["minValues"] for s in stats)
    # the footer key lets our vacuum recognise an uncommitted file as ours
    import pyarrow.parquet as pq

    footer = pq.read_schema(os.path.join(written, adds[0]["path"])).metadata
    assert b"deeplake.tensor" in footer and "emb" in json.loads(footer[b"deeplake.tensor"])


def test_jvm_reader_reads_what_the_jvm_writer_wrote(spark, written):
    df = spark.read.format(FMT).option("tensors", "array,jpg=bytes,png=bytes").load(written)
    rows = {r["id"]: r for r in df.collect()}
    assert len(rows) == ROWS
    assert rows[4]["emb"] == pytest.approx([4.0, -1.0, 0.5]) and rows[6]["emb"] is None
    assert rows[7]["grid"] == [[7, 1], [2, -3]] and rows[7]["label"] == 3
    assert rows[2]["boxes"] == [[2.0, 1.0, 2.0, 3.0]] * 2
    assert spark.read.format(FMT).load(written).where("label = 3").count() == 3


def test_save_without_mode_refuses_an_existing_dataset(spark, written):
    df = spark.createDataFrame([(100,)], "id long")
    with pytest.raises(SPARK_ERRORS, match="already holds a dataset"):
        df.write.format(FMT).save(written)
    with pytest.raises(SPARK_ERRORS, match="already holds a dataset"):
        df.write.format(FMT).mode("errorifexists").save(written)
    assert versions(written) == [0]


def test_ignore_leaves_an_existing_dataset_and_creates_a_new_one(spark, written, tmp_path):
    df = spark.createDataFrame([(100,)], "id long")
    df.write.format(FMT).mode("ignore").save(written)
    assert versions(written) == [0]
    fresh = str(tmp_path / "fresh")
    df.write.format(FMT).mode("ignore").save(fresh)
    assert [int(r["id"]) for r in dls.open(fresh)] == [100]


def test_append_is_one_commit_and_keeps_partition_order(spark, tmp_path):
    path = str(tmp_path / "ds")
    spark.range(0, 10, numPartitions=1).write.format(FMT).save(path)
    spark.range(10, 40, numPartitions=3).write.format(FMT).mode("append").save(path)
    assert versions(path) == [0, 1]
    assert sum(1 for a in log_lines(path, 1) if "add" in a) == 3
    assert [int(r["id"]) for r in dls.open(path)] == list(range(40))


def test_append_schema_mismatch_and_merge_schema(spark, tmp_path):
    path = str(tmp_path / "ds")
    spark.createDataFrame([(1, "a")], "id long, name string").write.format(FMT).save(path)
    extra = spark.createDataFrame([(2, "b", 2.5)], "id long, name string, score double")
    with pytest.raises(SPARK_ERRORS, match=r"\['score'\] are not in the dataset"):
        extra.write.format(FMT).mode("append").save(path)
    assert versions(path) == [0] and not glob.glob(os.path.join(path, "*.parquet"))[1:]
    extra.write.format(FMT).mode("append").option("mergeSchema", "true").save(path)
    commit = log_lines(path, 1)
    assert any("metaData" in a for a in commit) and any("add" in a for a in commit)
    rows = sorted((int(r["id"]), r["name"], float(r["score"])) for r in dls.open(path))
    assert rows[0][:2] == (1, "a") and np.isnan(rows[0][2]) and rows[1] == (2, "b", 2.5)
    # a column the DataFrame lacks is written as nulls; a type that does not fit is refused by name
    spark.createDataFrame([(3,)], "id long").write.format(FMT).mode("append").save(path)
    assert len(dls.open(path)) == 3
    with pytest.raises(SPARK_ERRORS, match="column 'name'.*does not fit"):
        spark.createDataFrame([(4, [1.0])], "id long, name array<double>").write.format(FMT).mode("append") \
            .option("tabularColumns", "name").save(path)


def test_overwrite_removes_all_files_in_one_commit(spark, written, tmp_path):
    path = str(tmp_path / "ow")
    spark.createDataFrame(make_rows(), SCHEMA).write.format(FMT).options(**OPTIONS).save(path)
    before = {a["add"]["path"] for a in log_lines(path, 0) if "add" in a}
    spark.createDataFrame([(100, "x")], "id long, name string").write.format(FMT).mode("overwrite").save(path)
    commit = log_lines(path, 1)
    assert {a["remove"]["path"] for a in commit if "remove" in a} == before
    assert sum(1 for a in commit if "add" in a) >= 1
    ds = dls.open(path)
    assert [(int(r["id"]), r["name"]) for r in ds] == [(100, "x")]
    assert "jpg" in ds.schema.tensors  # schema kept: missing columns are nulls
    spark.createDataFrame([(7, 1.5)], "id long, other double").write.format(FMT).mode("overwrite") \
        .option("overwriteSchema", "true").save(path)
    ds = dls.open(path)
    assert list(ds.schema.order) == ["id", "other"] and len(ds) == 1
    from deltalake import DeltaTable

    assert DeltaTable(path).to_pyarrow_table().to_pylist() == [{"id": 7, "other": 1.5}]


def test_bad_options_and_values_are_refused_by_name(spark, tmp_path):
    path = str(tmp_path / "bad")
    df = spark.createDataFrame([(1, [1.0, 2.0])], "id long, emb array<double>")
    with pytest.raises(SPARK_ERRORS, match="unknown option 'tensorz'"):
        df.write.format(FMT).option("tensorz", "x").save(path)
    with pytest.raises(SPARK_ERRORS, match="tensor.emb.htype: bad value 'nope'"):
        df.write.format(FMT).option("tensor.emb.htype", "nope").save(path)
    with pytest.raises(SPARK_ERRORS, match="tensor 'emb'.*out of range for uint8"):
        spark.createDataFrame([(1, [1, 300])], "id long, emb array<int>").write.format(FMT) \
            .option("tensor.emb.dtype", "uint8").save(path)
    with pytest.raises(SPARK_ERRORS, match=r"cannot encode an array of shape \[1, 1, 2\] as jpeg"):
        spark.createDataFrame([(1, [[[1, 2]]])], "id long, img array<array<array<int>>>").write.format(FMT) \
            .option("tensor.img.htype", "image").save(path)
    # the failed job left nothing behind: no log, no data files, no chunks
    assert not os.path.exists(os.path.join(path, "_delta_log"))
    assert not [f for f in data_files(path) if f.endswith((".parquet", ".dltc"))] if os.path.exists(path) else True


def test_failed_task_leaves_nothing_visible(spark, tmp_path):
    from pyspark.sql import functions as F

    path = str(tmp_path / "fail")
    spark.range(0, 10, numPartitions=1).write.format(FMT).save(path)
    files_before = data_files(path)

    @F.udf("array<float>")
    def boom(i):
        if i == 33:
            raise ValueError("injected failure")
        return [float(i)]

    df = spark.range(10, 40, numPartitions=3).withColumn("emb", boom("id"))
    with pytest.raises(SPARK_ERRORS, match="injected failure"):
        df.write.format(FMT).mode("append").option("mergeSchema", "true").save(path)
    assert versions(path) == [0]
    assert len(dls.open(path)) == 10
    # Failed tasks delete their files; the driver deletes those of finished tasks, and finds by the
    # job's write id the files of a task that finished between the job's failure and its
    # interruption (Spark drops that task's result): nothing of the job is left.
    assert data_files(path) == files_before


def test_concurrent_appends_both_commit(spark, tmp_path):
    path = str(tmp_path / "conc")
    spark.range(0, 1).write.format(FMT).save(path)
    errors = run_in_threads(
        lambda start: spark.range(start, start + 50, numPartitions=2).write.format(FMT).mode("append").save(path),
        (100, 200, 300))
    assert not errors
    assert versions(path) == [0, 1, 2, 3]
    assert sorted(int(r["id"]) for r in dls.open(path)) == [0, *range(100, 150), *range(200, 250), *range(300, 350)]


def test_refuses_tables_with_rules_it_cannot_keep(spark, tmp_path):
    path = str(tmp_path / "ao")
    spark.range(0, 3).write.format(FMT).save(path)
    meta = next(a["metaData"] for a in log_lines(path, 0) if "metaData" in a)
    meta["configuration"] = {"delta.appendOnly": "true"}
    with open(os.path.join(path, "_delta_log", f"{1:020d}.json"), "w") as f:
        f.write(json.dumps({"metaData": meta}) + "\n")
    spark.range(3, 5).write.format(FMT).mode("append").save(path)  # appends keep appendOnly
    with pytest.raises(SPARK_ERRORS, match="appendOnly"):
        spark.range(0, 1).write.format(FMT).mode("overwrite").save(path)
    assert versions(path) == [0, 1, 2]


def test_txn_options_make_a_write_idempotent(spark, tmp_path):
    path = str(tmp_path / "txn")
    df = spark.range(0, 5)
    for _ in range(2):
        df.write.format(FMT).mode("append").option("txnAppId", "job-a").option("txnVersion", "7").save(path)
    assert len(dls.open(path)) == 5
    txn = [a["txn"] for a in log_lines(path, 0) if "txn" in a]
    assert txn and txn[0]["appId"] == "job-a" and txn[0]["version"] == 7
    df.write.format(FMT).mode("append").option("txnAppId", "job-a").option("txnVersion", "8").save(path)
    assert len(dls.open(path)) == 10


def test_chunks_are_byte_equal_to_the_python_writer(spark, tmp_path):
    from deeplake_spark.format.chunk_writer import ChunkBuilder
    from deeplake_spark.format.samples import encode_sample
    from deeplake_spark.format.spec import TensorSpec

    path = str(tmp_path / "bytes")
    values = [[[float(i), 2.0], [3.0, -1.0]] for i in range(7)]
    spark.createDataFrame([(i, v) for i, v in enumerate(values)], "id long, g array<array<double>>") \
        .coalesce(1).write.format(FMT).option("tensor.g.dtype", "float32").save(path)
    spec = dls.open(path).schema.tensors["g"]
    builder = ChunkBuilder(spec)
    for v in values:
        builder.add(encode_sample(spec, np.array(v)))
    (chunk,) = glob.glob(os.path.join(path, "_tensors", "g", "*.dltc"))
    with open(chunk, "rb") as f:  # the header's chunk tag too: the id the JVM named the file after
        assert f.read() == builder.finish(os.path.basename(chunk)[: -len(".dltc")])
    lz4_path = str(tmp_path / "lz4")
    spark.createDataFrame([(i, v) for i, v in enumerate(values)], "id long, g array<array<double>>") \
        .coalesce(1).write.format(FMT).option("tensor.g.compression", "lz4").save(lz4_path)
    ds = dls.open(lz4_path)
    assert ds.schema.tensors["g"].compression == "lz4"
    for i in range(7):
        np.testing.assert_array_equal(ds[i]["g"], np.array(values[int(ds[i]["id"])]))
    assert TensorSpec.from_dict(spec.to_dict()) == spec


def test_round_trip_bytes_mode_copy(spark, written, tmp_path):
    copy = str(tmp_path / "copy")
    spark.read.format(FMT).option("tensors", "bytes").load(written).write.format(FMT).save(copy)
    src, dst = dls.open(written), dls.open(copy)
    assert dst.schema.tensors["jpg"].compression == "jpeg" and dst.schema.tensors["emb"].dtype == "float32"
    a = {int(s["id"]): s for s in src}
    for s in dst:
        np.testing.assert_array_equal(s["boxes"], a[int(s["id"])]["boxes"])
        if s["jpg"] is not None:
            np.testing.assert_array_equal(s["jpg"], a[int(s["id"])]["jpg"])


def test_bytes_of_another_kind_are_not_copied(spark, written, tmp_path):
    emb = spark.read.format(FMT).option("tensors", "bytes").load(written).select("id", "emb")
    with pytest.raises(SPARK_ERRORS, match="holds stored bytes of a tensor.*float32.*cannot be copied"):
        emb.write.format(FMT).option("tensor.emb.dtype", "float64").save(str(tmp_path / "x"))
    with pytest.raises(SPARK_ERRORS, match="cannot be copied"):
        emb.write.format(FMT).option("tensor.emb.htype", "image").save(str(tmp_path / "y"))


def test_save_as_table_and_sql_insert(spark, tmp_path):
    path = str(tmp_path / "tbl")
    spark.sql("DROP TABLE IF EXISTS jvmw_t")
    spark.createDataFrame([(1, "a")], "id long, name string").write.format(FMT).option("path", path) \
        .saveAsTable("jvmw_t")
    try:
        assert [int(r["id"]) for r in dls.open(path)] == [1]
        spark.sql("INSERT INTO jvmw_t SELECT 2 AS id, 'b' AS name")
        spark.sql("INSERT INTO jvmw_t VALUES (3, 'c')")
        assert sorted(int(r["id"]) for r in dls.open(path)) == [1, 2, 3]
        assert sorted(r["id"] for r in spark.table("jvmw_t").collect()) == [1, 2, 3]
        spark.sql("INSERT OVERWRITE jvmw_t SELECT 9 AS id, 'z' AS name")
        assert [(int(r["id"]), r["name"]) for r in dls.open(path)] == [(9, "z")]
        assert len(versions(path)) == 4
    finally:
        spark.sql("DROP TABLE IF EXISTS jvmw_t")


def test_create_table_location_then_insert(spark, tmp_path):
    path = str(tmp_path / "loc")
    spark.createDataFrame([(1, [1.0, 2.0])], "id long, emb array<float>").write.format(FMT).save(path)
    spark.sql("DROP TABLE IF EXISTS jvmw_loc")
    spark.sql(f"CREATE TABLE jvmw_loc USING `{FMT}` LOCATION '{path}'")
    try:
        spark.sql("INSERT INTO jvmw_loc SELECT 2 AS id, array(3.0f, 4.0f) AS emb")
        ds = dls.open(path)
        assert sorted(int(r["id"]) for r in ds) == [1, 2]
        assert ds.schema.tensors["emb"].htype == "embedding"
        got = {int(r["id"]): r["emb"] for r in ds}
        np.testing.assert_array_equal(got[2], np.array([3.0, 4.0], np.float32))
    finally:
        spark.sql("DROP TABLE IF EXISTS jvmw_loc")


def test_streaming_sink_is_exactly_once_across_restarts(spark, tmp_path):
    from pyspark.sql import functions as F

    path, checkpoint, source = str(tmp_path / "stream"), str(tmp_path / "ckpt"), str(tmp_path / "in")
    os.makedirs(source)

    def add_input(n: int, start: int) -> None:
        spark.range(start, start + n).coalesce(1).write.mode("append").parquet(source)

    def run_once() -> None:
        stream = (spark.readStream.schema("id long").parquet(source)
                  .withColumn("emb", F.array(F.col("id").cast("float")))
                  .writeStream.format(FMT).option("checkpointLocation", checkpoint).trigger(availableNow=True)
                  .start(path))
        stream.awaitTermination(120)
        assert stream.exception() is None

    add_input(5, 0)
    run_once()
    add_input(5, 5)
    run_once()
    ds = dls.open(path)
    assert sorted(int(r["id"]) for r in ds) == list(range(10))
    txns = [a["txn"] for v in versions(path) for a in log_lines(path, v) if "txn" in a]
    assert [t["version"] for t in txns] == [0, 1] and len({t["appId"] for t in txns}) == 1
    # a restart that replays a committed batch (its commit marker lost from the checkpoint) skips it
    for name in ("1", ".1.crc"):
        marker = os.path.join(checkpoint, "commits", name)
        if os.path.exists(marker):
            os.remove(marker)
    run_once()
    assert sorted(int(r["id"]) for r in dls.open(path)) == list(range(10))
    assert len(versions(path)) == 2


def test_appends_to_a_dataset_written_by_the_python_api(spark, tmp_path):
    path = str(tmp_path / "py")
    ds = dls.create(path, {"id": "int64", "emb": dls.tensor("embedding", dtype="float32", shape=(2,)),
                           "label": dls.tensor("class_label")})
    ds.append({"id": [0, 1], "emb": [np.array([0, 0], np.float32), np.array([1, 1], np.float32)], "label": [0, 1]})
    spark.createDataFrame([(2, [2.0, 2.0], 2)], "id long, emb array<float>, label int") \
        .write.format(FMT).mode("append").save(path)
    ds = dls.open(path)
    got = {int(r["id"]): (r["emb"].tolist(), int(r["label"])) for r in ds}
    assert got == {0: ([0.0, 0.0], 0), 1: ([1.0, 1.0], 1), 2: ([2.0, 2.0], 2)}
    with pytest.raises(SPARK_ERRORS, match="does not match tensor shape"):
        spark.createDataFrame([(3, [1.0, 2.0, 3.0], 0)], "id long, emb array<float>, label int") \
            .write.format(FMT).mode("append").save(path)


def s3a_options(server) -> dict[str, str]:
    """Hadoop S3A settings for the SeaweedFS test server."""
    options = server.storage_options
    return {"fs.s3a.endpoint": server.endpoint, "fs.s3a.access.key": options["AWS_ACCESS_KEY_ID"],
            "fs.s3a.secret.key": options["AWS_SECRET_ACCESS_KEY"], "fs.s3a.endpoint.region": options["AWS_REGION"],
            "fs.s3a.path.style.access": "true", "fs.s3a.connection.ssl.enabled": "false"}


def test_s3_without_conditional_writes_is_refused_before_any_task_writes(spark):
    if not jvm.s3a_jars():
        pytest.skip(f"no S3A jars in jvm-shim/target/s3a; run the README set-up ({jvm.SETUP_COMMAND})")
    with pytest.raises(SPARK_ERRORS, match="commits to S3 only with conditional writes"):
        spark.range(1).write.format(FMT).option("fs.s3a.create.conditional.enabled", "false") \
            .save("s3a://bucket/never")


@pytest.mark.slow
def test_s3_commits_are_put_if_absent_and_concurrent_appends_all_land(spark, s3_server):
    """SeaweedFS honours If-None-Match: a commit file that exists is never replaced; concurrent writers retry."""
    if not jvm.s3a_jars():
        pytest.skip(f"no S3A jars in jvm-shim/target/s3a; run the README set-up ({jvm.SETUP_COMMAND})")
    uri = s3_server.uri("jvm-commits")
    s3a, opts = uri.replace("s3://", "s3a://", 1), s3a_options(s3_server)
    rows = lambda start: spark.createDataFrame(  # noqa: E731
        [(i, [float(i), 1.0]) for i in range(start, start + 5)], "id long, emb array<float>").repartition(2)
    rows(0).write.format(FMT).options(**opts).save(s3a)
    first = s3_server.filesystem().open_input_file(f"{uri[5:]}/_delta_log/{0:020d}.json").read()
    # a second creator of version 0 (a writer that planned against "no table") is refused, v0 untouched
    committer = spark._jvm.deeplake.spark.jvm.write.DeltaCommitter
    conf = spark._jvm.org.apache.hadoop.conf.Configuration()
    for key, value in opts.items():
        conf.set(key, value)
    schema = spark._jvm.org.apache.spark.sql.types.DataType.fromJson(rows(0).schema.json())
    with pytest.raises(DatasetExistsError, match="another writer created the dataset concurrently"), \
            deeplake_errors():
        committer.commit(s3a, conf, -1, spark._jvm.java.util.ArrayList(), False, schema, None, -1, "CREATE TABLE",
                         spark._jvm.java.util.HashMap())
    assert s3_server.filesystem().open_input_file(f"{uri[5:]}/_delta_log/{0:020d}.json").read() == first
    errors = run_in_threads(lambda start: rows(start).write.format(FMT).mode("append").options(**opts).save(s3a),
                            (100, 200, 300), timeout=300)
    assert errors == []
    ds = dls.open(uri, storage_options=s3_server.storage_options)
    assert ds.version == 3
    assert sorted(int(r["id"]) for r in ds) == [*range(5), *range(100, 105), *range(200, 205), *range(300, 305)]
    got = {int(r["id"]): r["emb"].tolist() for r in ds}
    assert got[203] == [203.0, 1.0]
    jvm_rows = spark.read.format(FMT).options(**opts).option("tensors", "array").load(s3a).collect()
    assert len(jvm_rows) == 20


def test_delta_spark_reads_the_jvm_writers_table(written, delta_spark):
    rows_by_id = {r["id"]: r for r in delta_spark.read(written, select="id,name,label,emb.chunk")}
    assert sorted(rows_by_id) == list(range(ROWS)) and rows_by_id[7]["label"] == 3
    assert rows_by_id[7]["name"] == "n7" and rows_by_id[6]["chunk"] is None
    history = delta_spark.sql(f"DESCRIBE HISTORY delta.`{written}`")
    assert [h["operation"] for h in history] == ["CREATE TABLE AS SELECT"]


def test_vacuum_removes_uncommitted_jvm_leftovers(spark, tmp_path):
    path = str(tmp_path / "vac")
    spark.createDataFrame([(1, [1.0, 2.0])], "id long, emb array<float>").coalesce(1).write.format(FMT).save(path)
    (part,) = glob.glob(os.path.join(path, "part-*.parquet"))
    (chunk,) = glob.glob(os.path.join(path, "_tensors", "emb", "*.dltc"))
    # what a killed task leaves: a part file and a chunk that no commit names
    orphan_part = os.path.join(path, "part-00007-" + "a" * 32 + ".parquet")
    orphan_chunk = os.path.join(path, "_tensors", "emb", "b" * 32 + ".dltc")
    shutil.copy(part, orphan_part)
    shutil.copy(chunk, orphan_chunk)
    old = os.path.getmtime(part) - 30 * 24 * 3600
    for p in (orphan_part, orphan_chunk):
        os.utime(p, (old, old))
    result = dls.open(path).vacuum(retention_hours=1, enforce_retention_duration=False)
    assert os.path.basename(orphan_part) in result.parquet_files
    assert not os.path.exists(orphan_part) and not os.path.exists(orphan_chunk)
    assert os.path.exists(part) and os.path.exists(chunk)
    assert [int(r["id"]) for r in dls.open(path)] == [1]


def test_committer_checks_commits_made_after_its_read_version(spark, tmp_path):
    """DeltaCommitter against a concurrent delta-rs (Python API) writer: an overwrite planned before
    an append is a conflict; a schema-only commit (ALTER TABLE ADD COLUMNS) planned before it is
    rebased over it, and every reader sees the new column."""
    path = str(tmp_path / "cc")
    spark.createDataFrame([(1, "a")], "id long, name string").write.format(FMT).save(path)
    dls.open(path).append({"id": [2], "name": ["b"]})  # version 1, by delta-rs
    jvm_ = spark.sparkContext._jvm
    committer = jvm_.deeplake.spark.jvm.write.DeltaCommitter
    conf = jvm_.org.apache.hadoop.conf.Configuration()
    no_files = jvm_.java.util.ArrayList()
    params = jvm_.java.util.HashMap()
    with pytest.raises(SPARK_ERRORS, match="version 1 added data files while this overwrite"):
        committer.commit(path, conf, 0, no_files, True, None, None, -1, "WRITE", params)
    schema = json.loads(next(a["metaData"] for a in log_lines(path, 0) if "metaData" in a)["schemaString"])
    schema["fields"].append({"name": "score", "type": "double", "nullable": True, "metadata": {}})
    new_schema = jvm_.org.apache.spark.sql.types.DataType.fromJson(json.dumps(schema))
    # planned on version 0: rebased over the append (it changed no schema, removed nothing)
    assert committer.commit(path, conf, 0, no_files, False, new_schema, None, -1, "ADD COLUMNS", params) == 2
    assert versions(path) == [0, 1, 2]
    ds = dls.open(path)
    assert list(ds.schema.order) == ["id", "name", "score"] and len(ds) == 2
    rows = spark.read.format(FMT).load(path).orderBy("id").collect()
    assert [(r["id"], r["name"], r["score"]) for r in rows] == [(1, "a", None), (2, "b", None)]


def test_many_small_samples_fill_chunks_by_size(spark, tmp_path):
    path = str(tmp_path / "small")
    n = 5000
    spark.range(n, numPartitions=1).selectExpr("id", "array(cast(id as float), 1.0f) AS emb") \
        .write.format(FMT).option("tensor.emb.chunkSize", "16000").save(path)
    chunks = glob.glob(os.path.join(path, "_tensors", "emb", "*.dltc"))
    assert len(chunks) == 3  # 8 bytes per sample, 2,000 samples per 16,000-byte chunk
    ds = dls.open(path)
    assert len(ds) == n
    for i in (0, 2047, 2048, 4999):
        np.testing.assert_array_equal(ds[i]["emb"], np.array([i, 1.0], np.float32))


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64",
                                   "float16", "float32", "float64"])
def test_chunk_bytes_equal_python_for_every_dtype(spark, tmp_path, dtype):
    from deeplake_spark.format.chunk_writer import ChunkBuilder
    from deeplake_spark.format.samples import encode_sample

    rng = np.random.default_rng(len(dtype))
    if dtype == "bool":
        values = [rng.integers(0, 2, (i % 3, 2)).astype(bool).tolist() for i in range(9)]
        spark_type = "array<array<boolean>>"
    elif dtype.startswith("float"):
        values = [(rng.standard_normal((i % 3, 2)) * 100).round(2).tolist() for i in range(9)]
        spark_type = "array<array<double>>"
    else:
        hi = min(np.iinfo(dtype).max, 2**31 - 1)
        lo = max(np.iinfo(dtype).min, -(2**31))
        values = [rng.integers(lo, hi, (i % 3, 2)).tolist() for i in range(9)]
        spark_type = "array<array<long>>"
    path = str(tmp_path / dtype)
    spark.createDataFrame(list(enumerate(values)), f"id long, t {spark_type}").coalesce(1).write.format(FMT) \
        .option("tensor.t.dtype", dtype).option("tensor.t.shape", "(None, 2)").save(path)
    spec = dls.open(path).schema.tensors["t"]
    builder = ChunkBuilder(spec)
    for v in values:
        builder.add(encode_sample(spec, np.array(v, dtype=dtype).reshape(-1, 2)))
    (chunk,) = glob.glob(os.path.join(path, "_tensors", "t", "*.dltc"))
    with open(chunk, "rb") as f:
        assert f.read() == builder.finish(os.path.basename(chunk)[: -len(".dltc")])


def test_streaming_complete_mode_overwrites_each_batch(spark, tmp_path):
    path, checkpoint, source = str(tmp_path / "agg"), str(tmp_path / "ckpt"), str(tmp_path / "in")
    os.makedirs(source)

    def run_once() -> None:
        stream = (spark.readStream.schema("id long").parquet(source).selectExpr("id % 3 AS k")
                  .groupBy("k").count()
                  .writeStream.format(FMT).outputMode("complete").option("checkpointLocation", checkpoint)
                  .trigger(availableNow=True).start(path))
        stream.awaitTermination(120)
        assert stream.exception() is None

    spark.range(0, 6).coalesce(1).write.mode("append").parquet(source)
    run_once()
    spark.range(6, 9).coalesce(1).write.mode("append").parquet(source)
    run_once()
    assert sorted((int(r["k"]), int(r["count"])) for r in dls.open(path)) == [(0, 3), (1, 3), (2, 3)]
    last = log_lines(path, versions(path)[-1])
    assert any("remove" in a for a in last) and any("txn" in a for a in last)
    with pytest.raises(SPARK_ERRORS, match="output modes append and complete"):
        (spark.readStream.schema("id long").parquet(source).groupBy("id").count()
         .writeStream.format(FMT).outputMode("update").option("checkpointLocation", str(tmp_path / "c2"))
         .start(str(tmp_path / "upd"))).awaitTermination(60)


def test_checkpoint_every_ten_versions_is_read_by_every_reader(spark, tmp_path):
    path = str(tmp_path / "ckpt")
    for i in range(11):
        spark.range(i * 10, i * 10 + 10, numPartitions=1).selectExpr("id", "array(cast(id as float)) AS emb") \
            .write.format(FMT).mode("append").save(path)
    assert os.path.exists(os.path.join(path, "_delta_log", f"{10:020d}.checkpoint.parquet"))
    assert os.path.exists(os.path.join(path, "_delta_log", "_last_checkpoint"))
    os.remove(os.path.join(path, "_delta_log", f"{3:020d}.json"))  # replay must start at the checkpoint
    assert sorted(int(r["id"]) for r in dls.open(path)) == list(range(110))
    assert spark.read.format(FMT).load(path).count() == 110
    from deltalake import DeltaTable

    assert DeltaTable(path).version() == 10
    spark.range(110, 111).selectExpr("id", "array(1.0f) AS emb").write.format(FMT).mode("append").save(path)
    assert spark.read.format(FMT).load(path).count() == 111


def test_row_group_bytes_bounds_the_buffered_rows(spark, tmp_path):
    import pyarrow.parquet as pq

    path = str(tmp_path / "rg")
    spark.range(0, 20000, numPartitions=1).selectExpr("id", "repeat('x', 100) AS s").write.format(FMT) \
        .option("rowGroupBytes", "200000").save(path)
    (part,) = glob.glob(os.path.join(path, "part-*.parquet"))
    assert pq.ParquetFile(part).num_row_groups > 1
    assert len(dls.open(path)) == 20000


def test_pixel_arrays_are_encoded_for_image_tensors(spark, tmp_path):
    """Decoded pixels fed to a png tensor come back exactly; to a jpeg tensor (Java's encoder at
    quality 90, the Python writer's Pillow quality) they come back close to the input and to what the
    Python writer stores: the bytes differ, as they would between any two JPEG encoders."""
    rng = np.random.default_rng(11)
    base = rng.integers(0, 255, (1, 1, 3), dtype=np.uint8)
    # smooth images (a gradient plus little noise): what photos look like to a JPEG encoder
    ramp = np.linspace(0, 120, 24 * 32, dtype=np.float64).reshape(24, 32, 1)
    pixels = [np.clip(base + ramp + rng.normal(0, 3, (24, 32, 3)), 0, 255).astype(np.uint8) for _ in range(3)]
    gray = np.clip(ramp[:, :, 0] + 40, 0, 255).astype(np.uint8)
    schema = "id long, img array<array<array<int>>>, g array<array<int>>"
    df = spark.createDataFrame([(i, p.tolist(), gray.tolist()) for i, p in enumerate(pixels)], schema).coalesce(1)
    options = {"tensor.img.htype": "image", "tensor.img.compression": "jpeg",
               "tensor.g.htype": "image", "tensor.g.compression": "png", "tensor.g.shape": "(None, None)"}
    jvm_path, py_path = str(tmp_path / "jvm"), str(tmp_path / "py")
    df.write.format(FMT).options(**options).save(jvm_path)
    df.write.format("deeplake-python").options(**options).mode("append").save(py_path)
    jvm_ds, py_ds = dls.open(jvm_path), dls.open(py_path)
    assert jvm_ds.schema.tensors["img"].compression == "jpeg" and jvm_ds.schema.tensors["g"].compression == "png"
    for i, original in enumerate(pixels):
        got, python = jvm_ds[i]["img"], py_ds[i]["img"]
        assert got.shape == original.shape == python.shape
        assert np.abs(got.astype(int) - original).mean() < 4
        assert np.abs(got.astype(int) - python).mean() < 4
        np.testing.assert_array_equal(jvm_ds[i]["g"], gray)
    raw = jvm_ds.read_tensor("img", jvm_ds.table(["img"]).column("img").to_pylist()[:1], raw=True)[0]
    assert raw[:2] == b"\xff\xd8"                                          # stored as JPEG bytes
    rgba = spark.createDataFrame([(1, np.zeros((2, 2, 4), np.uint8).tolist())], "id long, img array<array<array<int>>>")
    with pytest.raises(SPARK_ERRORS, match="JPEG cannot store an alpha channel"):
        rgba.write.format(FMT).options(**{"tensor.img.htype": "image", "tensor.img.compression": "jpeg"}) \
            .save(str(tmp_path / "rgba"))


def test_insert_into_a_table_with_a_relative_location_writes_that_dataset(spark, tmp_path):
    """``CREATE TABLE t USING deeplake LOCATION 'data/x'`` (relative): Spark qualifies the location against its
    warehouse folder; INSERT must write the dataset the path names from the working directory, as reads do."""
    jvm_cwd = spark.sparkContext._jvm.java.lang.System.getProperty("user.dir")
    if os.path.realpath(jvm_cwd) != os.path.realpath(os.getcwd()):
        pytest.skip("the Spark driver JVM runs in another working directory than this process")
    path = str(tmp_path / "rel")
    spark.createDataFrame([(i, [float(i)]) for i in range(3)], "id long, emb array<float>") \
        .write.format("deeplake-jvm").save(path)
    relative = os.path.relpath(path)
    spark.sql(f"CREATE TABLE rel_ins USING `deeplake-jvm` LOCATION '{relative}'")
    try:
        spark.sql("INSERT INTO rel_ins SELECT id, array(cast(id AS float)) AS emb FROM range(3, 5)")
    finally:
        spark.sql("DROP TABLE rel_ins")
    assert sorted(int(r["id"]) for r in dls.open(path)) == [0, 1, 2, 3, 4]
    warehouse = spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:")
    assert not os.path.exists(os.path.join(warehouse, relative))
