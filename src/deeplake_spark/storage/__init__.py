"""Where bytes live: a thin layer over ``pyarrow.fs`` for local paths and S3 URIs."""

from __future__ import annotations

from deeplake_spark.storage.filesystem import FileEntry, Storage, delta_storage_options, normalize_uri

__all__ = ["FileEntry", "Storage", "delta_storage_options", "normalize_uri"]
