"""One exception hierarchy for the whole library.

Every error also subclasses the fitting builtin so that callers' existing ``except ValueError`` /
``except FileNotFoundError`` / ``except OSError`` keep working.
"""

from __future__ import annotations


class DeepLakeSparkError(Exception):
    """Root of every error raised by deeplake_spark."""


class SchemaError(DeepLakeSparkError, ValueError):
    """Data or options do not match a dataset's schema (dtype, rank, missing/unknown column...)."""


class InvalidOptionError(DeepLakeSparkError, ValueError):
    """An unknown option or an option with a bad value (Spark source, loader, CLI)."""


class DecodeError(DeepLakeSparkError, ValueError):
    """Sample bytes that cannot be decoded (e.g. bytes that are not a JPEG/PNG image)."""


class DatasetNotFoundError(DeepLakeSparkError, FileNotFoundError):
    """A path that holds no deeplake dataset."""


class DatasetExistsError(DeepLakeSparkError, FileExistsError):
    """``create`` on a path that already holds a dataset (or other Delta table)."""


class VersionNotFound(DeepLakeSparkError, LookupError):
    """A version or timestamp outside a dataset's history."""


class CorruptDatasetError(DeepLakeSparkError, ValueError):
    """A dataset whose Delta log, refs or metadata are damaged or hostile."""


class UnsafePathError(CorruptDatasetError):
    """A ref's chunk id or a Delta action's path that would lead outside the dataset root."""


class UnsupportedTableFeature(DeepLakeSparkError, NotImplementedError):
    """A Delta table feature (set by another engine) that this library cannot read or write exactly."""


class ReadOnlyError(DeepLakeSparkError, PermissionError):
    """A write on a dataset opened at a past version."""


class StorageError(DeepLakeSparkError, OSError):
    """Reading or writing bytes in storage failed."""


class LinkError(DeepLakeSparkError, FileNotFoundError):
    """A link tensor's target that cannot be read (missing, unreadable, or outside the allowed link roots)."""


class MissingDependencyError(DeepLakeSparkError, ImportError):
    """An optional dependency a feature needs is not installed (the message names the pip extra)."""


class ChunkError(DeepLakeSparkError, ValueError):
    """Base for chunk files that cannot be read."""


class CorruptChunkError(ChunkError):
    """A chunk whose bytes are damaged: checksum mismatch, truncation, bad header."""


class UnsupportedFormatVersion(ChunkError):
    """A chunk written by a newer (or unknown) version of the format."""


class ChunkNotFoundError(ChunkError, FileNotFoundError):
    """A chunk file that a reference points to is missing."""


class CommitConflict(DeepLakeSparkError, RuntimeError):
    """A Delta commit lost a race with another writer and could not be retried."""


class UnsafeStorageError(DeepLakeSparkError, RuntimeError):
    """Object storage configured without a safe concurrent-commit mechanism."""
