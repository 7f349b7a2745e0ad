"""Case 6, memory: peak RSS of the loader's process tree (main + workers) streaming the images
dataset at two sizes, N/2 and N. A streaming loader's RSS should not grow with the dataset.

Ours runs with ``cache_bytes=0``: by default the main/threads engines keep verified chunks across epochs
up to a fixed byte bound (torch/chunk_cache.py), which a dataset smaller than the bound fills by design;
this case measures the streaming path itself."""

from __future__ import annotations

from bench.cases import Context
from bench.cases.stream import stream_row
from bench.measure import Row

CASE = "6 peak RSS"
SYSTEMS = (("ours loader", "ours", "ours:stream"),
           ("deeplake4 pytorch()", "deeplake4", "peers.deeplake4:stream_torch"),
           ("jpeg folder+PIL", "jpeg_folder", "peers.jpeg_folder:stream"))


def run(ctx: Context) -> list[Row]:
    rows = []
    full = ctx.count("images")
    for label, system, function in SYSTEMS:
        for n in (full // 2, full):
            row = stream_row(ctx, label, system, function, "images", case=CASE, n=n,
                             extra={"cache_bytes": 0} if system == "ours" else None,
                             note="cache_bytes=0 (no chunk cache across epochs)" if system == "ours" else "")
            if row.available:
                peak_mb = float(row.extra.get("peak_rss_mb") or 0.0)
                row.extra = {"samples_per_s": row.value, "dataset_rows": n}
                row.value, row.unit = peak_mb, "MB peak RSS"
            row.kind = f"images x{n}"
            rows.append(row)
    return rows
