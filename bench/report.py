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


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _extra_text(extra: dict[str, Any]) -> str:
    parts = []
    for key, value in extra.items():
        if isinstance(value, float):
            parts.append(f"{key}={_fmt(value)}")
        elif value is not None:
            parts.append(f"{key}={value}")
    return ", ".join(parts)


def table_lines(rows: Iterable[Row]) -> list[str]:
    lines = ["| case | system | data | value | unit | details | note |", "|---|---|---|---:|---|---|---|"]
    for r in rows:
        note = r.note.replace("|", "/").replace("\n", " ")
        lines.append(f"| {r.case} | {r.system} | {r.kind} | {_fmt(r.value)} | {r.unit} | "
                     f"{_extra_text(r.extra)} | {note} |")
    return lines


def _find(rows: list[Row], case: str, system: str, kind: str) -> Row | None:
    for r in rows:
        if r.case.startswith(case) and r.system == system and r.kind == kind and r.available:
            return r
    return None


def _ratio(a: Row | None, b: Row | None) -> float | None:
    if a is None or b is None or not b.value:
        return None
    return a.value / b.value  # type: ignore[operator]


def targets(rows: list[Row], facts: dict[str, Any]) -> list[tuple[str, str, float | None, str]]:
    """(target, measured as text, ratio, verdict) for every target of issues #5 and #13."""
    out: list[tuple[str, str, float | None, str]] = []

    def add(name: str, ratio: float | None, threshold: float, text: str, higher_is_better: bool = True) -> None:
        if ratio is None:
            out.append((name, text or "not measured", None, "not measured"))
            return
        ok = ratio >= threshold if higher_is_better else ratio <= threshold
        out.append((name, text, ratio, "met" if ok else "MISSED"))

    for kind, vs_dl4, vs_bound, bound_name in (("tensors", 1.5, 0.70, "LZ4 decompress + copy alone"),
                                               ("images", 1.0, 0.85, "JPEG decode alone (PIL)")):
        ours = _find(rows, "2", "ours loader", kind)
        dl4 = _find(rows, "2", "deeplake4 pytorch()", kind)
        dl4b = _find(rows, "2", "deeplake4 batches()", kind)
        r = _ratio(ours, dl4)
        rb = _ratio(ours, dl4b)
        text = "" if r is None else f"{r:.2f}x DL4 pytorch() (shuffled, 2 workers)" + (
            "" if rb is None else f"; {rb:.2f}x DL4 batches() (unshuffled)")
        add(f"loader {kind} >= {vs_dl4}x Deep Lake 4", r, vs_dl4, text)
        frac = _find(rows, "3", "ours loader / bound", kind)
        r = frac.value if frac is not None else None
        add(f"loader {kind} >= {vs_bound:.0%} of {bound_name}", r, vs_bound,
            "" if r is None else f"{r:.0%} of bound (loader run between two bound runs)")
    for kind in ("images", "tensors", "embeddings"):
        spark_pq = _find(rows, "1", "spark parquet write", kind)
        for system in ("ours (Python API)", "ours (Spark write)", "ours (Spark JVM write)"):
            ours = _find(rows, "1", system, kind)
            r = _ratio(ours, spark_pq)
            add(f"ingest {kind}: {system} >= 1.0x Spark Parquet write", r, 1.0, "" if r is None else f"{r:.2f}x")
    small = large = None
    for r in rows:
        if r.case.startswith("6") and r.system == "ours loader" and r.available:
            if small is None:
                small = r
            else:
                large = r
    growth = _ratio(large, small)
    add("loader RSS flat in dataset size (2x rows -> <= 1.10x peak RSS)", growth, 1.10,
        "" if growth is None else f"{_fmt(small.value)} MB -> {_fmt(large.value)} MB ({growth:.2f}x)",  # type: ignore[union-attr]
        higher_is_better=False)
    latest = version = None
    for r in rows:
        if r.case.startswith("7") and r.system.startswith("ours open") and r.available:
            if "latest" in r.system:
                latest = r
            else:
                version = r
    tt = _ratio(version, latest)
    add("time-travel open within 2x of latest", tt, 2.0, "" if tt is None else f"{tt:.2f}x latest",
        higher_is_better=False)
    for kind in ("tensors", "images"):
        local = _find(rows, "8", "ours loader, local disk", kind)
        s3 = _find(rows, "8", "ours loader, S3 (SeaweedFS)", kind)
        r = _ratio(local, s3)
        text = "" if r is None else (f"local {_fmt(local.value)} vs S3 {_fmt(s3.value)} samples/s; "  # type: ignore[union-attr]
                                     f"{_fmt(local.extra.get('mb_per_s'))} vs {_fmt(s3.extra.get('mb_per_s'))} MB/s")  # type: ignore[union-attr]
        add(f"loader {kind}: streaming from the local S3 server within 1.5x of local disk", r, 1.5, text,
            higher_is_better=False)
    for r in rows:
        if r.case.startswith("9") and r.system.startswith("jvm speed-up") and r.available:
            vs_parquet = float(r.extra.get("vs_parquet") or 0)
            # both must hold: >= 3x the Python reader and >= Parquet's speed
            add(f"jvm scan {r.kind}: >= 3x the Python reader and >= 1x Spark Parquet",
                min(r.value / 3.0, vs_parquet), 1.0,  # type: ignore[operator]
                f"{r.value:.2f}x python reader, {vs_parquet:.2f}x parquet")
    _spark_to_torch_targets(rows, add)
    _loader_targets(rows, add)
    q = facts.get("query_bytes")
    name = "query: chunk bytes read <= kept share of chunk bytes + 2 chunks (1% and 10% keep)"
    if q:
        # worst of the two selectivities: bytes read / (share kept * total + 2 whole chunks)
        worst = max(q["keep_1pct_mb"] / (0.01 * q["total_mb"] + 2 * q["chunk_mb"]),
                    q["keep_10pct_mb"] / (0.10 * q["total_mb"] + 2 * q["chunk_mb"]))
        add(name, worst, 1.0, f"1%: {q['keep_1pct_mb']:.2f} MB, 10%: {q['keep_10pct_mb']:.2f} MB of "
            f"{q['total_mb']:.1f} MB in {q['chunk_mb']:.2f} MB chunks (full pass over kept rows)",
            higher_is_better=False)
    else:
        add(name, None, 1.0, "")
    return out


def _spark_to_torch_targets(rows: list[Row], add: Any) -> None:
    """Case 10: SQL join+filter -> converter first batch <= the petastorm way's (Parquet write + loader) and
    (issue #13) <= Mosaic Streaming's (dataframe_to_mds + StreamingDataset)."""
    from bench.cases.spark_to_torch import MOSAIC_WAY, OUR_WAYS, PETASTORM_WAY

    def way(label: str) -> Row | None:
        return next((r for r in rows if r.case.startswith("10 ") and r.system == label and r.available), None)

    for peer_label, name in ((PETASTORM_WAY, "the petastorm way's"), (MOSAIC_WAY, "Mosaic's conversion + first batch")):
        peer = way(peer_label)
        for label, _, _ in OUR_WAYS:
            ours = way(label)
            r = _ratio(ours, peer)
            text = "" if r is None else (
                f"first batch {ours.value:.2f}s vs {peer.value:.2f}s; epoch {_fmt(ours.extra.get('epoch_s'))}s vs "  # type: ignore[union-attr]
                f"{_fmt(peer.extra.get('epoch_s'))}s; CPU {_fmt(ours.extra.get('cpu_ms_per_sample'))} vs "  # type: ignore[union-attr]
                f"{_fmt(peer.extra.get('cpu_ms_per_sample'))} ms/sample")  # type: ignore[union-attr]
            add(f"spark to torch: SQL join+filter -> {label}: first batch <= {name}", r, 1.0, text,
                higher_is_better=False)


def _loader_targets(rows: list[Row], add: Any) -> None:
    """Issue #13's loader targets (cases 2 and 3), worded as in the issue."""
    from bench.cases.stream import DL4_BATCHES, LANCE, MOSAIC, OURS, OURS_UNSHUFFLED, OURS_W0

    def frac(kind: str) -> float | None:
        row = _find(rows, "3", "ours loader / bound", kind)
        return row.value if row is not None else None

    def cpu_text(a: Row | None, b: Row | None) -> str:
        ca = a.extra.get("cpu_ms_per_sample") if a is not None else None
        cb = b.extra.get("cpu_ms_per_sample") if b is not None else None
        return "" if not ca or not cb else f"; CPU {_fmt(ca)} vs {_fmt(cb)} ms/sample"

    for kind, threshold, what in (
            ("tensors", 0.70, "raw uint8 224x224x3 (LZ4) shuffled, 2 workers: >= 70% of the 2-process gather + LZ4 bound"),
            ("raw", 0.70, "raw uint8 224x224x3 (uncompressed) shuffled, 2 workers: >= 70% of the 2-process gather bound"),
            ("images", 0.85, "JPEG 256x256 decoded: >= 85% of the 2-process PIL decode bound"),
            ("varjpeg", 0.85, "variable-size JPEG + resize: >= 85% of its bound (2-process PIL decode + resize)")):
        r = frac(kind)
        add(f"#13 {what}", r, threshold, "" if r is None else f"{r:.0%} of bound (loader run between two bound runs)")
    ours, dl4 = _find(rows, "2", OURS_UNSHUFFLED, "raw"), _find(rows, "2", DL4_BATCHES, "raw")
    r = _ratio(ours, dl4)
    add("#13 raw uint8 224x224x3: >= 1.0x Deep Lake 4 batches() when both run unshuffled on uncompressed data",
        r, 1.0, "" if r is None else f"{_fmt(ours.value)} vs {_fmt(dl4.value)} samples/s{cpu_text(ours, dl4)}")  # type: ignore[union-attr]
    ours, dl4 = _find(rows, "2", OURS, "tiny"), _find(rows, "2", DL4_BATCHES, "tiny")
    r = _ratio(ours, dl4)
    add("#13 tiny samples (28x28): >= 0.5x Deep Lake 4 batches() at batch 256", r, 0.5,
        "" if r is None else f"{_fmt(ours.value)} (shuffled) vs {_fmt(dl4.value)} (unshuffled) samples/s"  # type: ignore[union-attr]
        f"{cpu_text(ours, dl4)}")
    kinds = [k for k in ("tensors", "raw", "images", "varjpeg", "f16", "tiny", "embeddings")
             if _find(rows, "2", OURS, k) is not None or _find(rows, "2", MOSAIC, k) is not None]
    for peer, name in ((MOSAIC, "Mosaic Streaming"), (LANCE, "Lance")):
        for kind in kinds:
            ours, other = _find(rows, "2", OURS, kind), _find(rows, "2", peer, kind)
            r = _ratio(ours, other)
            add(f"#13 stream {kind}: >= 1.2x {name} on the same data and cores", r, 1.2,
                "" if r is None else f"{_fmt(ours.value)} vs {_fmt(other.value)} samples/s{cpu_text(ours, other)}")  # type: ignore[union-attr]
    for kind in kinds:
        two, zero = _find(rows, "2", OURS, kind), _find(rows, "2", OURS_W0, kind)
        r = _ratio(two, zero)
        add(f"#13 stream {kind}: num_workers=2 never slower than num_workers=0", r, 1.0,
            "" if r is None else f"{_fmt(two.value)} vs {_fmt(zero.value)} samples/s{cpu_text(two, zero)}")  # type: ignore[union-attr]


def ratios(rows: list[Row]) -> list[tuple[str, float | None]]:
    """Headline ratios of ours vs peers measured in this run (> 1 means ours is better)."""
    out: list[tuple[str, float | None]] = []
    for kind in ("images", "tensors", "embeddings"):
        ours = _find(rows, "1", "ours (Python API)", kind)
        for peer in ("spark parquet write", "deeplake4 append", "pyarrow parquet write"):
            out.append((f"ingest {kind}: ours (Python API) / {peer}", _ratio(ours, _find(rows, "1", peer, kind))))
        for system in ("ours (Spark write)", "ours (Spark JVM write)"):
            out.append((f"ingest {kind}: {system} / spark parquet write",
                        _ratio(_find(rows, "1", system, kind), _find(rows, "1", "spark parquet write", kind))))
    for kind in ("images", "tensors", "raw", "varjpeg", "f16", "tiny", "embeddings"):
        for mine in ("ours loader", "ours spark converter", "ours loader, unshuffled"):
            ours = _find(rows, "2", mine, kind)
            for peer in ("mosaic streaming", "lance take", "deeplake4 pytorch()", "deeplake4 batches()",
                         "parquet+pyarrow", "jpeg folder+PIL", "petastorm 0.13.1", "ours loader, 0 workers"):
                other = _find(rows, "2", peer, kind)
                r = _ratio(ours, other)
                if r is not None:
                    out.append((f"stream {kind}: {mine} / {peer}", r))
                if ours is not None and other is not None and ours.extra.get("cpu_ms_per_sample"):
                    out.append((f"stream {kind}: CPU per sample, {peer} / {mine}",
                                other.extra.get("cpu_ms_per_sample", 0) / ours.extra["cpu_ms_per_sample"]))
    for kind in ("tensors", "images"):
        out.append((f"stream {kind}: ours loader from S3 (SeaweedFS) / from local disk",
                    _ratio(_find(rows, "8", "ours loader, S3 (SeaweedFS)", kind),
                           _find(rows, "8", "ours loader, local disk", kind))))
    dl4 = _find(rows, "5", "deeplake4 ds[i]", "images")
    ours = _find(rows, "5", "ours ds[i]", "images")
    out.append(("random access: Deep Lake 4 latency / ours latency", _ratio(dl4, ours)))
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
        lines.append(f"| {name} | {text} | {_fmt(ratio)} | {verdict} |")
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
              "globally shuffled, workers spawned and persistent as its `get_safe_loader` sets up, so its "
              "`first_batch_s` includes the spawn. Each system streams all its kinds in one process, "
              "one system after another.",
              "- `ours loader, 0 workers` is the same loader in-process; `ours loader, unshuffled` runs on "
              "`raw` beside Deep Lake 4 `batches()` (which cannot shuffle). Bounds (case 3) are measured "
              "right before and after a fresh run of ours on the same kind.",
              "- A row with `not available` or `failed` says why; targets without a measurement say `not measured`.",
              ]
    lines += ["", "## Ratios (> 1 = ours better; same run, same data)", "",
              "| ratio | value |", "|---|---:|"]
    lines += [f"| {name} | {_fmt(value)} |" for name, value in ratios(rows) if value is not None]
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
    panels = [(case, kind) for case in ("1", "2") for kind in ("images", "tensors", "embeddings")]
    data = {p: [(r.system, r.value) for r in rows if r.case.startswith(p[0]) and r.kind == p[1] and r.available]
            for p in panels}
    titles = {"1": "ingest", "2": "stream to torch"}
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return _pillow_chart(data, titles, path)
    fig, axes = plt.subplots(2, 3, figsize=(16, 8))
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
            ax.text(v, i, f" {_fmt(v)}", va="center", fontsize=7)
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
            draw.text((225 + bar, yy), _fmt(value), fill="black")
        y += panel_h
    img.save(path)
    return path


def print_table(rows: list[Row], facts: dict[str, Any]) -> None:
    print("\n".join(table_lines(rows)))
    print()
    for name, text, _, verdict in targets(rows, facts):
        print(f"[{verdict:>12}] {name}: {text}")
    sys.stdout.flush()
