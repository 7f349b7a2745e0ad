"""Check SQL predicates and expressions for ``delete``/``update`` before delta-rs runs them.

delta-rs parses a predicate's first expression and ignores what follows it, so ``"id = 1 garbage"``
or ``"id >= 2; this is not sql"`` used to delete rows. Each text is planned here, whole, by the
same engine (DataFusion, through ``deltalake.QueryBuilder``) against the table's own schema, both
inside parentheses and bare (each followed by a newline, so a trailing ``--`` comment stays one),
so neither trailing text nor an unbalanced ``)`` can slip past.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deltalake import DeltaTable, QueryBuilder
from deltalake.exceptions import DeltaError

from deeplake_spark.dataset.inline import WIDENED_DTYPES, inline_array
from deeplake_spark.dataset.schema import DatasetSchema
from deeplake_spark.errors import DeepLakeSparkError, SchemaError, StorageError

_TABLE = "deeplake_check"


def _plan(dt: DeltaTable, query: str) -> None:
    # LIMIT 0: DataFusion parses and plans the whole statement but reads no data file
    QueryBuilder().register(_TABLE, dt).execute(query).read_all()


def check_sql(dt: DeltaTable, *, dataset: str, operation: str, predicate: str | None = None,
              expressions: Mapping[str, str] | None = None) -> None:
    """Raise :class:`SchemaError` naming ``dataset``, ``operation`` and the text when ``predicate``
    or one of ``expressions`` (column -> SQL expression) is not one whole valid SQL expression."""
    checks: list[tuple[str, list[str]]] = []
    if predicate is not None:
        if not isinstance(predicate, str) or not predicate.strip():
            raise SchemaError(f"dataset {dataset}: {operation}: predicate {predicate!r} is not a SQL expression "
                              "(pass None for all rows); nothing was changed")
        checks.append((f"predicate {predicate!r}", [
            f"SELECT 1 FROM {_TABLE} WHERE ({predicate}\n) LIMIT 0",
            f"SELECT 1 FROM {_TABLE} WHERE {predicate}\nLIMIT 0",
        ]))
    for column, expression in (expressions or {}).items():
        if not isinstance(expression, str) or not expression.strip():
            raise SchemaError(f"dataset {dataset}: {operation}: expression {expression!r} for column {column!r} "
                              "is not a SQL expression; nothing was changed")
        checks.append((f"expression {expression!r} for column {column!r}", [
            f"SELECT ({expression}\n) AS v FROM {_TABLE} LIMIT 0",
            f"SELECT {expression}\nAS v FROM {_TABLE} LIMIT 0",
        ]))
    for what, queries in checks:
        for query in queries:
            try:
                _plan(dt, query)
            except (DeltaError, ValueError, OSError) as e:
                first_line = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise SchemaError(f"dataset {dataset}: {operation}: {what} is not one valid SQL expression over "
                                  f"the table's columns ({first_line}); nothing was changed") from e


def check_update_columns(schema: DatasetSchema, updates: Mapping[str, str] | None,
                         new_values: Mapping[str, Any] | None, *, dataset: str) -> dict[str, Any] | None:
    """The ``new_values`` an ``update`` may write, once every named column is tabular or an inline
    scalar tensor; an inline tensor's literal is checked (and json turned into its text) as in append.

    A SQL expression may not set a tensor whose column type is wider than its dtype (uint8 stored as
    short): nothing would stop it from leaving 300 in a uint8 label.
    """
    names = list((updates or {}).keys()) + list((new_values or {}).keys())
    bad = [n for n in names if n not in schema.order or (n in schema.tensors and n not in schema.inline)]
    if bad:
        raise SchemaError(f"dataset {dataset}: update() works on tabular columns and scalar tensors stored "
                          f"inline only; bad column(s) {bad}")
    widened = [n for n in (updates or {}) if n in schema.inline and schema.tensors[n].dtype in WIDENED_DTYPES]
    if widened:
        raise SchemaError(f"dataset {dataset}: update(): tensor(s) {widened} have a dtype wider on disk than in "
                          "the tensor (uint8/uint16/uint32/float16); set them with new_values=, whose values are "
                          "checked, not with SQL expressions")
    if not new_values:
        return None
    return {name: inline_array(schema.tensors[name], [value], where=f"dataset {dataset}, tensor {name!r}")[0].as_py()
            if name in schema.inline else value for name, value in new_values.items()}


def dml_failure(dataset: str, operation: str, error: Exception) -> DeepLakeSparkError:
    """The typed error for a DeltaError from a delta-rs delete/update whose SQL was checked already.

    delta-rs raises one generic DeltaError for bad SQL and for I/O failures alike; an OS error in
    its message (read-only or full disk, permissions) makes it a StorageError.
    """
    text = str(error)
    if any(word in text for word in ("os error", "Read-only file system", "Permission denied", "No space left")):
        return StorageError(f"dataset {dataset}: {operation} failed to write: {text}")
    return SchemaError(f"dataset {dataset}: {operation} failed: {text}")
