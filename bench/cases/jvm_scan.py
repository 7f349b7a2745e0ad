"""Case 9, JVM scan: Spark scanning a float32 tensor column with the JVM reader (``deeplake-jvm``),
the Python reader (``deeplake``) and Spark's Parquet reader on the same values, in the shared
Spark session (``jvm-shim/bench/scan_bench.py`` runs the queries). Each row also carries the CPU
seconds of the bench's process tree (Spark JVM + Spark's Python workers) for the query, and the
speed-up rows the CPU ratios: wall time on a shared machine is mostly waiting.

Stability: the whole scan bench runs :data:`ROUNDS` times (each round: per case, a warm-up of each
system, then one timed run of each, the systems taking turns), and every figure is the MEDIAN over
the rounds, so one burst of load from other processes moves no ratio; a speed-up is the median of
the rounds' own ratios (systems timed back to back in a round share its load). The quick run scans 20,000
rows (40 MB of float32) rather than 10,000: at 10,000 the fastest query took ~0.09 s, mostly Spark's
per-job overhead, and scan_bytes read 2.04x then 3.41x the Python reader in two runs. ``spread``
is (max - min) / median of a figure's rounds: how far one round would have moved it.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import os
import statistics
from typing import Any

from bench.cases import Context, failed, unavailable
from bench.config import REPO_DIR
from bench.measure import NotAvailable, Row

log = logging.getLogger(__name__)
CASE = "9 jvm scan"
KIND = "embeddings"
#: rows scanned per mode; rounds of the whole bench whose median is reported
QUICK_ROWS, FULL_ROWS = 20_000, 80_000
ROUNDS = 3


def _scan_bench() -> Any:
    path = os.path.join(REPO_DIR, "jvm-shim", "bench", "scan_bench.py")
    spec = importlib.util.spec_from_file_location("scan_bench", path)
    if spec is None or spec.loader is None:
        raise NotAvailable(f"{path} not found")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def median_of_rounds(rounds: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per (case, system) of ``scan_bench.run`` results: the median wall and CPU seconds over the
    rounds, ``spread`` = (max - min) / median of the wall times, and the last round's result."""
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for results in rounds:
        for r in results:
            runs.setdefault((r["case"], r["system"]), []).append(r)
    out = []
    for (case, system), rs in runs.items():
        wall = [float(r["seconds"]) for r in rs]
        median = statistics.median(wall)
        out.append({"case": case, "system": system, "seconds": round(median, 4),
                    "cpu_seconds": round(statistics.median(float(r.get("cpu_seconds") or 0.0) for r in rs), 4),
                    "spread": round((max(wall) - min(wall)) / median, 2) if median > 0 else None,
                    "rounds": len(rs), "result": rs[-1].get("result")})
    return out


def run(ctx: Context) -> list[Row]:
    rows = QUICK_ROWS if ctx.sizes.mode == "quick" else FULL_ROWS
    try:
        spark = ctx.spark()
        scan = _scan_bench()
        work = os.path.join(ctx.sizes.work, f"jvm_scan_{rows}")
        # rounds after the first need no warm-up (JIT, Python workers, file cache are warm) where scan_bench
        # can skip it
        can_skip = "warmup" in inspect.signature(scan.run).parameters
        rounds = [scan.run(spark, work, rows=rows, dim=512, files=4, repeats=1,
                           **({"warmup": i == 0} if can_skip else {})) for i in range(ROUNDS)]
        results = median_of_rounds(rounds)
        speedups = median_ratios([scan.ratios(r) for r in rounds])
    except NotAvailable as e:
        return [unavailable(CASE, system, KIND, str(e)) for system in ("deeplake-jvm", "deeplake", "parquet")]
    except Exception as e:  # noqa: BLE001 - a failing peer becomes a "failed" row, the run goes on
        log.exception("jvm scan failed")
        return [failed(CASE, "deeplake-jvm", KIND, e)]
    out = [Row(case=CASE, system=r["system"], kind=f"{r['case']} ({rows} x float32[512])", value=r["seconds"],
               unit=f"s (median of {ROUNDS} rounds)", extra={"cpu_s": r["cpu_seconds"], "spread": r["spread"]})
           for r in results]
    for case, ratio in speedups.items():
        out.append(Row(case=CASE, system="jvm speed-up vs python / vs parquet", kind=case,
                       value=ratio["vs_python"], unit=f"x vs python (median of {ROUNDS} rounds' ratios)",
                       extra={"vs_parquet": ratio["vs_parquet"], "cpu_vs_python": ratio.get("cpu_vs_python"),
                              "cpu_vs_parquet": ratio.get("cpu_vs_parquet")}))
    return out


def median_ratios(per_round: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per case and ratio (``scan_bench.ratios`` of each round): the median over the rounds. A ratio is
    taken within one round, where the systems ran back to back under the same load, before the median."""
    out: dict[str, dict[str, float]] = {}
    for case in dict.fromkeys(c for r in per_round for c in r):
        keys = dict.fromkeys(k for r in per_round for k in r.get(case, {}))
        out[case] = {k: round(statistics.median(r[case][k] for r in per_round if k in r.get(case, {})), 2)
                     for k in keys}
    return out
