"""``Dataset.delete`` / ``update`` / ``restore``: commits delta-rs makes itself (rewriting Parquet
files or re-adding old ones), each with an optional commit message (:mod:`commit_info`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from deltalake.exceptions import CommitFailedError, DeltaError

from deeplake_spark.dataset import delta_log
from deeplake_spark.dataset.commit_info import commit_properties
from deeplake_spark.dataset.sql_checks import check_sql, check_update_columns, dml_failure
from deeplake_spark.errors import StorageError, VersionNotFound

if TYPE_CHECKING:
    from deeplake_spark.dataset.dataset import Dataset

log = logging.getLogger(__name__)


def delete_rows(ds: Dataset, predicate: str | None, *, message: str | None = None) -> int:
    """See :meth:`Dataset.delete`."""
    ds._check_writable()
    properties = commit_properties(message, dataset=ds.path, operation="delete")
    dt = ds.delta_table
    dt.update_incremental()  # act on the latest version, not on what this handle saw last
    check_sql(dt, dataset=ds.path, operation="delete", predicate=predicate)
    try:
        dt.delete(predicate, commit_properties=properties)
    except CommitFailedError as e:
        raise ds._conflict(f"delete({predicate!r})", e) from e
    except OSError as e:
        raise StorageError(f"dataset {ds.path}: delete({predicate!r}) failed to write: {e}") from e
    except DeltaError as e:
        raise dml_failure(ds.path, f"delete({predicate!r})", e) from e
    return ds._after_commit()


def update_rows(ds: Dataset, updates: Mapping[str, str] | None, new_values: Mapping[str, Any] | None,
                predicate: str | None, *, message: str | None = None) -> int:
    """See :meth:`Dataset.update`."""
    ds._check_writable()
    new_values = check_update_columns(ds.schema, updates, new_values, dataset=ds.path)
    properties = commit_properties(message, dataset=ds.path, operation="update")
    dt = ds.delta_table
    dt.update_incremental()
    check_sql(dt, dataset=ds.path, operation="update", predicate=predicate, expressions=updates)
    try:
        dt.update(updates=dict(updates) if updates else None, new_values=dict(new_values) if new_values else None,
                  predicate=predicate, commit_properties=properties)
    except CommitFailedError as e:
        raise ds._conflict("update", e) from e
    except OSError as e:
        raise StorageError(f"dataset {ds.path}: update failed to write: {e}") from e
    except DeltaError as e:
        raise dml_failure(ds.path, "update", e) from e
    return ds._after_commit()


def restore_version(ds: Dataset, version: int | str | datetime, *, message: str | None = None) -> int:
    """See :meth:`Dataset.restore`."""
    ds._check_writable()
    properties = commit_properties(message, dataset=ds.path, operation="restore")
    target_table = delta_log.load_table(ds.path, ds.storage_options,
                                        version=version if isinstance(version, int) else None,
                                        timestamp=None if isinstance(version, int) else version)
    target = target_table.version()
    missing = delta_log.first_missing_file(target_table, ds.storage)
    if missing is not None:
        raise VersionNotFound(f"dataset {ds.path}: cannot restore version {target}: its data file {missing} was "
                              "vacuumed (tag a version to keep it from vacuum)")
    dt = ds.delta_table
    dt.update_incremental()
    if target == dt.version():
        log.info("%s: restore to %s: version %d is already the latest; nothing to do", ds.path, version, target)
        ds._invalidate()
        return target
    try:
        dt.restore(target, commit_properties=properties)
    except CommitFailedError as e:
        raise ds._conflict(f"restore to {version}", e) from e
    except (DeltaError, OSError) as e:
        raise StorageError(f"dataset {ds.path}: restore to {version} failed: {e}") from e
    return ds._after_commit()
