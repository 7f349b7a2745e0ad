"""The JVM reader (``format("deeplake-jvm")``) against the Python reader on the same datasets.

Every test reads real datasets written by the Python API with the jar that ``spark_session()``
built from ``jvm-shim/`` and put on the classpath; values are compared with the Python source
(``format("deeplake")``) and with ``deeplake_spark.open(...)``.
"""

from __future__ import annotations

import io
import os
import shutil
import struct

import numpy as np
import pytest

import deeplake_spark as dls

pytest.importorskip("pyspark")

from datetime import UTC

from py4j.protocol import Py4JJavaError  # noqa: E402
from pyspark.errors import PySparkException  # noqa: E402

from deeplake_spark.spark import jvm  # noqa: E402

SPARK_ERRORS = (Py4JJavaError, PySparkException)
# The jar is built by Maven from jvm-shim/ (spark_session() rebuilds it when mvn exists); without both,
# nothing to test.
pytestmark = pytest.mark.skipif(shutil.which("mvn") is None and not jvm.jar_file().exists(),
                                reason="no mvn to build the deeplake-jvm jar and no prebuilt jar")
#: Metadata of the Python source's first field only (its options), not part of the column contract.
_SOURCE_ONLY_META = "deeplake.source"


def jpeg(value: int, shape=(6, 5, 3)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full(shape, value % 256, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def png_gray(value: int, shape=(5, 7)) -> np.ndarray:
    return ((np.arange(np.prod(shape)).reshape(shape) * 3 + value) % 256).astype(np.uint8)


KINDS = {
    "id": "int64",
    "name": "string",
    "jpg": dls.tensor("image", shape=(None, None, 3)),
    "png": dls.tensor("image", compression="png", shape=(None, None)),
    "rgba": dls.tensor("image", compression="png", shape=(None, None, 4)),
    "label": dls.tensor("class_label"),
    "boxes": dls.tensor("bbox"),
    "mask": dls.tensor("binary_mask", shape=(None, None)),
    "seg": dls.tensor("segment_mask", shape=(3, 3)),
    "emb": dls.tensor("embedding", dtype="float16", shape=(4,)),
    "text": dls.tensor("text"),
    "meta": dls.tensor("json"),
    "audio": dls.tensor("audio", shape=(None,)),
    "ragged": dls.tensor("generic", dtype="float32"),
    "i8": dls.tensor(dtype="int8", shape=(2,)),
    "i16": dls.tensor(dtype="int16", shape=(2,)),
    "u8": dls.tensor(dtype="uint8", shape=(None, 2)),
    "u16": dls.tensor(dtype="uint16", shape=(2,)),
    "u32": dls.tensor(dtype="uint32", shape=()),
    "u64": dls.tensor(dtype="uint64", shape=(1,)),
    "i64": dls.tensor(dtype="int64", shape=(2, 1), compression="lz4"),
    "f32": dls.tensor(dtype="float32", shape=(None,), compression="lz4"),
    "f64": dls.tensor(dtype="float64", shape=(2,)),
    "flag": dls.tensor(dtype="bool", shape=()),
}


def kinds_row(i: int) -> dict:
    rng = np.random.default_rng(i)
    return {
        "id": i,
        "name": None if i == 3 else f"row {i}",
        "jpg": jpeg(i * 10, (4 + i % 3, 5, 3)),
        "png": png_gray(i),
        "rgba": rng.integers(0, 256, (3, 2, 4)).astype(np.uint8),
        "label": i % 4,
        "boxes": rng.random((i % 3, 4)).astype(np.float32),
        "mask": rng.random((2, 3)) > 0.5,
        "seg": rng.integers(0, 9, (3, 3)).astype(np.int32),
        "emb": (np.arange(4) + i / 3).astype(np.float16),
        "text": f"caption {i} é",
        "meta": {"k": i, "tags": ["a", "b"]},
        "audio": rng.random(i + 1).astype(np.float32),
        "ragged": rng.random((2,) * (i % 3 + 1)).astype(np.float32),
        "i8": np.array([-i, i], np.int8),
        "i16": np.array([-300 * i, 7], np.int16),
        "u8": rng.integers(0, 256, (i % 2 + 1, 2)).astype(np.uint8),
        "u16": np.array([65535, i], np.uint16),
        "u32": np.uint32(4_000_000_000 + i),
        "u64": np.array([2**62 + i], np.uint64),
        "i64": np.array([[-(2**40)], [i]], np.int64),
        "f32": rng.standard_normal(i * 50).astype(np.float32),
        "f64": np.array([np.pi, -i], np.float64),
        "flag": bool(i % 2),
    }


@pytest.fixture(scope="module")
def kinds(tmp_path_factory):
    """Every htype/dtype, lz4, jpeg/png, nulls, over three commits (versions 1..3)."""
    path = str(tmp_path_factory.mktemp("jvm_kinds") / "ds")
    ds = dls.create(path, KINDS)
    ds.append([kinds_row(i) for i in range(4)])
    ds.append([kinds_row(i) for i in range(4, 6)])
    row = kinds_row(6)
    row["emb"] = None  # a missing sample
    row["jpg"] = None
    ds.append([row])
    return path


def read(spark, path, source="deeplake-jvm", **options):
    reader = spark.read.format(source)
    for key, value in options.items():
        reader = reader.option(key, value)
    return reader.load(path)


def assert_same_as_python_source(spark, path, **options):
    """Same schema (types and column metadata) and the same rows, in the same order."""
    jvm_df = read(spark, path, **options)
    py_df = read(spark, path, source="deeplake-python", **options)
    assert [(f.name, f.dataType) for f in jvm_df.schema] == [(f.name, f.dataType) for f in py_df.schema]
    for a, b in zip(jvm_df.schema, py_df.schema):
        assert a.metadata == {k: v for k, v in b.metadata.items() if k != _SOURCE_ONLY_META}, a.name
    jvm_rows, py_rows = jvm_df.collect(), py_df.collect()
    assert len(jvm_rows) == len(py_rows)
    for a, b in zip(jvm_rows, py_rows):
        assert a == b
    return jvm_rows


def test_jar_is_built_and_registered(spark):
    assert jvm.is_available()
    assert not jvm.is_stale()
    assert jvm.jar_file().name == f"deeplake-spark-jvm-{dls.__version__}.jar"
    jars = spark.conf.get("spark.jars").split(",")
    assert jars[0] == str(jvm.jar_file())  # the reader first, then hadoop-aws + AWS SDK (S3A) when set up
    assert ([j for j in jars[1:] if os.path.basename(j).startswith("hadoop-aws-")]
            == [str(p) for p in jvm.s3a_jars() if p.name.startswith("hadoop-aws-")])


def test_ref_mode_matches_python_source(spark, kinds):
    rows = assert_same_as_python_source(spark, kinds)
    refs = dls.open(kinds).table().to_pylist()
    assert [r["id"] for r in rows] == [r["id"] for r in refs] == list(range(7))
    assert rows[2]["jpg"].asDict(recursive=True) == refs[2]["jpg"]
    assert rows[6]["emb"] is None


def test_bytes_mode_matches_python_source_and_stored_bytes(spark, kinds):
    rows = assert_same_as_python_source(spark, kinds, tensors="bytes")
    ds = dls.open(kinds)
    refs = ds.table()
    for name in ds.schema.inline:  # scalars stored inline are values in every mode
        assert [row[name] for row in rows] == [v.as_py() for v in refs.column(name)], name
    for name in ds.schema.chunked:
        want = ds.read_tensor(name, refs.column(name).to_pylist(), raw=True)
        for row, stored, ref in zip(rows, want, refs.column(name).to_pylist()):
            if stored is None:
                assert row[name] is None
            else:
                assert bytes(row[name]["data"]) == stored, name
                assert list(row[name]["shape"]) == ref["shape"], name
    assert bytes(rows[0]["jpg"]["data"]).startswith(b"\xff\xd8\xff")


def test_array_mode_matches_python_source_and_api(spark, kinds):
    options = {"tensors": "array,jpg=bytes,ragged=bytes"}
    rows = assert_same_as_python_source(spark, kinds, **options)
    df = read(spark, kinds, **options)
    types = {f.name: f.dataType.simpleString() for f in df.schema}
    assert types["png"] == "array<array<smallint>>" and types["rgba"] == "array<array<array<smallint>>>"
    assert types["emb"] == "array<float>" and types["u32"] == "bigint" and types["label"] == "int"
    assert types["u64"] == "array<bigint>" and types["i8"] == "array<tinyint>" and types["text"] == "string"
    ds = dls.open(kinds)
    for i, row in enumerate(rows):
        want = ds[i]
        for name in ds.schema.tensors:
            if name in ("jpg", "ragged"):
                continue
            if want[name] is None:
                assert row[name] is None, name
            elif isinstance(want[name], str):
                assert row[name] == want[name], name
            elif np.asarray(want[name]).size == 0:
                assert row[name] == [], name  # a (0, 4) box list is an empty Spark array
            else:
                expected = np.asarray(want[name])
                got = np.array(row[name], dtype=np.float64 if expected.dtype.kind == "f" else object)
                assert got.shape == expected.shape, name
                np.testing.assert_array_equal(got.astype(expected.dtype), expected, err_msg=name)


def _jpeg_variants() -> dict[str, bytes]:
    """JPEGs whose decoding depends on the decoder: noise and smooth pictures, 4:4:4/4:2:2/4:2:0 chroma,
    progressive, optimized Huffman tables, quality 100, odd sizes, gray."""
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    smooth = Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).filter(ImageFilter.GaussianBlur(3))
    out = {}
    for name, img in (("noise", Image.fromarray(noise)), ("smooth", smooth)):
        for variant, kw in {"444": {"subsampling": 0}, "422": {"subsampling": 1}, "420": {"subsampling": 2},
                            "prog": {"progressive": True}, "opt": {"optimize": True, "quality": 50},
                            "q100": {"quality": 100}}.items():
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=kw.pop("quality", 85), **kw)
            out[f"{name}_{variant}"] = buf.getvalue()
    gray = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (33, 21), dtype=np.uint8)).save(gray, format="JPEG")
    out["gray"] = gray.getvalue()
    return out


def test_jpeg_array_mode_gives_the_python_sources_pixels(spark, tmp_path):
    """tensors=array on JPEGs: the JVM (JDK libjpeg 6b) and the Python source (Pillow, libjpeg-turbo) give
    the same shapes and the same pixels, exactly (gray JPEGs in a 2-d tensor too)."""
    from PIL import Image

    variants = _jpeg_variants()
    gray = variants.pop("gray")
    path = str(tmp_path / "jpegs")
    ds = dls.create(path, {"id": "int64", "name": "string", "img": dls.tensor("image", shape=(None, None, 3)),
                           "gray": dls.tensor("image", shape=(None, None))})
    names = sorted(variants)
    ds.append({"id": list(range(len(names))), "name": names, "img": [variants[n] for n in names],
               "gray": [gray] * len(names)})
    rows = assert_same_as_python_source(spark, path, tensors="array")
    assert len(rows) == len(names)
    for row in rows:
        want = np.asarray(Image.open(io.BytesIO(variants[row["name"]])))
        np.testing.assert_array_equal(np.array(row["img"], np.uint8), want, err_msg=row["name"])
    np.testing.assert_array_equal(np.array(rows[0]["gray"], np.uint8), np.asarray(Image.open(io.BytesIO(gray))))


def test_time_travel_and_column_selection_match_python_source(spark, kinds):
    for version in (0, 1, 2):
        rows = assert_same_as_python_source(spark, kinds, versionAsOf=version, tensors="bytes")
        assert len(rows) == {0: 0, 1: 4, 2: 6}[version]
    assert read(spark, kinds, versionAsOf=2).schema["emb"].metadata["deeplake.version"] == 2
    history = {h["version"]: h["timestamp"] for h in dls.open(kinds).history()}
    from datetime import datetime

    at = datetime.fromtimestamp(history[2] / 1000, tz=UTC).isoformat()
    assert read(spark, kinds, timestampAsOf=at).count() == 6
    # (the Python source checks modes of unselected columns too, hence the jpg/ragged modes)
    rows = assert_same_as_python_source(spark, kinds, columns="id,f32,text", tensors="array,jpg=bytes,ragged=bytes")
    assert rows[5].asDict().keys() == {"id", "f32", "text"}


def test_tabular_types_match_python_source(spark, tmp_path):
    import datetime as dt
    from decimal import Decimal

    import pyarrow as pa

    path = str(tmp_path / "tabular")
    schema = {"ts": pa.timestamp("us", tz="UTC"), "day": pa.date32(), "price": pa.decimal128(10, 2),
              "tags": pa.list_(pa.string()), "f": pa.float32(), "ok": pa.bool_(), "blob": pa.binary(),
              "small": pa.int8(), "v": dls.tensor(dtype="float64", shape=(1,))}
    ds = dls.create(path, schema)
    ds.append({"ts": [dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC), None],
               "day": [dt.date(2026, 1, 2), dt.date(1970, 1, 1)], "price": [Decimal("12.34"), None],
               "tags": [["a", "b"], []], "f": [1.5, -2.0], "ok": [True, None], "blob": [b"\x00\x01", b""],
               "small": [-128, 127], "v": [np.array([0.5]), np.array([-0.25])]})
    rows = assert_same_as_python_source(spark, path, tensors="array")
    assert rows[0]["tags"] == ["a", "b"] and rows[0]["price"] == Decimal("12.34") and rows[1]["small"] == 127


def test_sql_table_using_the_jvm_source(spark, kinds):
    spark.sql(f"CREATE TABLE jvm_kinds USING `deeplake-jvm` OPTIONS (path '{kinds}', tensors 'array,jpg=bytes,ragged=bytes')")
    try:
        rows = spark.sql("SELECT id, text, f64 FROM jvm_kinds WHERE id >= 5 ORDER BY id").collect()
        assert [tuple(r) for r in rows] == [(5, "caption 5 é", [np.pi, -5.0]), (6, "caption 6 é", [np.pi, -6.0])]
    finally:
        spark.sql("DROP TABLE jvm_kinds")
    assert os.path.isdir(os.path.join(kinds, "_delta_log"))  # an external table: data stays


def test_delete_update_and_checkpoint_are_replayed(spark, tmp_path):
    path = str(tmp_path / "cp")
    ds = dls.create(path, {"id": "int64", "v": dls.tensor(dtype="int32", shape=(2,))})
    for k in range(3):
        ds.append({"id": [k * 2, k * 2 + 1], "v": [np.array([k, i], np.int32) for i in range(2)]})
    ds.delete("id = 2")
    ds.update(new_values={"id": 100}, predicate="id = 5")
    ds.delta_table.create_checkpoint()
    assert read(spark, path).count() == 5
    ds.append({"id": [7], "v": [np.array([7, 7], np.int32)]})  # a new load() sees the new version
    log_dir = os.path.join(path, "_delta_log")
    assert any(name.endswith(".checkpoint.parquet") for name in os.listdir(log_dir))
    expected = assert_same_as_python_source(spark, path, tensors="array")
    assert sorted(r["id"] for r in expected) == [0, 1, 3, 4, 7, 100]
    # The checkpoint must carry the state: drop the commits before it; Kernel, like Delta's log cleanup,
    # keeps the checkpoint version's commit.
    cp_version = ds.version - 1
    for v in range(cp_version):
        os.remove(os.path.join(log_dir, f"{v:020d}.json"))
    rows = read(spark, path, tensors="array").collect()
    assert rows == expected
    with pytest.raises(SPARK_ERRORS, match="commit 0 is missing"):
        read(spark, path, versionAsOf=1)


def test_many_batches_per_file_and_split_batches(spark, tmp_path):
    # 5000 rows in one data file: more than one Parquet batch (4096 rows); maxBatchBytes=700 also
    # cuts every Parquet batch into many output batches (tabular columns become offset views).
    path = str(tmp_path / "batches")
    n = 5000
    ds = dls.create(path, {"id": "int64", "name": "string", "v": dls.tensor(dtype="uint8", shape=(None,)),
                           "s": dls.tensor("text")})
    ds.append({"id": np.arange(n), "name": [None if i % 7 == 0 else f"n{i}" for i in range(n)],
               "v": [np.full(i % 50, i % 256, np.uint8) if i % 11 else None for i in range(n)],
               "s": [f"t{i}" for i in range(n)]})
    expected = [(i, None if i % 7 == 0 else f"n{i}", [i % 256] * (i % 50) if i % 11 else None, f"t{i}")
                for i in range(n)]
    for options in ({}, {"maxBatchBytes": "700"}):
        rows = read(spark, path, tensors="array", **options).collect()
        assert [tuple(r) for r in rows] == expected
        raw = read(spark, path, tensors="bytes", **options).collect()
        assert [bytes(r["v"]["data"]) if r["v"] else None for r in raw[:60]] == [
            bytes([i % 256] * (i % 50)) if i % 11 else None for i in range(60)]
        assert [r["name"] for r in raw] == [e[1] for e in expected]


def test_files_written_before_a_column_was_added_read_it_as_null(spark, tmp_path):
    import pyarrow as pa
    from deltalake import write_deltalake

    path = str(tmp_path / "evolved")
    ds = dls.create(path, {"id": "int64", "v": dls.tensor(dtype="int16", shape=(1,))})
    ds.append({"id": [0, 1], "v": [np.array([5], np.int16), np.array([6], np.int16)]})
    refs = dls.open(path).table().column("v")
    later = pa.table({"id": pa.array([2], pa.int64()), "v": refs.take([0]), "extra": pa.array(["x"])})
    write_deltalake(path, later, mode="append", schema_mode="merge")
    rows = read(spark, path, tensors="array").collect()
    assert [(r["id"], r["v"], r["extra"]) for r in rows] == [(0, [5], None), (1, [6], None), (2, [5], "x")]


def test_column_pruning_reads_no_unselected_chunks(spark, kinds, tmp_path):
    path = str(tmp_path / "pruned")
    shutil.copytree(kinds, path)
    shutil.rmtree(os.path.join(path, "_tensors", "jpg"))
    df = read(spark, path, tensors="array,jpg=bytes,ragged=bytes")
    assert df.count() == 7  # no column at all: row counts only
    assert sorted(r["id"] for r in df.select("id", "emb").collect()) == list(range(7))
    assert df.select("f32").where("size(f32) > 100").count() == 4
    with pytest.raises(SPARK_ERRORS, match=r"_tensors/jpg/[0-9a-f]{32}\.dltc: chunk file is missing"):
        df.select("jpg").collect()


def _first_chunk(path: str, tensor: str) -> str:
    folder = os.path.join(path, "_tensors", tensor)
    return os.path.join(folder, sorted(os.listdir(folder))[0])


def test_corrupt_chunk_names_the_file(spark, kinds, tmp_path):
    path = str(tmp_path / "corrupt")
    shutil.copytree(kinds, path)
    chunk = _first_chunk(path, "f32")
    data = bytearray(open(chunk, "rb").read())
    data[-1] ^= 0xFF
    open(chunk, "wb").write(bytes(data))
    relpath = f"_tensors/f32/{os.path.basename(chunk)}"
    with pytest.raises(SPARK_ERRORS) as excinfo:
        read(spark, path, tensors="bytes").select("f32").collect()
    message = str(excinfo.value)
    assert "payload checksum mismatch" in message and relpath in message and "tensor 'f32'" in message
    # Refs alone never touch chunks; verifyChecksums=false trades the check for speed.
    assert read(spark, path).select("f32").count() == 7
    assert read(spark, path, tensors="bytes", verifyChecksums="false").select("f32").count() == 7


def test_unknown_format_version_names_the_file(spark, kinds, tmp_path):
    path = str(tmp_path / "future")
    shutil.copytree(kinds, path)
    chunk = _first_chunk(path, "f32")  # a chunked tensor (scalars such as text are inline: no chunk)
    data = bytearray(open(chunk, "rb").read())
    struct.pack_into("<H", data, 4, 2)
    open(chunk, "wb").write(bytes(data))
    with pytest.raises(SPARK_ERRORS) as excinfo:
        read(spark, path, tensors="array", columns="f32").collect()
    message = str(excinfo.value)
    assert "chunk format version 2 is not supported" in message
    assert f"_tensors/f32/{os.path.basename(chunk)}" in message


def test_option_errors_are_clear(spark, kinds):
    """Each error names the deeplake_spark error class the Python source raises for the same case."""
    with pytest.raises(SPARK_ERRORS, match="deeplake_spark.errors.SchemaError: .*no fixed rank") as excinfo:
        read(spark, kinds, tensors="array,jpg=bytes")
    assert "ragged" in str(excinfo.value)
    assert read(spark, kinds, tensors="array,ragged=bytes").schema["jpg"].dataType.simpleString() == \
        "array<array<array<smallint>>>"  # JPEGs decode in array mode (test_jpeg_array_mode_...)
    with pytest.raises(SPARK_ERRORS, match="deeplake_spark.errors.InvalidOptionError: option 'tensors': bad value 'pixels'"):
        read(spark, kinds, tensors="pixels")
    with pytest.raises(SPARK_ERRORS, match="deeplake_spark.errors.InvalidOptionError: unknown option 'colums'"):
        read(spark, kinds, colums="id")
    with pytest.raises(SPARK_ERRORS, match=r"errors.VersionNotFound: .*version 99 does not exist \(versions 0..3\)"):
        read(spark, kinds, versionAsOf=99)
    with pytest.raises(SPARK_ERRORS, match=r"InvalidOptionError: option 'columns': unknown column\(s\) \[nope\] in dataset"):
        read(spark, kinds, columns="id,nope")
    with pytest.raises(SPARK_ERRORS, match="deeplake_spark.errors.DatasetNotFoundError: no deeplake dataset at"):
        read(spark, os.path.join(kinds, "missing"))


def test_register_says_how_to_add_the_jar_to_a_session_without_it(spark, caplog, tmp_path):
    """``dls.register(existing_session)`` cannot put a jar on a running JVM; on a session whose
    spark.jars lacks it, it says how to add it. Our own session has it and stays quiet."""
    import logging
    import subprocess
    import sys

    with caplog.at_level(logging.WARNING, logger="deeplake_spark.spark.session"):
        dls.register(spark)
    assert not [r for r in caplog.records if "deeplake-jvm" in r.getMessage()]
    script = tmp_path / "plain_session.py"
    script.write_text(
        "import os, sys\n"
        "os.environ['PYSPARK_PYTHON'] = sys.executable\n"
        "from pyspark.sql import SparkSession\n"
        "import deeplake_spark as dls\n"
        "spark = SparkSession.builder.master('local[1]').config('spark.ui.enabled', 'false').getOrCreate()\n"
        "dls.register(spark)\n"
        "spark.stop()\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "format('deeplake-jvm') is not available in this session" in done.stderr
    assert "spark.jars" in done.stderr and jvm.JAR_PREFIX in done.stderr


def test_inline_scalar_tensors_are_plain_columns_in_every_mode(spark, kinds):
    ds = dls.open(kinds)
    assert {"label", "text", "meta", "u32", "flag"} <= ds.schema.inline
    for tensors in ("ref", "bytes", "array,jpg=bytes,ragged=bytes"):
        df = read(spark, kinds, tensors=tensors)
        assert df.schema["label"].dataType.simpleString() == "int", tensors
        assert df.schema["u32"].dataType.simpleString() == "bigint" and df.schema["flag"].dataType.simpleString() == "boolean"
        assert df.schema["label"].metadata["deeplake.encoding"] == "array"
    df = read(spark, kinds)
    df.createOrReplaceTempView("jvm_kinds")
    labels = [int(ds[i]["label"]) for i in range(len(ds))]
    rows = spark.sql("SELECT label, count(*) AS n FROM jvm_kinds WHERE label = 3 GROUP BY label").collect()
    assert [(r["label"], r["n"]) for r in rows] == [(3, labels.count(3))]
    joined = df.join(spark.createDataFrame([(3, "three")], "label INT, word STRING"), "label").select("id").collect()
    assert sorted(r["id"] for r in joined) == [i for i, v in enumerate(labels) if v == 3]


def test_dataset_with_scalar_refs_reads_through_the_jvm_source(spark, tmp_path):
    """A dataset written before scalars went inline (class_label as chunk refs) still reads."""
    from deeplake_spark.dataset.schema import DatasetSchema

    path = str(tmp_path / "refs")
    schema = DatasetSchema.from_mapping({"id": "int64", "label": dls.tensor("class_label")})
    legacy = DatasetSchema(schema.tabular, schema.tensors, schema.order, frozenset())  # scalars as refs
    ds = dls.create(path, legacy)
    ds.append({"id": [0, 1, 2], "label": [2, 0, 2]})
    assert os.listdir(os.path.join(path, "_tensors")) == ["label"]
    rows = assert_same_as_python_source(spark, path, tensors="array")
    assert [(r["id"], r["label"]) for r in rows] == [(0, 2), (1, 0), (2, 2)]
    refs = read(spark, path).collect()
    assert refs[0]["label"]["chunk"] and refs[0]["label"]["shape"] == []



# --- S3 through hadoop-aws (the jars the README set-up copies to jvm-shim/target/s3a) ---


S3_KINDS = ("id", "name", "jpg", "png", "emb", "text", "f32", "u64")


def s3a_options(server) -> dict[str, str]:
    """Hadoop S3A settings (``fs.s3a.*`` reader options) for the SeaweedFS test server."""
    options = server.storage_options
    return {"fs.s3a.endpoint": server.endpoint, "fs.s3a.access.key": options["AWS_ACCESS_KEY_ID"],
            "fs.s3a.secret.key": options["AWS_SECRET_ACCESS_KEY"], "fs.s3a.endpoint.region": options["AWS_REGION"],
            "fs.s3a.path.style.access": "true", "fs.s3a.connection.ssl.enabled": "false"}


@pytest.mark.slow
def test_reads_an_s3a_dataset_like_the_python_source(spark, s3_server):
    if not jvm.s3a_jars():
        pytest.skip(f"no S3A jars in jvm-shim/target/s3a; run the README set-up ({jvm.SETUP_COMMAND})")
    on_classpath = [os.path.basename(j) for j in spark.conf.get("spark.jars").split(",")]
    assert any(j.startswith("hadoop-aws-") for j in on_classpath), on_classpath  # put there by spark_session()
    uri, storage = s3_server.uri("jvm-kinds"), s3_server.storage_options
    ds = dls.create(uri, {k: KINDS[k] for k in S3_KINDS}, storage_options=storage)
    ds.append([{k: v for k, v in kinds_row(i).items() if k in S3_KINDS} for i in range(4)])
    ds.append([{k: v for k, v in kinds_row(i).items() if k in S3_KINDS} for i in range(4, 6)])
    s3a = uri.replace("s3://", "s3a://", 1)
    aws = {k: v for k, v in storage.items() if k.startswith("AWS_")}
    for version in (1, 2):
        jvm_rows = read(spark, s3a, tensors="array,jpg=bytes", versionAsOf=version, **s3a_options(s3_server)).collect()
        py_rows = read(spark, uri, source="deeplake", tensors="array,jpg=bytes", versionAsOf=version, **aws).collect()
        assert len(jvm_rows) == {1: 4, 2: 6}[version]
        assert jvm_rows == py_rows
    assert list(jvm_rows[5]["f32"]) == pytest.approx(kinds_row(5)["f32"].tolist())
    assert bytes(jvm_rows[2]["jpg"]["data"]) == kinds_row(2)["jpg"]
    with pytest.raises(SPARK_ERRORS, match="no deeplake dataset at s3a://"):
        read(spark, s3a + "-missing", **s3a_options(s3_server)).collect()


def run_spark_app(tmp_path, settings: dict[str, str], body: str):
    """Run ``body`` in a new Python process whose ``spark`` session starts with ``settings`` (what a
    session already running cannot take); returns the finished process, checked for success."""
    import subprocess
    import sys

    script = tmp_path / "app.py"
    script.write_text(
        "import os, sys\n"
        "os.environ['PYSPARK_PYTHON'] = sys.executable\n"
        "import deeplake_spark as dls\n"
        f"spark = dls.spark_session(master='local[2]', **{settings!r})\n"
        + body + "spark.stop()\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_s3a_settings_of_the_spark_application_apply_to_reads(s3_server, tmp_path):
    """``spark.hadoop.fs.s3a.*`` given when the session starts reach the driver and the executors, so a read
    needs no options (a separate application: our session is already started)."""
    if not jvm.s3a_jars():
        pytest.skip(f"no S3A jars in jvm-shim/target/s3a; run the README set-up ({jvm.SETUP_COMMAND})")
    uri = s3_server.uri("jvm-app-settings")
    ds = dls.create(uri, {"id": "int64", "v": dls.tensor(dtype="int32", shape=(2,))},
                    storage_options=s3_server.storage_options)
    ds.append({"id": [1, 2, 3], "v": [np.array([i, -i], np.int32) for i in range(3)]})
    settings = {f"spark.hadoop.{k}": v for k, v in s3a_options(s3_server).items()}
    done = run_spark_app(tmp_path, settings, (
        f"rows = spark.read.format('deeplake-jvm').option('tensors', 'array').load({uri.replace('s3://', 's3a://', 1)!r})"
        ".orderBy('id').collect()\n"
        "print('ROWS', [(r['id'], list(r['v'])) for r in rows])\n"))
    assert "ROWS [(1, [0, 0]), (2, [1, -1]), (3, [2, -2])]" in done.stdout


@pytest.mark.slow
def test_sql_catalog_storage_options_reach_s3_path_tables(s3_server, tmp_path):
    """``spark.sql.catalog.deeplake.AWS_*`` (the storage options every reader takes) let SQL name an
    ``s3://`` dataset by path: the catalog's own existence check and the read both use them, time
    travel included, and a path without a Delta log is named (a separate application: catalog options
    are read when the catalog starts)."""
    if not jvm.s3a_jars():
        pytest.skip(f"no S3A jars in jvm-shim/target/s3a; run the README set-up ({jvm.SETUP_COMMAND})")
    uri = s3_server.uri("jvm-catalog-options")
    ds = dls.create(uri, {"id": "int64", "v": dls.tensor(dtype="int32", shape=(2,))},
                    storage_options=s3_server.storage_options)
    ds.append({"id": [1, 2], "v": [np.array([i, -i], np.int32) for i in range(2)]})
    ds.append({"id": [3], "v": [np.array([7, -7], np.int32)]})
    settings = {f"spark.sql.catalog.deeplake.{k}": v for k, v in s3_server.storage_options.items()
                if k.startswith("AWS_")}
    done = run_spark_app(tmp_path, settings, (
        f"t = 'deeplake.`{uri}`'\n"
        "print('NOW', [r['id'] for r in spark.sql(f'SELECT id FROM {t} ORDER BY id').collect()])\n"
        "print('V1', [r['id'] for r in spark.sql(f'SELECT id FROM {t} VERSION AS OF 1 ORDER BY id').collect()])\n"
        "try:\n"
        f"    spark.sql('SELECT * FROM deeplake.`{uri}-missing`').collect()\n"
        "except Exception as e:\n"
        "    print('MISSING', 'no deeplake dataset at' in str(e))\n"))
    assert "NOW [1, 2, 3]" in done.stdout and "V1 [1, 2]" in done.stdout, done.stdout + done.stderr[-2000:]
    assert "MISSING True" in done.stdout, done.stdout


def test_a_column_stored_with_another_type_than_the_delta_schema_is_named(spark, tmp_path):
    """A data file whose Parquet type contradicts the Delta schema (a damaged or foreign table) is refused
    naming the file and column, not read as other values."""
    import json

    import pyarrow as pa
    from deltalake import write_deltalake

    path = str(tmp_path / "liar")
    write_deltalake(path, pa.table({"id": pa.array([1, 2], pa.int64()), "x": pa.array(["a", "b"])}))
    commit = os.path.join(path, "_delta_log", "00000000000000000000.json")
    actions = [json.loads(line) for line in open(commit)]
    for a in actions:
        if "metaData" in a:
            schema = json.loads(a["metaData"]["schemaString"])
            schema["fields"][1]["type"] = "long"
            a["metaData"]["schemaString"] = json.dumps(schema)
    with open(commit, "w") as f:
        f.write("\n".join(json.dumps(a) for a in actions) + "\n")
    assert read(spark, path).select("id").count() == 2  # the other columns still read
    with pytest.raises(SPARK_ERRORS, match=r"deeplake_spark.errors.CorruptDatasetError: dataset .*liar, data file "
                                           r".*\.parquet: column \[x\] is stored as .*BINARY.*, the Delta schema says bigint"):
        read(spark, path).collect()
