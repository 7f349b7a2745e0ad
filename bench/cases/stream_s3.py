"""Case 8, stream from S3: our loader on the ``tensors`` and ``images`` datasets read from a local
SeaweedFS S3 server (tests/s3_server.py, 127.0.0.1) vs the same samples on local disk.

The S3 copies are built fresh each run by appending the same samples through the Python API
(``create("s3://bench/...", storage_options=...)``). Local and S3 runs alternate for
``sizes.rounds`` rounds, each in a fresh process; the best round of each counts. The server runs
on the same cores as the loader, so the ratio includes the server's CPU cost, not network latency.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from typing import Any

from bench.cases import Context, failed, unavailable
from bench.cases.stream import _keep_best, _row, stream_row
from bench.config import REPO_DIR
from bench.measure import NotAvailable, Row, run_job

log = logging.getLogger(__name__)
CASE = "8 stream S3"
KINDS = ("tensors", "images")
LOCAL = "ours loader, local disk"
S3 = "ours loader, S3 (SeaweedFS)"
RATIO = "local / S3"


def _server(ctx: Context) -> Any:
    """A started S3Server with bucket ``bench``; NotAvailable when SeaweedFS is missing or won't start."""
    tests_dir = os.path.join(REPO_DIR, "tests")
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    try:
        from s3_server import S3Server, weed_binary
    except ImportError as e:
        raise NotAvailable(f"tests/s3_server.py not importable: {e}") from e
    try:
        weed = weed_binary(install=False)  # no pip install during a benchmark
    except RuntimeError as e:
        raise NotAvailable(str(e)) from e
    data_dir = os.path.join(ctx.sizes.work, "s3server")
    shutil.rmtree(data_dir, ignore_errors=True)
    server = S3Server(data_dir, bucket="bench")
    try:
        server.start()
    except (RuntimeError, OSError) as e:
        raise NotAvailable(f"SeaweedFS did not start: {str(e).splitlines()[0]}") from e
    ctx.facts["s3_server"] = f"SeaweedFS {weed} on {server.endpoint} (same cores as the loader)"
    return server


def _s3_row(ctx: Context, uri: str, kind: str, options: dict[str, str], note: str) -> Row:
    try:
        result = run_job("ours_s3:stream", uri=uri, kind=kind, batch_size=ctx.sizes.batch_size,
                         workers=ctx.sizes.workers, min_seconds=ctx.sizes.stream_min_seconds, storage_options=options)
    except NotAvailable as e:
        return unavailable(CASE, S3, kind, str(e))
    except RuntimeError as e:
        return failed(CASE, S3, kind, e)
    return _row(S3, kind, result, case=CASE, note=note)


def _ratio_row(local: Row | None, s3: Row | None, kind: str) -> Row:
    if local is None or s3 is None or not local.available or not s3.available or not s3.value:
        missing = [r.note for r in (local, s3) if r is not None and not r.available]
        return Row(CASE, RATIO, kind, note="not measured" + (f": {missing[0]}" if missing else ""))
    extra: dict[str, Any] = {}
    if local.extra.get("mb_per_s") and s3.extra.get("mb_per_s"):
        extra["mb_per_s_local"] = local.extra["mb_per_s"]
        extra["mb_per_s_s3"] = s3.extra["mb_per_s"]
    if local.extra.get("cpu_ms_per_sample") and s3.extra.get("cpu_ms_per_sample"):
        extra["cpu_ms_per_sample_s3_over_local"] = s3.extra["cpu_ms_per_sample"] / local.extra["cpu_ms_per_sample"]
    return Row(CASE, RATIO, kind, value=local.value / s3.value, unit="x (samples/s local / S3)",  # type: ignore[operator]
               extra=extra, note="target <= 1.5x; loader CPU excludes the server's")


def run(ctx: Context) -> list[Row]:
    try:
        server = _server(ctx)
    except NotAvailable as e:
        ctx.facts["s3_server"] = f"not available: {e}"
        return [unavailable(CASE, S3, kind, str(e)) for kind in KINDS]
    best: dict[tuple[str, str], Row] = {}
    try:
        options = server.storage_options
        uris: dict[str, str] = {}
        for kind in KINDS:
            n = ctx.count(kind)
            uri = server.uri(f"ours_{kind}_{n}")
            try:
                built = run_job("ours_s3:build", uri=uri, kind=kind, n=n, storage_options=options)
            except NotAvailable as e:
                best[(S3, kind)] = unavailable(CASE, S3, kind, str(e))
                continue
            except RuntimeError as e:
                best[(S3, kind)] = failed(CASE, S3, kind, e)
                continue
            uris[kind] = uri
            ctx.facts[f"s3_build_{kind}"] = f"{n:,} rows appended to {uri} in {built['seconds']:.1f}s"
        for round_no in range(ctx.sizes.rounds):
            for kind in KINDS:
                log.info("stream S3 %s: local disk vs S3 (round %d)", kind, round_no + 1)
                _keep_best(best, stream_row(ctx, LOCAL, "ours", "ours:stream", kind, case=CASE))
                if kind in uris:
                    _keep_best(best, _s3_row(ctx, uris[kind], kind, options,
                                             note=f"{server.endpoint}, conditional_put=etag"))
    finally:
        server.stop()
    rows: list[Row] = []
    for kind in KINDS:
        local, s3 = best.get((LOCAL, kind)), best.get((S3, kind))
        rows += [r for r in (local, s3) if r is not None]
        rows.append(_ratio_row(local, s3, kind))
    return rows
