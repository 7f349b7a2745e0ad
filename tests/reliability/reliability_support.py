"""Data and checks shared by the real-process scenarios of tests/reliability and ``bench.soak``.

The scenarios (``concurrency_scenarios``, ``crash_scenarios``) run writer/reader/crashing
processes against a real dataset on local disk and return a report whose ``problems`` list is
empty when every invariant held. Functions that run in child processes live at module level so
``spawn``/``forkserver`` children can import them (pytest puts this folder on ``sys.path``;
multiprocessing hands ``sys.path`` to its children).
"""

from __future__ import annotations

import os
import random
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import pyarrow as pa

import deeplake_spark as dls
from deeplake_spark.dataset.refs import CHUNK_SUFFIX, TENSORS_DIR

TENSOR_COLUMNS = ("vec", "note")


def report_and_exit(out: Any, message: Any) -> NoReturn:
    """Hand ``message`` to the parent through the queue ``out``, then leave without interpreter teardown.

    deltalake 1.6.6 (delta-rs#2184) sometimes aborts (SIGABRT) while the interpreter shuts down, after
    the child's work and its report are done; exit 0 is then the truth. A child that fails before
    reporting still shows up, as a missing result, so no crash is hidden.
    """
    out.put(message)
    out.close()
    out.join_thread()  # the message is in the pipe before the process goes
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# --------------------------------------------------------------------------- data
def create_dataset(path: str, *, chunk_size: int = 96) -> dls.Dataset:
    """A dataset whose batches span several chunks per tensor (tiny ``chunk_size``)."""
    return dls.create(path, {
        "vec": dls.tensor("generic", dtype="int64", shape=(3,), chunk_size=chunk_size),
        "note": dls.tensor("text", chunk_size=chunk_size),
        "writer": "int64",
        "batch": "int64",
        "seq": "int64",
    })


def expected_vec(writer: int, batch: int, seq: int) -> np.ndarray:
    return np.array([writer, batch, seq], dtype=np.int64) * np.array([1_000_003, 1_009, 1], dtype=np.int64)


def make_batch(writer: int, batch: int, rows: int) -> dict[str, Any]:
    seqs = np.arange(rows, dtype=np.int64)
    return {
        "vec": np.stack([expected_vec(writer, batch, s) for s in seqs]),
        "note": [f"w{writer}-b{batch}-s{s}" for s in seqs],
        "writer": np.full(rows, writer, dtype=np.int64),
        "batch": np.full(rows, batch, dtype=np.int64),
        "seq": seqs,
    }


def rows_by_batch(ds: dls.Dataset) -> Counter[tuple[int, int]]:
    """Row count per ``(writer, batch)`` at ``ds``'s version."""
    table = ds.table(columns=["writer", "batch"])
    return Counter(zip(table.column("writer").to_pylist(), table.column("batch").to_pylist()))


def added_rows_by_version(ds: dls.Dataset) -> dict[int, int]:
    """Rows each commit added, from the Delta history's operationMetrics."""
    return {int(c["version"]): int((c.get("operationMetrics") or {}).get("num_added_rows", 0)) for c in ds.history()}


def check_samples(ds: dls.Dataset, problems: list[str], *, limit: int | None = None) -> int:
    """Decode tensor samples of (up to ``limit``) rows and compare them with what was written."""
    table = ds.table()
    if limit is not None and table.num_rows > limit:
        picks = sorted(random.Random(table.num_rows).sample(range(table.num_rows), limit))
        table = table.take(pa.array(picks, type=pa.int64()))
    vecs = ds.read_tensor("vec", table.column("vec").to_pylist())
    notes = ds.read_tensor("note", table.column("note").to_pylist())
    keys = zip(table.column("writer").to_pylist(), table.column("batch").to_pylist(), table.column("seq").to_pylist())
    for (w, b, s), vec, note in zip(keys, vecs, notes):
        if not np.array_equal(vec, expected_vec(w, b, s)) or note != f"w{w}-b{b}-s{s}":
            problems.append(f"version {ds.version}: row (w{w}, b{b}, s{s}) reads back {vec!r} / {note!r}")
    return table.num_rows


# --------------------------------------------------------------------- file audit
@dataclass
class FileAudit:
    """Files under a dataset that its current version does not use."""

    chunk_files: int
    parquet_files: int
    orphan_chunks: list[str]
    orphan_parquet: list[str]
    temp_files: list[str]


def audit_files(path: str) -> FileAudit:
    """Compare the files on disk with the current version's chunk refs and Delta add actions."""
    ds = dls.open(path)
    table = ds.table()
    referenced = set()
    for name in TENSOR_COLUMNS:
        column = table.column(name).combine_chunks()
        if not pa.types.is_struct(column.type):
            continue  # a scalar tensor (text, class_label) stored inline: no chunk files
        ids = column.field("chunk").drop_null().unique().to_pylist()
        referenced.update(f"{TENSORS_DIR}/{name}/{i}{CHUNK_SUFFIX}" for i in ids)
    added = set(pa.table(ds.delta_table.get_add_actions(flatten=False)).column("path").to_pylist())
    chunks, parquet, temp = [], [], []
    for folder, _dirs, files in os.walk(path):
        rel_folder = os.path.relpath(folder, path)
        if rel_folder.split(os.sep)[0] == "_delta_log":
            continue
        for name in files:
            rel = os.path.normpath(os.path.join(rel_folder, name))
            if name.startswith(".tmp-"):
                temp.append(rel)
            elif rel.startswith(TENSORS_DIR + os.sep):
                chunks.append(rel)
            elif name.endswith(".parquet"):
                parquet.append(rel)
    return FileAudit(
        chunk_files=len(chunks),
        parquet_files=len(parquet),
        orphan_chunks=sorted(c for c in chunks if c not in referenced),
        orphan_parquet=sorted(p for p in parquet if p not in added),
        temp_files=sorted(temp),
    )


def chunk_files(path: str) -> set[str]:
    root = os.path.join(path, TENSORS_DIR)
    return {os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(root) for f in fs}
