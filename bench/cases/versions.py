"""Case 7, time travel: open version N/2 of a dataset with N commits vs opening the latest
(median of 5 opens, each followed by reading one row)."""

from __future__ import annotations

import os

from bench.cases import Context, failed, unavailable
from bench.measure import NotAvailable, Row, run_job, worker_python

CASE = "7 time travel"
REPEATS = 5


def run(ctx: Context) -> list[Row]:
    rows = []
    commits = ctx.sizes.commits
    for label, system, module in (("ours", "ours", "ours"), ("deeplake4", "deeplake4", "peers.deeplake4")):
        path = os.path.join(ctx.sizes.work, "stores", f"commits_{system}_{commits}")
        python = worker_python(system)
        try:
            if not os.path.exists(path + ".done"):
                built = run_job(f"{module}:build_commits", python=python, path=path, commits=commits)
                ctx.mark_built(path, built)
            res = run_job(f"{module}:open_versions", python=python, path=path, version=commits // 2, repeats=REPEATS)
        except NotAvailable as e:
            rows.append(unavailable(CASE, label, f"{commits} commits", str(e)))
            continue
        except RuntimeError as e:
            rows.append(failed(CASE, label, f"{commits} commits", e))
            continue
        kind = f"{commits} commits"
        rows.append(Row(CASE, f"{label} open latest", kind, value=res["latest_s"] * 1e3, unit="ms median"))
        rows.append(Row(CASE, f"{label} open version {commits // 2}", kind, value=res["version_s"] * 1e3,
                        unit="ms median", extra={"x_latest": res["version_s"] / res["latest_s"]}))
    return rows
