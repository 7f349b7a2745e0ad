"""Scalar tensors (class_label, text, json, 0-d numerics) are plain Delta columns: dataset layer,
Spark SQL on them, and datasets written before (scalars as chunk refs) still read and append."""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pytest
from deltalake import write_deltalake

import deeplake_spark as dls
from deeplake_spark.dataset.refs import REF_TYPE, TENSOR_METADATA_KEY, chunk_relpath
from deeplake_spark.errors import CorruptDatasetError, SchemaError
from deeplake_spark.format.chunk_writer import ChunkBuilder
from deeplake_spark.format.samples import encode_sample
from deeplake_spark.format.spec import TensorSpec

SCHEMA = {
    "id": "int64",
    "label": dls.tensor("class_label", dtype="uint8", class_names=["cat", "dog", "bird", "fish"]),
    "caption": dls.tensor("text"),
    "meta": dls.tensor("json"),
    "score": dls.tensor("generic", dtype="float16", shape=()),
    "big": dls.tensor("generic", dtype="uint64", shape=()),
    "emb": dls.tensor("embedding", shape=(2,)),
}


def rows(start: int, n: int) -> dict:
    ids = list(range(start, start + n))
    return {
        "id": ids,
        "label": [i % 4 for i in ids],
        "caption": [f"c{i}" for i in ids],
        "meta": [{"i": i} for i in ids],
        "score": np.array(ids, np.float32) / 2,
        "big": np.array(ids, np.uint64) + np.uint64(2**40),
        "emb": np.array([[i, -i] for i in ids], np.float32),
    }


@pytest.fixture
def ds(ds_path):
    dataset = dls.create(ds_path, SCHEMA)
    dataset.append(rows(0, 8))
    return dataset


def test_scalars_are_plain_columns_with_their_spec(ds_path, ds):
    fields = {f["name"]: f for f in json.loads(ds.delta_table.schema().to_json())["fields"]}
    # Delta types: uint8 -> short, float16 -> float, str/json -> string; uint64 stays a ref struct
    types = {name: fields[name]["type"] for name in ("label", "caption", "meta", "score")}
    assert types == {"label": "short", "caption": "string", "meta": "string", "score": "float"}
    assert fields["big"]["type"]["type"] == "struct" and fields["emb"]["type"]["type"] == "struct"
    spec = json.loads(fields["label"]["metadata"][TENSOR_METADATA_KEY])
    assert spec["htype"] == "class_label" and spec["class_names"] == ["cat", "dog", "bird", "fish"]
    assert sorted(os.listdir(os.path.join(ds_path, "_tensors"))) == ["big", "emb"]  # no chunk for a scalar
    assert ds.schema.inline == {"label", "caption", "meta", "score"}


def test_scalars_read_back_in_their_dtype(ds_path, ds):
    reopened = dls.open(ds_path)
    row = reopened[5]
    assert row["label"].shape == () and row["label"].dtype == np.uint8 and row["label"] == 1
    assert row["score"].dtype == np.float16 and row["score"] == 2.5
    assert row["caption"] == "c5" and json.loads(row["meta"]) == {"i": 5}
    assert int(row["big"]) == 2**40 + 5
    batch = reopened[2:6]
    assert batch["label"].dtype == np.uint8 and batch["label"].tolist() == [2, 3, 0, 1]
    assert batch["caption"].tolist() == ["c2", "c3", "c4", "c5"]
    assert reopened.tensors["label"].class_names == ("cat", "dog", "bird", "fish")
    assert reopened.tensors["label"].class_name(3) == "fish"


def test_nulls_in_inline_scalars(ds):
    ds.append({"id": [100, 101], "label": [None, 2], "caption": [None, "x"], "meta": [None, [1]],
               "score": [None, 1.0], "big": [None, 1], "emb": [None, [1, 2]]})
    row = ds[8]
    assert row["label"] is None and row["caption"] is None and row["meta"] is None and row["score"] is None
    both = ds[8:10]
    assert both["label"][0] is None and both["label"][1] == 2 and both["label"][1].dtype == np.uint8


@pytest.mark.parametrize(("column", "value", "message"), [
    ("label", 256, "out of range for uint8"),
    ("label", -1, "out of range for uint8"),
    ("label", 1.5, "non-integral"),
    ("label", "cat", "got str for a uint8 tensor"),
    ("label", [1, 2], r"shape \(2,\)\) does not match tensor shape \(\)"),
    ("caption", 3, "expected str for a text tensor"),
    ("meta", float("nan"), "is not JSON"),
])
def test_bad_scalar_values_are_refused_by_name(ds, column, value, message):
    data = {name: values[:1] for name, values in rows(50, 1).items()}
    data[column] = [value]
    with pytest.raises(SchemaError, match=message) as info:
        ds.append(data)
    assert f"tensor {column!r}, row 0: " in str(info.value)
    assert len(ds) == 8


def test_arrow_and_pandas_inputs_feed_inline_tensors(ds):
    table = pa.table({"id": pa.array([20, 21]), "label": pa.array([3, 1], pa.int64()), "caption": ["a", "b"],
                      "meta": ['{"k": 1}', "[]"], "score": pa.array([0.25, 4.0]), "big": pa.array([1, 2], pa.uint64()),
                      "emb": pa.array([[1.0, 2.0], [3.0, 4.0]])})
    ds.append(table)
    assert ds[8]["label"] == 3 and ds[9]["caption"] == "b" and ds[8]["score"] == 0.25
    with pytest.raises(SchemaError, match="out of range|do not fit"):
        ds.append(table.set_column(1, "label", pa.array([300, 1], pa.int64())))


def test_update_and_delete_on_inline_tensors(ds):
    ds.update(new_values={"label": 3}, predicate="id < 2")
    assert ds[:]["label"].tolist()[:3] == [3, 3, 2]
    ds.update({"caption": "concat(caption, '!')"}, predicate="label = 3")  # SQL on a str scalar
    assert ds[0]["caption"] == "c0!" and ds[2]["caption"] == "c2"
    with pytest.raises(SchemaError, match="out of range for uint8"):
        ds.update(new_values={"label": 999})
    with pytest.raises(SchemaError, match="new_values="):
        ds.update({"label": "label + 1"})  # uint8 stored as int16: SQL could leave 256 behind
    ds.delete("label = 3")
    assert sorted(ds[:]["id"].tolist()) == [2, 4, 5, 6]


def test_vacuum_keeps_working_with_inline_tensors(ds):
    ds.overwrite(rows(10, 2))
    result = ds.vacuum(retention_hours=0, enforce_retention_duration=False)
    assert sorted({p.split("/")[1] for p in result.chunk_files}) == ["big", "emb"]
    assert ds[1]["label"] == 3 and ds[1]["caption"] == "c11"


def test_delta_stats_have_min_max_of_inline_scalars(ds):
    ds.append(rows(40, 4))  # labels 0..3 again, ids 40..43
    actions = pa.table(ds.delta_table.get_add_actions(flatten=True))
    assert actions.column("min.label").to_pylist() == [0, 0]
    assert actions.column("max.label").to_pylist() == [3, 3]
    assert sorted(actions.column("min.caption").to_pylist()) == ["c0", "c40"]


# ------------------------------------------------------------------------------ class names
def test_class_names_are_validated():
    with pytest.raises(SchemaError, match="appears twice"):
        dls.tensor("class_label", class_names=["a", "a"])
    with pytest.raises(SchemaError, match="must be str"):
        dls.tensor("class_label", class_names=["a", 1])
    with pytest.raises(SchemaError, match="list of str"):
        dls.tensor("class_label", class_names="cat,dog")
    with pytest.raises(SchemaError, match="only apply to class_label"):
        dls.tensor("text", class_names=["a"])


# ---------------------------------------------------------------- datasets written with refs
def _legacy_dataset(path: str) -> None:
    """A dataset as written before scalars went inline: class_label and text as chunk refs."""
    label = TensorSpec.create("label", "class_label")
    caption = TensorSpec.create("caption", "text")
    refs = {}
    os.makedirs(os.path.join(path, "_tensors", "label"))
    os.makedirs(os.path.join(path, "_tensors", "caption"))
    for spec, values in ((label, [2, 0, 1]), (caption, ["a", "b", "c"])):
        builder = ChunkBuilder(spec)
        chunk_id = "0" * 31 + ("1" if spec is label else "2")
        column = []
        for value in values:
            sample = encode_sample(spec, value)
            column.append({"chunk": chunk_id, "index": builder.add(sample), "shape": [], "nbytes": len(sample.data)})
        with open(os.path.join(path, chunk_relpath(spec.name, chunk_id)), "wb") as f:
            f.write(builder.finish())
        refs[spec.name] = (spec, column)
    schema = pa.schema([pa.field("id", pa.int64())] + [
        pa.field(name, REF_TYPE, metadata={TENSOR_METADATA_KEY: spec.to_json()}) for name, (spec, _) in refs.items()])
    table = pa.table({"id": [0, 1, 2], **{name: pa.array(col, REF_TYPE) for name, (_, col) in refs.items()}},
                     schema=schema)
    write_deltalake(path, table)


def test_dataset_with_scalar_refs_still_reads_and_appends(ds_path):
    _legacy_dataset(ds_path)
    ds = dls.open(ds_path)
    assert ds.schema.inline == frozenset() and set(ds.schema.chunked) == {"label", "caption"}
    assert ds[0]["label"] == 2 and ds[0]["label"].dtype == np.int32 and ds[2]["caption"] == "c"
    ds.append({"id": [3], "label": [1], "caption": ["d"]})  # stays refs: the table decides the storage
    reopened = dls.open(ds_path)
    assert pa.types.is_struct(reopened.table().schema.field("label").type)
    assert reopened[:]["label"].tolist() == [2, 0, 1, 1] and reopened[3]["caption"] == "d"
    assert len(os.listdir(os.path.join(ds_path, "_tensors", "label"))) == 2


def test_scalar_tensor_column_of_the_wrong_type_is_corrupt(ds_path):
    spec = TensorSpec.create("label", "class_label")
    field = pa.field("label", pa.string(), metadata={TENSOR_METADATA_KEY: spec.to_json()})
    write_deltalake(ds_path, pa.table({"label": ["x"]}, schema=pa.schema([field])))
    with pytest.raises(CorruptDatasetError, match="column 'label' is string but its tensor spec"):
        dls.open(ds_path)


# ------------------------------------------------------------------------------------ Spark
@pytest.fixture
def view(spark, ds):
    ds.append(rows(8, 8))  # two data files: ids 0..7 and 8..15
    spark.read.format("deeplake").load(ds.path).createOrReplaceTempView("inline_t")
    return ds


def test_spark_sql_filters_and_groups_by_label(spark, view):
    rows_ = spark.sql("SELECT label, count(*) AS n FROM inline_t WHERE label = 3 GROUP BY label").collect()
    assert [(r["label"], r["n"]) for r in rows_] == [(3, 4)]
    groups = spark.sql("SELECT label, count(*) AS n FROM inline_t GROUP BY label ORDER BY label").collect()
    assert [(r["label"], r["n"]) for r in groups] == [(0, 4), (1, 4), (2, 4), (3, 4)]
    texts = spark.sql("SELECT id FROM inline_t WHERE caption = 'c9' AND score > 4").collect()
    assert [r["id"] for r in texts] == [9]
    field = spark.table("inline_t").schema["label"]
    assert field.dataType.simpleString() == "smallint"
    assert json.loads(field.metadata["deeplake.spec"])["class_names"] == ["cat", "dog", "bird", "fish"]


def test_spark_join_on_label(spark, view):
    names = spark.createDataFrame([(i, n) for i, n in enumerate(["cat", "dog", "bird", "fish"])], "label INT, name STRING")
    joined = spark.table("inline_t").join(names, "label").where("name = 'dog'").select("id").collect()
    assert sorted(r["id"] for r in joined) == [1, 5, 9, 13]


@pytest.mark.parametrize("mode", ["ref", "bytes", "array"])
def test_inline_scalars_are_values_in_every_tensors_mode(spark, view, mode):
    df = spark.read.format("deeplake").option("tensors", mode).load(view.path)
    assert df.schema["label"].dataType.simpleString() == "smallint"
    assert df.schema["caption"].dataType.simpleString() == "string"
    row = df.where("id = 6").select("label", "caption", "meta", "score").collect()[0]
    assert (row["label"], row["caption"], json.loads(row["meta"]), row["score"]) == (2, "c6", {"i": 6}, 3.0)


def test_stats_of_inline_label_can_prune_files(view):
    from pyspark.sql.datasource import EqualTo

    from deeplake_spark.spark.reader import _data_files, may_match

    files = _data_files(view, ["id", "label"])
    assert [f.stats["label"][:2] for f in files] == [(0, 3), (0, 3)]
    assert not any(may_match(f, EqualTo(("label",), 7)) for f in files)  # no file can hold label 7
    assert [may_match(f, EqualTo(("id",), 9)) for f in files] == [False, True]


def test_spark_writer_stores_scalars_inline_and_keeps_class_names(spark, view, tmp_path):
    target = str(tmp_path / "copy")
    df = spark.read.format("deeplake").option("tensors", "array").load(view.path).drop("big")
    df.write.format("deeplake").mode("overwrite").save(target)
    copy = dls.open(target)
    assert copy.schema.inline == {"label", "caption", "meta", "score"}
    assert copy.tensors["label"].class_names == ("cat", "dog", "bird", "fish")
    assert sorted(copy[:]["label"].tolist()) == sorted(view[:]["label"].tolist())
    fresh = str(tmp_path / "fresh")
    plain = spark.createDataFrame([(1, 3), (2, 300)], "id INT, label INT")
    with pytest.raises(Exception, match=r"row \d+: values out of range for uint8"):
        plain.write.format("deeplake").option("tensor.label.htype", "class_label") \
            .option("tensor.label.dtype", "uint8").mode("overwrite").save(fresh)
    plain.where("label < 256").write.format("deeplake").option("tensor.label.htype", "class_label") \
        .mode("overwrite").save(fresh)
    written = dls.open(fresh)
    assert written.schema.inline == {"label"} and written[0]["label"].dtype == np.int32


# ------------------------------------------------------------------------------------ torch
def test_torch_loader_batches_inline_scalars_in_their_dtype(ds):
    import torch

    seen = []
    for batch in ds.pytorch(batch_size=4, num_workers=2, columns=["id", "label", "caption", "score", "emb"]):
        assert batch["label"].dtype == torch.uint8 and batch["score"].dtype == torch.float16
        assert torch.equal(batch["label"].long(), batch["id"] % 4)
        assert batch["caption"] == [f"c{i}" for i in batch["id"].tolist()]
        seen.extend(batch["id"].tolist())
    assert sorted(seen) == list(range(8))
    ds.append({"id": [8], "label": [None], "caption": ["x"], "meta": [None], "score": [1.0], "big": [1],
               "emb": [[0, 0]]})
    with pytest.raises(Exception, match="null samples"):
        list(ds.pytorch(batch_size=9, columns=["label"]))
    batch = next(iter(ds.pytorch(batch_size=9, columns=["id", "label"], collate={"label": "list"})))
    by_id = dict(zip(batch["id"].tolist(), batch["label"]))
    assert by_id[8] is None and by_id[3].dtype == torch.uint8 and int(by_id[3]) == 3


def test_converter_view_keeps_the_scalar_dtype(spark, view):
    import torch

    df = spark.read.format("deeplake").load(view.path).select("id", "label", "emb").where("label = 1")
    converter = dls.make_spark_converter(df)
    assert converter.mode == "view"
    ids = []
    with converter.make_torch_dataloader(batch_size=3, num_epochs=1, num_workers=0) as loader:
        for batch in loader:
            assert batch["label"].dtype == torch.uint8 and bool((batch["label"] == 1).all())
            assert torch.equal(batch["emb"][:, 0].long(), batch["id"])
            ids.extend(batch["id"].tolist())
    assert sorted(ids) == [1, 5, 9, 13]
    converter.delete()


# ------------------------------------------------------------------------------- viz and CLI
def test_viz_labels_use_the_class_names_of_the_spec(spark, view):
    from deeplake_spark import viz

    page = viz.show(view, n=2, columns=["id", "label"])._repr_html_()
    assert "1 (dog)" in page and "0 (cat)" in page
    df = spark.read.format("deeplake").load(view.path).where("label = 3")
    assert "3 (fish)" in viz.grid(df, columns=["label", "caption"]).to_html()
    # names given to show() win over the spec's
    assert "3 (bird)" in viz.show(view, n=4, columns=["label"], class_names=["a", "b", "c", "bird"])._repr_html_()


def test_cli_info_shows_inline_storage_and_class_names(ds, capsys):
    from deeplake_spark.cli import main

    assert main(["info", ds.path]) == 0
    out = capsys.readouterr().out
    assert "tensor class_label uint8 () inline  [values in the Parquet rows]  classes 0=cat 1=dog 2=bird 3=fish" in out
    assert "tensor text str () inline" in out and "tensor embedding float32 (2) none  [1 chunk files" in out
    assert main(["info", ds.path, "--json"]) == 0
    columns = {c["name"]: c for c in json.loads(capsys.readouterr().out)["columns"]}
    assert columns["label"]["storage"] == "inline" and columns["label"]["chunk_files"] == 0
    assert columns["label"]["class_names"] == ["cat", "dog", "bird", "fish"] and columns["emb"]["storage"] == "chunks"


def test_spark_writer_class_names_option(spark, tmp_path):
    df = spark.createDataFrame([(1, 0), (2, 1)], "id INT, label INT")
    target = str(tmp_path / "named")
    df.write.format("deeplake").option("tensor.label.htype", "class_label") \
        .option("tensor.label.classNames", "cat, dog").mode("overwrite").save(target)
    assert dls.open(target).tensors["label"].class_names == ("cat", "dog")
    df.write.format("deeplake").option("tensor.label.classNames", '["cat", "dog"]').mode("append").save(target)
    assert len(dls.open(target)) == 4
    with pytest.raises(Exception, match="disagree with the dataset's tensor spec"):
        df.write.format("deeplake").option("tensor.label.classNames", "dog,cat").mode("append").save(target)
    with pytest.raises(Exception, match="appears twice"):
        df.write.format("deeplake").option("tensor.label.htype", "class_label") \
            .option("tensor.label.classNames", "a,a").mode("overwrite").save(str(tmp_path / "bad"))


def test_fetch_leaves_inline_scalars_as_they_are(spark, view):
    df = spark.read.format("deeplake").load(view.path).where("label = 2").select("id", "label", "emb")
    assert dls.fetch(df, ["label"]) is df  # nothing to read: the values are in the rows
    rows = dls.fetch(df, ["emb", "label"]).orderBy("id").collect()
    assert [(r["id"], r["label"], r["emb"]) for r in rows][:2] == [(2, 2, [2.0, -2.0]), (6, 2, [6.0, -6.0])]


@pytest.mark.parametrize("with_refs", [False, True])  # Spark writer / driver writer for the cache
def test_converter_materialize_keeps_the_scalar_dtype(spark, view, tmp_path, with_refs):
    import torch
    from pyspark.sql import functions as F

    columns = ["id", "label", "emb"] if with_refs else ["id", "label"]
    df = spark.read.format("deeplake").load(view.path).select(*columns).withColumn("twice", F.array(F.col("id") * 2))
    converter = dls.make_spark_converter(df, cache_dir_url=str(tmp_path / "cache"))
    assert converter.mode == "materialize"
    ids = []
    with converter.make_torch_dataloader(batch_size=4, num_epochs=1, num_workers=0) as loader:
        for batch in loader:
            assert batch["label"].dtype == torch.uint8
            assert torch.equal(batch["label"].long(), batch["id"] % 4)
            ids.extend(batch["id"].tolist())
    assert sorted(ids) == list(range(16))
    converter.delete()
