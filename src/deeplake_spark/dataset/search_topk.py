"""Exact top-k of vector similarity scores: metrics, per-block selection and the running merge.

Pure numpy, no I/O: ``dataset/search.py`` feeds it one chunk's vectors at a time. Metrics are those of
the Spark SQL functions (``cosine_similarity``, ``l2_distance``, ``inner_product``; docs/SEARCH.md):

- ``cosine``: ``x . q / (|x| |q|)``, higher is better; a zero vector has no cosine, so it gets no score.
- ``l2``: Euclidean distance ``|x - q|``, smaller is better.
- ``dot``: inner product ``x . q``, higher is better.

A vector holding NaN or infinity gets no score either. Ties are broken by row position (the smaller
first), so a search gives the same rows whatever the chunking or the order chunks are scored in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: metric -> True when a higher score is better
METRICS: dict[str, bool] = {"cosine": True, "l2": False, "dot": True}


def score_block(vectors: np.ndarray, queries: np.ndarray, metric: str, squares: np.ndarray | None = None) -> np.ndarray:
    """Scores ``(n, q)`` of ``vectors`` ``(n, d)`` against ``queries`` ``(q, d)`` (same float dtype); NaN
    where a vector has no score (a zero vector for cosine, a non-finite value for any metric).
    ``squares``: the vectors' squared norms (:func:`squared_norms`) when already known.

    For cosine, ``queries`` must already be unit vectors. ``l2`` uses the expansion
    ``|x|^2 - 2 x.q + |q|^2`` (one matrix product); :func:`refine_l2` recomputes the few kept
    distances directly.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # non-finite rows become NaN below
        # one query: numpy's own dot loop (a BLAS matrix-vector product spins idle BLAS threads, which
        # costs several times the CPU on a busy machine); a batch: one BLAS matrix product
        products = np.vecdot(vectors, queries[0])[:, None] if len(queries) == 1 else vectors @ queries.T
        squares = squared_norms(vectors) if squares is None else squares
        if metric == "cosine":
            norms = np.sqrt(squares)
            norms[norms == 0] = np.nan  # a fresh array: ``squares`` may be a caller's
            scores = products / norms[:, None]
        elif metric == "l2":
            query_squares = np.vecdot(queries, queries)
            scores = squares[:, None] - 2 * products + query_squares[None, :]
            np.maximum(scores, 0, out=scores)
            np.sqrt(scores, out=scores)
        else:
            scores = products
        scores[~np.isfinite(squares)] = np.nan  # a NaN or infinite value somewhere in the vector
        return scores


def squared_norms(vectors: np.ndarray) -> np.ndarray:
    """``|x|^2`` of each row (inf or NaN for a row holding a non-finite value)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.vecdot(vectors, vectors)


def refine_l2(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Exact Euclidean distances of a few ``vectors`` to one ``query`` (float64 differences)."""
    diff = vectors.astype(np.float64) - query.astype(np.float64)
    return np.sqrt(np.einsum("ij,ij->i", diff, diff))


@dataclass
class TopK:
    """The best ``k`` (score, row position) pairs seen so far for one query, best first."""

    k: int
    higher_is_better: bool
    scores: np.ndarray
    positions: np.ndarray

    @classmethod
    def empty(cls, k: int, higher_is_better: bool) -> TopK:
        return cls(k, higher_is_better, np.zeros(0, dtype=np.float64), np.zeros(0, dtype=np.int64))

    def offer(self, scores: np.ndarray, positions: np.ndarray) -> None:
        """Merge candidates (NaN scores are dropped) into the kept best ``k``."""
        keep = ~np.isnan(scores)
        if not keep.all():
            scores, positions = scores[keep], positions[keep]
        if scores.size == 0:
            return
        picked = best(scores, positions, self.k, self.higher_is_better)
        scores = np.concatenate([self.scores, scores[picked].astype(np.float64)])
        positions = np.concatenate([self.positions, positions[picked]])
        picked = best(scores, positions, self.k, self.higher_is_better)
        self.scores, self.positions = scores[picked], positions[picked]


def best(scores: np.ndarray, positions: np.ndarray, k: int, higher_is_better: bool) -> np.ndarray:
    """Indices of the ``k`` best ``scores`` (no NaN), best first, ties by smaller position.

    ``argpartition`` alone may cut a run of equal scores anywhere; every score equal to the k-th
    one is kept for the final sort, which makes the choice deterministic.
    """
    key = -scores if higher_is_better else scores
    if key.size > k:
        kth = np.partition(key, k - 1)[k - 1]
        candidates = np.flatnonzero(key <= kth)
    else:
        candidates = np.arange(key.size)
    order = np.lexsort((positions[candidates], key[candidates]))[:k]
    return candidates[order]
