"""Options of the ``deeplake`` Spark source (read side): parsing and validation.

Spark hands a data source its options as a case-insensitive map with lower-cased keys; ``CREATE
TABLE ... USING deeplake`` adds catalog keys (``location``, ``owner``, ``provider``,
``option.<key>``) that are ignored here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from deeplake_spark.errors import DatasetNotFoundError, InvalidOptionError
from deeplake_spark.storage import normalize_uri

#: How a tensor column is returned by the source.
TENSOR_MODES = ("ref", "bytes", "array")

#: Options a user may pass, as users spell them (Spark lower-cases keys).
READ_OPTIONS = ("path", "versionAsOf", "timestampAsOf", "tensors", "columns")
#: Keys forwarded to the storage layer (credentials, endpoints) with the prefix removed.
STORAGE_PREFIX = "storage."
#: Keys of object-store settings accepted without the ``storage.`` prefix.
STORAGE_KEY_PREFIXES = ("aws_", "azure_", "google_")
#: Keys added by Spark's catalog for ``CREATE TABLE ... USING deeplake``; never user options.
_CATALOG_KEYS = frozenset({"location", "owner", "provider", "comment", "external", "is_managed_location",
                           "transient_lastddltime"})
_CATALOG_PREFIX = "option."


def _path_of(value: str) -> str:
    # The catalog rewrites OPTIONS (path '/x') into a Hadoop-style 'file:/x'.
    if value.startswith("file:") and not value.startswith("file://"):
        value = value[len("file:"):]
        value = "/" + value.lstrip("/")
    return normalize_uri(value)


def _parse_tensor_modes(value: str) -> tuple[str, dict[str, str]]:
    """``"bytes"`` -> default mode; ``"image=bytes,embedding=array"`` -> per-column modes."""
    default, per_column = "ref", {}
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        name, sep, mode = part.partition("=")
        mode = (mode if sep else name).strip().lower()
        if mode not in TENSOR_MODES:
            raise InvalidOptionError(
                f"option 'tensors': bad value {value!r}; allowed: one of {TENSOR_MODES}, or a comma list of "
                f"column=mode pairs such as 'image=bytes,embedding=array'"
            )
        if sep:
            per_column[name.strip()] = mode
        else:
            default = mode
    return default, per_column


@dataclass(frozen=True)
class ReadOptions:
    """Validated read options. ``to_json``/``from_json`` carry them through a Spark schema."""

    path: str
    version: int | None = None
    timestamp: str | None = None
    tensor_mode: str = "ref"
    tensor_modes: dict[str, str] = field(default_factory=dict)
    columns: tuple[str, ...] | None = None
    storage_options: dict[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def parse(cls, options: Mapping[str, str]) -> ReadOptions:
        """Validate Spark options; raises InvalidOptionError naming the option and allowed values."""
        known = {name.lower(): name for name in READ_OPTIONS}
        values: dict[str, str] = {}
        storage: dict[str, str] = {}
        for key, value in options.items():
            lower = key.lower()
            if lower in known:
                values[known[lower]] = str(value)
            elif lower.startswith(STORAGE_PREFIX):
                storage[key[len(STORAGE_PREFIX):]] = str(value)
            elif lower.startswith(STORAGE_KEY_PREFIXES):
                storage[key] = str(value)
            elif lower in _CATALOG_KEYS or lower.startswith(_CATALOG_PREFIX):
                continue
            else:
                raise InvalidOptionError(
                    f"unknown option {key!r} for the deeplake source; allowed: {list(READ_OPTIONS)}, "
                    f"'{STORAGE_PREFIX}<key>' or object-store keys starting with {list(STORAGE_KEY_PREFIXES)}"
                )
        if not values.get("path"):
            raise DatasetNotFoundError(
                "the deeplake source needs a dataset path: spark.read.format('deeplake').load('/path') or "
                "OPTIONS (path '/path')"
            )
        version = None
        if "versionAsOf" in values:
            text = values["versionAsOf"].strip()
            if not text.isdigit():
                raise InvalidOptionError(
                    f"option 'versionAsOf': bad value {values['versionAsOf']!r}; allowed: a version number >= 0"
                )
            version = int(text)
        timestamp = values.get("timestampAsOf")
        if version is not None and timestamp is not None:
            raise InvalidOptionError("options 'versionAsOf' and 'timestampAsOf' exclude each other; pass one")
        mode, per_column = _parse_tensor_modes(values.get("tensors", "ref"))
        columns = None
        if "columns" in values:
            columns = tuple(c.strip() for c in values["columns"].split(",") if c.strip())
            if not columns or len(set(columns)) != len(columns):
                raise InvalidOptionError(
                    f"option 'columns': bad value {values['columns']!r}; allowed: a comma list of distinct "
                    "column names of the dataset"
                )
        return cls(_path_of(values["path"]), version, timestamp, mode, per_column, columns, storage)

    @property
    def pinned(self) -> bool:
        """True for time travel: the read version is fixed, not the latest at query time."""
        return self.version is not None or self.timestamp is not None

    def mode_of(self, column: str) -> str:
        return self.tensor_modes.get(column, self.tensor_mode)

    def to_json(self) -> str:
        """Everything but storage options (which may hold secrets and must stay out of schemas)."""
        data = asdict(self)
        del data["storage_options"]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, storage_options: Mapping[str, str] | None = None) -> ReadOptions:
        data: dict[str, Any] = json.loads(text)
        if data.get("columns") is not None:
            data["columns"] = tuple(data["columns"])
        return cls(**data, storage_options=dict(storage_options or {}))
