"""Where bytes live: a thin layer over ``pyarrow.fs`` for local paths and S3 URIs."""

from __future__ import annotations

from deeplake_spark.storage.filesystem import (
    S3_OPTION_NAMES,
    S3_SCHEMES,
    FileEntry,
    Storage,
    delta_storage_options,
    is_true,
    make_s3_filesystem,
    normalize_uri,
    s3_option,
)

__all__ = [
    "S3_OPTION_NAMES",
    "S3_SCHEMES",
    "FileEntry",
    "Storage",
    "delta_storage_options",
    "is_true",
    "make_s3_filesystem",
    "normalize_uri",
    "s3_option",
]
