"""Dataset views (issue #13, Build 4): ``ds[a:b]``, ``ds[[...]]``, ``ds.filter(...)`` give a ``DatasetView``
over one pinned version, to read (``view[i]``, ``view["col"]``, ``.numpy()``, ``.table()``) or train on
(``.pytorch()``). Real datasets on disk, real Delta logs, a real torch DataLoader with 2 workers."""

from __future__ import annotations

import datetime
import os

import numpy as np
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deeplake_spark as dls
from deeplake_spark.errors import ChunkNotFoundError, InvalidOptionError, SchemaError, VersionNotFound

N = 60
SPLITS = ["train", "val", None, "train", "test"]
DAY0 = datetime.date(2026, 1, 1)


def batch(ids) -> dict:
    ids = np.asarray(list(ids), dtype=np.int64)
    return {
        "emb": np.stack([np.full(4, i, dtype=np.float32) for i in ids]),
        "mask": [np.full((int(i % 3), 2), i, dtype=np.int16) for i in ids],
        "label": ids % 5,
        "id": ids,
        "split": [SPLITS[int(i) % 5] for i in ids],
        "day": [DAY0 + datetime.timedelta(days=int(i) % 3) for i in ids],
    }


SCHEMA = {
    # small chunks: a few rows each, so a view holds rows of only some chunks
    "emb": dls.tensor("embedding", shape=(4,), compression="lz4", chunk_size=64),
    "mask": dls.tensor("generic", dtype="int16", chunk_size=64),
    "label": dls.tensor("class_label", class_names=["a", "b", "c", "d", "e"]),
    "id": "int64",
    "split": "string",
    "day": "date32",
}


def expected_ids(predicate) -> list[int]:
    return [i for i in range(N) if predicate(i, i % 5, SPLITS[i % 5], DAY0 + datetime.timedelta(days=i % 3))]


@pytest.fixture(params=["plain", "partitioned"])
def ds(request, ds_path):
    partition_by = ["split"] if request.param == "partitioned" else None
    dataset = dls.create(ds_path, SCHEMA, partition_by=partition_by)
    for start in range(0, N, 20):  # three commits
        dataset.append(batch(range(start, start + 20)))
    return dataset


def ids_of(view) -> list[int]:
    return [int(i) for i in view["id"]]


def test_positions_give_views_that_read_like_the_dataset(ds):
    order = ids_of(ds[:])  # a partitioned table keeps its rows in its own order
    view = ds[10:40]
    assert isinstance(view, dls.DatasetView) and len(view) == 30 and view.version == ds.version == 3
    assert view.indices.tolist() == list(range(10, 40)) and ids_of(view) == order[10:40]
    assert "version=3" in repr(view) and "rows=30" in repr(view) and ds.path in repr(view)
    # view[i] is the dataset's row, every kind of column
    for i in (0, 7, -1):
        row, expected = view[i], ds[int(view.indices[i])]
        assert row.keys() == expected.keys() and row["id"] == expected["id"] and row["split"] == expected["split"]
        np.testing.assert_array_equal(row["mask"], expected["mask"])
        assert row["label"].dtype == expected["label"].dtype and row["label"] == expected["label"]
    # lists (any order, negative), numpy arrays and boolean masks
    picked = ds[[5, 2, -1]]
    assert picked.indices.tolist() == [5, 2, N - 1] and ids_of(picked) == [order[5], order[2], order[-1]]
    assert ds[np.array([3, 1])].indices.tolist() == [3, 1]
    mask = np.zeros(N, dtype=bool)
    mask[[4, 9]] = True
    assert ds[mask].indices.tolist() == [4, 9]
    # view["col"]: stacked when shapes allow, else a list; numpy(): every column
    assert view["emb"].shape == (30, 4) and view["emb"].dtype == np.float32
    np.testing.assert_array_equal(view["emb"][:, 0], np.asarray(order[10:40], dtype=np.float32))
    assert isinstance(view["mask"], list) and [m.shape[0] for m in view["mask"]] == [i % 3 for i in order[10:40]]
    everything = view.numpy()
    assert list(everything) == ["emb", "mask", "label", "id", "split", "day"]
    assert everything["label"].tolist() == [i % 5 for i in order[10:40]]
    # table(): the dataset's Arrow rows (refs for chunked tensors) at the view's positions
    assert view.table().to_pylist() == ds.table().take(view.indices).to_pylist()
    assert view.table(["id"]).column_names == ["id"]


def test_views_of_views_compose(ds):
    view = ds[10:50][::3][[0, -1, 2]]
    assert view.indices.tolist() == [10, 49, 16]
    assert ds[5:][5:][:3].indices.tolist() == [10, 11, 12]
    trains = ds.filter("split = 'train'")
    picked = trains[1:4].filter("id >= 10")
    assert set(picked.indices) <= set(trains.indices[1:4])
    assert ids_of(picked) == [i for i in ids_of(trains)[1:4] if i >= 10]


def test_readme_lines_keep_working(ds):
    assert ds[0:2]["emb"].shape == (2, 4)
    order = ids_of(ds[:])
    assert ds[[1, 0]]["id"].tolist() == [order[1], order[0]]
    assert isinstance(ds[3], dict) and ds[3]["id"] == order[3]


def test_filter_sql_and_arrow_expressions(ds):
    def check(predicate, expected):
        view = ds.filter(predicate)
        assert isinstance(view, dls.DatasetView) and view.version == ds.version
        assert sorted(ids_of(view)) == expected, predicate
        assert list(view.indices) == sorted(view.indices)  # dataset order
        return view

    check("label = 3 and split = 'train'", expected_ids(lambda i, lab, s, d: lab == 3 and s == "train"))
    check(pc.field("label") == 3, expected_ids(lambda i, lab, s, d: lab == 3))
    check((pc.field("id") > 50) | (pc.field("split") == "test"),
          expected_ids(lambda i, lab, s, d: i > 50 or s == "test"))
    # NULL as in SQL: a null split is neither 'train' nor not 'train'
    check("split <> 'train'", expected_ids(lambda i, lab, s, d: s is not None and s != "train"))
    check("split IS NULL", expected_ids(lambda i, lab, s, d: s is None))
    check("NOT (split IS NOT NULL) OR id IN (1, 2, NULL)", expected_ids(lambda i, lab, s, d: s is None or i in (1, 2)))
    check("id NOT IN (0, 1) AND id BETWEEN -1 AND 4", [2, 3, 4])
    check("split LIKE 't%' AND NOT split LIKE 'tr%'", expected_ids(lambda i, lab, s, d: s == "test"))
    check("day = '2026-01-03' and (id * 2 + 1 > 100)", expected_ids(lambda i, lab, s, d: d.day == 3 and i > 49))
    check('"label" >= 4 AND `id` < 20', expected_ids(lambda i, lab, s, d: lab >= 4 and i < 20))
    check("LABEL = 0 and Id < 10", [0, 5])  # unquoted names match case-insensitively, as in SQL
    assert len(ds.filter("id > 1000")) == 0 and ds.filter("id > 1000")["emb"] == []


def test_bad_predicates_raise_typed_errors_naming_the_fault(ds):
    with pytest.raises(InvalidOptionError, match=r"column 'emb'.*tensor stored in chunks"):
        ds.filter("emb = 3")  # SQL sees a chunked tensor's metadata only, not its values
    with pytest.raises(InvalidOptionError, match=r"column 'mask'.*tensor stored in chunks"):
        ds.filter(pc.field("mask").is_null())
    with pytest.raises(SchemaError, match=r"unknown column 'nope'.*the columns of ds are \['emb', 'mask'"):
        ds.filter("nope = 1 and id = 2")
    with pytest.raises(SchemaError, match=r"unknown column 'nope'"):
        ds.filter(pc.field("nope") == 1)
    with pytest.raises(InvalidOptionError, match=r'syntax error at or near "=" at position 5 of \'id = = 3\''):
        ds.filter("id = = 3")
    with pytest.raises(InvalidOptionError, match=r'syntax error at or near "garbage" at position 7'):
        ds.filter("id = 3 garbage")
    with pytest.raises(InvalidOptionError, match="expected one SQL statement, found 2"):
        ds.filter("id = 3; drop table x")
    with pytest.raises(InvalidOptionError, match="a filter is one condition"):
        ds.filter("id = 3 ORDER BY id LIMIT 1")
    with pytest.raises(InvalidOptionError, match="the condition gives BIGINT values, not true/false"):
        ds.filter("id + 1")
    with pytest.raises(InvalidOptionError, match=r'invalid date field format: "abc"'):
        ds.filter("day = 'abc'")
    with pytest.raises(InvalidOptionError, match="empty SQL text"):
        ds.filter("  ")
    with pytest.raises(InvalidOptionError, match="expected a SQL text"):
        ds.filter(3)
    for error in (InvalidOptionError, SchemaError):  # the messages name the dataset and version
        try:
            ds.filter("emb = 1" if error is InvalidOptionError else "zz = 1")
        except error as e:
            assert ds.path in str(e) and f"version {ds.version}" in str(e)


def test_index_errors_name_the_dataset_and_version(ds):
    with pytest.raises(IndexError, match=rf"{ds.path} \(version 3\): index 60 out of range for 60 rows"):
        ds[60]
    with pytest.raises(IndexError, match=r"index 99 out of range for 60 rows"):
        ds[[0, 99]]
    with pytest.raises(IndexError, match=r"index -4 out of range for 3 rows"):
        ds[0:3][[-4]]
    with pytest.raises(IndexError, match=r"index 3 out of range for 3 rows"):
        ds[0:3][3]
    with pytest.raises(IndexError, match="boolean mask of shape"):
        ds[np.ones(5, dtype=bool)]
    with pytest.raises(IndexError, match=r"row positions in 0\.\.59"):
        dls.DatasetView(ds, np.array([0, 60]))
    assert dls.DatasetView(ds, [3, 1]).indices.tolist() == [3, 1]
    with pytest.raises(TypeError, match="a view takes column names"):
        ds["id"]
    with pytest.raises(SchemaError, match="unknown column"):
        ds[0:3]["nope"]


def test_a_view_is_pinned_to_its_version(ds):
    trains = ds.filter("split = 'train'")
    head = ds[0:5]
    before_ids, before_emb = ids_of(trains), trains["emb"].copy()
    ds.append(batch(range(100, 110)))  # more train rows
    ds.delete("id < 30")
    assert ds.version == 5 and trains.version == head.version == 3
    assert ids_of(trains) == before_ids and np.array_equal(trains["emb"], before_emb)
    assert len(head) == 5 and len(head.numpy()["id"]) == 5 and len(trains[0:2].filter("id >= 0")) == 2
    assert sorted(ids_of(ds.filter("split = 'train'"))) == sorted(
        [i for i in range(30, N) if SPLITS[i % 5] == "train"] + [i for i in range(100, 110) if SPLITS[i % 5] == "train"])
    # once the pinned version is vacuumed away, reading the view says so
    ds.vacuum(0, enforce_retention_duration=False)
    with pytest.raises((VersionNotFound, ChunkNotFoundError)):
        trains.numpy()


def test_views_at_a_time_travel_version(ds):
    ds.append(batch(range(200, 220)))
    old = dls.open(ds.path, version=1)
    view = old.filter("label = 0")
    assert view.version == 1 and sorted(ids_of(view)) == [0, 5, 10, 15]
    assert sorted(ids_of(old[:])) == list(range(20))
    assert view[0:2].version == 1 and len(view[[0, 3]]["emb"]) == 2


def test_loader_over_a_view_with_two_workers_yields_exactly_its_rows(ds):
    trains = ds.filter("split = 'train' or label = 4")[2:]
    want = ids_of(trains)
    loader = trains.pytorch(batch_size=4, num_workers=2, shuffle=True, seed=3, collate="list",
                            columns=["id", "emb", "mask", "label"])
    got = []
    for b in loader:
        got.extend(int(i) for i in b["id"])
        for emb, i in zip(b["emb"], b["id"]):
            assert float(emb[0]) == float(i)  # tensors stay with their rows
    assert sorted(got) == sorted(want) and len(got) == len(want)
    # unshuffled: view order (here not the dataset's), whatever the worker count
    picked = ds[[41, 3, 17, 58, 2, 30, 11]]
    for workers in (0, 2):
        ordered = [int(i) for b in picked.pytorch(batch_size=2, num_workers=workers, shuffle=False,
                                                  columns=["id", "emb"]) for i in b["id"]]
        assert ordered == ids_of(picked)


def test_loader_over_a_view_reads_only_the_chunks_holding_its_rows(ds):
    view = ds.filter("id >= 20 and id < 30")
    assert sorted(ids_of(view)) == list(range(20, 30))
    needed = {(name, ref["chunk"]) for name in ("emb", "mask") for ref in view.table([name]).column(name).to_pylist()
              if ref is not None}
    chunk_files = {(name, f[:-len(".dltc")]) for name in ("emb", "mask")
                   for f in os.listdir(os.path.join(ds.path, "_tensors", name)) if f.endswith(".dltc")}
    assert needed < chunk_files  # the view's rows live in some chunks only
    for name, chunk in chunk_files - needed:  # every other chunk disappears: none may be read
        os.remove(os.path.join(ds.path, "_tensors", name, chunk + ".dltc"))
    loader = view.pytorch(batch_size=3, num_workers=2, shuffle=True, collate="list", columns=["id", "emb", "mask"])
    got = sorted(int(i) for b in loader for i in b["id"])
    assert got == list(range(20, 30))
    # the dataset as a whole now misses chunks, so reading it all fails, naming a chunk
    with pytest.raises(ChunkNotFoundError, match="chunk file is missing"):
        ds[:].numpy(["emb"])


# ------------------------------------------------- predicates against SQL's three-valued logic
def _sql_and(a, b):
    return False if a is False or b is False else (None if a is None or b is None else True)


def _sql_or(a, b):
    return True if a is True or b is True else (None if a is None or b is None else False)


def _cmp(value, op, k):
    if value is None:
        return None
    return {"=": value == k, "<>": value != k, "<": value < k, "<=": value <= k, ">": value > k, ">=": value >= k}[op]


_ATOMS = st.one_of(
    st.tuples(st.sampled_from(["id", "label"]), st.sampled_from(["=", "<>", "<", "<=", ">", ">="]),
              st.integers(-2, N + 2)).map(
        lambda t: (f"{t[0]} {t[1]} {t[2]}", lambda i, lab, s, t=t: _cmp(i if t[0] == "id" else lab, t[1], t[2]))),
    st.sampled_from(["train", "val", "test", "x"]).map(
        lambda v: (f"split = '{v}'", lambda i, lab, s, v=v: _cmp(s, "=", v))),
    st.just(("split IS NULL", lambda i, lab, s: s is None)),
    st.lists(st.integers(0, N), min_size=1, max_size=3).map(
        lambda ks: (f"id IN ({', '.join(map(str, ks))})", lambda i, lab, s, ks=ks: i in ks)),
    st.lists(st.integers(0, N), min_size=1, max_size=3).map(  # x IN (.., NULL) is NULL, not FALSE, on a miss
        lambda ks: (f"id IN ({', '.join(map(str, ks))}, NULL)", lambda i, lab, s, ks=ks: True if i in ks else None)),
    st.sampled_from(["t%", "%a%", "_al"]).map(
        lambda p: (f"split LIKE '{p}'", lambda i, lab, s, p=p: None if s is None else
                   {"t%": s.startswith("t"), "%a%": "a" in s, "_al": len(s) == 3 and s[1:] == "al"}[p])),
)


def _combine(children):
    return st.one_of(
        st.tuples(children, children).map(
            lambda p: (f"({p[0][0]}) AND ({p[1][0]})",
                       lambda i, lab, s, p=p: _sql_and(p[0][1](i, lab, s), p[1][1](i, lab, s)))),
        st.tuples(children, children).map(
            lambda p: (f"({p[0][0]}) OR ({p[1][0]})",
                       lambda i, lab, s, p=p: _sql_or(p[0][1](i, lab, s), p[1][1](i, lab, s)))),
        children.map(lambda c: (f"NOT ({c[0]})",
                                lambda i, lab, s, c=c: None if c[1](i, lab, s) is None else not c[1](i, lab, s))),
    )


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    dataset = dls.create(str(tmp_path_factory.mktemp("views") / "ds"), SCHEMA)
    dataset.append(batch(range(N)))
    return dataset


@settings(max_examples=120, deadline=None)
@given(st.recursive(_ATOMS, _combine, max_leaves=6))
def test_filter_selects_what_sql_where_selects(plain, case):
    text, truth = case
    want = [i for i in range(N) if truth(i, i % 5, SPLITS[i % 5]) is True]  # WHERE keeps TRUE only
    assert ids_of(plain.filter(text)) == want, text
