"""Write a new dataset from a stream of column batches in ONE commit (shared by the importers).

The rows go through the dataset layer's :class:`~deeplake_spark.dataset.distributed.TaskWriter`
(chunks per tensor plus one Parquet file, memory bounded by a chunk per tensor and a row group),
then :func:`~deeplake_spark.dataset.distributed.commit_written` creates the Delta table with all of
them in version 0. Until that commit nothing exists at the destination that a reader could open. On
a failure the files written so far are deleted and the error propagates, except when a failed commit
may have landed after all (a dataset exists at the destination now): then the files stay.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from deeplake_spark.dataset import Dataset, DatasetSchema
from deeplake_spark.dataset import open as open_dataset
from deeplake_spark.dataset.create_target import check_create_target
from deeplake_spark.dataset.distributed import TaskWriter, commit_written, existing_schema
from deeplake_spark.dataset.progress import progress_bar
from deeplake_spark.errors import DatasetExistsError, DeepLakeSparkError
from deeplake_spark.storage import normalize_uri

log = logging.getLogger(__name__)


def check_target(dst: str | os.PathLike[str], storage_options: Mapping[str, str] | None) -> str:
    """The normalized URI of ``dst``; DatasetExistsError unless it is missing or an empty folder.

    Called before any source row is read, so a wrong destination fails fast.
    """
    uri = normalize_uri(dst)
    check_create_target(uri, storage_options)
    return uri


def write_new_dataset(uri: str, schema: DatasetSchema, batches: Iterable[Mapping[str, Any]], *, total_rows: int,
                      storage_options: Mapping[str, str] | None = None, operation: str,
                      progress: bool | None = None) -> Dataset:
    """Create the dataset at ``uri`` from ``batches`` ({column: values}, every column of ``schema``)
    in one commit and return it opened at version 0.

    ``total_rows`` sizes the progress bar only. ``operation`` is recorded in the commit
    (``deeplake.operation``), e.g. ``"import deeplake"``.
    """
    writer = TaskWriter(uri, schema, storage_options=storage_options)
    local = "://" not in uri
    existed = local and os.path.exists(uri)
    bar = progress_bar(total_rows, f"import {os.path.basename(uri.rstrip('/'))}", "row", progress)
    committing = False
    try:
        for batch in batches:
            writer.write(batch)
            bar.update(len(next(iter(batch.values()))) if batch else 0)
        written = writer.finish()
        committing = True
        commit_written(uri, schema, [written], storage_options=storage_options, create_only=True,
                       operation=operation)
    except BaseException as e:
        if committing and not isinstance(e, DatasetExistsError) and _may_have_landed(uri, storage_options):
            # e.g. an I/O error after the log entry was written: keep the files, vacuum removes them if
            # no version references them
            log.warning("%s: the %s commit reported %s but may have landed; its files are kept", uri, operation,
                        type(e).__name__)
            raise
        log.info("%s: %s failed; deleting the files written so far", uri, operation)
        writer.discard()
        if local:
            _remove_empty_folders(uri, keep_root=existed)
        raise
    finally:
        bar.close()
    log.info("%s: %s committed %d rows as version 0", uri, operation, writer.rows)
    return open_dataset(uri, storage_options=storage_options)


def _may_have_landed(uri: str, storage_options: Mapping[str, str] | None) -> bool:
    """After a failed commit: does a dataset exist at ``uri`` now (or can that not be told)?"""
    try:
        return existing_schema(uri, storage_options) is not None
    except (DeepLakeSparkError, OSError) as e:
        log.warning("%s: cannot tell whether the failed commit landed: %s", uri, e)
        return True


def _remove_empty_folders(root: str, *, keep_root: bool) -> None:
    """Remove the folders a failed local import left empty (so a retry finds the target as it was)."""
    for folder, _, _ in sorted(os.walk(root), key=lambda entry: -len(entry[0])):
        if folder == root and keep_root:
            continue
        try:
            os.rmdir(folder)  # only succeeds on an empty folder
        except OSError:
            pass  # not empty (or gone): left as it is
