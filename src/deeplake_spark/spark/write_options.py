"""Options of the ``deeplake`` Spark source (write side) and which DataFrame columns become tensors.

Spark hands options as a case-insensitive map with lower-cased keys, so ``tensor.<col>.*`` keys
match DataFrame columns case-insensitively (as Spark resolves columns by default).

Inference without options: ``binary`` columns become ``image`` tensors whose JPEG/PNG bytes are
stored undecoded; numeric ``array<...>`` columns (nested for more dimensions) become tensors
(``embedding`` for a flat float array, ``generic`` otherwise) of the Spark element type; Spark's
``image`` source struct becomes a PNG ``image`` tensor; columns read from a deeplake dataset in
``bytes``/``array`` mode keep their tensor spec. Everything else stays tabular.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
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

from deeplake_spark.dataset import DatasetSchema
from deeplake_spark.dataset.commit_info import check_message
from deeplake_spark.errors import InvalidOptionError, SchemaError
from deeplake_spark.format.spec import COMPRESSIONS, HTYPES, TensorSpec, normalize_dtype
from deeplake_spark.spark import types as T
from deeplake_spark.spark.read_options import STORAGE_KEY_PREFIXES, STORAGE_PREFIX
from deeplake_spark.storage import normalize_uri

#: Save modes; Spark itself only lets ``append``/``overwrite`` reach a Python source (see writer.py).
SAVE_MODES = ("append", "overwrite", "errorifexists", "ignore")
_MODE_ALIASES = {"error": "errorifexists", "default": "errorifexists"}
WRITE_OPTIONS = ("path", "saveMode", "overwriteSchema", "tabularColumns", "rowGroupBytes", "partitionBy", "message",
                 "userMetadata")
TENSOR_KEYS = ("htype", "dtype", "shape", "compression", "chunkSize", "classNames", "linkTo")
TENSOR_PREFIX = "tensor."
_CATALOG_KEYS = frozenset({"location", "owner", "provider", "comment", "external", "is_managed_location",
                           "transient_lastddltime"})

_SPARK_DTYPES: dict[type, str] = {
    BooleanType: "bool", ByteType: "int8", ShortType: "int16", IntegerType: "int32", LongType: "int64",
    FloatType: "float32", DoubleType: "float64",
}
_SPARK_TYPES = tuple(_SPARK_DTYPES)
#: Fields of Spark's image source struct (``spark.read.format("image")``).
_IMAGE_STRUCT_FIELDS = frozenset({"height", "width", "nChannels", "data"})


def _int_option(name: str, value: str) -> int:
    try:
        parsed = int(value.strip().replace("_", ""))
    except ValueError:
        parsed = 0
    if parsed <= 0:
        raise InvalidOptionError(f"option {name!r}: bad value {value!r}; allowed: a positive number of bytes")
    return parsed


def _bool_option(name: str, value: str) -> bool:
    text = value.strip().lower()
    if text not in ("true", "false"):
        raise InvalidOptionError(f"option {name!r}: bad value {value!r}; allowed: true or false")
    return text == "true"


def normalize_save_mode(mode: str) -> str:
    """``"error"``/``"default"`` -> ``"errorifexists"``; InvalidOptionError for unknown modes."""
    text = _MODE_ALIASES.get(str(mode).strip().lower(), str(mode).strip().lower())
    if text not in SAVE_MODES:
        raise InvalidOptionError(f"save mode {mode!r} is not one of {SAVE_MODES}")
    return text


@dataclass(frozen=True)
class WriteOptions:
    """Validated write options; ``tensor_options`` maps a lower-cased column name to its settings."""

    path: str
    save_mode: str | None = None
    overwrite_schema: bool = False
    tabular_columns: frozenset[str] = frozenset()
    row_group_bytes: int = 64 * 1024 * 1024
    #: ``partitionBy`` (comma list, as given): partition columns of a new dataset
    partition_by: tuple[str, ...] = ()
    tensor_options: dict[str, dict[str, str]] = field(default_factory=dict)
    storage_options: dict[str, str] = field(default_factory=dict, compare=False)
    #: ``message`` (or delta-spark's spelling ``userMetadata``): the commit's ``commitInfo.userMetadata``
    message: str | None = None

    @classmethod
    def parse(cls, options: Mapping[str, str]) -> WriteOptions:
        known = {name.lower(): name for name in WRITE_OPTIONS}
        tensor_keys = {k.lower(): k for k in TENSOR_KEYS}
        values: dict[str, str] = {}
        tensors: dict[str, dict[str, str]] = {}
        storage: dict[str, str] = {}
        for key, value in options.items():
            lower = key.lower()
            if lower in known:
                values[known[lower]] = str(value)
            elif lower.startswith(TENSOR_PREFIX):
                column, _, setting = key[len(TENSOR_PREFIX):].rpartition(".")
                if not column or setting.lower() not in tensor_keys:
                    raise InvalidOptionError(
                        f"unknown option {key!r}; tensor options are 'tensor.<column>.<setting>' with setting "
                        f"one of {list(TENSOR_KEYS)}"
                    )
                tensors.setdefault(column.lower(), {})[tensor_keys[setting.lower()]] = str(value)
            elif lower.startswith(STORAGE_PREFIX):
                storage[key[len(STORAGE_PREFIX):]] = str(value)
            elif lower.startswith(STORAGE_KEY_PREFIXES):
                storage[key] = str(value)
            elif lower in _CATALOG_KEYS or lower.startswith("option."):
                continue
            else:
                raise InvalidOptionError(
                    f"unknown option {key!r} for writing with the deeplake source; allowed: {list(WRITE_OPTIONS)}, "
                    f"'tensor.<column>.<{'|'.join(TENSOR_KEYS)}>', '{STORAGE_PREFIX}<key>' or object-store keys"
                )
        path = values.get("path")
        if not path:
            raise InvalidOptionError("the deeplake source needs a dataset path: df.write.format('deeplake').save('/path')")
        if path.startswith("file:") and not path.startswith("file://"):
            path = "/" + path[len("file:"):].lstrip("/")
        tabular = frozenset(c.strip().lower() for c in values.get("tabularColumns", "").split(",") if c.strip())
        for column, settings in tensors.items():
            if column in tabular:
                raise InvalidOptionError(f"column {column!r} is named in 'tabularColumns' and has tensor options {settings}")
        return cls(
            path=normalize_uri(path),
            save_mode=normalize_save_mode(values["saveMode"]) if "saveMode" in values else None,
            overwrite_schema=_bool_option("overwriteSchema", values.get("overwriteSchema", "false")),
            tabular_columns=tabular,
            row_group_bytes=_int_option("rowGroupBytes", values["rowGroupBytes"]) if "rowGroupBytes" in values
            else cls.row_group_bytes,
            partition_by=tuple(c.strip() for c in values.get("partitionBy", "").split(",") if c.strip()),
            tensor_options=tensors,
            storage_options=storage,
            message=_message_option(values, dataset=normalize_uri(path)),
        )


def _message_option(values: Mapping[str, str], *, dataset: str) -> str | None:
    """Option ``message`` or ``userMetadata`` (delta-spark's name for it); both only when they agree."""
    message, user_metadata = values.get("message"), values.get("userMetadata")
    if message is not None and user_metadata is not None and message != user_metadata:
        raise InvalidOptionError(f"dataset {dataset}: options 'message' ({message!r}) and 'userMetadata' "
                                 f"({user_metadata!r}) are the same commit message; give one")
    return check_message(message if message is not None else user_metadata, dataset=dataset, operation="write")


# ------------------------------------------------------------------------------ planning
@dataclass(frozen=True)
class ColumnPlan:
    """How one DataFrame column is written: ``kind`` is ``tabular``, ``tensor`` (Arrow values
    converted by the dataset layer), ``image_struct`` (Spark image source) or ``bytes_struct``
    (a deeplake column read with ``tensors='bytes'``)."""

    source: str
    target: str
    kind: str


@dataclass(frozen=True)
class WritePlan:
    """The dataset schema to write and how each DataFrame column maps onto it."""

    schema: DatasetSchema
    columns: tuple[ColumnPlan, ...]
    detect_compression: tuple[str, ...] = ()
    new_schema: bool = True


def _depth_and_element(data_type: DataType) -> tuple[int, DataType]:
    depth = 0
    while isinstance(data_type, ArrayType):
        depth, data_type = depth + 1, data_type.elementType
    return depth, data_type


def _is_image_struct(data_type: DataType) -> bool:
    return isinstance(data_type, StructType) and _IMAGE_STRUCT_FIELDS <= set(data_type.fieldNames())


def _is_bytes_struct(f: StructField) -> bool:
    return f.dataType == T.BYTES_SPARK_TYPE and T.META_SPEC in (f.metadata or {})


def _source_kind(f: StructField) -> str:
    if _is_image_struct(f.dataType):
        return "image_struct"
    if _is_bytes_struct(f):
        return "bytes_struct"
    return "tensor"


def _check_tensor_input(f: StructField, spec: TensorSpec) -> None:
    """SchemaError unless column ``f``'s Spark type can feed tensor ``spec``."""
    t = f.dataType
    depth, element = _depth_and_element(t)
    ok = False
    if isinstance(t, BinaryType):
        ok = spec.is_sample_compressed
    elif isinstance(t, StringType):
        ok = spec.dtype == "str"
    elif _is_bytes_struct(f):
        ok = True
    elif _is_image_struct(t):
        ok = spec.dtype != "str"
    elif type(element) in _SPARK_DTYPES:
        ok = spec.dtype != "str" and (spec.shape is None or len(spec.shape) == depth)
    if not ok:
        shape = "any rank" if spec.shape is None else f"shape {spec.shape}"
        raise SchemaError(
            f"column {f.name!r} ({t.simpleString()}) cannot be stored in tensor {spec.name!r} (htype {spec.htype}, "
            f"dtype {spec.dtype}, {shape}, compression {spec.compression})"
        )


def _default_spec(f: StructField, target: str) -> tuple[str, dict[str, Any]] | None:
    """Inferred (htype, settings) for a column without tensor options, None for tabular columns."""
    t = f.dataType
    meta = (f.metadata or {}).get(T.META_SPEC)
    read_back = _is_bytes_struct(f) or isinstance(_depth_and_element(t)[1], (StringType, *_SPARK_TYPES))
    if meta is not None and read_back:  # a column read from a deeplake dataset keeps its spec
        spec = TensorSpec.from_dict({**json.loads(meta), "name": target})
        return spec.htype, {"dtype": spec.dtype, "shape": spec.shape, "compression": spec.compression,
                            "chunk_size": spec.chunk_size, "class_names": spec.class_names,
                            **({"link_to": spec.link_to} if spec.link_to is not None else {})}
    if isinstance(t, BinaryType):
        return "image", {}
    if _is_image_struct(t):
        return "image", {"compression": "png"}
    depth, element = _depth_and_element(t)
    if depth and type(element) in _SPARK_DTYPES:
        dtype = _SPARK_DTYPES[type(element)]
        htype = "embedding" if depth == 1 and dtype.startswith("float") else "generic"
        return htype, {"dtype": dtype}
    return None


_SPEC_ATTRS = {"htype": "htype", "dtype": "dtype", "shape": "shape", "compression": "compression",
               "chunkSize": "chunk_size", "classNames": "class_names", "linkTo": "link_to"}


def _with_rank(spec: TensorSpec, f: StructField, shape_given: bool) -> TensorSpec:
    """A ragged spec fed by a numeric (nested) array column gets that column's rank, so the
    tensor has a Spark array type when read back (``tensors='array'``)."""
    if shape_given or spec.shape is not None or spec.is_sample_compressed:
        return spec
    depth, element = _depth_and_element(f.dataType)
    if _is_image_struct(f.dataType):
        return replace(spec, shape=(None, None, None))
    if type(element) in _SPARK_DTYPES:
        return replace(spec, shape=(None,) * depth)
    return spec


def _spec_from_options(f: StructField, target: str, settings: Mapping[str, str]) -> TensorSpec:
    inferred = _default_spec(f, target)
    htype, defaults = inferred if inferred is not None else ("generic", {})
    where = ", ".join(f"tensor.{f.name}.{k}={v!r}" for k, v in settings.items())
    if "classNames" in settings and "htype" not in settings and htype != "class_label":
        htype, defaults = "class_label", {}  # class names imply a class_label tensor
    if "htype" in settings:
        htype = settings["htype"].strip().lower()
        if htype not in HTYPES:
            raise InvalidOptionError(f"option tensor.{f.name}.htype: bad value {settings['htype']!r}; allowed: {HTYPES}")
        if htype not in ("generic", "embedding") or "dtype" not in defaults:
            defaults = {}  # the htype's own dtype/shape/compression
        if htype in ("generic", "embedding") and inferred is None:
            element = _depth_and_element(f.dataType)[1]
            defaults = {"dtype": _SPARK_DTYPES[type(element)]} if type(element) in _SPARK_DTYPES else {}
        if htype != "class_label":
            defaults = {k: v for k, v in defaults.items() if k != "class_names"}
        if htype != "link":
            defaults = {k: v for k, v in defaults.items() if k != "link_to"}
    kwargs: dict[str, Any] = dict(defaults)
    try:
        if "dtype" in settings:
            kwargs["dtype"] = normalize_dtype(settings["dtype"].strip(), target)
        if "shape" in settings:
            text = settings["shape"].strip()
            kwargs["shape"] = None if text.lower() in ("none", "ragged", "") else text
        if "compression" in settings:
            compression = settings["compression"].strip().lower()
            if compression not in COMPRESSIONS:
                raise InvalidOptionError(
                    f"option tensor.{f.name}.compression: bad value {compression!r}; allowed: {tuple(COMPRESSIONS)}")
            kwargs["compression"] = compression
        if "chunkSize" in settings:
            kwargs["chunk_size"] = _int_option(f"tensor.{f.name}.chunkSize", settings["chunkSize"])
        if "classNames" in settings:
            kwargs["class_names"] = _class_names_option(f"tensor.{f.name}.classNames", settings["classNames"])
        if "linkTo" in settings:
            kwargs["link_to"] = settings["linkTo"].strip().lower()
        return _with_rank(TensorSpec.create(target, htype, **kwargs), f, "shape" in settings)
    except SchemaError as e:
        raise InvalidOptionError(f"column {f.name!r}: bad tensor options ({where}): {e}") from e


def _class_names_option(key: str, value: str) -> list[str]:
    """``classNames``: a JSON list of names, or names separated by commas (``cat,dog``)."""
    text = value.strip()
    if text.startswith("["):
        try:
            names = json.loads(text)
        except ValueError as e:
            raise InvalidOptionError(f"option {key}: {value!r} is not a JSON list of names ({e})") from e
        if not isinstance(names, list):
            raise InvalidOptionError(f"option {key}: {value!r} is not a JSON list of names")
        return names
    return [name.strip() for name in text.split(",")]


def _tabular_field(f: StructField, target: str) -> pa.Field:
    try:
        return pa.field(target, T.arrow_type(f.dataType), nullable=True)
    except (TypeError, ValueError) as e:
        raise SchemaError(f"column {f.name!r}: Spark type {f.dataType.simpleString()} has no Delta equivalent: {e}") from e


def plan_write(schema: StructType, options: WriteOptions, existing: DatasetSchema | None) -> WritePlan:
    """Decide which columns are tensors and check them against ``existing`` (None: a new schema)."""
    by_lower: dict[str, StructField] = {}
    for f in schema.fields:
        if f.name.lower() in by_lower:
            raise SchemaError(f"DataFrame columns {by_lower[f.name.lower()].name!r} and {f.name!r} differ only in case")
        if f.dataType == T.REF_SPARK_TYPE and T.META_TENSOR in (f.metadata or {}):
            source = (f.metadata or {}).get(T.META_DATASET, "a dataset")
            raise SchemaError(
                f"column {f.name!r} holds refs into the chunks of {source} (read with tensors='ref'); refs are "
                "never written as tensor data: read that dataset with tensors='bytes' or tensors='array' to "
                "copy the samples"
            )
        by_lower[f.name.lower()] = f
    missing = sorted(set(options.tensor_options) - set(by_lower)) + sorted(options.tabular_columns - set(by_lower))
    if missing:
        raise InvalidOptionError(f"options name column(s) {missing} that the DataFrame does not have; it has "
                                 f"{schema.fieldNames()}")
    if existing is None:
        return _plan_new(schema, options)
    return _plan_existing(schema, options, existing, by_lower)


def _plan_new(schema: StructType, options: WriteOptions) -> WritePlan:
    fields: list[pa.Field] = []
    tensors: dict[str, TensorSpec] = {}
    plans, detect = [], []
    for f in schema.fields:
        settings = options.tensor_options.get(f.name.lower())
        inferred = None if f.name.lower() in options.tabular_columns else _default_spec(f, f.name)
        if settings is None and inferred is None:
            fields.append(_tabular_field(f, f.name))
            plans.append(ColumnPlan(f.name, f.name, "tabular"))
            continue
        if settings is not None:
            spec = _spec_from_options(f, f.name, settings)
        else:
            htype, kwargs = inferred  # type: ignore[misc]
            spec = _with_rank(TensorSpec.create(f.name, htype, **kwargs), f, "shape" in kwargs)
        _check_tensor_input(f, spec)
        if isinstance(f.dataType, BinaryType) and "compression" not in (settings or {}) and \
                T.META_SPEC not in (f.metadata or {}):
            detect.append(f.name)
        tensors[f.name] = spec
        plans.append(ColumnPlan(f.name, f.name, _source_kind(f)))
    return WritePlan(DatasetSchema(pa.schema(fields), tensors, tuple(schema.fieldNames())), tuple(plans),
                     tuple(detect), new_schema=True)


def _plan_existing(schema: StructType, options: WriteOptions, existing: DatasetSchema,
                   by_lower: Mapping[str, StructField]) -> WritePlan:
    targets = {name.lower(): name for name in existing.order}
    unknown = [f.name for f in schema.fields if f.name.lower() not in targets]
    if unknown:
        raise SchemaError(f"column(s) {unknown} are not in the dataset, whose columns are {list(existing.order)}; "
                          "write with mode('overwrite') and option('overwriteSchema', 'true') to replace the schema")
    plans = []
    for f in schema.fields:
        target = targets[f.name.lower()]
        settings = options.tensor_options.get(f.name.lower())
        if target in existing.tensors:
            spec = existing.tensors[target]
            if f.name.lower() in options.tabular_columns:
                raise SchemaError(f"column {f.name!r} is a tensor in the dataset but named in 'tabularColumns'")
            if settings:
                wanted = _spec_from_options(f, target, settings)
                diff = [attr for key, attr in _SPEC_ATTRS.items()
                        if key in settings and getattr(wanted, attr) != getattr(spec, attr)]
                if diff:
                    raise SchemaError(f"column {f.name!r}: tensor options {settings} disagree with the dataset's "
                                      f"tensor spec {spec.to_dict()} on {diff}")
            _check_tensor_input(f, spec)
            plans.append(ColumnPlan(f.name, target, _source_kind(f)))
            continue
        if settings:
            raise SchemaError(f"column {f.name!r} is tabular in the dataset; tensor options {settings} do not apply")
        want = existing.tabular.field(target).type
        if not _castable(_tabular_field(f, target).type, want):
            raise SchemaError(f"column {f.name!r}: Spark type {f.dataType.simpleString()} does not fit the dataset's "
                              f"column type {want}")
        plans.append(ColumnPlan(f.name, target, "tabular"))
    return WritePlan(existing, tuple(plans), (), new_schema=False)


def _castable(src: pa.DataType, dst: pa.DataType) -> bool:
    if src.equals(dst):
        return True
    groups = (
        (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal),
        (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view),
        (pa.types.is_binary, pa.types.is_large_binary, pa.types.is_binary_view),
        (pa.types.is_timestamp,),
        (pa.types.is_date,),
        (pa.types.is_boolean,),
    )
    for group in groups:
        if any(test(src) for test in group) and any(test(dst) for test in group):
            return True
    if pa.types.is_nested(src) and pa.types.is_nested(dst):
        return src.num_fields == dst.num_fields  # element types are checked by the cast at write time
    return False
