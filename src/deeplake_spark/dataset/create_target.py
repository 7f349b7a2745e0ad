"""Where a new dataset may be created: a missing or empty folder, never one that holds other files.

A dataset owns its whole folder (vacuum, ``info`` and the readers look at everything in it), so
``create()``, the first Spark write to a path and ``import-folder`` refuse a folder that already
holds files: a project folder, another dataset's sub-folder, a folder of images.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import pyarrow.fs as pafs

from deeplake_spark.errors import DatasetExistsError, StorageError
from deeplake_spark.storage import Storage

#: How many entries of a non-empty folder the error names (and, locally, the most it reads).
_SHOWN = 5
_LOG_DIR = "_delta_log"


def _local_entries(root: str, ignore: Callable[[str], bool]) -> list[str] | None:
    """Up to ``_SHOWN`` + 1 entry names of a local folder (folders end in "/"); None when missing."""
    if not os.path.lexists(root):
        return None
    if not os.path.isdir(root):
        raise DatasetExistsError(f"{root} is a file; a dataset is a folder, create it at a new path")
    found: list[str] = []
    try:
        with os.scandir(root) as entries:
            for entry in entries:
                if ignore(entry.name):
                    continue
                is_dir = entry.is_dir(follow_symlinks=False)
                # an empty _delta_log is what a create that failed before its first commit leaves
                if is_dir and entry.name == _LOG_DIR and not os.listdir(entry.path):
                    continue
                found.append(entry.name + ("/" if is_dir else ""))
                if len(found) > _SHOWN:
                    break
    except OSError as e:
        raise StorageError(f"cannot list {root}: {e}") from e
    return found


def _remote_entries(storage: Storage, ignore: Callable[[str], bool]) -> list[str]:
    """Entry names right under an object-store prefix (one delimited listing)."""
    root = storage.full_path("")
    try:
        infos = storage.fs.get_file_info(pafs.FileSelector(root, recursive=False, allow_not_found=True))
    except OSError as e:
        raise StorageError(f"cannot list {storage.uri}: {e}") from e
    found = []
    for info in infos:
        name = info.path[len(root):].strip("/")
        if name and not ignore(name):
            found.append(name + ("/" if info.type == pafs.FileType.Directory else ""))
    return found


def check_create_target(uri: str, storage_options: Mapping[str, str] | None = None, *,
                        ignore: Callable[[str], bool] | None = None) -> None:
    """Raise :class:`DatasetExistsError` unless a new dataset may be created at ``uri``.

    Allowed: a path that does not exist, or an empty folder (prefix). Refused: a Delta table, a
    file, or a folder holding anything else; the message names the path and some of what it holds.
    ``ignore``: tells top-level names that are this write's own (a Spark job's Parquet files and
    ``_tensors``, written before the driver commits version 0).
    """
    storage = Storage(uri, storage_options)
    ignore = ignore or (lambda name: False)
    found = _local_entries(storage.uri, ignore) if storage.is_local else _remote_entries(storage, ignore)
    if not found:
        return
    if f"{_LOG_DIR}/" in found:
        raise DatasetExistsError(f"{storage.uri} already holds a Delta table (it has a {_LOG_DIR} folder); open it "
                                 "with deeplake_spark.open(), or create the dataset in an empty or new folder")
    shown = ", ".join(sorted(found)[:_SHOWN]) + (", ..." if len(found) > _SHOWN else "")
    raise DatasetExistsError(
        f"{storage.uri} is not empty (it holds {shown}); a dataset owns its whole folder, so create it in an "
        "empty or new folder"
    )
