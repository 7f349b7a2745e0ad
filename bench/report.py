"""Machine facts, the results table, targets met/missed, bench/RESULTS.md and the throughput chart."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as md
import logging
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from typing import Any

from bench.config import BENCH_DIR, REPO_DIR, Sizes
from bench.measure import Row
from bench.targets import find_row, fmt, ratio_of, targets

log = logging.getLogger(__name__)
RESULTS_MD = os.path.join(BENCH_DIR, "RESULTS.md")
CHART_PNG = os.path.join(BENCH_DIR, "throughput.png")
_PACKAGES = ("deeplake-spark", "deeplake", "pyspark", "deltalake", "pyarrow", "torch", "numpy", "pillow", "lz4",
             "pandas", "scikit-learn", "scikit-image", "matplotlib", "petastorm", "streaming-community", "torchvision",
             "pylance")


def machine_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                             "cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            models = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        facts["cpu"] = models[0] if models else platform.processor()
    except OSError:
        facts["cpu"] = platform.processor()
    try:
        import psutil

        facts["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
        facts["load_average_at_start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except ImportError:
        pass
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = "not installed"
    facts["versions"] = versions
    try:
        from PIL import features

        facts["pillow_libjpeg_turbo"] = bool(features.check_feature("libjpeg_turbo"))
    except ImportError:
        pass
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
        facts["java"] = (out.stderr or out.stdout).splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        facts["java"] = "not found"
    try:
        facts["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_DIR,
                                             capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return facts


def _extra_text(extra: dict[str, Any]) -> str:
    parts = []
    for key, value in extra.items():
        if isinstance(value, float):
            parts.append(f"{key}={fmt(value)}")
        elif value is not None:
            parts.append(f"{key}={value}")
    return ", ".join(parts)


def table_lines(rows: Iterable[Row]) -> list[str]:
    lines = ["| case | system | data | value | unit | details | note |", "|---|---|---|---:|---|---|---|"]
    for r in rows:
        note = r.note.replace("|", "/").replace("\n", " ")
        lines.append(f"| {r.case} | {r.system} | {r.kind} | {fmt(r.value)} | {r.unit} | "
                     f"{_extra_text(r.extra)} | {note} |")
    return lines


def ratios(rows: list[Row]) -> list[tuple[str, float | None]]:
    """Headline ratios of ours vs peers measured in this run (> 1 means ours is better)."""
    out: list[tuple[str, float | None]] = []
    for kind in ("images", "tensors", "embeddings"):
        ours = find_row(rows, "1", "ours (Python API)", kind)
        for peer in ("spark parquet write", "deeplake4 append", "pyarrow parquet write"):
            out.append((f"ingest {kind}: ours (Python API) / {peer}", ratio_of(ours, find_row(rows, "1", peer, kind))))
        for system in ("ours (Spark write)", "ours (Spark JVM write)"):
            out.append((f"ingest {kind}: {system} / spark parquet write",
                        ratio_of(find_row(rows, "1", system, kind), find_row(rows, "1", "spark parquet write", kind))))
    for kind in ("images", "tensors", "raw", "varjpeg", "f16", "tiny", "embeddings"):
        for mine in ("ours loader", "ours spark converter", "ours loader, unshuffled"):
            ours = find_row(rows, "2", mine, kind)
            for peer in ("mosaic streaming", "lance take", "deeplake4 pytorch()", "deeplake4 batches()",
                         "parquet+pyarrow", "jpeg folder+PIL", "petastorm 0.13.1", "ours loader, 0 workers"):
                other = find_row(rows, "2", peer, kind)
                r = ratio_of(ours, other)
                if r is not None:
                    out.append((f"stream {kind}: {mine} / {peer}", r))
                if ours is not None and other is not None and ours.extra.get("cpu_ms_per_sample"):
                    out.append((f"stream {kind}: CPU per sample, {peer} / {mine}",
                                other.extra.get("cpu_ms_per_sample", 0) / ours.extra["cpu_ms_per_sample"]))
    for kind in ("tensors", "images"):
        out.append((f"stream {kind}: ours loader from S3 (SeaweedFS) / from local disk",
                    ratio_of(find_row(rows, "8", "ours loader, S3 (SeaweedFS)", kind),
                           find_row(rows, "8", "ours loader, local disk", kind))))
    dl4 = find_row(rows, "5", "deeplake4 ds[i]", "images")
    ours = find_row(rows, "5", "ours ds[i]", "images")
    out.append(("random access: Deep Lake 4 latency / ours latency", ratio_of(dl4, ours)))
    return out


def write_results(rows: list[Row], facts: dict[str, Any], sizes: Sizes, seconds: float,
                  chart: str | None) -> str:
    goal = targets(rows, facts)
    lines = [
        "# deeplake-spark benchmark results",
        "",
        f"Generated by `python -m bench{' --quick' if sizes.mode == 'quick' else ''}` on "
        f"{_dt.datetime.now(_dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} in {seconds / 60:.1f} min "
        f"({sizes.mode} mode). Speed is judged only as ratios measured in this run, on the same data and cores.",
        "",
        "## Machine",
        "",
    ]
    versions = facts.pop("versions", {})
    for key, value in facts.items():
        if key != "query_bytes":
            lines.append(f"- {key}: {value}")
    lines.append("- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    facts["versions"] = versions
    lines += [
        "",
        "## Data",
        "",
        f"- images: {sizes.images:,} crops (256x256 JPEG q90) of real photos shipped in scikit-learn / scikit-image, "
        "labels = source photo",
        f"- tensors: {sizes.tensors:,} uint8[224,224,3] crops of the same photos (LZ4 chunks where the system can)",
        f"- embeddings: {sizes.embeddings:,} float32[768]",
        f"- raw: the tensors' first {sizes.raw:,} arrays, uncompressed; varjpeg: {sizes.varjpeg:,} JPEG crops of "
        "160-400 px a side (resized to 224x224 by every loader's transform); f16: "
        f"{sizes.f16:,} float16[3,128,128]; tiny: {sizes.tiny:,} uint8[28,28] (batch {sizes.tiny_batch_size})",
        f"- query: {sizes.query_rows:,} rows (id, day, label, float32[64]) + a 1,000-row label table",
        f"- time travel: {sizes.commits:,} commits of 5 rows",
        f"- loaders: batch {sizes.batch_size}, {sizes.workers} workers, shuffled unless noted; throughput excludes "
        "the first batch (shown as first_batch_s)",
        "",
        "## Targets",
        "",
        "| target | measured | ratio | verdict |",
        "|---|---|---:|---|",
    ]
    for name, text, ratio, verdict in goal:
        lines.append(f"| {name} | {text} | {fmt(ratio)} | {verdict} |")
    lines += ["", "## How to read this", "",
              "- Every system runs on the same samples, in a fresh process, one at a time, on the same cores. "
              "The machine may be shared: `load_average_at_start`/`_at_end` above say how busy it was, so "
              "trust ratios within this run, not absolute numbers, and re-run on a quiet machine to quote them.",
              "- `cpu_ms_per_sample` (stream rows) is the CPU time of the loader process, its threads and its "
              "reaped workers per sample delivered, start-up included: a measure of work that a busy machine "
              "distorts less than samples/s (a system with more threads gets a bigger share of a busy CPU).",
              "- Deep Lake 4 chooses its own chunk compression: its `tensors` store is uncompressed (see disk_mb), "
              "so the LZ4 bound does not bound it, and `ds.batches()` is unshuffled and multi-threaded.",
              "- Parquet + pyarrow shuffles row groups and rows inside a row group (petastorm-style), a weaker "
              "shuffle than ours and Deep Lake 4's `DataLoader(shuffle=True)`.",
              "- The Spark query row includes Spark planning of the Python data source (worker start-ups).",
              "- Case 8 streams the same stores from a SeaweedFS S3 server on 127.0.0.1 (no network latency) "
              "that shares the loader's cores, so local/S3 measures request overhead plus the server's CPU.",
              "- Case 10 (spark to torch) runs every way in one session (the shipped default: `deeplake` is the "
              "JVM source), so each gets the same JVM warm-up; the ways alternate over 3 rounds (2 in quick "
              "mode). The Mosaic way converts with `dataframe_to_mds` from Spark's tasks (uncompressed MDS), "
              "then `StreamingDataset`.",
              "- Peers of issue #13 (case 2): Mosaic Streaming (streaming-community 0.14.2, with torchvision "
              "0.28.0 in the same venv as torch 2.13.0) reads uncompressed MDS shards (MDS has no LZ4) with its "
              "own shuffle and worker split; Lance (pylance 14.0.2) reads by one `take` per batch in a "
              "map-style dataset (its `LanceDataset` scan does not split rows over DataLoader workers), "
              "globally shuffled, workers forked like everyone's (the loader process never opens the dataset, "
              "which is what makes fork safe for Lance) and persistent across epochs as Lance's "
              "`get_safe_loader` sets them up. Each system streams all its kinds in one process, "
              "one system after another.",
              "- `ours loader, 0 workers` is the same loader in-process, measured in one process with "
              "`ours loader, interleaved with 0 workers` (the default 2 workers): one loader of each, run one "
              "pass first (start-up), then "
              f"at least {sizes.workers_ab_rounds} rounds (more while a kind has used less than "
              f"{sizes.workers_ab_budget_s:.0f} s), each a run of {sizes.workers_ab_run_s} s of whole passes (or one "
              "epoch) of each loader back to back, alternating which goes first; medians: the `num_workers=2 never "
              "slower` target compares these two, since two fresh processes run one after the other differ on a "
              "shared machine by more than the engines do (and fresh loaders every 0.5 s differed by +-30% a "
              "round with the same code path). "
              "`ours loader, unshuffled` runs on "
              "`raw` beside Deep Lake 4 `batches()` (which cannot shuffle). Bounds (case 3) alternate with "
              f"fresh runs of ours on the same kind (bound, ours, bound, ...: {sizes.bound_rounds} runs of "
              "ours); the fraction is the median of each run of ours over the mean of the bound runs around it. "
              "With `cache_bytes=0` every epoch re-reads each chunk and re-verifies its payload checksum (one "
              "more pass over every byte): chunks record XXH3-64 (~40 GB/s a core, ~2 ms an epoch a core on "
              "`raw`); with XXH64 (~8.5 GB/s, ~7.5 ms against a ~14 ms gather) uncompressed `raw` was capped "
              "near 0.65 of its bound. The default loader keeps verified chunks in its cache (case 2's rows).",
              "- A row with `not available` or `failed` says why; targets without a measurement say `not measured`.",
              ]
    lines += ["", "## Ratios (> 1 = ours better; same run, same data)", "",
              "| ratio | value |", "|---|---:|"]
    lines += [f"| {name} | {fmt(value)} |" for name, value in ratios(rows) if value is not None]
    lines += ["", "## All measurements", ""] + table_lines(rows)
    if chart:
        lines += ["", f"![throughput per system]({os.path.basename(chart)})"]
    lines.append("")
    text = "\n".join(lines)
    with open(RESULTS_MD, "w") as f:
        f.write(text)
    return text


def chart(rows: list[Row], path: str = CHART_PNG) -> str | None:
    """Bars of samples/s per system for ingest and streaming, one panel per data kind."""
    kinds = {case: list(dict.fromkeys(r.kind for r in rows if r.case.startswith(f"{case} ") and r.available
                                      and r.unit == "samples/s" and (r.value or 0) > 0))
             for case in ("1", "2")}
    panels = [(case, kind) for case in ("1", "2") for kind in kinds[case]]
    data = {p: [(r.system, r.value) for r in rows if r.case.startswith(f"{p[0]} ") and r.kind == p[1] and r.available
                and r.unit == "samples/s" and (r.value or 0) > 0] for p in panels}
    if not panels:
        return None
    titles = {"1": "ingest", "2": "stream to torch"}
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return _pillow_chart(data, titles, path)
    ncols = 3
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(16, 4 * nrows), squeeze=False)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    for ax, (case, kind) in zip(axes.flat, panels):
        items = data[(case, kind)]
        names = [n for n, _ in items]
        values = [v for _, v in items]
        colors = ["#d62728" if n.startswith("ours") else "#7f7f7f" for n in names]
        ax.barh(range(len(items)), values, color=colors)
        ax.set_yticks(range(len(items)), names, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{titles[case]}: {kind}", fontsize=10)
        ax.set_xscale("log")  # peers span 4 orders of magnitude (unshuffled in-memory batches)
        ax.set_xlabel("samples/s (log scale)", fontsize=8)
        for i, v in enumerate(values):
            ax.text(v, i, f" {fmt(v)}", va="center", fontsize=7)
    fig.suptitle("deeplake-spark vs peers (red = ours), same data, 2 cores", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _pillow_chart(data: dict[tuple[str, str], list[tuple[str, float]]], titles: dict[str, str], path: str) -> str:
    from PIL import Image, ImageDraw

    width, panel_h = 900, 170
    img = Image.new("RGB", (width, panel_h * len(data) + 10), "white")
    draw = ImageDraw.Draw(img)
    y = 5
    for (case, kind), items in data.items():
        draw.text((10, y), f"{titles[case]}: {kind} (samples/s)", fill="black")
        top = max((v for _, v in items), default=1.0) or 1.0
        for i, (name, value) in enumerate(items):
            yy = y + 18 + i * 20
            draw.text((10, yy), name[:28], fill="black")
            bar = int((width - 330) * value / top)
            draw.rectangle([220, yy, 220 + bar, yy + 14], fill=(214, 39, 40) if name.startswith("ours") else (127,) * 3)
            draw.text((225 + bar, yy), fmt(value), fill="black")
        y += panel_h
    img.save(path)
    return path


def print_table(rows: list[Row], facts: dict[str, Any]) -> None:
    print("\n".join(table_lines(rows)))
    print()
    for name, text, _, verdict in targets(rows, facts):
        print(f"[{verdict:>12}] {name}: {text}")
    sys.stdout.flush()
