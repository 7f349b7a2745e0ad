"""Case 3, bounds: JPEG decode alone and LZ4 decompress + copy alone on the same bytes and cores,
and each loader of case 2 as a fraction of the bound for its data."""

from __future__ import annotations

from bench.cases import Context, failed, unavailable
from bench.measure import NotAvailable, Row, run_job

CASE = "3 bounds"
#: data kind -> (bound label, worker function)
BOUNDS = {"images": "JPEG decode alone (PIL)", "tensors": "LZ4 decompress + copy alone"}


def _bound(ctx: Context, kind: str) -> Row:
    label = BOUNDS[kind]
    try:
        if kind == "images":
            result = run_job("bounds:jpeg_decode", n=ctx.count(kind), workers=ctx.sizes.workers,
                             min_seconds=ctx.sizes.stream_min_seconds)
        else:
            path = ctx.ensure_store("ours", kind)
            result = run_job("bounds:lz4_copy", path=path, workers=ctx.sizes.workers,
                             min_seconds=ctx.sizes.stream_min_seconds)
    except NotAvailable as e:
        return unavailable(CASE, label, kind, str(e))
    except RuntimeError as e:
        return failed(CASE, label, kind, e)
    return Row(CASE, label, kind, value=result["samples_per_s"], unit="samples/s",
               extra={"processes": ctx.sizes.workers}, note=f"{ctx.sizes.workers} processes, bytes in memory")


def run(ctx: Context, previous: list[Row]) -> list[Row]:
    rows = []
    for kind in BOUNDS:
        bound = _bound(ctx, kind)
        rows.append(bound)
        for row in previous:
            if row.case.startswith("2") and row.kind == kind and row.available:
                if bound.available:
                    rows.append(Row(CASE, f"{row.system} / bound", kind, value=row.value / bound.value, unit="x bound"))
    return rows
