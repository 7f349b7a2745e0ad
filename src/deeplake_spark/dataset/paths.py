"""Paths that Delta actions name: every reader and vacuum accepts only files inside the table root.

The Delta protocol allows an add action's ``path`` to be an absolute URI. Our datasets never write
one, and a table handed over by a stranger could use one (``file:///etc/...``, ``/abs/x.parquet``,
``../other/x.parquet``) to make a reader return rows of, or vacuum delete, files outside the
dataset. So every place that turns an action's path into a file goes through
:func:`check_data_path`, and the JVM reader applies the same rule (DeltaSnapshot.java).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from deeplake_spark.errors import UnsafePathError

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _problem(path: str) -> str | None:
    if not path:
        return "is empty"
    if "\x00" in path:
        return "holds a NUL byte"
    if _SCHEME.match(path):
        return "is an absolute URI"
    if path.startswith(("/", "\\")):
        return "is an absolute path"
    parts = re.split(r"[/\\]", path)
    if any(p in ("", ".", "..") for p in parts):
        return "has an empty, '.' or '..' component"
    return None


def check_data_path(path: object, *, table: str, action: str = "add") -> str:
    """``path`` (relative to the table root, as in the Delta log) when it stays inside the table.

    Raises :class:`UnsafePathError` naming the table and the action otherwise. The percent-decoded
    form is checked too, so ``%2E%2E/x`` is refused like ``../x``.
    """
    if not isinstance(path, str):
        raise UnsafePathError(f"dataset {table}: a Delta {action} action has no valid path ({path!r})")
    problem = _problem(path) or _problem(unquote(path))
    if problem is not None:
        raise UnsafePathError(
            f"dataset {table}: the Delta {action} action for {path!r} {problem}; only files inside the table "
            "folder are read or deleted (the Delta log was written by a foreign or hostile writer)"
        )
    return path
