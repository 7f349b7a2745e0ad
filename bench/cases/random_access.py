"""Case 5, random access: median latency of ``ds[i]`` (one 256x256 JPEG image + label) on an
opened dataset, ours vs Deep Lake 4, same images."""

from __future__ import annotations

from bench.cases import Context, failed, unavailable
from bench.measure import NotAvailable, Row, run_job, worker_python

CASE = "5 random access"


def run(ctx: Context) -> list[Row]:
    rows = []
    for label, system, function in (("ours ds[i]", "ours", "ours:random_access"),
                                     ("deeplake4 ds[i]", "deeplake4", "peers.deeplake4:random_access")):
        try:
            path = ctx.ensure_store(system, "images")
            res = run_job(function, python=worker_python(system), path=path, reads=ctx.sizes.random_access_reads)
        except NotAvailable as e:
            rows.append(unavailable(CASE, label, "images", str(e)))
            continue
        except RuntimeError as e:
            rows.append(failed(CASE, label, "images", e))
            continue
        rows.append(Row(CASE, label, "images", value=res["median_s"] * 1e3, unit="ms median",
                        extra={"p90_ms": res["p90_s"] * 1e3, "first_read_ms": res["first_s"] * 1e3,
                               "reads": res["reads"]}))
    return rows
