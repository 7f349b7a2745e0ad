"""Targets of issues #5 and #13: each judged met/MISSED from one run's rows, with the measured ratio
(or 'not measured' where a row is missing). Timings are never asserted anywhere else."""

from __future__ import annotations

from typing import Any

from bench.measure import Row


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def find_row(rows: list[Row], case: str, system: str, kind: str) -> Row | None:
    for r in rows:
        if r.case.startswith(case) and r.system == system and r.kind == kind and r.available:
            return r
    return None


def ratio_of(a: Row | None, b: Row | None) -> float | None:
    if a is None or b is None or not b.value:
        return None
    return a.value / b.value  # type: ignore[operator]


def targets(rows: list[Row], facts: dict[str, Any]) -> list[tuple[str, str, float | None, str]]:
    """(target, measured as text, ratio, verdict) for every target of issues #5 and #13."""
    out: list[tuple[str, str, float | None, str]] = []

    def add(name: str, ratio: float | None, threshold: float, text: str, higher_is_better: bool = True,
            within_noise: bool = False) -> None:
        """``within_noise``: a miss by less than the measurement's resolution (see the caller) is
        reported as such, never as a plain "met"."""
        if ratio is None:
            out.append((name, text or "not measured", None, "not measured"))
            return
        ok = ratio >= threshold if higher_is_better else ratio <= threshold
        out.append((name, text, ratio, "met" if ok else "within noise" if within_noise else "MISSED"))

    for kind, vs_dl4, vs_bound, bound_name in (("tensors", 1.5, 0.70, "LZ4 decompress + copy alone"),
                                               ("images", 1.0, 0.85, "JPEG decode alone (PIL)")):
        ours = find_row(rows, "2", "ours loader", kind)
        dl4 = find_row(rows, "2", "deeplake4 pytorch()", kind)
        dl4b = find_row(rows, "2", "deeplake4 batches()", kind)
        r = ratio_of(ours, dl4)
        rb = ratio_of(ours, dl4b)
        text = "" if r is None else f"{r:.2f}x DL4 pytorch() (shuffled, 2 workers)" + (
            "" if rb is None else f"; {rb:.2f}x DL4 batches() (unshuffled)")
        add(f"loader {kind} >= {vs_dl4}x Deep Lake 4", r, vs_dl4, text)
        frac = find_row(rows, "3", "ours loader / bound", kind)
        r = frac.value if frac is not None else None
        add(f"loader {kind} >= {vs_bound:.0%} of {bound_name}", r, vs_bound,
            "" if r is None else f"{r:.0%} of bound (median of the loader runs with cache_bytes=0, each between two bound runs)")
    for kind in ("images", "tensors", "embeddings"):
        spark_pq = find_row(rows, "1", "spark parquet write", kind)
        for system in ("ours (Python API)", "ours (Spark write)", "ours (Spark JVM write)"):
            ours = find_row(rows, "1", system, kind)
            r = ratio_of(ours, spark_pq)
            add(f"ingest {kind}: {system} >= 1.0x Spark Parquet write", r, 1.0, "" if r is None else f"{r:.2f}x")
    small = large = None
    for r in rows:
        if r.case.startswith("6") and r.system == "ours loader" and r.available:
            if small is None:
                small = r
            else:
                large = r
    growth = ratio_of(large, small)
    add("loader RSS flat in dataset size (2x rows -> <= 1.10x peak RSS)", growth, 1.10,
        "" if growth is None else f"{fmt(small.value)} MB -> {fmt(large.value)} MB ({growth:.2f}x)",  # type: ignore[union-attr]
        higher_is_better=False)
    latest = version = None
    for r in rows:
        if r.case.startswith("7") and r.system.startswith("ours open") and r.available:
            if "latest" in r.system:
                latest = r
            else:
                version = r
    tt = ratio_of(version, latest)
    add("time-travel open within 2x of latest", tt, 2.0, "" if tt is None else f"{tt:.2f}x latest",
        higher_is_better=False)
    for kind in ("tensors", "images"):
        local = find_row(rows, "8", "ours loader, local disk", kind)
        s3 = find_row(rows, "8", "ours loader, S3 (SeaweedFS)", kind)
        r = ratio_of(local, s3)
        text = "" if r is None else (f"local {fmt(local.value)} vs S3 {fmt(s3.value)} samples/s; "  # type: ignore[union-attr]
                                     f"{fmt(local.extra.get('mb_per_s'))} vs {fmt(s3.extra.get('mb_per_s'))} MB/s")  # type: ignore[union-attr]
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
            r = ratio_of(ours, peer)
            text = "" if r is None else (
                f"first batch {ours.value:.2f}s vs {peer.value:.2f}s; epoch {fmt(ours.extra.get('epoch_s'))}s vs "  # type: ignore[union-attr]
                f"{fmt(peer.extra.get('epoch_s'))}s; CPU {fmt(ours.extra.get('cpu_ms_per_sample'))} vs "  # type: ignore[union-attr]
                f"{fmt(peer.extra.get('cpu_ms_per_sample'))} ms/sample")  # type: ignore[union-attr]
            add(f"spark to torch: SQL join+filter -> {label}: first batch <= {name}", r, 1.0, text,
                higher_is_better=False)


def _loader_targets(rows: list[Row], add: Any) -> None:
    """Issue #13's loader targets (cases 2 and 3), worded as in the issue."""
    from bench.cases.stream import DL4_BATCHES, LANCE, MOSAIC, OURS, OURS_PAIRED, OURS_UNSHUFFLED, OURS_W0

    def frac(kind: str) -> float | None:
        row = find_row(rows, "3", "ours loader / bound", kind)
        return row.value if row is not None else None

    def cpu_text(a: Row | None, b: Row | None) -> str:
        ca = a.extra.get("cpu_ms_per_sample") if a is not None else None
        cb = b.extra.get("cpu_ms_per_sample") if b is not None else None
        return "" if not ca or not cb else f"; CPU {fmt(ca)} vs {fmt(cb)} ms/sample"

    for kind, threshold, what in (
            ("tensors", 0.70, "raw uint8 224x224x3 (LZ4) shuffled, 2 workers: >= 70% of the 2-process gather + LZ4 bound"),
            ("raw", 0.70, "raw uint8 224x224x3 (uncompressed) shuffled, 2 workers: >= 70% of the 2-process gather bound"),
            ("images", 0.85, "JPEG 256x256 decoded: >= 85% of the 2-process PIL decode bound"),
            ("varjpeg", 0.85, "variable-size JPEG + resize: >= 85% of its bound (2-process PIL decode + resize)")):
        r = frac(kind)
        add(f"#13 {what}", r, threshold, "" if r is None else f"{r:.0%} of bound (median of the loader runs with cache_bytes=0, each between two bound runs)")
    ours, dl4 = find_row(rows, "2", OURS_UNSHUFFLED, "raw"), find_row(rows, "2", DL4_BATCHES, "raw")
    r = ratio_of(ours, dl4)
    add("#13 raw uint8 224x224x3: >= 1.0x Deep Lake 4 batches() when both run unshuffled on uncompressed data",
        r, 1.0, "" if r is None else f"{fmt(ours.value)} vs {fmt(dl4.value)} samples/s{cpu_text(ours, dl4)}")  # type: ignore[union-attr]
    # batches() cannot shuffle: compare ours unshuffled too (the shuffled row when that one is missing)
    dl4 = find_row(rows, "2", DL4_BATCHES, "tiny")
    ours, how = find_row(rows, "2", OURS_UNSHUFFLED, "tiny"), "unshuffled"
    if ours is None:
        ours, how = find_row(rows, "2", OURS, "tiny"), "shuffled"
    r = ratio_of(ours, dl4)
    add("#13 tiny samples (28x28): >= 0.5x Deep Lake 4 batches() at batch 256", r, 0.5,
        "" if r is None else f"{fmt(ours.value)} ({how}) vs {fmt(dl4.value)} (unshuffled) samples/s"  # type: ignore[union-attr]
        f"{cpu_text(ours, dl4)}")
    kinds = [k for k in ("tensors", "raw", "images", "varjpeg", "f16", "tiny", "embeddings")
             if find_row(rows, "2", OURS, k) is not None or find_row(rows, "2", MOSAIC, k) is not None]
    for peer, name in ((MOSAIC, "Mosaic Streaming"), (LANCE, "Lance")):
        for kind in kinds:
            ours, other = find_row(rows, "2", OURS, kind), find_row(rows, "2", peer, kind)
            r = ratio_of(ours, other)
            add(f"#13 stream {kind}: >= 1.2x {name} on the same data and cores", r, 1.2,
                "" if r is None else f"{fmt(ours.value)} vs {fmt(other.value)} samples/s{cpu_text(ours, other)}")  # type: ignore[union-attr]
    for kind in kinds:
        # the pair measured in one process, rounds interleaved (two fresh processes one after the other
        # differ on a shared machine by more than the engines do): the median of the rounds' ratios
        # (each round's two runs back to back); the separate rows when the pair is missing
        # A median below 1.0 by less than 5%, with num_workers=2 ahead in some rounds, is below what
        # this measurement resolves (the two run the same code when the loop does no work between
        # batches): "within noise", never "met".
        two, zero, how = find_row(rows, "2", OURS_PAIRED, kind), find_row(rows, "2", OURS_W0, kind), ""
        r = None if two is None else two.extra.get("median_round_ratio")
        noise = False
        if two is None:
            two, how = find_row(rows, "2", OURS, kind), " (separate processes)"
        elif r is not None:
            won, rounds = two.extra.get("rounds_won", 0), two.extra.get("rounds", 0)
            how = (f" (rounds interleaved in one process; ratio = the median of the rounds' ratios, "
                   f"{fmt(two.extra.get('round_ratio_min'))}-{fmt(two.extra.get('round_ratio_max'))}; "
                   f"2 workers ahead in {won} of {rounds} rounds)")
            noise = r >= 0.95 and won >= 1
        if r is None:
            r = ratio_of(two, zero)
        add(f"#13 stream {kind}: num_workers=2 never slower than num_workers=0", r, 1.0,
            "" if r is None else f"{fmt(two.value)} vs {fmt(zero.value)} samples/s{how}"  # type: ignore[union-attr]
            f"{cpu_text(two, zero)}", within_noise=noise)  # type: ignore[union-attr]
