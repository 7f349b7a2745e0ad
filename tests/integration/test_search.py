"""Vector similarity search without Spark (issue #14): ``ds.search`` / ``view.search`` give the exact top-k
rows of an embedding tensor, streamed chunk by chunk. Real datasets on disk (several commits, small chunks,
uncompressed and LZ4), checked against a numpy brute force over the same vectors."""

from __future__ import annotations

import os

import numpy as np
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deeplake_spark as dls
from deeplake_spark.dataset.search import search
from deeplake_spark.dataset.search_topk import TopK
from deeplake_spark.errors import ChunkNotFoundError, CorruptChunkError, InvalidOptionError, SchemaError

N, DIM = 300, 16
SPLITS = np.array(["train", "val", "test"])


def vectors(n: int = N, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def brute_force(data: np.ndarray, query: np.ndarray, metric: str, k: int, rows: np.ndarray | None = None):
    """The exact top-k by numpy in float64, ties by row position: the reference."""
    rows = np.arange(len(data)) if rows is None else np.asarray(rows)
    x, q = data[rows].astype(np.float64), np.asarray(query, dtype=np.float64)
    if metric == "cosine":
        key = -(x @ q) / (np.linalg.norm(x, axis=1) * np.linalg.norm(q))
    elif metric == "l2":
        key = np.linalg.norm(x - q, axis=1)
    else:
        key = -(x @ q)
    order = np.lexsort((rows, key))[:k]
    return rows[order], (-key if metric != "l2" else key)[order]


@settings(max_examples=100, deadline=None)
@given(scores=st.lists(st.sampled_from([-1.0, 0.0, 0.5, 2.0, float("nan")]), max_size=60),
       cuts=st.lists(st.integers(0, 60), max_size=6), k=st.integers(1, 12), higher=st.booleans())
def test_streamed_top_k_equals_one_sort_whatever_the_blocks(scores, cuts, k, higher):
    """Merging per-chunk top-k (many ties, NaN = no score) gives the global order: score, then row."""
    values = np.array(scores, dtype=np.float64)
    rows = np.random.default_rng(len(scores)).permutation(len(values)).astype(np.int64)
    top = TopK.empty(k, higher)
    for block in np.split(np.arange(len(values)), sorted(c for c in cuts if c <= len(values))):
        top.offer(values[block], rows[block])
    kept = ~np.isnan(values)
    order = np.lexsort((rows[kept], -values[kept] if higher else values[kept]))[:k]
    assert top.positions.tolist() == rows[kept][order].tolist()
    assert top.scores.tolist() == values[kept][order].tolist()


@pytest.fixture(scope="module", params=["none", "lz4"])
def data(request, tmp_path_factory):
    """300 rows of 16-d vectors in chunks of ~20 vectors, written in three commits; partitioned by split for
    LZ4 (rows of one chunk spread over data files)."""
    path = str(tmp_path_factory.mktemp("search") / f"ds_{request.param}")
    schema = {"id": "int64", "split": "string",
              "emb": dls.tensor("embedding", shape=(DIM,), compression=request.param, chunk_size=20 * DIM * 4),
              "label": dls.tensor("class_label")}
    partition_by = ["split"] if request.param == "lz4" else None
    ds = dls.create(path, schema, partition_by=partition_by)
    emb = vectors()
    for start in range(0, N, 100):
        ids = np.arange(start, start + 100)
        ds.append({"id": ids, "split": SPLITS[ids % 3], "emb": emb[ids], "label": (ids % 7).astype(np.int32)})
    ids = ds.table(columns=["id"]).column("id").to_numpy()
    # row position -> vector (a partitioned dataset orders rows by data file, not by id)
    return ds, emb[ids], ids


@pytest.mark.parametrize("metric", ["cosine", "l2", "dot"])
def test_exact_top_k_equals_numpy_brute_force(data, metric):
    ds, emb, _ = data
    for seed in range(3):
        query = vectors(1, seed=100 + seed)[0]
        hits = ds[:].search(query, k=10, metric=metric)
        want_rows, want_scores = brute_force(emb, query, metric, 10)
        assert hits.indices.tolist() == want_rows.tolist()
        np.testing.assert_allclose(hits.scores, want_scores, rtol=1e-4, atol=1e-4)
        assert hits.metric == metric and hits.column == "emb" and len(hits) == 10
    np.testing.assert_array_equal(hits["emb"], emb[hits.indices])  # the hits' vectors are the rows'


def test_batch_of_queries_gives_one_result_per_query(data):
    ds, emb, _ = data
    queries = vectors(5, seed=7)
    results = search(ds, queries, k=4, metric="l2")
    assert isinstance(results, list) and len(results) == 5
    for query, hits in zip(queries, results):
        single = search(ds, query, k=4, metric="l2")
        assert hits.indices.tolist() == single.indices.tolist() == brute_force(emb, query, "l2", 4)[0].tolist()
    assert search(ds, np.zeros((0, DIM)), k=3) == []


def test_filter_restricts_candidates_and_matches_brute_force(data):
    ds, emb, ids = data
    query = vectors(1, seed=11)[0]
    hits = search(ds, query, k=7, filter="split = 'val' and id >= 50")
    rows = np.flatnonzero((ids % 3 == 1) & (ids >= 50))
    assert hits.indices.tolist() == brute_force(emb, query, "cosine", 7, rows)[0].tolist()
    assert set(hits.table(["split"]).column("split").to_pylist()) == {"val"}
    by_expression = search(ds, query, k=7, filter=(pc.field("split") == "val") & (pc.field("id") >= 50))
    assert by_expression.indices.tolist() == hits.indices.tolist()
    assert len(search(ds, query, k=3, filter="id < 0")) == 0


def test_view_search_scores_only_the_views_rows(data):
    ds, emb, _ = data
    query = vectors(1, seed=12)[0]
    view = ds[40:160]
    hits = view.search(query, k=5, metric="dot")
    assert hits.indices.tolist() == brute_force(emb, query, "dot", 5, np.arange(40, 160))[0].tolist()
    # a row picked twice by a view is one candidate; filter= narrows the view further
    twice = ds[[3, 3, 9, 9, 12]].search(query, k=10, metric="dot")
    assert sorted(twice.indices.tolist()) == [3, 9, 12]
    narrowed = view.search(query, k=5, filter="label = 2")
    rows = np.arange(40, 160)[ds[40:160]["label"] == 2]
    assert narrowed.indices.tolist() == brute_force(emb, query, "cosine", 5, rows)[0].tolist()


def test_result_reads_like_a_view(data):
    ds, emb, ids = data
    query = emb[42] * 3  # the row itself is the best cosine hit, with similarity 1
    hits = ds.search(query, k=3) if hasattr(ds, "search") else search(ds, query, k=3)
    assert hits.indices[0] == 42 and hits.scores[0] == pytest.approx(1.0, abs=1e-6)
    assert hits[0]["id"] == ids[42]
    assert [row["id"] for row in hits] == ids[hits.indices].tolist()
    table = hits.table()
    assert table.column_names == ["id", "split", "label", "score"]  # tabular + scalar tensors + score
    assert table.column("score").to_pylist() == hits.scores.tolist()
    with_vectors = hits.table(["emb", "id"])
    assert with_vectors.column_names == ["emb", "id", "score"]
    np.testing.assert_array_equal(np.stack(with_vectors.column("emb").to_numpy(zero_copy_only=False)),
                                  emb[hits.indices])
    chosen = search(ds, query, k=3, columns=["label"])
    assert chosen.table().column_names == ["label", "score"]
    assert set(chosen.numpy()) == {"label", "score"}
    # the hits are a DatasetView to train on: a loader yields exactly them, in rank order
    loader = hits.view.pytorch(batch_size=3, shuffle=False, num_workers=0)
    (batch,) = list(loader)
    assert batch["id"].tolist() == ids[hits.indices].tolist()
    assert "rows=[42," in repr(hits) and "metric='cosine'" in repr(hits)


def test_results_are_pinned_to_the_searched_version(tmp_path):
    ds = dls.create(str(tmp_path / "pinned"), {"emb": dls.tensor("embedding", shape=(3,))})
    ds.append({"emb": np.eye(3, dtype=np.float32)})
    hits = search(ds, [1, 0, 0], k=1)
    view = ds[0:3]
    ds.append({"emb": np.array([[2, 0, 0]], dtype=np.float32)})
    assert view.search([1.5, 0, 0], k=4, metric="l2").indices.tolist() == [0, 1, 2]  # the view's version
    assert hits.version == 1 and hits[0]["emb"].tolist() == [1, 0, 0]
    assert hits.table().to_pydict() == {"score": [1.0]}  # no tabular column: the scores alone
    # rows 0 and 3 are both at distance 0.5 from (1.5, 0, 0): the earlier row first; version 1 has no row 3
    assert search(ds, [1.5, 0, 0], k=2, metric="l2").indices.tolist() == [0, 3]
    assert search(dls.open(ds.path, version=1), [1.5, 0, 0], k=2, metric="l2").indices.tolist() == [0, 1]


def test_score_column_steps_aside_for_a_column_named_score(tmp_path):
    ds = dls.create(str(tmp_path / "named"), {"score": "float64", "emb": dls.tensor("embedding", shape=(2,))})
    ds.append({"score": [7.0, 8.0], "emb": np.array([[1, 0], [0, 1]], dtype=np.float32)})
    hits = search(ds, [0, 1], k=1)
    assert hits.table().to_pydict() == {"score": [8.0], "_score": [1.0]}
    assert hits.numpy()["_score"].tolist() == [1.0] and hits.numpy()["score"].tolist() == [8.0]


def test_ties_are_broken_by_row_position_across_chunks(tmp_path):
    ds = dls.create(str(tmp_path / "ties"), {"emb": dls.tensor("embedding", shape=(2,), chunk_size=8 * 5)})
    same = np.tile(np.array([[1.0, 1.0]], dtype=np.float32), (23, 1))
    ds.append({"emb": np.concatenate([np.array([[0, 1]], dtype=np.float32), same])})
    for metric in ("cosine", "l2", "dot"):
        assert search(ds, [1, 1], k=6, metric=metric).indices.tolist() == [1, 2, 3, 4, 5, 6]
    assert search(ds[::-1], [1, 1], k=3).indices.tolist() == [1, 2, 3]


def test_missing_empty_zero_and_non_finite_vectors_have_no_score(tmp_path):
    ds = dls.create(str(tmp_path / "gaps"), {"emb": dls.tensor("embedding", dtype="float32", chunk_size=64)})
    samples = [np.array([1, 0], np.float32), None, np.zeros(0, np.float32), np.array([0, 0], np.float32),
               np.array([np.nan, 1], np.float32), np.array([np.inf, 1], np.float32), np.array([0, 2], np.float32)]
    ds.append({"emb": samples})
    assert search(ds, [1, 1], k=10).indices.tolist() == [0, 6]  # cosine: the zero vector has none either
    assert search(ds, [1, 1], k=10, metric="l2").indices.tolist() == [0, 3, 6]
    assert search(ds, [1, 1], k=10, metric="dot").indices.tolist() == [6, 0, 3]


def test_filter_reads_only_chunks_holding_candidates(tmp_path):
    ds = dls.create(str(tmp_path / "chunks"), {"id": "int64", "emb": dls.tensor("embedding", shape=(4,),
                                                                                 chunk_size=4 * 4 * 10)})
    ds.append({"id": np.arange(100), "emb": vectors(100, 4, seed=3)})
    chunk_of = {row: ref["chunk"] for row, ref in enumerate(ds.table(columns=["emb"]).column("emb").to_pylist())}
    assert len(set(chunk_of.values())) == 10
    folder = os.path.join(ds.path, "_tensors", "emb")
    for name in os.listdir(folder):  # keep only the chunk of rows 20..29
        if not name.startswith(chunk_of[25]):
            os.remove(os.path.join(folder, name))
    hits = search(ds, [1, 0, 0, 0], k=3, filter="id >= 20 and id < 30")
    assert len(hits) == 3 and all(20 <= i < 30 for i in hits.indices)
    with pytest.raises(ChunkNotFoundError, match="emb"):
        search(ds, [1, 0, 0, 0], k=3)


def test_a_chunk_damaged_after_a_search_is_refused_by_the_next(tmp_path):
    """A local chunk's checksum is remembered per file identity: an in-place change is verified again."""
    ds = dls.create(str(tmp_path / "damaged"), {"emb": dls.tensor("embedding", shape=(4,), chunk_size=4 * 4 * 10)})
    ds.append({"emb": vectors(30, 4, seed=8)})
    assert len(search(ds, [1, 0, 0, 0], k=3)) == 3
    folder = os.path.join(ds.path, "_tensors", "emb")
    name = sorted(os.listdir(folder))[0]
    with open(os.path.join(folder, name), "r+b") as f:  # flip the last payload byte in place
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 0xFF]))
    with pytest.raises(CorruptChunkError, match=name):
        search(ds, [1, 0, 0, 0], k=3)


@pytest.mark.parametrize("dtype", ["float16", "float64", "int8"])
def test_other_numeric_dtypes(tmp_path, dtype):
    ds = dls.create(str(tmp_path / dtype), {"emb": dls.tensor("embedding", dtype=dtype, shape=(3,))})
    emb = np.array([[1, 2, 3], [3, 2, 1], [-1, 0, 1], [2, 2, 2]], dtype=dtype)
    ds.append({"emb": emb})
    query = np.array([3, 2, 1.5])
    for metric in ("cosine", "l2", "dot"):
        want = brute_force(emb.astype(np.float64), query, metric, 4)[0]
        assert search(ds, query, k=4, metric=metric).indices.tolist() == want.tolist()


def test_clear_errors(tmp_path):
    ds = dls.create(str(tmp_path / "errors"), {
        "a": dls.tensor("embedding", shape=(3,)), "b": dls.tensor("embedding"),
        "text": dls.tensor("text"), "img": dls.tensor("image", shape=(4, 4, 3), compression="png"),
        "grid": dls.tensor("generic", shape=(2, 2)), "name": "string"})
    ds.append({"a": np.ones((2, 3), np.float32), "b": [np.ones(3, np.float32), np.ones(5, np.float32)],
               "text": ["x", "y"], "img": np.zeros((2, 4, 4, 3), np.uint8), "grid": np.ones((2, 2, 2), np.float32),
               "name": ["p", "q"]})
    with pytest.raises(InvalidOptionError, match=r"'embedding': \['a', 'b'\]"):
        search(ds, [1, 2, 3])
    with pytest.raises(InvalidOptionError, match="dimension 3, the query has dimension 4"):
        search(ds, [1, 2, 3, 4], column="a")
    with pytest.raises(SchemaError, match=r"mixed dimensions \(row 0 has 3, row 1 has 5\)"):
        search(ds, [1, 2, 3], column="b")
    assert search(ds, [1, 2, 3], column="b", filter="name = 'p'").indices.tolist() == [0]
    with pytest.raises(InvalidOptionError, match="dimension 3, the query has dimension 5"):
        search(ds, [1, 2, 3, 4, 5], column="b", filter="name = 'p'")
    with pytest.raises(SchemaError, match="'text' holds dtype str, not numeric vectors"):
        search(ds, [1], column="text")
    with pytest.raises(SchemaError, match="'img' holds png images"):
        search(ds, [1], column="img")
    with pytest.raises(SchemaError, match=r"'grid' has sample shape \(2, 2\)"):
        search(ds, [1, 2], column="grid")
    with pytest.raises(SchemaError, match="'name' is a tabular column"):
        search(ds, [1], column="name")
    with pytest.raises(SchemaError, match="'nope' is not a column"):
        search(ds, [1], column="nope")
    for bad, message in [({"k": 0}, "k must be a positive integer"), ({"metric": "hamming"}, "unknown metric"),
                         ({"query": [0, 0, 0]}, "zero vector"), ({"query": [1, np.nan, 0]}, "NaN or infinity"),
                         ({"query": ["a", "b", "c"]}, "numbers"), ({"query": np.ones((2, 2, 3))}, "numbers"),
                         ({"columns": ["nope"]}, "unknown column")]:
        options = {"query": [1, 2, 3], "column": "a", **bad}
        with pytest.raises((InvalidOptionError, SchemaError), match=message):
            search(ds, **options)
    assert "dataset" in str(pytest.raises(InvalidOptionError, search, ds, [1, 2], column="a").value)
    empty = dls.create(str(tmp_path / "none"), {"name": "string"})
    with pytest.raises(InvalidOptionError, match="no tensor of htype 'embedding'"):
        search(empty, [1, 2])


def test_search_on_s3_fetches_chunks_ahead(s3_server):
    """Remote chunks are fetched one ahead of the one being scored (a second thread): same answer."""
    ds = dls.create(s3_server.uri(), {"id": "int64", "emb": dls.tensor("embedding", shape=(8,), chunk_size=8 * 4 * 16)},
                    storage_options=s3_server.storage_options)
    emb = vectors(100, 8, seed=5)
    ds.append({"id": np.arange(100), "emb": emb})
    query = vectors(1, 8, seed=6)[0]
    for metric in ("cosine", "l2"):
        hits = search(ds, query, k=5, metric=metric)
        assert hits.indices.tolist() == brute_force(emb, query, metric, 5)[0].tolist()
    assert search(ds, query, k=3, filter="id >= 90").indices.tolist() == \
        brute_force(emb, query, "cosine", 3, np.arange(90, 100))[0].tolist()
