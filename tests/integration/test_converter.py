"""``make_spark_converter``: view over refs (no copy) and materialize (cached dataset), real Spark."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import deeplake_spark as dls
from deeplake_spark.errors import InvalidOptionError

N = 120


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("conv") / "src")
    ds = dls.create(path, {"feat": dls.tensor("embedding", shape=(3,), chunk_size=40 * 12), "id": "int64",
                           "w": "float64"})
    ds.append({"feat": np.repeat(np.arange(N, dtype="float32")[:, None], 3, axis=1), "id": np.arange(N),
               "w": np.arange(N) * 0.5})
    return path


def _png(value: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((4, 3), value, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_view_reads_chunks_from_the_source_and_writes_nothing(spark, source, tmp_path, monkeypatch):
    spark.read.format("deeplake").load(source).createOrReplaceTempView("conv_src")
    spark.createDataFrame([(i, f"c{i % 3}") for i in range(0, N, 2)], "id long, cls string") \
        .createOrReplaceTempView("conv_lab")
    df = spark.sql("SELECT s.id, s.feat AS f, s.w, l.cls FROM conv_src s JOIN conv_lab l ON s.id = l.id "
                   "WHERE s.id < 100")
    cache_dir = tmp_path / "cache"
    converter = dls.make_spark_converter(df, cache_dir_url=str(cache_dir))
    assert converter.mode == "view" and len(converter) == 50 and converter.dataset_size == 50
    log_file = tmp_path / "io.log"
    monkeypatch.setenv("DEEPLAKE_SPARK_IO_LOG", str(log_file))
    seen = []
    with converter.make_torch_dataloader(batch_size=8, num_epochs=1, num_workers=2) as loader:
        for batch in loader:
            assert torch.equal(batch["f"][:, 0].long(), batch["id"])
            assert batch["w"].dtype == torch.float32  # petastorm's dtype="float32" default
            assert batch["cls"] == [f"c{i % 3}" for i in batch["id"].tolist()]
            seen.extend(batch["id"].tolist())
    assert sorted(seen) == list(range(0, 100, 2))
    reads = log_file.read_text().split()
    assert any(r.startswith("_tensors/feat/") for r in reads)  # workers read the source's chunks
    assert not cache_dir.exists()  # nothing materialized
    converter.delete()
    with pytest.raises(InvalidOptionError, match="deleted"):
        converter.make_torch_dataloader()


def test_view_shards_with_petastorm_argument_names(spark, source):
    df = spark.read.format("deeplake").load(source)
    converter = dls.make_spark_converter(df)
    ids = []
    for shard in range(2):
        with converter.make_torch_dataloader(batch_size=16, num_epochs=1, workers_count=2, cur_shard=shard,
                                             shard_count=2) as loader:
            ids.append([i for b in loader for i in b["id"].tolist()])
    assert len(ids[0]) == len(ids[1]) == N // 2
    assert sorted(ids[0] + ids[1]) == list(range(N))
    with pytest.raises(InvalidOptionError, match="transform_spec"):
        converter.make_torch_dataloader(transform_spec=object())


def test_materialize_computed_columns_once_and_reuse(spark, source, tmp_path):
    df = spark.read.format("deeplake").option("tensors", "array").load(source).where("id % 3 = 0")
    cache_dir = str(tmp_path / "cache")
    with pytest.raises(InvalidOptionError, match="computed"):
        dls.make_spark_converter(df, mode="view")
    converter = dls.make_spark_converter(df, cache_dir_url=cache_dir, progress=False)
    assert converter.mode == "materialize" and len(converter) == N // 3
    local = converter.cache_dir_url.removeprefix("file://")  # petastorm's cache_dir_url is a URL
    assert converter.cache_dir_url.startswith("file://" + cache_dir) and os.path.isdir(local)
    with converter.make_torch_dataloader(batch_size=7, num_epochs=2, num_workers=2) as loader:
        batches = list(loader)
    ids = [i for b in batches for i in b["id"].tolist()]
    last = batches[-1]
    assert sorted(ids) == sorted(list(range(0, N, 3)) * 2)
    assert torch.equal(last["feat"][:, 1].long(), last["id"])
    mtime = os.path.getmtime(local)
    again = dls.make_spark_converter(df, cache_dir_url=cache_dir, progress=False)
    assert again.cache_dir_url == converter.cache_dir_url and os.path.getmtime(local) == mtime
    other = dls.make_spark_converter(df.where("id > 50"), cache_dir_url=cache_dir, progress=False)
    assert other.cache_dir_url != converter.cache_dir_url and len(other) == len([i for i in range(51, N) if i % 3 == 0])
    converter.delete()
    assert not os.path.exists(local)
    other.delete()


def test_materialize_plain_spark_columns_through_the_driver(spark, tmp_path):
    rows = [(i, _png(i), [float(i)] * (i % 3 + 1), [[i, i], [i, i]]) for i in range(20)]
    df = spark.createDataFrame(rows, "id long, img binary, ragged array<double>, grid array<array<int>>")
    converter = dls.make_spark_converter(df, cache_dir_url=str(tmp_path / "c"), writer="driver", progress=False)
    assert converter.mode == "materialize"
    ds = dls.open(converter.cache_dir_url)
    assert ds.schema.tensors["img"].compression == "png" and ds.schema.tensors["ragged"].dtype == "float32"
    with converter.make_torch_dataloader(batch_size=5, num_epochs=1, num_workers=2, shuffle=False,
                                         collate={"ragged": "pad"}) as loader:
        batches = list(loader)
    ids = torch.cat([b["id"] for b in batches]).tolist()
    assert ids == list(range(20))
    for b in batches:
        for row, i in enumerate(b["id"].tolist()):
            assert (b["img"][row] == i).all() and b["img"].shape[1:] == (4, 3)
            assert b["ragged_shape"][row, 0] == i % 3 + 1
            assert torch.equal(b["grid"][row], torch.full((2, 2), i, dtype=torch.int32))
    converter.delete()


def test_unknown_options_are_rejected(spark, source):
    df = spark.read.format("deeplake").load(source)
    with pytest.raises(InvalidOptionError):
        dls.make_spark_converter(df, mode="copy")
    with pytest.raises(InvalidOptionError):
        dls.make_spark_converter(df, cache_dir="/tmp/x")
