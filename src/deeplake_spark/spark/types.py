"""Spark types of deeplake columns, and the Arrow arrays that fill them.

A tensor column is returned in one of three modes:

* ``ref``   -- ``struct<chunk: string, index: int, shape: array<bigint>, nbytes: bigint>`` (no chunk read);
* ``bytes`` -- ``struct<data: binary, shape: array<bigint>>``: the stored sample bytes (the JPEG/PNG
  for image tensors, raw little-endian values otherwise) and the sample shape;
* ``array`` -- decoded values: ``array<...>`` nested once per dimension (a scalar for 0-d samples,
  ``string`` for str tensors). Unsigned and half-precision dtypes are widened to the next Spark
  type (uint8 -> smallint, uint16 -> int, uint32/uint64 -> bigint, float16 -> float).

A scalar tensor stored inline (a plain Delta column of values) is its value in every mode, typed as in
``array`` mode, with the ``array`` metadata (``deeplake.encoding``, ``deeplake.spec``).

Batches handed to Spark must match the Spark schema exactly, so every array is built with (or cast
to) the Arrow type that ``pyspark`` derives from the Spark type.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql.pandas.types import from_arrow_type, to_arrow_schema, to_arrow_type
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    ByteType,
    DataType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    ShortType,
    StringType,
    StructField,
    StructType,
)

from deeplake_spark.errors import SchemaError
from deeplake_spark.format.spec import TensorSpec

#: Field metadata keys of the contract shared with ``fetch`` and the torch converter.
META_DATASET = "deeplake.dataset"
META_VERSION = "deeplake.version"
META_TENSOR = "deeplake.tensor"
#: On bytes/array columns (never on refs): the mode and the tensor spec JSON.
META_ENCODING = "deeplake.encoding"
META_SPEC = "deeplake.spec"
#: On the first field of a source schema: the read options (JSON, without storage options).
META_SOURCE = "deeplake.source"

REF_SPARK_TYPE = StructType([
    StructField("chunk", StringType()),
    StructField("index", IntegerType()),
    StructField("shape", ArrayType(LongType())),
    StructField("nbytes", LongType()),
])
BYTES_SPARK_TYPE = StructType([
    StructField("data", BinaryType()),
    StructField("shape", ArrayType(LongType())),
])

_ELEMENT_TYPES: dict[str, tuple[DataType, str]] = {
    "bool": (BooleanType(), "bool"),
    "int8": (ByteType(), "int8"),
    "int16": (ShortType(), "int16"),
    "int32": (IntegerType(), "int32"),
    "int64": (LongType(), "int64"),
    "uint8": (ShortType(), "int16"),
    "uint16": (IntegerType(), "int32"),
    "uint32": (LongType(), "int64"),
    "uint64": (LongType(), "int64"),
    "float16": (FloatType(), "float32"),
    "float32": (FloatType(), "float32"),
    "float64": (DoubleType(), "float64"),
}


def arrow_type(data_type: DataType) -> pa.DataType:
    """The Arrow type Spark expects for ``data_type`` in a Python data source batch."""
    return to_arrow_type(data_type, timezone="UTC")


def arrow_schema(schema: StructType) -> pa.Schema:
    """The Arrow schema Spark expects for batches of ``schema`` (compared without metadata)."""
    return to_arrow_schema(schema, timezone="UTC")


def tabular_spark_type(column: str, pa_type: pa.DataType) -> DataType:
    """Spark type of a tabular (non-tensor) Delta column."""
    if pa.types.is_large_string(pa_type) or pa.types.is_string_view(pa_type):
        return StringType()
    if pa.types.is_large_binary(pa_type) or pa.types.is_binary_view(pa_type):
        return BinaryType()
    if pa.types.is_unsigned_integer(pa_type):
        return _ELEMENT_TYPES[str(pa_type)][0]
    if pa.types.is_large_list(pa_type) or pa.types.is_list_view(pa_type):
        return ArrayType(tabular_spark_type(column, pa_type.value_type))
    try:
        return from_arrow_type(pa_type)
    except (TypeError, ValueError) as e:
        raise SchemaError(f"column {column!r}: Arrow type {pa_type} has no Spark equivalent: {e}") from e


def array_spark_type(spec: TensorSpec, *, dataset: str = "") -> DataType:
    """Spark type of a tensor read in ``array`` mode; SchemaError for tensors without a fixed rank."""
    if spec.dtype == "str":
        return StringType()
    if spec.is_video:
        where = f"dataset {dataset}, " if dataset else ""
        raise SchemaError(f"{where}tensor {spec.name!r} is a video tensor ({spec.compression} files), which has no "
                          f"array form: read it with tensors='bytes' (or tensors='{spec.name}=bytes') for the "
                          "container file's bytes and decode frames with deeplake_spark.read_video_frames")
    if spec.shape is None:
        where = f"dataset {dataset}, " if dataset else ""
        raise SchemaError(
            f"{where}tensor {spec.name!r} (htype {spec.htype}) has no fixed rank (shape None), so it has no "
            f"Spark array type; read it with tensors='bytes' (or tensors='{spec.name}=bytes'), leave it out "
            "with the 'columns' option, or declare a shape such as (None, None, 3) when creating the dataset"
        )
    data_type: DataType = _ELEMENT_TYPES[spec.dtype][0]
    for _ in spec.shape:
        data_type = ArrayType(data_type, containsNull=False)
    return data_type


def tensor_spark_type(spec: TensorSpec, mode: str, *, dataset: str = "") -> DataType:
    if mode == "ref":
        return REF_SPARK_TYPE
    if mode == "bytes":
        return BYTES_SPARK_TYPE
    return array_spark_type(spec, dataset=dataset)


def tensor_field(name: str, spec: TensorSpec, mode: str, *, dataset: str, version: int) -> StructField:
    """A tensor column's field with the metadata that lets refs be resolved after joins."""
    metadata: dict[str, Any] = {META_DATASET: dataset, META_VERSION: int(version)}
    if mode == "ref":
        metadata[META_TENSOR] = spec.to_json()
    else:
        metadata[META_ENCODING] = mode
        metadata[META_SPEC] = spec.to_json()
    return StructField(name, tensor_spark_type(spec, mode, dataset=dataset), nullable=True, metadata=metadata)


def ref_spec(field: StructField) -> TensorSpec | None:
    """The tensor spec of a ref column (by the metadata contract), else None."""
    raw = (field.metadata or {}).get(META_TENSOR)
    if raw is None or field.dataType != REF_SPARK_TYPE:
        return None
    return spec_of_json(raw)


def spec_of_json(raw: str) -> TensorSpec:
    return TensorSpec.from_dict(json.loads(raw))


# ---------------------------------------------------------------------------- Arrow arrays
def _shape_array(shapes: Sequence[Sequence[int] | None], list_type: pa.DataType) -> pa.Array:
    return pa.array([None if s is None else [int(d) for d in s] for s in shapes], type=list_type)


def bytes_array(samples: Sequence[bytes | None], shapes: Sequence[Sequence[int] | None],
                struct_type: pa.DataType) -> pa.Array:
    """``struct<data, shape>`` array; a null sample gives a null struct."""
    mask = pa.array([s is None for s in samples], type=pa.bool_())
    data = pa.array(samples, type=struct_type.field("data").type)
    shape = _shape_array(shapes, struct_type.field("shape").type)
    return pa.StructArray.from_arrays([data, shape], fields=list(struct_type), mask=mask)


def _values(samples: list[np.ndarray], spec: TensorSpec, numpy_dtype: str) -> np.ndarray:
    flat = [np.asarray(s).reshape(-1) for s in samples]
    values = np.concatenate(flat) if flat else np.zeros(0, dtype=numpy_dtype)
    if spec.dtype == "uint64" and values.size and int(values.max()) > np.iinfo(np.int64).max:
        raise SchemaError(
            f"tensor {spec.name!r}: uint64 value {int(values.max())} does not fit Spark's bigint; "
            "read the tensor with tensors='bytes'"
        )
    return values.astype(numpy_dtype, copy=False)


def array_array(samples: Sequence[Any], spec: TensorSpec, target: pa.DataType) -> pa.Array:
    """Decoded samples (numpy arrays, str or None) as an Arrow array of ``target``.

    Rank-k samples become k nested lists; offsets are computed from the sample shapes at once
    rather than sample by sample.
    """
    if spec.dtype == "str":
        return pa.array(list(samples), type=target)
    rank = len(spec.shape or ())
    valid = [i for i, s in enumerate(samples) if s is not None]
    arrays = [np.asarray(samples[i]) for i in valid]
    for i, arr in zip(valid, arrays):
        if arr.ndim != rank:
            raise SchemaError(f"tensor {spec.name!r}: sample {i} has shape {arr.shape}, expected rank {rank}")
    numpy_dtype = _ELEMENT_TYPES[spec.dtype][1]
    if rank == 0:
        out = np.zeros(len(samples), dtype=numpy_dtype)
        if valid:
            out[valid] = _values(arrays, spec, numpy_dtype)
        mask = np.ones(len(samples), dtype=bool)
        mask[valid] = False
        return pa.array(out, type=target, mask=mask)
    # Dims of every sample; null samples count as empty outer lists.
    shapes = np.zeros((len(samples), rank), dtype=np.int64)
    for i, arr in zip(valid, arrays):
        shapes[i] = arr.shape
    level_types = [target]
    for _ in range(rank - 1):
        level_types.append(level_types[-1].value_type)
    values: pa.Array = pa.array(_values(arrays, spec, numpy_dtype), type=level_types[-1].value_type)
    for level in range(rank - 1, -1, -1):
        counts = np.prod(shapes[:, :level], axis=1) if level else np.ones(len(samples), dtype=np.int64)
        lengths = np.repeat(shapes[:, level], counts)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        if level == 0:
            mask = pa.array([s is None for s in samples], type=pa.bool_())
            values = pa.ListArray.from_arrays(pa.array(offsets), values, type=level_types[0], mask=mask)
        else:
            values = pa.ListArray.from_arrays(pa.array(offsets), values, type=level_types[level])
    return values


def decoded_nbytes(spec: TensorSpec, shape: Sequence[int] | None, stored_nbytes: int | None) -> int:
    """Estimated bytes a sample takes in a batch, to bound batches by bytes."""
    if shape is None:
        return 0
    if spec.dtype == "str" or not len(shape):
        return int(stored_nbytes or 8)
    itemsize = np.dtype(_ELEMENT_TYPES[spec.dtype][1]).itemsize
    return int(np.prod(shape, dtype=np.int64)) * itemsize + 4 * len(shape)


# ------------------------------------------------------------------ byte-bounded batches
def sample_sizes(refs: pa.Array, spec: TensorSpec, mode: str) -> np.ndarray:
    """Bytes each row's sample adds to a batch in ``mode`` (0 for null refs), from the refs alone."""
    if mode == "ref":
        return np.zeros(len(refs), dtype=np.int64)
    if isinstance(refs, pa.ChunkedArray):
        refs = refs.combine_chunks()
    stored = refs.field("nbytes").to_pylist()
    valid = refs.is_valid().to_pylist()
    if mode == "bytes":
        return np.array([(n or 0) if ok else 0 for n, ok in zip(stored, valid)], dtype=np.int64)
    shapes = refs.field("shape").to_pylist()
    return np.array([decoded_nbytes(spec, s, n) if ok else 0 for s, n, ok in zip(shapes, stored, valid)],
                    dtype=np.int64)


def byte_slices(sizes: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Consecutive ``(start, stop)`` row ranges of at most ``budget`` bytes (at least one row each)."""
    out, start, acc = [], 0, 0
    for i, size in enumerate(sizes.tolist()):
        if i > start and acc + size > budget:
            out.append((start, i))
            start, acc = i, 0
        acc += size
    out.append((start, len(sizes)))
    return out


def resolve_refs(samples: Any, spec: TensorSpec, refs: list[dict[str, Any] | None], mode: str,
                 target: pa.DataType) -> pa.Array:
    """Samples for ``refs`` read through a ``SampleReader`` as an array of ``target`` (bytes/array mode).

    The reader groups refs by chunk, so each chunk is read once per call.
    """
    values = samples.read(spec.name, refs, raw=mode == "bytes")
    if mode == "bytes":
        return bytes_array(values, [None if r is None else r["shape"] for r in refs], target)
    return array_array(values, spec, target)
