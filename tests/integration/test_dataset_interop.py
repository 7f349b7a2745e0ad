"""Independent Delta readers (polars, DuckDB's delta extension) and concurrent appenders."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

import deeplake_spark as dls


def _make(path: str) -> dls.Dataset:
    ds = dls.create(path, {"emb": dls.tensor("embedding", shape=(3,)), "id": "int64", "name": "string",
                           "score": "float64"})
    for start in (0, 5):
        ds.append({"emb": np.ones((5, 3), np.float32) * np.arange(start, start + 5)[:, None],
                   "id": np.arange(start, start + 5), "name": [f"n{i}" for i in range(start, start + 5)],
                   "score": np.arange(start, start + 5) / 10})
    ds.delete("id = 3")
    return ds


def test_polars_reads_the_tabular_part(ds_path):
    pl = pytest.importorskip("polars")
    ds = _make(ds_path)
    frame = pl.read_delta(ds_path).sort("id")
    assert frame.height == len(ds) == 9
    assert frame["id"].to_list() == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert frame["name"].to_list()[3] == "n4" and frame["score"].to_list()[-1] == pytest.approx(0.9)
    # the ref column is a plain struct any reader can see
    assert frame.filter(pl.col("id") == 9)["emb"].struct.field("shape").to_list() == [[3]]
    old = pl.read_delta(ds_path, version=1)
    assert old.height == 5


def test_polars_and_duckdb_read_a_partitioned_dataset(ds_path):
    pl = pytest.importorskip("polars")
    ds = dls.create(ds_path, {"emb": dls.tensor("embedding", shape=(3,)), "id": "int64", "name": "string"},
                    partition_by=["name"])
    ds.append({"emb": np.ones((4, 3), np.float32), "id": np.arange(4), "name": ["a", "b", None, "a"]})
    frame = pl.read_delta(ds_path).sort("id")
    assert frame["name"].to_list() == ["a", "b", None, "a"] and frame.columns == ["emb", "id", "name"]
    try:
        import duckdb
        import duckdb_ext
    except ImportError:
        return
    con = duckdb_ext.init(duckdb.connect())
    con.execute("LOAD delta")
    rows = con.execute(f"SELECT id, name FROM delta_scan('{ds_path}') ORDER BY id").fetchall()
    assert rows == [(0, "a"), (1, "b"), (2, None), (3, "a")]


def test_duckdb_delta_extension_reads_the_tabular_part(ds_path):
    duckdb = pytest.importorskip("duckdb")
    duckdb_ext = pytest.importorskip("duckdb_ext")
    ds = _make(ds_path)
    con = duckdb_ext.init(duckdb.connect())
    con.execute("LOAD delta")
    rows = con.execute(f"SELECT id, name, score FROM delta_scan('{ds_path}') ORDER BY id").fetchall()
    assert len(rows) == len(ds) == 9
    assert rows[0] == (0, "n0", 0.0) and rows[-1] == (9, "n9", pytest.approx(0.9))
    total = con.execute(f"SELECT sum(emb.nbytes) FROM delta_scan('{ds_path}')").fetchone()[0]
    assert total == 9 * 12


def _appender(path: str, worker: int, batches: int) -> None:
    ds = dls.open(path)
    for b in range(batches):
        ids = np.arange(3) + 1000 * worker + 10 * b
        ds.append({"x": np.stack([ids, ids]).T.astype(np.int32), "id": ids, "part": (ids % 2).astype(np.int32)})


@pytest.mark.parametrize("partition_by", [None, ["part"]])
def test_concurrent_process_appenders_all_land(ds_path, partition_by):
    dls.create(ds_path, {"x": dls.tensor("generic", dtype="int32", shape=(2,)), "id": "int64", "part": "int32"},
               partition_by=partition_by)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_appender, args=(ds_path, w, 4)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    ds = dls.open(ds_path)
    assert ds.version == 12
    got = ds[:]
    assert sorted(got["id"].tolist()) == sorted(1000 * w + 10 * b + i for w in range(3) for b in range(4) for i in range(3))
    np.testing.assert_array_equal(got["x"][:, 0], got["id"])
    np.testing.assert_array_equal(got["part"], got["id"] % 2)
