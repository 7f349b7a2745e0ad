"""Case 3, bounds: JPEG decode alone, LZ4 decompress + copy alone, gather alone (uncompressed) and
JPEG decode + resize alone (variable-size JPEGs) on the same bytes and cores, and our loader as a
fraction of the bound for its data. The loader runs with ``cache_bytes=0`` here: the bound is the
work of one epoch, and the chunk cache would spare later epochs the reads, checksums and LZ4 that
the bound pays every time (case 2's cached figures are listed beside, as ``(case 2) / bound``).

The machine may be shared, so runs alternate: bound, loader, bound, loader, ..., bound
(``Sizes.bound_rounds`` loader runs, each a fresh process); each loader run is divided by the mean
of the two bound runs around it, and the fraction is the median of those ratios (the loader row is
its median run, the bound row the mean of all bound runs).
"""

from __future__ import annotations

import statistics

from bench.cases import Context, failed, unavailable
from bench.cases.stream import OURS, batch_size, stream_row
from bench.measure import NotAvailable, Row, run_job

CASE = "3 bounds"
#: data kind -> bound label
BOUNDS = {"images": "JPEG decode alone (PIL)", "tensors": "LZ4 decompress + copy alone",
          "raw": "gather alone (numpy take, shuffled)", "varjpeg": "JPEG decode + resize alone (PIL)"}


#: pseudo-kind of the libjpeg-turbo decode bound (images data; not a target, shown beside the PIL bound)
TURBO = "images (libjpeg-turbo)"


def _bound(ctx: Context, kind: str) -> Row:
    label = BOUNDS.get(kind, "JPEG decode alone (libjpeg-turbo via simplejpeg, into a reused array)")
    data_kind = "images" if kind == TURBO else kind
    try:
        if kind == "images":
            result = run_job("bounds:jpeg_decode", n=ctx.count(kind), workers=ctx.sizes.workers,
                             min_seconds=ctx.sizes.stream_min_seconds)
        elif kind == TURBO:
            result = run_job("bounds:jpeg_decode_turbo", n=ctx.count("images"), workers=ctx.sizes.workers,
                             min_seconds=ctx.sizes.stream_min_seconds)
        elif kind == "varjpeg":
            result = run_job("bounds:jpeg_decode_resize", n=ctx.count(kind), workers=ctx.sizes.workers,
                             min_seconds=ctx.sizes.stream_min_seconds)
        elif kind == "raw":
            result = run_job("bounds:gather", kind=kind, n=ctx.count(kind), workers=ctx.sizes.workers,
                             min_seconds=ctx.sizes.stream_min_seconds, batch_size=batch_size(ctx, kind))
        else:
            path = ctx.ensure_store("ours", kind)
            result = run_job("bounds:lz4_copy", path=path, workers=ctx.sizes.workers,
                             min_seconds=ctx.sizes.stream_min_seconds)
    except NotAvailable as e:
        return unavailable(CASE, label, data_kind, str(e))
    except RuntimeError as e:
        return failed(CASE, label, data_kind, e)
    return Row(CASE, label, data_kind, value=result["samples_per_s"], unit="samples/s",
               note=f"{ctx.sizes.workers} processes, bytes already in memory")


def _interleaved(ctx: Context, kind: str) -> tuple[list[Row], list[Row], list[float]]:
    """Bound and loader runs alternating (bound first and last): the bound rows, the loader rows and
    each loader run's ratio to the mean of the bound runs around it (where both are available)."""
    bounds, loaders, ratios = [_bound(ctx, kind)], [], []
    for _ in range(max(1, ctx.sizes.bound_rounds)):
        # no chunk cache: every epoch reads, verifies and decompresses its chunks, the per-epoch work the
        # bound measures (case 2's rows, with the cache, are listed below as "(case 2) / bound")
        loaders.append(stream_row(ctx, OURS, "ours", "ours:stream", kind, case=CASE, extra={"cache_bytes": 0}))
        bounds.append(_bound(ctx, kind))
        around = [b.value for b in bounds[-2:] if b.available]
        if loaders[-1].available and around:
            ratios.append(loaders[-1].value / (sum(around) / len(around)))  # type: ignore[operator]
    return bounds, loaders, ratios


def run(ctx: Context, previous: list[Row]) -> list[Row]:
    rows = []
    for kind, label in BOUNDS.items():
        runs, loaders, ratios = _interleaved(ctx, kind)
        bounds = [b for b in runs if b.available]
        if not bounds:
            rows.append(runs[0])
            continue
        bound_value = sum(b.value for b in bounds) / len(bounds)  # type: ignore[misc]
        rows.append(Row(CASE, label, kind, value=bound_value, unit="samples/s",
                        extra={"runs": [b.value for b in runs]}, note=runs[0].note))
        ran = sorted((r for r in loaders if r.available), key=lambda r: r.value)  # type: ignore[arg-type, return-value]
        loader = ran[len(ran) // 2] if ran else loaders[0]
        if ran and ratios:
            rows.append(Row(CASE, "ours loader, cache_bytes=0 (runs between the bounds)", kind, value=loader.value,
                            unit="samples/s", extra={"mb_per_s": loader.extra.get("mb_per_s"),
                                                     "runs": [r.value for r in loaders]}))
            rows.append(Row(CASE, "ours loader / bound", kind, value=statistics.median(ratios), unit="x bound",
                            extra={"ratios": ratios},
                            note="cache_bytes=0: every epoch reads, verifies and decodes/decompresses; median of "
                                 "each loader run / the mean of the bound runs around it"))
        else:
            rows.append(loader)
        if kind == "images" and ran:
            turbo = _bound(ctx, TURBO)  # right after the last loader and PIL bound runs
            rows.append(turbo)
            if turbo.available:
                rows.append(Row(CASE, "ours loader / libjpeg-turbo decode bound", kind, value=loader.value / turbo.value,
                                unit="x bound", note="not a target: the decoder our loader uses, alone"))
        for row in previous:
            if (row.case.startswith("2") and row.kind == kind and row.available and row.system.startswith("ours")
                    and row.system != "ours loader, unshuffled"):
                rows.append(Row(CASE, f"{row.system} (case 2) / bound", kind, value=row.value / bound_value,
                                unit="x bound"))
    return rows
