"""Vacuum: delete the dataset's own Parquet, chunk and temp files that no retained version needs.

Nothing else is ever deleted: the folder may also hold a user's files, a nested dataset or the
source images of an import, and no Delta action or ref names those. Parquet files are found in
the Delta log (:mod:`deeplake_spark.dataset.delta_files`), chunk files under ``_tensors/``; delta-rs'
own ``vacuum(full=True)``, which deletes every file the log does not know, is never used.
"""

from __future__ import annotations

import logging
import math
import numbers
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from deeplake_spark.dataset import delta_files, delta_log
from deeplake_spark.dataset.partitioning import partition_columns
from deeplake_spark.dataset.progress import progress_bar
from deeplake_spark.dataset.refs import CHUNK_ID_PATTERN, CHUNK_SUFFIX, TENSOR_METADATA_KEY, TENSORS_DIR
from deeplake_spark.dataset.schema import DatasetSchema
from deeplake_spark.dataset.tags import read_tags
from deeplake_spark.errors import CorruptDatasetError, DeepLakeSparkError, InvalidOptionError, StorageError
from deeplake_spark.storage import FileEntry, Storage

log = logging.getLogger(__name__)
DEFAULT_RETENTION_HOURS = 168
#: Name prefix of the temp files ``Storage.write`` renames into place (left behind by a crash).
TEMP_PREFIX = ".tmp-"


@dataclass
class VacuumResult:
    """What vacuum deleted (or would delete, for a dry run), as paths relative to the dataset root.

    Only files that were really there (and, unless ``dry_run``, really deleted by this call) are listed.
    """

    parquet_files: list[str] = field(default_factory=list)
    chunk_files: list[str] = field(default_factory=list)
    retained_versions: list[int] = field(default_factory=list)
    dry_run: bool = False

    @property
    def files(self) -> list[str]:
        return self.parquet_files + self.chunk_files


def check_retention(retention_hours: object, *, enforce_retention_duration: bool) -> float:
    """``retention_hours`` as a float when it is a finite number >= 0 (and >= 168 h when enforced)."""
    if isinstance(retention_hours, bool) or not isinstance(retention_hours, numbers.Real) \
            or not math.isfinite(float(retention_hours)) or retention_hours < 0:
        raise InvalidOptionError(f"vacuum: retention_hours must be a finite number of hours >= 0, not "
                                 f"{retention_hours!r}")
    hours = float(retention_hours)
    if enforce_retention_duration and hours < DEFAULT_RETENTION_HOURS:
        raise InvalidOptionError(
            f"retention_hours={hours:g} is below the {DEFAULT_RETENTION_HOURS} h safety minimum; "
            "pass enforce_retention_duration=False if no reader or writer needs older versions"
        )
    return hours


def retained_versions(dt: DeltaTable, storage: Storage, retention_hours: float) -> list[int]:
    """Versions a reader may still open: the latest, every version live inside the window, and every
    tagged version (:mod:`deeplake_spark.dataset.tags`), whatever its age.

    Commit times come from ``commitInfo.timestamp`` or, where a writer left it out, from the commit
    file's modification time (see :func:`delta_log.history`).
    """
    cutoff_ms = (time.time() - retention_hours * 3600) * 1000
    commits = sorted((int(c["version"]), c.get("timestamp")) for c in delta_log.history(dt, storage))
    keep = []
    for i, (version, _ts) in enumerate(commits):
        next_ts = commits[i + 1][1] if i + 1 < len(commits) else None
        # a version stays readable while it was the latest at some time after the cutoff; a
        # successor of unknown time (its commit file vanished meanwhile) keeps it too
        if next_ts is None or next_ts >= cutoff_ms:
            keep.append(version)
    tagged = {v for v in read_tags(storage).values() if v <= dt.version()}
    return sorted(set(keep) | tagged)


def _snapshot(dt: DeltaTable, version: int) -> tuple[list[str], DatasetSchema]:
    """Data files (relative, decoded) and schema of ``version``."""
    try:
        dt.load_as_version(version)
        actions = pa.table(dt.get_add_actions(flatten=False))
        arrow_schema = pa.schema(dt.schema().to_arrow())
    except (DeltaError, OSError) as e:  # delta-rs reports I/O failures as bare OSError
        raise StorageError(f"dataset {dt.table_uri}: vacuum cannot load version {version} of the Delta log: {e}") from e
    files = [delta_files.data_path(p, table=dt.table_uri, action=f"add (version {version})")
             for p in actions.column("path").to_pylist()]
    return files, DatasetSchema.from_arrow(arrow_schema)


def _chunk_keys(storage: Storage, relpath: str, tensors: set[str], inline: frozenset[str] = frozenset()) -> set[str]:
    """``"<tensor>/<chunk id>"`` of every ref in one data file. Raises FileNotFoundError when it is gone.

    ``inline``: tensors some retained version stores inline (a plain column of values, no refs); such
    a column is skipped when it is not a ref struct in this file (a version from before or after an
    overwrite that changed the tensor's storage). Any other non-ref column is a damaged file.
    """
    try:
        with storage.open_input(relpath) as f:
            parquet = pq.ParquetFile(f)
            present = sorted(tensors & set(parquet.schema_arrow.names))
            table = parquet.read(columns=present)
    except (FileNotFoundError, DeepLakeSparkError):
        raise
    except OSError as e:
        raise StorageError(f"vacuum: reading the refs of {storage.uri_of(relpath)} failed: {e}") from e
    except (pa.ArrowInvalid, ValueError) as e:
        raise CorruptDatasetError(f"dataset {storage.uri}: data file {relpath} is not valid Parquet ({e}); "
                                  "vacuum deleted nothing") from e
    keys: set[str] = set()
    for name in present:
        column = table.column(name)
        if pa.types.is_null(column.type):
            continue  # a writer that only knew the tabular columns (all refs null)
        if name in inline and not pa.types.is_struct(column.type):
            continue  # values, not refs
        if not pa.types.is_struct(column.type) or column.type.get_field_index("chunk") < 0:
            raise CorruptDatasetError(f"dataset {storage.uri}: column {name!r} of data file {relpath} is "
                                      f"{column.type}, not a tensor ref; vacuum deleted nothing")
        try:
            # other engines rewrite refs with string_view / large_string chunk ids: compare as strings
            ids = pc.unique(pc.drop_null(pc.struct_field(column, "chunk").cast(pa.string())))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise CorruptDatasetError(f"dataset {storage.uri}: the chunk ids of column {name!r} in data file "
                                      f"{relpath} are not strings ({e}); vacuum deleted nothing") from e
        keys.update(f"{name}/{chunk_id}" for chunk_id in ids.to_pylist())
    return keys


def _own_chunk_files(storage: Storage) -> list[FileEntry]:
    """Chunk files and temp files directly inside ``_tensors/<tensor>/`` (links never listed)."""
    out = []
    for entry in storage.list(TENSORS_DIR):
        parts = entry.path.split("/")
        if len(parts) != 3:
            continue  # not a file this library writes
        name = parts[2]
        if name.startswith(TEMP_PREFIX) or (
                name.endswith(CHUNK_SUFFIX) and CHUNK_ID_PATTERN.fullmatch(name[: -len(CHUNK_SUFFIX)])):
            out.append(entry)
    return out


#: Data file names of this library's writers: delta-rs' ``write_deltalake`` (Python API appends)
#: and the Spark task writer (``distributed.TaskWriter``), both at the table root.
_WRITER_FILE = re.compile(r"part-\d{5,}-(?:[0-9a-f]{32}|[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}-c\d{3}(?:\.[a-z0-9]+)?)"
                          r"\.parquet")


def _written_for_a_dataset(storage: Storage, relpath: str) -> bool:
    """True for a Parquet file whose schema carries our tensor metadata (on a field: the Python
    writers; as a file-level footer key: the JVM writer, whose files have no Arrow schema), or for
    one that is not (yet) valid Parquet: the interrupted write of a Spark task."""
    try:
        with storage.open_input(relpath) as f:
            schema = pq.read_schema(f)
    except FileNotFoundError:
        return False
    except DeepLakeSparkError:
        raise
    except OSError as e:
        raise StorageError(f"vacuum: reading the footer of {storage.uri_of(relpath)} failed: {e}") from e
    except (pa.ArrowInvalid, ValueError):
        return True
    if schema.metadata and TENSOR_METADATA_KEY.encode() in schema.metadata:
        return True
    return any(f.metadata and TENSOR_METADATA_KEY.encode() in f.metadata for f in schema)


def _uncommitted_files(storage: Storage, logged: set[str], cutoff_ns: int,
                       partition_by: Sequence[str] = ()) -> list[str]:
    """Data files a writer of ours left without committing them (killed, or its commit failed), older
    than the cutoff: at the root, or in a partition folder (``<c1>=<v>/<c2>=<w>/`` of the table's
    partition columns, whether the log names it or only a killed write created it); named like our
    writers' files, named by no log file, and written for a deeplake dataset (a user's or another
    program's Parquet files never are)."""
    entries = storage.list("", recursive=False)
    for folder in _partition_folders(storage, partition_by):
        entries += storage.list(folder, recursive=False)
    return [entry.path for entry in entries
            if entry.path not in logged and _WRITER_FILE.fullmatch(entry.path.rsplit("/", 1)[-1])
            and entry.mtime_ns <= cutoff_ns and _written_for_a_dataset(storage, entry.path)]


def _partition_folders(storage: Storage, partition_by: Sequence[str]) -> list[str]:
    """The table's partition folders, level by level: ``<c1>=*`` at the root, ``<c2>=*`` inside
    those, ... (a folder of another name, such as ``_tensors`` or a user's, is never walked)."""
    level = [""] if partition_by else []
    for column in partition_by:
        level = [f for parent in level for f in storage.list_folders(parent)
                 if f.rsplit("/", 1)[-1].startswith(f"{column}=")]
    return level


def _delete(storage: Storage, paths: list[str], what: str, progress: bool | None) -> list[str]:
    """Delete ``paths``; the ones that were really deleted (not already gone)."""
    deleted = []
    with progress_bar(len(paths), f"vacuum: deleting {what}", "file", progress, auto_min=100) as bar:
        for path in paths:
            if storage.delete(path):
                deleted.append(path)
            bar.update(1)
    return deleted


def vacuum(
    dt: DeltaTable,
    storage: Storage,
    *,
    retention_hours: float = DEFAULT_RETENTION_HOURS,
    dry_run: bool = False,
    enforce_retention_duration: bool = True,
    progress: bool | None = None,
) -> VacuumResult:
    """Remove the dataset's own files that no version inside ``retention_hours`` needs.

    May delete exactly three kinds of file, each only when its modification time is older than
    the retention cutoff:

    (a) Parquet data files that an add or remove action in the Delta log (commits and checkpoints
        still present) names and that no retained version uses;
    (b) chunk files ``_tensors/<tensor>/<chunk id>.dltc`` that no retained version references;
    (c) temp files ``_tensors/<tensor>/.tmp-*`` of interrupted writes, and Parquet files at the
        root (or in one of the table's partition folders) that a writer of this library left
        uncommitted (killed, or its commit failed): named like our writers' files
        (``part-<n>-<uuid>...parquet``), named by no log file, and written for a deeplake dataset
        (tensor metadata in the footer, or an interrupted write).

    A tagged version is retained whatever its age: its Parquet and chunk files are never deleted
    while the tag exists (``ds.delete_tag(name)`` lets a later vacuum remove them).

    Everything else in the folder (a user's files, a nested dataset, links) is left alone.
    Symbolic links are never followed: a link inside the dataset, and whatever it points to, is
    skipped with a warning. Versions inside the window whose data files an earlier, shorter
    vacuum already removed, or that log cleanup made impossible to rebuild, cannot be read; they
    are left out of ``retained_versions`` (the remaining files of the former are kept until they
    leave the window). Any other failure (a Delta action path outside the table, a storage error
    while reading the log or refs, a data file that is not Parquet) raises a typed error before
    anything is deleted.
    Young chunk files are never deleted, so a concurrent writer whose commit has not landed yet
    keeps its chunks.
    """
    hours = check_retention(retention_hours, enforce_retention_duration=enforce_retention_duration)
    cutoff_ns = int((time.time() - hours * 3600) * 1e9)
    try:
        # A handle other writers have moved past would see their new files as unreferenced and delete them.
        dt.update_incremental()
    except (DeltaError, OSError) as e:
        raise StorageError(f"dataset {dt.table_uri}: vacuum cannot read the Delta log: {e}") from e
    latest = dt.version()
    window = retained_versions(dt, storage, hours)
    loadable_from = delta_files.earliest_loadable_version(storage, latest=latest)
    files_of: dict[int, list[str]] = {}
    tensors: set[str] = set()
    inline: set[str] = set()
    try:
        for version in window:
            try:
                files_of[version], schema = _snapshot(dt, version)
            except StorageError:
                if version >= loadable_from:
                    raise
                # its older commits were cleaned from the log: no reader can open this version
                log.warning("vacuum %s: version %d can no longer be rebuilt from the Delta log (commits "
                            "before checkpoint %d are gone); not retained", storage.uri, version, loadable_from)
                continue
            tensors.update(schema.chunked)
            inline.update(schema.inline)
    finally:
        try:
            dt.load_as_version(latest)
        except (DeltaError, OSError) as e:
            raise StorageError(f"dataset {dt.table_uri}: vacuum cannot reload version {latest}: {e}") from e
    # Only log files up to `latest`: what a concurrent writer commits from now on is not ours to judge.
    logged = delta_files.logged_data_files(storage, up_to_version=latest)
    needed = {path for paths in files_of.values() for path in paths}
    on_storage = delta_files.existing_files(storage, logged | needed)

    referenced: set[str] = set()
    missing: set[str] = set()
    with progress_bar(len(needed), "vacuum: scanning refs", "file", progress, auto_min=100) as bar:
        for path in sorted(needed):
            bar.update(1)
            if path not in on_storage:
                if storage.through_link(path):
                    raise StorageError(f"dataset {storage.uri}: data file {path} is reached through a symbolic "
                                       "link; vacuum does not follow links and deleted nothing")
                missing.add(path)
                continue
            try:
                referenced |= _chunk_keys(storage, path, tensors, frozenset(inline))
            except FileNotFoundError:
                missing.add(path)  # deleted meanwhile (e.g. by another vacuum)
    retained = [v for v in window if v in files_of and missing.isdisjoint(files_of[v])]
    if missing:
        log.warning("vacuum %s: versions %s cannot be read any more (%d data files already deleted); they are "
                    "not retained", storage.uri, sorted(set(window) - set(retained)), len(missing))

    parquet = {p for p in logged - needed if p in on_storage and on_storage[p].mtime_ns <= cutoff_ns}
    parquet.update(_uncommitted_files(storage, logged | needed, cutoff_ns, partition_columns(dt)))
    # Commits that landed while we worked (a writer, or a restore re-adding old files) keep their
    # files and the chunks those reference.
    newer = delta_files.logged_data_files(storage, since_version=latest + 1)
    parquet -= newer
    for path in sorted(newer - needed):
        try:
            referenced |= _chunk_keys(storage, path, tensors, frozenset(inline))
        except FileNotFoundError:
            continue  # a newer commit removed it again
    chunks = []
    for entry in _own_chunk_files(storage):
        tensor, name = entry.path.split("/")[1:]
        key = f"{tensor}/{name[: -len(CHUNK_SUFFIX)]}"
        if (name.startswith(TEMP_PREFIX) or key not in referenced) and entry.mtime_ns <= cutoff_ns:
            chunks.append(entry.path)
    chunks.sort()
    parquet = sorted(parquet)
    if not dry_run:
        parquet = _delete(storage, parquet, "Parquet files", progress)
        chunks = _delete(storage, chunks, "chunks", progress)
    log.info("vacuum %s: %d Parquet, %d chunk files %s", storage.uri, len(parquet), len(chunks),
             "would be deleted" if dry_run else "deleted")
    return VacuumResult(parquet, chunks, retained, dry_run)
