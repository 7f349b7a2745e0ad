"""Everything that talks to delta-rs: create, load a version, commit, history, restore, delete, update."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from deeplake_spark.dataset import features
from deeplake_spark.dataset.commit_info import commit_metadata, message_of
from deeplake_spark.dataset.create_target import check_create_target
from deeplake_spark.dataset.delta_files import json_log_actions
from deeplake_spark.dataset.paths import check_data_path
from deeplake_spark.errors import (
    CommitConflict,
    DatasetExistsError,
    DatasetNotFoundError,
    StorageError,
    UnsafeStorageError,
    VersionNotFound,
)
from deeplake_spark.storage import S3_SCHEMES, Storage, delta_storage_options, is_true, s3_option
from deeplake_spark.storage.filesystem import scheme_unavailable

log = logging.getLogger(__name__)
ENGINE_INFO = {"engine": "deeplake-spark"}
LOG_DIR = "_delta_log"
#: commitInfo key holding the random id of one append/overwrite (see find_commit).
WRITE_ID_KEY = "deeplake.writeId"
# delta-rs' default of 15 commit attempts ran out for ~3% of appends with 8 concurrent writers on
# 2 cores (tests/reliability). A retry of a blind append only re-reads the commits that won the race.
COMMIT_RETRIES = 100


def check_commit_safety(uri: str, storage_options: Mapping[str, str] | None) -> None:
    """Refuse S3 writes whose Delta commits could silently overwrite each other.

    delta-rs (1.x) commits a version on S3 with a conditional PUT (``If-None-Match: *``): safe on
    AWS S3 and on S3-compatible servers that honour that header (SeaweedFS, MinIO, Ceph RGW and
    Cloudflare R2 in recent releases), silently unsafe on servers that ignore it. A custom endpoint
    must therefore say ``conditional_put=etag`` (the server honours conditional writes) or
    ``AWS_S3_ALLOW_UNSAFE_RENAME=true`` (one writer at a time). delta-rs 1.x dropped the DynamoDB
    locking provider, so ``AWS_S3_LOCKING_PROVIDER`` alone is refused. Options may also be set as
    ``AWS_*`` environment variables.
    """
    if not uri.startswith(S3_SCHEMES):
        return
    conditional_put = s3_option(storage_options, "conditional_put")
    if conditional_put is not None:
        if conditional_put.strip().lower() != "etag":
            raise UnsafeStorageError(
                f"{uri}: conditional_put={conditional_put!r} is not supported; delta-rs commits on S3 with "
                "conditional writes, so use conditional_put='etag' (or leave it unset on AWS S3)"
            )
        return
    if is_true(s3_option(storage_options, "allow_unsafe_rename")):
        log.warning("%s: AWS_S3_ALLOW_UNSAFE_RENAME is set; concurrent writers may lose commits", uri)
        return
    endpoint = s3_option(storage_options, "endpoint")
    if s3_option(storage_options, "locking_provider") is not None:
        raise UnsafeStorageError(
            f"{uri}: AWS_S3_LOCKING_PROVIDER (DynamoDB) is no longer supported by delta-rs 1.x, which commits with "
            "conditional writes instead. Remove it and pass storage_options={'conditional_put': 'etag'} if the "
            f"server{' at ' + endpoint if endpoint else ''} honours If-None-Match"
        )
    if endpoint is None:
        return  # AWS S3 itself: conditional writes are supported (since 2024) and used by default
    raise UnsafeStorageError(
        f"{uri}: S3-compatible endpoint {endpoint} is not known to honour conditional writes, without which "
        "concurrent Delta commits can silently overwrite each other. Pass storage_options={'conditional_put': "
        "'etag'} if it supports If-None-Match on PUT (SeaweedFS, MinIO, Ceph RGW, Cloudflare R2, recent releases), "
        "or {'AWS_S3_ALLOW_UNSAFE_RENAME': 'true'} if only one process writes at a time"
    )


def _parse_timestamp(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as e:
        raise VersionNotFound(f"cannot parse timestamp {value!r}; use ISO 8601, e.g. 2026-01-31T12:00:00Z") from e
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def load_table(
    uri: str,
    storage_options: Mapping[str, str] | None = None,
    *,
    version: int | None = None,
    timestamp: str | datetime | None = None,
) -> DeltaTable:
    """The Delta table at ``uri`` at a version or timestamp (latest when both are None)."""
    options = delta_storage_options(uri, storage_options)
    try:
        dt = DeltaTable(uri, storage_options=options)
    except TableNotFoundError as e:
        raise DatasetNotFoundError(f"no deeplake dataset at {uri} (no Delta log found)") from e
    except (DeltaError, OSError) as e:
        if "://" not in uri and os.path.isfile(uri):
            raise DatasetNotFoundError(f"no deeplake dataset at {uri}: it is a file, a dataset is a folder") from e
        raise scheme_unavailable(uri, e) or StorageError(f"cannot open {uri}: {e}") from e
    if version is not None and timestamp is not None:
        raise VersionNotFound(f"{uri}: pass either version or timestamp, not both")
    if version is not None:
        latest = dt.version()
        if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= latest:
            raise VersionNotFound(f"{uri}: version {version!r} does not exist (versions 0..{latest})")
        try:
            dt.load_as_version(version)
        except DeltaError as e:
            raise VersionNotFound(f"{uri}: version {version} cannot be loaded (vacuumed or expired log?): {e}") from e
    elif timestamp is not None:
        when = _parse_timestamp(timestamp)
        first_ms = min(int(c.get("timestamp") or 0) for c in dt.history())
        first = datetime.fromtimestamp(first_ms / 1000, tz=UTC).isoformat()
        if when.timestamp() * 1000 < first_ms:
            raise VersionNotFound(f"{uri}: no version at or before timestamp {when.isoformat()} (first commit at {first})")
        try:
            dt.load_as_version(when)
        except (DeltaError, ValueError) as e:
            raise VersionNotFound(f"{uri}: no version at or before timestamp {when.isoformat()} (first commit at {first})") from e
    features.check_readable(dt.protocol(), dt.metadata().configuration, table=uri)
    return dt


def create_table(
    uri: str, schema: pa.Schema, storage_options: Mapping[str, str] | None = None, *, description: str | None = None,
    partition_by: list[str] | None = None,
) -> DeltaTable:
    """Commit version 0 of a new table at ``uri``, which must be missing or an empty folder;
    ``partition_by``: its partition columns (checked by the caller)."""
    check_commit_safety(uri, storage_options)
    try:
        DeltaTable(uri, storage_options=delta_storage_options(uri, storage_options))
    except TableNotFoundError:
        pass  # no table yet
    except (DeltaError, OSError) as e:
        # gs:// without credentials & co: say so now (pyarrow's client would retry for minutes below)
        unavailable = scheme_unavailable(uri, e)
        if unavailable is not None:
            raise unavailable from e
        # not a folder at all: check_create_target says which
    else:
        raise DatasetExistsError(f"{uri} already holds a Delta table; open it with deeplake_spark.open()")
    check_create_target(uri, storage_options)
    try:
        return DeltaTable.create(
            uri,
            schema,
            mode="error",
            partition_by=partition_by or None,
            description=description,
            storage_options=delta_storage_options(uri, storage_options),
            commit_properties=CommitProperties(custom_metadata=ENGINE_INFO),
        )
    except (DeltaError, OSError) as e:
        # another process may have created it between the check above and our commit of version 0
        try:
            created_concurrently = DeltaTable.is_deltatable(uri, storage_options=delta_storage_options(uri,
                                                                                                       storage_options))
        except (DeltaError, OSError):
            created_concurrently = False  # the storage itself fails (missing bucket): report the create error
        if created_concurrently:
            raise DatasetExistsError(f"{uri} already holds a Delta table (created concurrently); open it with "
                                     "deeplake_spark.open()") from e
        raise scheme_unavailable(uri, e) or StorageError(f"cannot create dataset at {uri}: {e}") from e


def write_rows(
    dt: DeltaTable, table: pa.Table, *, mode: str = "append", storage_options: Mapping[str, str] | None = None,
    operation: str = "append", write_id: str | None = None, message: str | None = None,
) -> int:
    """Commit ``table`` (tabular + ref columns) as one Delta transaction; returns the new version.

    ``write_id`` is recorded in the commit info so that :func:`find_commit` can tell, after an
    error, whether this commit landed; ``message`` as its ``userMetadata`` (see :mod:`commit_info`).
    """
    check_commit_safety(dt.table_uri, storage_options)
    metadata = commit_metadata(message, {**ENGINE_INFO, "deeplake.operation": operation})
    if write_id is not None:
        metadata[WRITE_ID_KEY] = write_id
    try:
        # Commit on top of the latest version: delta-rs fails every write from a handle that a
        # concurrent delete has moved past ("deleted data this operation read"), retries included.
        dt.update_incremental()
        write_deltalake(
            dt,
            table,
            mode=mode,  # type: ignore[arg-type]
            schema_mode=None,
            commit_properties=CommitProperties(custom_metadata=metadata, max_commit_retries=COMMIT_RETRIES),
        )
    except CommitFailedError as e:
        try:
            dt.update_incremental()  # so that a retry through the same handle starts from the latest version
        except (DeltaError, OSError) as reload_error:
            log.warning("%s: could not reload the log after a conflict: %s", dt.table_uri, reload_error)
        raise CommitConflict(f"{dt.table_uri}: commit lost to concurrent writers ({e}); nothing of it was "
                             "committed, retry the write") from e
    except DeltaError as e:
        raise StorageError(f"{dt.table_uri}: write failed: {e}") from e
    except OSError as e:
        # delta-rs reports I/O failures of the commit itself (e.g. a connection reset while PUTting
        # the log entry) as a bare OSError. The commit may or may not have landed.
        raise StorageError(f"{dt.table_uri}: write failed, the commit may or may not have landed "
                           f"(open the dataset again to see): {e}") from e
    # delta-rs leaves ``dt`` at the version it just committed; read it before catching up with
    # other writers, whose commits may already follow ours.
    version = dt.version()
    try:
        dt.update_incremental()
    except (DeltaError, OSError) as e:
        log.warning("%s: committed version %d but could not reload the log: %s", dt.table_uri, version, e)
    return version


def find_commit(storage: Storage, write_id: str, *, after: int) -> int | None:
    """The version after ``after`` whose commit info holds ``write_id``, or None when no commit in
    the log has it (the commit did not land). Reads the commit files one by one until the first
    missing one; raises StorageError when the log cannot be read (the outcome stays unknown)."""
    version = after + 1
    while True:
        try:
            text = storage.read(f"{LOG_DIR}/{version:020d}.json")
        except FileNotFoundError:
            return None
        for line in text.splitlines():
            try:
                action = json.loads(line) if line.strip() else {}
            except ValueError:
                break  # a damaged commit file is not ours: ours was written whole
            info = action.get("commitInfo") if isinstance(action, dict) else None
            if isinstance(info, dict) and info.get(WRITE_ID_KEY) == write_id:
                return version
        version += 1


def ordered_fragments(dt: DeltaTable, schema: pa.Schema | None = None) -> tuple[pds.FileSystemDataset, list[int] | None]:
    """The table's Parquet files as a pyarrow dataset in commit order, and the rows of each file
    (from the add actions' stats; None when a file has none). Reads the add actions once.

    delta-rs lists files in no stable order; rows are ordered by (file modification time, path) so
    with one writer ``ds[i]`` is stable across versions: rows of older commits come first. Rows
    rewritten by ``delete``/``update`` move to the position of that commit. With concurrent writers
    a file written earlier can be committed later and sort before rows of an earlier commit
    (tests/reliability measures it; Delta add actions carry no commit version to sort by).
    """
    actions = checked_add_actions(dt)  # before delta-rs builds a dataset over the files
    base = dt.to_pyarrow_dataset(schema=schema)
    # keyed by the path as stored: delta-rs' fragments name partitioned files by their decoded
    # path (``k=a b/part-...``), the add actions by the percent-encoded one (``k=a%20b/part-...``)
    by_path = {
        unquote(p): (t, n)
        for p, t, n in zip(actions.column("path").to_pylist(),
                           actions.column("modification_time").cast(pa.int64()).to_pylist(),
                           actions.column("num_records").to_pylist())
    }
    root = dt.table_uri.rstrip("/")

    def action_of(fragment: Any) -> tuple[int, int | None] | None:
        path = fragment.path
        found = by_path.get(path) or by_path.get(unquote(path))
        if found is None and "/" in path:  # an absolute path: relative to the table root
            tail = path.split(root.split("://", 1)[-1].rstrip("/") + "/", 1)[-1]
            found = by_path.get(tail) or by_path.get(unquote(tail))
        return found or by_path.get(path.rsplit("/", 1)[-1])

    def key(fragment: Any) -> tuple[int, str]:
        action = action_of(fragment)
        return (action[0] if action is not None else 1 << 62, fragment.path)

    fragments = sorted(base.get_fragments(), key=key)
    counts = []
    for fragment in fragments:
        action = action_of(fragment)
        if action is None or action[1] is None:
            counts = None
            break
        counts.append(int(action[1]))
    return pds.FileSystemDataset(fragments, base.schema, base.format, base.filesystem), counts


def ordered_fragments_dataset(dt: DeltaTable, schema: pa.Schema | None = None) -> pds.FileSystemDataset:
    """The table's Parquet files as a pyarrow dataset in commit order (see :func:`ordered_fragments`)."""
    return ordered_fragments(dt, schema)[0]


def checked_add_actions(dt: DeltaTable) -> pa.Table:
    """The add actions of ``dt``'s version, after checking that every path stays inside the table.

    A foreign or hostile writer can name files outside the table (``../x.parquet``,
    ``file:///...``, ``/abs/...``); no reader of ours may return their rows, so the whole version
    is refused with :class:`UnsafePathError` naming the action.
    """
    actions = pa.table(dt.get_add_actions(flatten=False))
    for path in actions.column("path").to_pylist():
        check_data_path(path, table=dt.table_uri, action="add")
    return actions


def first_missing_file(dt: DeltaTable, storage: Storage) -> str | None:
    """A data file of ``dt``'s version that is gone from storage (the version was vacuumed), or None.

    One listing of the table folder, plus a look-up per file in a sub-folder (partitions).
    """
    top = {entry.path for entry in storage.list("", recursive=False)}
    for path in checked_add_actions(dt).column("path").to_pylist():
        stored = unquote(path)  # partition folders: Delta percent-encodes the path of an add action
        if path not in top and stored not in top and ("/" not in stored or not storage.exists(stored)):
            return path
    return None


def row_count(dt: DeltaTable) -> int:
    actions = checked_add_actions(dt)
    counts = actions.column("num_records")
    if counts.null_count:
        return ordered_fragments_dataset(dt).count_rows()
    return int(pc.sum(counts).as_py() or 0)


def history(dt: DeltaTable, storage: Storage, limit: int | None = None) -> list[dict[str, Any]]:
    """Commit infos of ``dt``'s version and older ones, newest first, each with its ``version``,
    ``timestamp`` (ms since the epoch) and ``message`` (the commit's ``userMetadata``, or None).

    Read from the commit files themselves: delta-rs' ``DeltaTable.history`` lists every commit in
    storage but numbers them down from the version the handle has loaded, so on a past version (or
    on a handle that other writers have moved past) all its numbers are off. ``commitInfo`` is
    optional in the Delta protocol.

    ``timestamp`` is the commit time that time travel (``open(..., timestamp=)``, ``timestampAsOf``,
    ``TIMESTAMP AS OF``) uses, as in Delta's ``DESCRIBE HISTORY``: the in-commit timestamp when the
    commit records one, else the commit file's modification time. A writer's ``commitInfo.timestamp``
    is taken before its commit file is written and can be a few ms earlier; travelling to it could
    land on the version before.
    """
    out: list[dict[str, Any]] = []
    for version in range(dt.version(), -1, -1):
        if limit is not None and len(out) >= limit:
            break
        commit_file = f"{LOG_DIR}/{version:020d}.json"
        try:
            text = storage.read(commit_file)
        except FileNotFoundError:
            break  # older commit files were cleaned up; a checkpoint holds their state
        info: dict[str, Any] = {}
        for action in json_log_actions(text, table=storage.uri, log_file=commit_file):
            if isinstance(action.get("commitInfo"), dict):
                info = action["commitInfo"]
                break
        timestamp = info.get("inCommitTimestamp")
        if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)) or timestamp <= 0:
            entry = storage.info(commit_file)
            timestamp = entry.mtime_ns // 1_000_000 if entry is not None else info.get("timestamp")
        out.append({**info, "version": version, "timestamp": None if timestamp is None else int(timestamp),
                    "message": message_of(info)})
    return out


def arrow_schema(dt: DeltaTable) -> pa.Schema:
    """The table's schema as a ``pyarrow.Schema`` (field metadata included)."""
    return pa.schema(dt.schema().to_arrow())
