"""Case 11, vector search: exact top-10 by cosine similarity over ``n`` float32[768] unit vectors (the
``embeddings`` kind: 100k full, 10k quick), one query at a time and as a batch.

Systems, each in a fresh process on its own copy of the same vectors (row ``i`` has ``id`` ``i``):

- ours: ``ds.search(q, k=10)`` (chunks streamed from disk on every query) and one call for the whole
  batch of queries (``(q, 768)``: every chunk read once for all of them);
- Deep Lake 4 (``deeplake==4.7.4``): TQL ``SELECT * ORDER BY COSINE_SIMILARITY(embedding, ARRAY[...]) DESC
  LIMIT 10`` through ``ds.query`` on an ``Array(float32, [768])`` column, ids read from the view;
- Lance (``pylance==14.0.2``): ``to_table(nearest={"column", "q", "k": 10, "metric": "cosine"})`` without an
  index (brute force), and with an IVF_PQ index (approximate: recall@10 against the exact answer, index
  build time in the row);
- numpy bound: the same vectors already in memory with their norms, one float32 dot per row + argpartition
  per query, one matrix product for the batch (no I/O, no checksum, no format: what an exact search on this
  machine is bounded by).

Every system's top-10 ids are compared with an exact float64 reference; a row says how many of the queries
gave the same ids in the same order (and the same set). Latency: median and p90 of the single queries after
one warm-up query, CPU ms per query (process CPU time, honest on a shared box); value = queries/s from the
median latency (from the total for the batch rows).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from typing import Any

import numpy as np

from bench import data
from bench.cases import Context, failed, unavailable
from bench.measure import NotAvailable, Row, run_job, worker_python

log = logging.getLogger(__name__)
CASE = "11 vector search"
K = 10
QUERIES = 30
WRITE_BATCH = 10_000


def queries(nq: int = QUERIES) -> np.ndarray:
    """``(nq, 768)`` float32 Gaussian queries, independent of the stored vectors (a hard case for an
    approximate index: the top-10 similarities are close-run)."""
    rng = np.random.default_rng(11)
    return rng.standard_normal((nq, data.EMBEDDING_DIM), dtype=np.float32)


def exact_top_k(n: int, qs: np.ndarray, k: int = K) -> np.ndarray:
    """The reference: exact cosine top-k in float64, ties by row."""
    emb, _ = data.embeddings(n)
    x = emb.astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    out = []
    for q in qs.astype(np.float64):
        key = -(x @ (q / np.linalg.norm(q)))
        out.append(np.lexsort((np.arange(len(x)), key))[:k])
    return np.array(out)


def _timed(search_one: Any, qs: np.ndarray) -> dict[str, Any]:
    """Warm up with one query, then time each query; ids of every query."""
    search_one(qs[0])
    latencies, ids = [], []
    cpu = time.process_time()
    for q in qs:
        start = time.perf_counter()
        ids.append([int(i) for i in search_one(q)])
        latencies.append(time.perf_counter() - start)
    return {"ids": ids, "latencies": latencies, "cpu_s": time.process_time() - cpu}


# ------------------------------------------------------------------ worker functions (fresh processes)
def build_ours(path: str, n: int) -> dict[str, Any]:
    import deeplake_spark as dls

    shutil.rmtree(path, ignore_errors=True)
    emb, _ = data.embeddings(n)
    start = time.perf_counter()
    ds = dls.create(path, {"id": "int64", "embedding": dls.tensor("embedding", shape=(data.EMBEDDING_DIM,))})
    for lo in range(0, n, WRITE_BATCH):
        hi = min(n, lo + WRITE_BATCH)
        ds.append({"id": np.arange(lo, hi), "embedding": emb[lo:hi]})
    return {"seconds": time.perf_counter() - start}


def search_ours(path: str, nq: int) -> dict[str, Any]:
    import deeplake_spark as dls
    from deeplake_spark.dataset.search import search

    ds = dls.open(path)
    qs = queries(nq)
    out = _timed(lambda q: search(ds, q, k=K).indices, qs)
    cpu, start = time.process_time(), time.perf_counter()
    batch = search(ds, qs, k=K)
    out["batch_seconds"] = time.perf_counter() - start
    out["batch_cpu_s"] = time.process_time() - cpu
    out["batch_ids"] = [r.indices.tolist() for r in batch]
    return out


def build_deeplake4(path: str, n: int) -> dict[str, Any]:
    from bench.peers.deeplake4 import _deeplake

    deeplake = _deeplake()
    shutil.rmtree(path, ignore_errors=True)
    emb, _ = data.embeddings(n)
    start = time.perf_counter()
    ds = deeplake.create(path)
    ds.add_column("id", deeplake.types.Int64())
    ds.add_column("embedding", deeplake.types.Array("float32", shape=[data.EMBEDDING_DIM]))
    for lo in range(0, n, WRITE_BATCH):
        hi = min(n, lo + WRITE_BATCH)
        ds.append({"id": np.arange(lo, hi, dtype=np.int64), "embedding": emb[lo:hi]})
    ds.commit("vectors")
    return {"seconds": time.perf_counter() - start}


def search_deeplake4(path: str, nq: int) -> dict[str, Any]:
    from bench.peers.deeplake4 import _deeplake

    ds = _deeplake().open_read_only(path)

    def one(q: np.ndarray) -> np.ndarray:
        literal = ", ".join(f"{v:.9g}" for v in q)
        view = ds.query(f"SELECT * ORDER BY COSINE_SIMILARITY(embedding, ARRAY[{literal}]) DESC LIMIT {K}")
        return np.asarray(view["id"][:])

    return _timed(one, queries(nq))


def _lance() -> Any:
    try:
        import lance
    except ImportError as e:
        raise NotAvailable(f"lance not importable ({e}); pip install -r bench/requirements.txt") from e
    return lance


def build_lance(path: str, n: int) -> dict[str, Any]:
    import pyarrow as pa

    lance = _lance()
    shutil.rmtree(path, ignore_errors=True)
    emb, _ = data.embeddings(n)
    start = time.perf_counter()
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(emb).reshape(-1)), data.EMBEDDING_DIM)
    lance.write_dataset(pa.table({"id": np.arange(n, dtype=np.int64), "embedding": vectors}), path)
    written = time.perf_counter() - start
    ds = lance.dataset(path)
    start = time.perf_counter()
    partitions = max(16, int(np.sqrt(n)))
    ds.create_index("embedding", index_type="IVF_PQ", num_partitions=partitions, num_sub_vectors=96, metric="cosine")
    return {"seconds": written, "index_seconds": time.perf_counter() - start, "partitions": partitions}


def search_lance(path: str, nq: int, use_index: bool) -> dict[str, Any]:
    ds = _lance().dataset(path)
    options: dict[str, Any] = {"nprobes": 20, "refine_factor": 10} if use_index else {"use_index": False}

    def one(q: np.ndarray) -> np.ndarray:
        nearest = {"column": "embedding", "q": q, "k": K, "metric": "cosine", **options}
        return ds.to_table(nearest=nearest, columns=["id", "_distance"]).column("id").to_numpy()

    return _timed(one, queries(nq))


def search_numpy(n: int, nq: int) -> dict[str, Any]:
    emb, _ = data.embeddings(n)
    x = np.ascontiguousarray(emb, dtype=np.float32)
    inverse_norms = 1 / np.linalg.norm(x, axis=1)

    def one(q: np.ndarray) -> np.ndarray:
        scores = np.vecdot(x, q) * inverse_norms  # numpy's dot loop: a BLAS gemv spins idle threads
        top = np.argpartition(-scores, K)[:K]
        return top[np.argsort(-scores[top], kind="stable")]

    qs = queries(nq)
    out = _timed(one, qs)
    cpu, start = time.process_time(), time.perf_counter()
    scores = (x @ qs.T) * inverse_norms[:, None]
    top = np.argpartition(-scores, K, axis=0)[:K].T
    ranked = [t[np.argsort(-scores[t, i], kind="stable")] for i, t in enumerate(top)]
    out["batch_seconds"] = time.perf_counter() - start
    out["batch_cpu_s"] = time.process_time() - cpu
    out["batch_ids"] = [t.tolist() for t in ranked]
    return out


# ------------------------------------------------------------------ the case
def _agreement(ids: list[list[int]], reference: np.ndarray) -> dict[str, Any]:
    same = sum(list(got) == ref.tolist() for got, ref in zip(ids, reference))
    same_set = sum(set(got) == set(ref.tolist()) for got, ref in zip(ids, reference))
    recall = float(np.mean([len(set(got) & set(ref.tolist())) / K for got, ref in zip(ids, reference)]))
    return {"same_top10": f"{same}/{len(reference)}", "same_set": f"{same_set}/{len(reference)}",
            "recall_at_10": round(recall, 4)}


def _rows(label: str, res: dict[str, Any], reference: np.ndarray, extra: dict[str, Any] | None = None) -> list[Row]:
    latencies = np.array(res["latencies"])
    nq = len(latencies)
    out = [Row(CASE, label, "1 query", value=1 / float(np.median(latencies)), unit="queries/s",
               extra={"p50_ms": round(1e3 * float(np.median(latencies)), 2),
                      "p90_ms": round(1e3 * float(np.percentile(latencies, 90)), 2),
                      "cpu_ms_per_query": round(1e3 * res["cpu_s"] / nq, 2), **_agreement(res["ids"], reference),
                      "peak_rss_mb": round(res.get("peak_rss", 0) / 2**20), **(extra or {})})]
    if "batch_seconds" in res:
        out.append(Row(CASE, label, f"batch of {nq}", value=nq / res["batch_seconds"], unit="queries/s",
                       extra={"seconds": round(res["batch_seconds"], 3),
                              "cpu_ms_per_query": round(1e3 * res["batch_cpu_s"] / nq, 2),
                              **_agreement(res["batch_ids"], reference)}))
    return out


def run(ctx: Context) -> list[Row]:
    n = ctx.count("embeddings")
    work = os.path.join(ctx.sizes.work, "stores")
    os.makedirs(work, exist_ok=True)
    reference = exact_top_k(n, queries())
    ctx.facts["vector_search"] = {"rows": n, "dim": data.EMBEDDING_DIM, "queries": QUERIES, "k": K}
    out: list[Row] = []
    systems = [("ours", "ours ds.search", "cases.vector_search:build_ours", "cases.vector_search:search_ours", {}),
               ("deeplake4", "deeplake4 TQL COSINE_SIMILARITY", "cases.vector_search:build_deeplake4",
                "cases.vector_search:search_deeplake4", {}),
               ("lance", "lance nearest (no index)", "cases.vector_search:build_lance",
                "cases.vector_search:search_lance", {"use_index": False}),
               ("lance", "lance nearest IVF_PQ (approximate)", "cases.vector_search:build_lance",
                "cases.vector_search:search_lance", {"use_index": True})]
    built: dict[str, dict[str, Any]] = {}
    for system, label, build, search_fn, options in systems:
        python = worker_python(system)
        path = os.path.join(work, f"vectors_{system}_{n}")
        try:
            if system not in built:
                if not os.path.exists(path + ".done"):
                    ctx.mark_built(path, run_job(build, python=python, path=path, n=n))
                with open(path + ".done") as f:
                    built[system] = json.load(f)
            res = run_job(search_fn, python=python, path=path, nq=QUERIES, **options)
            extra = {}
            if options.get("use_index"):
                extra = {"index_build_s": round(built[system].get("index_seconds", 0.0), 1),
                         "partitions": built[system].get("partitions"), "nprobes": 20, "refine_factor": 10}
            out.extend(_rows(label, res, reference, extra))
        except NotAvailable as e:
            out.append(unavailable(CASE, label, "1 query", str(e)))
        except RuntimeError as e:
            out.append(failed(CASE, label, "1 query", e))
    try:
        out.extend(_rows("numpy bound (in memory)", run_job("cases.vector_search:search_numpy", n=n, nq=QUERIES),
                         reference))
    except RuntimeError as e:
        out.append(failed(CASE, "numpy bound (in memory)", "1 query", e))
    return out
