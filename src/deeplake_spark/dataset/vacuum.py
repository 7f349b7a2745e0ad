"""Vacuum: delete Parquet files (delta-rs) and chunk files that no retained version references."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from deeplake_spark.dataset import delta_log
from deeplake_spark.dataset.progress import progress_bar
from deeplake_spark.dataset.refs import CHUNK_SUFFIX, TENSORS_DIR, chunk_id_of
from deeplake_spark.dataset.schema import DatasetSchema
from deeplake_spark.errors import InvalidOptionError, StorageError
from deeplake_spark.storage import Storage

log = logging.getLogger(__name__)
DEFAULT_RETENTION_HOURS = 168


@dataclass
class VacuumResult:
    """What vacuum deleted (or would delete, for a dry run), as paths relative to the dataset root."""

    parquet_files: list[str] = field(default_factory=list)
    chunk_files: list[str] = field(default_factory=list)
    retained_versions: list[int] = field(default_factory=list)
    dry_run: bool = False

    @property
    def files(self) -> list[str]:
        return self.parquet_files + self.chunk_files


def retained_versions(dt: DeltaTable, storage: Storage, retention_hours: float) -> list[int]:
    """Versions a reader may still open: the latest, and every version live inside the window."""
    cutoff_ms = (time.time() - retention_hours * 3600) * 1000
    commits = sorted((int(c["version"]), int(c.get("timestamp") or 0))
                     for c in delta_log.history(dt, storage))
    keep = []
    for i, (version, _ts) in enumerate(commits):
        next_ts = commits[i + 1][1] if i + 1 < len(commits) else None
        # a version stays readable while it was the latest at some time after the cutoff
        if next_ts is None or next_ts >= cutoff_ms:
            keep.append(version)
    return keep


def _referenced_chunks(dt: DeltaTable, versions: list[int], schema_of: dict[int, DatasetSchema],
                       progress: bool | None = None) -> set[str]:
    """``"<tensor>/<chunk id>"`` for every chunk referenced by any of ``versions``."""
    files: dict[str, list[str]] = {}
    for version in versions:
        dt.load_as_version(version)
        tensors = list(schema_of[version].tensors)
        for path in pa.table(dt.get_add_actions(flatten=False)).column("path").to_pylist():
            files.setdefault(path, tensors)
    filesystem = dt.to_pyarrow_dataset().filesystem
    chunk_ids: set[str] = set()
    with progress_bar(len(files), "vacuum: scanning refs", "file", progress, auto_min=100) as bar:
        for path, tensors in files.items():
            bar.update(1)
            if not tensors:
                continue
            table = pq.read_table(path, columns=tensors, filesystem=filesystem)
            for name in tensors:
                column = table.column(name).combine_chunks()
                ids = column.field("chunk").drop_null().unique().to_pylist()
                chunk_ids.update(f"{name}/{i}" for i in ids)
    return chunk_ids


def vacuum(
    dt: DeltaTable,
    storage: Storage,
    *,
    retention_hours: float = DEFAULT_RETENTION_HOURS,
    dry_run: bool = False,
    enforce_retention_duration: bool = True,
    progress: bool | None = None,
) -> VacuumResult:
    """Remove files that no version inside ``retention_hours`` needs.

    Chunk files younger than the retention window are never deleted, so a concurrent writer whose
    commit has not landed yet keeps its chunks.
    """
    if retention_hours < 0:
        raise InvalidOptionError(f"retention_hours must be >= 0, not {retention_hours}")
    if enforce_retention_duration and retention_hours < DEFAULT_RETENTION_HOURS:
        raise InvalidOptionError(
            f"retention_hours={retention_hours} is below the {DEFAULT_RETENTION_HOURS} h safety minimum; "
            "pass enforce_retention_duration=False if no reader or writer needs older versions"
        )
    # A handle other writers have moved past would see their new files as unreferenced and delete them.
    dt.update_incremental()
    latest = dt.version()
    versions = retained_versions(dt, storage, retention_hours)
    schema_of = {}
    for version in versions:
        dt.load_as_version(version)
        schema_of[version] = DatasetSchema.from_arrow(pa.schema(dt.schema().to_arrow()))
    referenced = _referenced_chunks(dt, versions, schema_of, progress)
    dt.load_as_version(latest)
    try:
        parquet = dt.vacuum(
            # delta-rs takes whole hours: round up so no Parquet file of a retained version goes
            retention_hours=math.ceil(retention_hours),
            dry_run=dry_run,
            enforce_retention_duration=False,
            full=True,
        )
    except DeltaError as e:
        raise StorageError(f"{dt.table_uri}: Delta vacuum failed: {e}") from e
    cutoff_ns = int((time.time() - retention_hours * 3600) * 1e9)
    orphans = []
    for entry in storage.list(TENSORS_DIR):
        parts = entry.path.split("/")
        if len(parts) < 3 or not entry.path.endswith(CHUNK_SUFFIX) and not parts[-1].startswith(".tmp-"):
            continue
        key = f"{parts[-2]}/{chunk_id_of(entry.path)}"
        if key not in referenced and entry.mtime_ns <= cutoff_ns:
            orphans.append(entry.path)
    if not dry_run:
        with progress_bar(len(orphans), "vacuum: deleting chunks", "file", progress, auto_min=100) as bar:
            for path in orphans:
                storage.delete(path)
                bar.update(1)
    log.info("vacuum %s: %d parquet, %d chunk files %s", storage.uri, len(parquet), len(orphans),
             "would be deleted" if dry_run else "deleted")
    base = dt.table_uri.rstrip("/")
    rel = [p[len(base) + 1 :] if p.startswith(base) else p for p in parquet]
    return VacuumResult(sorted(rel), sorted(orphans), versions, dry_run)
