"""What a loader reads: per-row chunk codes of each tensor column and the tabular values.

Scalar tensors stored inline (class_label, text, json, 0-d numerics) come straight from the rows,
like tabular columns, as numpy arrays of the tensor's dtype (a uint8 label stays uint8).

A ``LoaderSource`` is built once in the main process (from a ``Dataset`` or from Arrow rows of a
Spark DataFrame whose tensor columns are still refs) and handed to the loader workers. It holds
only small numpy arrays (chunk code, sample index per row), never samples.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deeplake_spark.dataset.inline import inline_samples
from deeplake_spark.dataset.refs import TENSOR_METADATA_KEY, check_chunk_id
from deeplake_spark.dataset.view import DatasetView
from deeplake_spark.errors import InvalidOptionError, SchemaError
from deeplake_spark.format.spec import TensorSpec
from deeplake_spark.storage import Storage
from deeplake_spark.torch.ref_checks import RefClaims, ref_shapes
from deeplake_spark.torch.sampling import ChunkLayout

log = logging.getLogger(__name__)

#: Field metadata written by the Spark read side on ref columns (next to ``deeplake.tensor``).
DATASET_METADATA_KEY = "deeplake.dataset"
VERSION_METADATA_KEY = "deeplake.version"


@dataclass
class TensorSource:
    """One tensor column: where its chunks live and, per row, which chunk and sample to read.

    ``spec.name`` is the tensor's folder in the source dataset (it may differ from the output
    column ``name`` after an alias). ``chunk_codes`` index ``chunk_ids``; -1 marks a null sample.
    ``claims``: the refs grouped by chunk with the sample index and shape each one claims, checked
    against a chunk's header when it is loaded (built from the codes and indices when not given).
    """

    name: str
    spec: TensorSpec
    storage: Storage
    dataset: str
    chunk_ids: list[str]
    chunk_codes: np.ndarray
    sample_index: np.ndarray
    total_nbytes: int = 0
    version: int | None = None
    claims: RefClaims | None = None

    def __post_init__(self) -> None:
        if self.claims is None:
            self.claims = RefClaims.build(self.chunk_codes, len(self.chunk_ids), self.sample_index)

    @property
    def has_nulls(self) -> bool:
        return bool(np.any(self.chunk_codes < 0))


@dataclass
class LoaderSource:
    """Everything a worker needs to assemble any batch of rows.

    ``tabular`` holds the values of tabular columns and of the scalar tensors named in ``inline``
    (stored in the rows: no chunk to read; collated as tensors, so ``collate`` modes apply to them).
    """

    num_rows: int
    tensors: list[TensorSource]
    tabular: dict[str, np.ndarray] = field(default_factory=dict)
    order: tuple[str, ...] = ()
    inline: frozenset[str] = frozenset()
    #: link tensors (inline text columns): column -> (spec, the dataset's picklable LinkResolver, the
    #: dataset row position of each source row, for error messages); read as their content per batch
    links: dict[str, tuple[TensorSpec, Any, np.ndarray]] = field(default_factory=dict)

    def tabular_column(self, name: str, rows: np.ndarray) -> np.ndarray | list[Any]:
        """The values of a tabular or inline column at ``rows``; a link column's linked contents."""
        values = self.tabular[name][rows]
        link = self.links.get(name)
        if link is None:
            return values
        spec, resolver, positions = link
        return resolver.read_column(spec, values.tolist(), rows=positions[rows])

    def layout(self) -> ChunkLayout:
        """Rows grouped by the chunk of the biggest tensor column (the one worth reading once)."""
        if not self.tensors:
            return ChunkLayout.contiguous(self.num_rows, 4096)
        primary = max(self.tensors, key=lambda t: (t.total_nbytes, len(t.chunk_ids)))
        codes = primary.chunk_codes.astype(np.int64)
        # Null samples read nothing: spread them in blocks of their own, 4096 rows each.
        nulls = codes < 0
        if nulls.any():
            codes = codes.copy()
            codes[nulls] = len(primary.chunk_ids) + np.flatnonzero(nulls) // 4096
        return ChunkLayout.from_chunk_codes(codes)


def _tensor_from_refs(name: str, refs: pa.ChunkedArray | pa.Array, spec: TensorSpec, storage: Storage,
                      dataset: str, version: int | None) -> TensorSource:
    if isinstance(refs, pa.ChunkedArray):
        refs = refs.combine_chunks() if refs.num_chunks != 1 else refs.chunk(0)
    if not pa.types.is_struct(refs.type) or refs.type.get_field_index("chunk") < 0 \
            or refs.type.get_field_index("index") < 0:
        raise SchemaError(f"column {name!r}: expected a deeplake ref struct<chunk, index, ...>, got {refs.type}")
    chunk = pc.struct_field(refs, "chunk")
    index = pc.struct_field(refs, "index")
    valid = pc.and_(pc.is_valid(refs), pc.is_valid(chunk)) if refs.null_count else pc.is_valid(chunk)
    encoded = pc.dictionary_encode(chunk)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    valid_np = valid.to_numpy(zero_copy_only=False)
    codes = np.where(valid_np, np.nan_to_num(codes, nan=-1), -1).astype(np.int32)
    # a missing index becomes -1, which the loader refuses as out of range (never sample 0)
    sample_index = np.nan_to_num(index.to_numpy(zero_copy_only=False), nan=-1).astype(np.int32)
    chunk_ids = [str(c) for c in encoded.dictionary.to_pylist()]
    # Checked here, in the main process, so no worker ever builds a path from a hostile id.
    for code in np.unique(codes[codes >= 0]).tolist():
        check_chunk_id(chunk_ids[code], where=f"dataset {dataset}, tensor {spec.name!r}")
    nbytes = 0
    if refs.type.get_field_index("nbytes") >= 0:
        nbytes = int(pc.sum(pc.struct_field(refs, "nbytes")).as_py() or 0)
    ranks = dims = None
    if refs.type.get_field_index("shape") >= 0:
        ranks, dims = ref_shapes(pc.struct_field(refs, "shape"))
    # Built here, in the main process: forked loader workers share the arrays copy-on-write.
    claims = RefClaims.build(codes, len(chunk_ids), sample_index, ranks, dims)
    return TensorSource(name=name, spec=spec, storage=storage, dataset=dataset, chunk_ids=chunk_ids,
                        chunk_codes=codes, sample_index=sample_index, total_nbytes=nbytes, version=version,
                        claims=claims)


def tabular_values(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A numpy array for a tabular column: numeric/bool as is, anything else as objects."""
    t = column.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        if column.null_count:
            log.debug("tabular column with nulls becomes float (NaN for null)")
            return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
        return np.asarray(column.to_numpy(zero_copy_only=False))
    return np.asarray(column.to_pylist() + [None], dtype=object)[:-1]


def scalar_values(column: pa.ChunkedArray | pa.Array, spec: TensorSpec) -> np.ndarray:
    """An inline scalar tensor's values in its dtype (str: an object array); with nulls, an object
    array of 0-d arrays and None (a batch holding a null then needs ``collate='list'``, as for chunks)."""
    samples = inline_samples(column, spec)
    if isinstance(samples, np.ndarray):
        return samples
    out = np.empty(len(samples), dtype=object)
    out[:] = samples
    return out


def from_dataset(ds: Any, columns: Sequence[str] | None = None, *, rows: np.ndarray | None = None) -> LoaderSource:
    """Source over a ``deeplake_spark.Dataset`` at its version, or over a ``DatasetView``'s rows.

    ``rows``: row positions in the dataset version to load, in this order (all rows when None; for
    a view, positions into the view). Only the chunks holding those rows get chunk codes, so a
    loader over a selection reads no other chunk.
    """
    if isinstance(ds, DatasetView):
        rows = ds.indices if rows is None else ds.indices[np.asarray(rows, dtype=np.int64)]
        ds = ds.dataset
    names = list(columns) if columns is not None else list(ds.schema.order)
    unknown = [c for c in names if c not in ds.schema.order]
    if unknown:
        raise InvalidOptionError(f"columns={unknown}: not in dataset {ds.path}; it has {list(ds.schema.order)}")
    table = ds.table(columns=names) if columns is not None else ds.table()
    if rows is not None:
        table = table.take(pa.array(np.asarray(rows, dtype=np.int64), type=pa.int64()))
    tensors, tabular, links = [], {}, {}
    positions = np.arange(table.num_rows, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    for name in names:
        if name in ds.schema.inline:
            tabular[name] = scalar_values(table.column(name), ds.schema.tensors[name])
            if ds.schema.tensors[name].htype == "link":
                links[name] = (ds.schema.tensors[name], ds._links, positions)
        elif name in ds.schema.tensors:
            tensors.append(_tensor_from_refs(name, table.column(name), ds.schema.tensors[name], ds.storage, ds.path,
                                             ds.version))
        else:
            tabular[name] = tabular_values(table.column(name))
    return LoaderSource(num_rows=table.num_rows, tensors=tensors, tabular=tabular, order=tuple(names),
                        inline=frozenset(n for n in names if n in ds.schema.inline), links=links)


def ref_column_info(metadata: Mapping[Any, Any] | None) -> tuple[str, int | None, TensorSpec] | None:
    """(dataset uri, version, spec) when field metadata marks a ref column, else ``None``."""
    if not metadata:
        return None
    meta = {(k.decode() if isinstance(k, bytes) else str(k)): (v.decode() if isinstance(v, bytes) else v)
            for k, v in metadata.items()}
    if DATASET_METADATA_KEY not in meta or TENSOR_METADATA_KEY not in meta:
        return None
    spec_raw = meta[TENSOR_METADATA_KEY]
    spec = TensorSpec.from_dict(json.loads(spec_raw) if isinstance(spec_raw, str) else dict(spec_raw))
    version = meta.get(VERSION_METADATA_KEY)
    return str(meta[DATASET_METADATA_KEY]), (int(version) if version not in (None, "") else None), spec


def from_ref_table(table: pa.Table, ref_columns: Mapping[str, tuple[str, int | None, TensorSpec]], *,
                   storage_options: Mapping[str, str] | None = None,
                   inline: Mapping[str, TensorSpec] | None = None) -> LoaderSource:
    """Source over Arrow rows whose ``ref_columns`` hold refs into deeplake datasets.

    ``ref_columns`` maps column -> (dataset uri, version, stored tensor spec); ``inline`` maps the
    columns that are inline scalar tensors (plain values) to their spec; other columns are tabular.
    """
    inline = dict(inline or {})
    storages: dict[str, Storage] = {}
    tensors, tabular = [], {}
    for name in table.column_names:
        if name in ref_columns:
            uri, version, spec = ref_columns[name]
            storage = storages.setdefault(uri, Storage(uri, storage_options))
            tensors.append(_tensor_from_refs(name, table.column(name), spec, storage, uri, version))
        elif name in inline:
            tabular[name] = scalar_values(table.column(name), inline[name])
        else:
            tabular[name] = tabular_values(table.column(name))
    return LoaderSource(num_rows=table.num_rows, tensors=tensors, tabular=tabular, order=tuple(table.column_names),
                        inline=frozenset(n for n in table.column_names if n in inline))


def select(source: LoaderSource, columns: Sequence[str] | None) -> LoaderSource:
    """The same rows with only ``columns`` (all when None), in the order given."""
    if columns is None:
        return source
    names = list(columns)
    unknown = [c for c in names if c not in source.order]
    if unknown:
        raise InvalidOptionError(f"columns={unknown}: unknown; available columns are {list(source.order)}")
    tensors = [t for t in source.tensors if t.name in names]
    tabular = {k: v for k, v in source.tabular.items() if k in names}
    return LoaderSource(num_rows=source.num_rows, tensors=tensors, tabular=tabular, order=tuple(names),
                        inline=frozenset(n for n in names if n in source.inline),
                        links={k: v for k, v in source.links.items() if k in names})
