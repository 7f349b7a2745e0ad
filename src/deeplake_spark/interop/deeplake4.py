"""Import a Deep Lake 4 dataset (read with the ``deeplake`` 4.x package) as a new deeplake-spark dataset.

>>> ds = deeplake_spark.from_deeplake("s3://bucket/dl4-dataset", "/data/imported", src_creds={...})
>>> ds.tensors["label"].class_names
('cat', 'dog')

One row per Deep Lake 4 row, in the same order, written in ONE commit (nothing is visible at the
destination until the import is complete; see :mod:`deeplake_spark.interop.sink`). Rows are streamed
in batches of ``batch_rows``, so memory stays bounded whatever the dataset size. JPEG/PNG images are
copied as the encoded bytes Deep Lake 4 stores: no decode, no re-encode. The column mapping is in
:mod:`deeplake_spark.interop.deeplake4_types` and docs/IMPORT.md; a column whose type has no
counterpart is refused by name before anything is written, unless it is listed in ``skip``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from deeplake_spark.dataset import Dataset, DatasetSchema
from deeplake_spark.errors import (
    DatasetNotFoundError,
    DeepLakeSparkError,
    InvalidOptionError,
    MissingDependencyError,
    SchemaError,
    StorageError,
)
from deeplake_spark.interop.deeplake4_types import (
    READ_BINARY,
    READ_BYTES,
    READ_JSON,
    READ_STRUCT,
    READ_TEXT,
    ColumnPlan,
    Unsupported,
    plan_column,
)
from deeplake_spark.interop.sink import check_target, write_new_dataset

log = logging.getLogger(__name__)

DEFAULT_BATCH_ROWS = 256


def _deeplake() -> Any:
    try:
        import deeplake
    except ImportError as e:
        raise MissingDependencyError("from_deeplake needs the deeplake package (Deep Lake 4): "
                                     "pip install 'deeplake-spark[deeplake4]'") from e
    return deeplake


def open_source(src: str, *, creds: Mapping[str, str] | None = None, token: str | None = None) -> Any:
    """The Deep Lake 4 dataset at ``src``, read-only; DatasetNotFoundError / StorageError when it cannot be opened."""
    deeplake = _deeplake()
    try:
        return deeplake.open_read_only(src, dict(creds) if creds else None, token)
    except Exception as e:  # deeplake's exceptions share no base class below Exception
        if isinstance(e, (deeplake.LogNotexistsError, deeplake.NotFoundError)):
            raise DatasetNotFoundError(f"no Deep Lake 4 dataset at {src}: {e}") from e
        raise StorageError(f"cannot open the Deep Lake 4 dataset {src}: {type(e).__name__}: {e} (a Deep Lake 3 "
                           "dataset must first be converted with deeplake.convert)") from e


def _class_names(column: Any) -> list[str] | None:
    metadata = column.metadata
    if "class_names" not in list(metadata.keys()):
        return None
    names = metadata["class_names"]
    return [str(n) for n in names] if isinstance(names, (list, tuple)) else None


def plan_import(source: Any, *, skip: Sequence[str] = ()) -> list[ColumnPlan]:
    """What each column of the Deep Lake 4 dataset ``source`` becomes, in its column order.

    Raises SchemaError naming every column that cannot be represented (and how to leave it out), or a
    ``skip`` entry that is not a column.
    """
    columns = list(source.schema.columns)
    names = [c.name for c in columns]
    unknown = [s for s in skip if s not in names]
    if unknown:
        raise InvalidOptionError(f"skip names column(s) {unknown} that the Deep Lake 4 dataset does not have; "
                                 f"it has {names}")
    plans, refused, invalid = [], [], []
    for col in columns:
        if col.name in skip:
            continue
        kind = str(col.dtype.kind).rsplit(".", 1)[-1]
        try:
            names_of = _class_names(source[col.name]) if kind == "ClassLabel" else None
            plans.append(plan_column(col.name, col.dtype, names_of))
        except Unsupported as e:
            refused.append(f"{col.name!r} ({e.args[0]})")
        except SchemaError as e:  # a column name (e.g. '../x' for a tensor) or class names deeplake-spark refuses
            invalid.append(f"{col.name!r} ({e})")
    if refused or invalid:
        parts = ([f"Deep Lake 4 column(s) {', '.join(refused)} have no deeplake-spark counterpart"] if refused
                 else []) + ([f"column(s) {', '.join(invalid)} are not valid in a deeplake-spark dataset"] if invalid
                             else [])
        raise SchemaError(f"{'; '.join(parts)}; nothing was written. Leave them out with skip=[...] (CLI: --skip "
                          "NAME); docs/IMPORT.md lists the supported types")
    if not plans:
        raise SchemaError("nothing to import: every column of the Deep Lake 4 dataset is skipped")
    return plans


def schema_of(plans: Sequence[ColumnPlan]) -> DatasetSchema:
    """The deeplake-spark schema the planned columns make."""
    return DatasetSchema.from_mapping({p.name: p.target for p in plans})


def _scalar(value: Any) -> Any:
    return None if value is None else (value.item() if isinstance(value, np.generic | np.ndarray) else value)


def read_batch(source: Any, plan: ColumnPlan, start: int, stop: int) -> Any:
    """The values of ``plan``'s column for rows ``[start, stop)``, in the form the writer takes."""
    column = source[plan.name]
    if plan.read in (READ_BYTES, READ_BINARY):
        values: Any = column.get_bytes(slice(start, stop))
        return pa.array(values, type=pa.binary()) if plan.read == READ_BINARY else values
    if plan.read in (READ_JSON, READ_TEXT):
        return [None if b is None else bytes(b).decode("utf-8") for b in column.get_bytes(slice(start, stop))]
    values = column[start:stop]
    if plan.read == READ_STRUCT:
        return [None if v is None else json.dumps(v.to_dict(convert_numpy_to_list=True), sort_keys=True)
                for v in values]
    if isinstance(plan.target, pa.DataType):
        if isinstance(values, np.ndarray):
            return pa.array(values, type=plan.target)
        return pa.array([_scalar(v) for v in values], type=plan.target)
    if plan.target.shape == ():
        return [_scalar(v) for v in values]
    return list(values)


def _batches(source: Any, plans: Sequence[ColumnPlan], num_rows: int, batch_rows: int
             ) -> Iterator[dict[str, Any]]:
    for start in range(0, num_rows, batch_rows):
        stop = min(start + batch_rows, num_rows)
        batch = {}
        for plan in plans:
            try:
                batch[plan.name] = read_batch(source, plan, start, stop)
            except DeepLakeSparkError:
                raise
            except Exception as e:  # deeplake's exceptions share no base class below Exception
                raise StorageError(f"reading Deep Lake 4 column {plan.name!r} ({plan.source_type}), rows "
                                   f"{start}..{stop - 1}: {type(e).__name__}: {e}") from e
        yield batch


def from_deeplake(src: str | Any, dst: str | os.PathLike[str], *, storage_options: Mapping[str, str] | None = None,
                  src_creds: Mapping[str, str] | None = None, token: str | None = None, skip: Sequence[str] = (),
                  batch_rows: int = DEFAULT_BATCH_ROWS, progress: bool | None = None,
                  notes: list[str] | None = None) -> Dataset:
    """Import the Deep Lake 4 dataset ``src`` (a URL/path, or an opened ``deeplake`` dataset or view)
    into a new dataset at ``dst``; returns it (version 0).

    ``storage_options``: for ``dst`` (as in :func:`deeplake_spark.create`); ``src_creds`` / ``token``:
    Deep Lake 4's ``creds`` and ``token`` for ``src``. ``skip``: columns to leave out. ``batch_rows``:
    rows read and written per step (memory is about that many rows of every column).
    ``progress``: tqdm bar (None: only for big imports on a terminal). ``notes``: a list that gets one
    line per column whose mapping needs a word (box formats, decoded images, links), also logged at INFO.
    """
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows <= 0:
        raise InvalidOptionError(f"batch_rows must be a positive int, not {batch_rows!r}")
    if isinstance(skip, str):
        skip = [skip]
    uri = check_target(dst, storage_options)
    if isinstance(src, (str, os.PathLike)):
        source = open_source(os.fspath(src), creds=src_creds, token=token)
    else:
        source = src
    plans = plan_import(source, skip=skip)
    for plan in plans:
        if plan.note:
            line = f"column {plan.name!r} ({plan.source_type}): {plan.note}"
            log.info("%s", line)
            if notes is not None:
                notes.append(line)
    num_rows = len(source)
    return write_new_dataset(uri, schema_of(plans), _batches(source, plans, num_rows, batch_rows),
                             total_rows=num_rows, storage_options=storage_options, operation="import deeplake",
                             progress=progress)
