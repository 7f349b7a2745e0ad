"""Case 3, bounds: JPEG decode alone, LZ4 decompress + copy alone, gather alone (uncompressed) and
JPEG decode + resize alone (variable-size JPEGs) on the same bytes and cores, and our loader as a
fraction of the bound for its data. The loader runs with ``cache_bytes=0`` here: the bound is the
work of one epoch, and the chunk cache would spare later epochs the reads, checksums and LZ4 that
the bound pays every time (case 2's cached figures are listed beside, as ``(case 2) / bound``).

The machine may be shared, so the bound is measured right before and right after a fresh run of
our loader, and the fraction uses the mean of the two bound runs.
"""

from __future__ import annotations

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


def run(ctx: Context, previous: list[Row]) -> list[Row]:
    rows = []
    for kind, label in BOUNDS.items():
        before = _bound(ctx, kind)
        # no chunk cache: every epoch reads, verifies and decompresses its chunks, the per-epoch work the
        # bound measures (case 2's rows, with the cache, are listed below as "(case 2) / bound")
        loader = stream_row(ctx, OURS, "ours", "ours:stream", kind, case=CASE, extra={"cache_bytes": 0})
        after = _bound(ctx, kind)
        bounds = [b for b in (before, after) if b.available]
        if not bounds:
            rows.append(before)
            continue
        bound_value = sum(b.value for b in bounds) / len(bounds)  # type: ignore[misc]
        rows.append(Row(CASE, label, kind, value=bound_value, unit="samples/s",
                        extra={"before": before.value, "after": after.value}, note=before.note))
        if loader.available:
            rows.append(Row(CASE, "ours loader, cache_bytes=0 (run between the bounds)", kind, value=loader.value,
                            unit="samples/s", extra={"mb_per_s": loader.extra.get("mb_per_s")}))
            rows.append(Row(CASE, "ours loader / bound", kind, value=loader.value / bound_value, unit="x bound",
                            note="cache_bytes=0: every epoch reads, verifies and decodes/decompresses"))
        else:
            rows.append(loader)
        if kind == "images" and loader.available:
            turbo = _bound(ctx, TURBO)  # right after the loader, like the PIL bound's second run
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
