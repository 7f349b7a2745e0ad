"""Delta protocol features: which ones our readers handle, and a typed refusal naming any other.

Other engines (delta-spark above all) can turn on table features that change how a table must be
read: deletion vectors hide rows of a Parquet file, column mapping gives columns physical names that
differ from the schema's. Reading such a table file by file would return wrong rows, so the dataset
layer refuses it at ``open`` with :class:`UnsupportedTableFeature` naming the feature, and every
reader (dataset, Spark source, loader) goes through that check. Features that only concern the log or
writers (row tracking, in-commit timestamps, ...) are read as usual. v2 checkpoints and the
vacuum-protocol check are reader features delta-rs 1.6.6 refuses to scan, so they are refused here
too, by name, before any read.
"""

from __future__ import annotations

from typing import Any

from deeplake_spark.errors import UnsupportedTableFeature

#: Reader features whose tables our file-by-file readers still read exactly: what delta-rs' pyarrow
#: dataset (deltalake 1.6.6) reads, less the variant type no tensor or tabular column of ours uses.
READABLE_FEATURES = frozenset({"timestampNtz"})
#: The highest ``minReaderVersion`` we know (3 = reader features listed by name).
MAX_READER_VERSION = 3


def check_readable(protocol: Any, configuration: dict[str, str] | None, *, table: str) -> None:
    """Raise :class:`UnsupportedTableFeature` when the table needs a reader feature we lack.

    ``protocol``: a delta-rs ``ProtocolVersions``; ``configuration``: the table's properties.
    """
    version = int(protocol.min_reader_version)
    if version > MAX_READER_VERSION:
        raise UnsupportedTableFeature(
            f"dataset {table}: Delta reader version {version} is newer than this library supports "
            f"({MAX_READER_VERSION}); upgrade deeplake-spark"
        )
    unknown = sorted(set(protocol.reader_features or ()) - READABLE_FEATURES)
    mapping = (configuration or {}).get("delta.columnMapping.mode", "none")
    if mapping != "none" and "columnMapping" not in unknown:
        unknown.append("columnMapping")
    if unknown:
        raise UnsupportedTableFeature(
            f"dataset {table}: the Delta table uses reader feature(s) {', '.join(unknown)} (turned on by another "
            "engine, e.g. delta-spark), which deeplake-spark cannot read exactly yet; rewrite the table without "
            "them (e.g. in delta-spark: REORG TABLE ... APPLY (PURGE) after disabling deletion vectors) or read "
            "it with that engine"
        )

