"""Which Parquet data files a dataset's Delta log names, and which of them are on storage.

Vacuum and ``deeplake-spark info`` must only ever touch (or count) the dataset's own files. A
dataset folder may also hold a user's files (``README.md``, ``raw_images/``, the source images of
an import, a nested dataset), which no Delta action names. So "the dataset's data files" is read
from the log itself: every path an ``add`` or ``remove`` action names, in the JSON commits and the
checkpoints that still exist. This works for commits written by any engine, with or without
``commitInfo``.

Paths in Delta actions are percent-encoded relative URIs (delta-rs writes the partition folder
``k=a%20b`` as ``k=a%2520b``); the functions here return them decoded, as they are on storage,
after :func:`~deeplake_spark.dataset.paths.check_data_path` has accepted the encoded form.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from deeplake_spark.dataset.paths import check_data_path
from deeplake_spark.errors import CorruptDatasetError, StorageError
from deeplake_spark.storage import FileEntry, Storage

LOG_DIR = "_delta_log"
SIDECARS_DIR = f"{LOG_DIR}/_sidecars"
#: ``<version>.json`` commits, ``<version>.checkpoint[.<part or uuid>...].parquet|json`` checkpoints
#: and ``<from>.<to>.compacted.json`` log compactions: every log file that can hold add/remove actions.
_LOG_FILE = re.compile(r"^(\d{20})\.(?:json|checkpoint(?:\.[^/]+)?\.(?:parquet|json)|\d{20}\.compacted\.json)$")
_FILE_ACTIONS = ("add", "remove")


def data_path(raw: object, *, table: str, action: str) -> str:
    """The storage path (relative, decoded) of a Delta action's ``path``; UnsafePathError if it leaves the table."""
    return unquote(check_data_path(raw, table=table, action=action))


def json_log_actions(text: str, *, table: str, log_file: str) -> Iterator[dict[str, Any]]:
    """The actions (one JSON object a line) of a Delta log file; CorruptDatasetError naming the line."""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            action = json.loads(line)
        except ValueError as e:
            raise CorruptDatasetError(f"dataset {table}: line {number} of the Delta log file {log_file} is not "
                                      f"JSON ({e})") from e
        if not isinstance(action, dict):
            raise CorruptDatasetError(f"dataset {table}: line {number} of the Delta log file {log_file} is not "
                                      "a JSON object")
        yield action


def _json_actions(text: str, *, table: str, log_file: str) -> Iterable[tuple[str, object]]:
    for action in json_log_actions(text, table=table, log_file=log_file):
        for kind in _FILE_ACTIONS:
            body = action.get(kind)
            if body is not None:
                yield kind, body.get("path") if isinstance(body, dict) else None


def _parquet_actions(storage: Storage, relpath: str, *, table: str) -> Iterable[tuple[str, object]]:
    try:
        with storage.open_input(relpath) as f:
            parquet = pq.ParquetFile(f)
            present = [k for k in _FILE_ACTIONS if k in parquet.schema_arrow.names]
            actions = parquet.read(columns=present)
    except (FileNotFoundError, StorageError):
        raise
    except OSError as e:
        raise StorageError(f"reading the Delta checkpoint {storage.uri_of(relpath)} failed: {e}") from e
    except (pa.ArrowInvalid, ValueError) as e:
        raise CorruptDatasetError(f"dataset {table}: the Delta checkpoint {relpath} is not valid Parquet ({e})") from e
    for kind in present:
        column = actions.column(kind)
        if not pa.types.is_struct(column.type) or column.type.get_field_index("path") < 0:
            raise CorruptDatasetError(f"dataset {table}: the {kind!r} column of the Delta checkpoint {relpath} "
                                      "has no path field")
        # struct_field (not StructArray.field): rows of other actions have a null struct here
        for path in pc.struct_field(column, "path").to_pylist():
            if path is not None:
                yield kind, path


def logged_data_files(storage: Storage, *, up_to_version: int | None = None, since_version: int = 0) -> set[str]:
    """Every data file (relative, decoded path) that an add or remove action names in the log files
    of versions ``since_version..up_to_version`` (None: no upper bound): the commits and
    checkpoints still in ``_delta_log``.

    Vacuum bounds it by the version it decides from, so that files a concurrent writer commits
    meanwhile do not count as "the log's and unused". Raises UnsafePathError (nothing returned)
    when any action names a path outside the table.
    """
    table = storage.uri
    paths: set[str] = set()
    for entry in storage.list(LOG_DIR, recursive=False) + storage.list(SIDECARS_DIR, recursive=False):
        name = entry.path.rsplit("/", 1)[-1]
        match = _LOG_FILE.match(name)
        in_sidecars = entry.path.startswith(SIDECARS_DIR + "/")
        if in_sidecars:
            # sidecars of v2 checkpoints hold add/remove actions and are named by a uuid, not a
            # version: read them only when no upper bound is asked for (reading them could make a
            # newer commit's file count as an older version's)
            if up_to_version is not None or not name.endswith(".parquet"):
                continue
        elif match is None or int(match.group(1)) < since_version or (
                up_to_version is not None and int(match.group(1)) > up_to_version):
            continue
        try:
            if name.endswith(".parquet"):
                actions = list(_parquet_actions(storage, entry.path, table=table))
            else:
                text = storage.read(entry.path).decode("utf-8", errors="replace")
                actions = list(_json_actions(text, table=table, log_file=entry.path))
        except FileNotFoundError:
            continue  # removed by log cleanup while we list: its versions are gone from the log too
        for kind, raw in actions:
            paths.add(data_path(raw, table=table, action=kind))
    return paths


def earliest_loadable_version(storage: Storage, *, latest: int) -> int:
    """The oldest version the log can still rebuild: 0 while every commit is there; after log
    cleanup (delta-rs ``cleanup_metadata``, Spark's automatic one) the oldest checkpoint from which
    the remaining commits lead to ``latest``. Older versions are gone for every reader.
    """
    commits, checkpoints = set(), set()
    for entry in storage.list(LOG_DIR, recursive=False):
        name = entry.path.rsplit("/", 1)[-1]
        match = _LOG_FILE.match(name)
        if match is None:
            continue
        version = int(match.group(1))
        if name == f"{version:020d}.json":
            commits.add(version)
        elif ".checkpoint" in name:
            checkpoints.add(version)
    first = latest
    while first - 1 in commits:
        first -= 1
    if first == 0 and 0 in commits:
        return 0
    # a checkpoint at first - 1 or later, followed by commits up to `latest`
    usable = [c for c in checkpoints if first - 1 <= c <= latest]
    return min(usable) if usable else latest


def existing_files(storage: Storage, relpaths: Iterable[str]) -> dict[str, FileEntry]:
    """The files of ``relpaths`` that exist, stored in the dataset itself (not through a link).

    One non-recursive listing per folder (the root, partition folders), never a walk of the whole
    dataset folder, which may hold a user's big unrelated trees.
    """
    wanted = set(relpaths)
    folders = {p.rsplit("/", 1)[0] if "/" in p else "" for p in wanted}
    found: dict[str, FileEntry] = {}
    for folder in sorted(folders):
        for entry in storage.list(folder, recursive=False):
            if entry.path in wanted:
                found[entry.path] = entry
    return found
