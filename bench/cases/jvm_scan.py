"""Case 9, JVM scan: Spark scanning a float32 tensor column with the JVM reader (``deeplake-jvm``),
the Python reader (``deeplake``) and Spark's Parquet reader on the same values, in the shared
Spark session (``jvm-shim/bench/scan_bench.py`` does the timing: best of 3 after a warm-up). Each row
also carries the CPU seconds of the bench's process tree (Spark JVM + Spark's Python workers) for
the query, and the speed-up rows the CPU ratios: wall time on a shared machine is mostly waiting.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from typing import Any

from bench.cases import Context, failed, unavailable
from bench.config import REPO_DIR
from bench.measure import NotAvailable, Row

log = logging.getLogger(__name__)
CASE = "9 jvm scan"
KIND = "embeddings"


def _scan_bench() -> Any:
    path = os.path.join(REPO_DIR, "jvm-shim", "bench", "scan_bench.py")
    spec = importlib.util.spec_from_file_location("scan_bench", path)
    if spec is None or spec.loader is None:
        raise NotAvailable(f"{path} not found")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(ctx: Context) -> list[Row]:
    rows = 10_000 if ctx.sizes.mode == "quick" else 80_000
    try:
        spark = ctx.spark()
        scan = _scan_bench()
        results = scan.run(spark, os.path.join(ctx.sizes.work, f"jvm_scan_{rows}"), rows=rows, dim=512, files=4)
    except NotAvailable as e:
        return [unavailable(CASE, system, KIND, str(e)) for system in ("deeplake-jvm", "deeplake", "parquet")]
    except Exception as e:  # noqa: BLE001 - a failing peer becomes a "failed" row, the run goes on
        log.exception("jvm scan failed")
        return [failed(CASE, "deeplake-jvm", KIND, e)]
    out = [Row(case=CASE, system=r["system"], kind=f"{r['case']} ({rows} x float32[512])", value=r["seconds"],
               unit="s (best of 3)", extra={"cpu_s": r.get("cpu_seconds")}) for r in results]
    for case, ratio in scan.ratios(results).items():
        out.append(Row(case=CASE, system="jvm speed-up vs python / vs parquet", kind=case,
                       value=ratio["vs_python"], unit="x vs python",
                       extra={"vs_parquet": ratio["vs_parquet"], "cpu_vs_python": ratio.get("cpu_vs_python"),
                              "cpu_vs_parquet": ratio.get("cpu_vs_parquet")}))
    return out
