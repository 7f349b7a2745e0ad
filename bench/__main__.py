"""``python -m bench [--quick] [--cases 1,2,...] [--systems ...]``: run the benchmark suite, write bench/RESULTS.md.

Quick mode is for development; the full mode is the one to quote. The loader cases of issue #13
(2 stream, 3 bounds, 10 spark to torch) alone: ``python -m bench --quick --cases 2,3,10``; ``--systems
ours`` keeps only our rows of case 2. Work data lives under bench/_work/<mode>/ (gitignored); samples
and every system's stores are cached there between runs (``--clean`` rebuilds them).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time

from bench.cases import (
    Context,
    bounds,
    ingest,
    jvm_scan,
    memory,
    query,
    random_access,
    spark_to_torch,
    stream,
    stream_s3,
    vector_search,
    versions,
)
from bench.config import FULL, QUICK, WORK_DIR
from bench.measure import NotAvailable, Row, run_job, worker_python
from bench.report import chart, machine_facts, print_table, write_results

log = logging.getLogger("bench")
CASES = {"1": "ingest", "2": "stream", "3": "bounds", "4": "query", "5": "random access", "6": "peak RSS",
         "7": "time travel", "8": "stream from S3", "9": "jvm scan",
         "10": "spark to torch", "11": "vector search"}


def _drop_stale_stores(work: str) -> None:
    """Delete our cached stores written in another chunk format than this checkout writes (today: the
    payload checksum), so a run never measures chunks the current writer would not produce; peers'
    stores stay."""
    from deeplake_spark.format.checksum import ALGORITHMS, WRITE_ALGORITHM

    stamp = {"payload_checksum": next(k for k, v in ALGORITHMS.items() if v == WRITE_ALGORITHM)}
    marker = os.path.join(work, "ours_format.json")
    try:
        with open(marker) as f:
            if json.load(f) == stamp:
                return
    except (OSError, ValueError):
        pass
    ours = ("ours_", "query_ours_", "vectors_ours_", "commits_ours_", "jvm_scan_", "spark_to_torch_")
    for folder in (work, os.path.join(work, "stores")):
        for name in os.listdir(folder) if os.path.isdir(folder) else ():
            if name.startswith(ours):
                target = os.path.join(folder, name)
                shutil.rmtree(target) if os.path.isdir(target) else os.remove(target)
    with open(marker, "w") as f:
        json.dump(stamp, f)


def _deeplake4_version(facts: dict) -> None:
    try:
        facts["deeplake4"] = run_job("peers.deeplake4:version", python=worker_python("deeplake4"))["version"]
    except (NotAvailable, RuntimeError) as e:
        facts["deeplake4"] = f"not available: {str(e).splitlines()[-1]}"


def _petastorm(ctx: Context) -> list[Row]:
    """petastorm on the images Parquet, in its pinned venv; a row saying why when it cannot run."""
    from bench.peers import petastorm

    status = petastorm.status()
    ctx.facts["petastorm"] = status if status != "runs" else f"runs in bench/.venv-petastorm ({', '.join(petastorm.PINS)})"
    if status != "runs":
        return [Row("2 stream", "petastorm 0.13.1", "images", note=f"not available: {status}")]
    return [stream.stream_row(ctx, "petastorm 0.13.1", "parquet", "peers.petastorm:stream", "images",
                              python=petastorm.PYTHON)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data (< 5 min on 2 cores)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case numbers (default: all)")
    parser.add_argument("--systems", default=None,
                        help="case 2: only rows whose label starts with one of these, comma-separated "
                             "(e.g. 'ours loader' or 'ours,mosaic,lance,deeplake4')")
    parser.add_argument("--clean", action="store_true", help="delete cached stores of this mode first")
    parser.add_argument("--no-write", action="store_true", help="print the table only; leave RESULTS.md alone")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("bench").setLevel(logging.INFO)
    sizes = QUICK if args.quick else FULL
    wanted = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; cases: {CASES}")
    if args.clean:
        shutil.rmtree(sizes.work, ignore_errors=True)
    os.makedirs(sizes.work, exist_ok=True)
    _drop_stale_stores(sizes.work)
    io_log = os.path.join(WORK_DIR, "io.log")
    open(io_log, "w").close()
    # Set before Spark or any worker starts, so every process of the run appends its chunk reads.
    os.environ["DEEPLAKE_SPARK_IO_LOG"] = io_log
    os.environ.setdefault("DEEPLAKE_TELEMETRY_ENABLED", "false")

    start = time.perf_counter()
    systems = tuple(x.strip() for x in args.systems.split(",") if x.strip()) if args.systems else None
    ctx = Context(sizes, systems=systems)
    facts = machine_facts()
    _deeplake4_version(facts)
    rows: list[Row] = []
    runners = {
        "1": lambda: ingest.run(ctx),
        "2": lambda: stream.run(ctx) + (_petastorm(ctx) if ctx.wants("petastorm") else []),
        "3": lambda: bounds.run(ctx, rows),
        "4": lambda: query.run(ctx),
        "5": lambda: random_access.run(ctx),
        "6": lambda: memory.run(ctx),
        "7": lambda: versions.run(ctx),
        "8": lambda: stream_s3.run(ctx),
        "9": lambda: jvm_scan.run(ctx),
        "10": lambda: spark_to_torch.run(ctx),
        "11": lambda: vector_search.run(ctx),
    }
    try:
        for case in wanted:
            t = time.perf_counter()
            log.info("case %s (%s) ...", case, CASES[case])
            new_rows = runners[case]()
            rows.extend(new_rows)
            log.info("case %s done in %.0fs", case, time.perf_counter() - t)
            for r in new_rows:
                log.info("  %s | %s | %s | %s %s %s", r.system, r.kind, r.value, r.unit, r.extra, r.note)
    finally:
        ctx.stop()
    facts.update(ctx.facts)
    facts["load_average_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    seconds = time.perf_counter() - start
    print_table(rows, facts)
    if not args.no_write:
        png = chart(rows)
        write_results(rows, facts, sizes, seconds, png)
        print(f"\nwrote bench/RESULTS.md and {os.path.relpath(png, os.getcwd()) if png else 'no chart'} "
              f"in {seconds / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
