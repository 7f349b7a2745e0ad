"""Commit messages: the ``message=`` of a write, kept in the Delta commit's ``commitInfo``.

The message is stored as ``commitInfo.userMetadata``, the field delta-spark fills from
``spark.databricks.delta.commitInfo.userMetadata`` (or the ``userMetadata`` write option) and shows
in ``DESCRIBE HISTORY``; delta-rs writes a ``userMetadata`` key of ``CommitProperties.custom_metadata``
into that same field. So a message written here shows in Spark, and one written by Spark shows in
:meth:`Dataset.history` and ``deeplake-spark history``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deltalake import CommitProperties

from deeplake_spark.errors import InvalidOptionError

#: The ``commitInfo`` field holding a commit's message (Delta's name for it).
USER_METADATA_KEY = "userMetadata"
#: Longest message accepted: a message lives in every reader's copy of the log, keep it a sentence.
MAX_MESSAGE_CHARS = 10_000


def check_message(message: object, *, dataset: str, operation: str) -> str | None:
    """``message`` when it is None or a string of at most :data:`MAX_MESSAGE_CHARS` characters."""
    if message is None:
        return None
    if not isinstance(message, str):
        raise InvalidOptionError(f"dataset {dataset}: {operation}(message=...) must be a string, not "
                                 f"{type(message).__name__}")
    if len(message) > MAX_MESSAGE_CHARS:
        raise InvalidOptionError(f"dataset {dataset}: {operation}(message=...) has {len(message)} characters; "
                                 f"at most {MAX_MESSAGE_CHARS} are kept in the Delta log")
    return message


def commit_metadata(message: str | None, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``base`` plus the message under :data:`USER_METADATA_KEY` (absent when there is none)."""
    metadata = dict(base or {})
    if message is not None:
        metadata[USER_METADATA_KEY] = message
    return metadata


def commit_properties(message: str | None, *, dataset: str, operation: str) -> CommitProperties | None:
    """delta-rs ``CommitProperties`` carrying the message of a delete/update/restore (None without one)."""
    checked = check_message(message, dataset=dataset, operation=operation)
    if checked is None:
        return None
    return CommitProperties(custom_metadata=commit_metadata(checked))


def message_of(info: Mapping[str, Any]) -> str | None:
    """The message of one commit info (None when the commit has none)."""
    value = info.get(USER_METADATA_KEY)
    return value if isinstance(value, str) else None
