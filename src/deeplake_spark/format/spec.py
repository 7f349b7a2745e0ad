"""Tensor column specification: name, htype, dtype, shape and compression."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from deeplake_spark.errors import SchemaError
from deeplake_spark.format.limits import MAX_DIM, MAX_NDIM

DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024

#: dtype name -> on-disk code (docs/FORMAT.md, "dtype codes").
DTYPES: dict[str, int] = {
    "bool": 1,
    "uint8": 2,
    "uint16": 3,
    "uint32": 4,
    "uint64": 5,
    "int8": 6,
    "int16": 7,
    "int32": 8,
    "int64": 9,
    "float16": 10,
    "float32": 11,
    "float64": 12,
    "str": 13,
}
DTYPE_BY_CODE = {code: name for name, code in DTYPES.items()}

#: compression name -> on-disk code. jpeg/png are sample-level, lz4 is chunk-level.
COMPRESSIONS: dict[str, int] = {"none": 0, "lz4": 1, "jpeg": 2, "png": 3}
COMPRESSION_BY_CODE = {code: name for name, code in COMPRESSIONS.items()}
SAMPLE_COMPRESSIONS = frozenset({"jpeg", "png"})

# htype -> defaults (dtype, shape, compression). shape None = ragged, any rank.
_HTYPE_DEFAULTS: dict[str, tuple[str, tuple[int | None, ...] | None, str]] = {
    "generic": ("float32", None, "none"),
    "image": ("uint8", None, "jpeg"),
    "class_label": ("int32", (), "none"),
    "bbox": ("float32", (None, 4), "none"),
    "binary_mask": ("bool", None, "lz4"),
    "segment_mask": ("int32", None, "lz4"),
    "embedding": ("float32", None, "none"),
    "text": ("str", (), "none"),
    "json": ("str", (), "none"),
    "audio": ("float32", None, "lz4"),
}
HTYPES = tuple(_HTYPE_DEFAULTS)
#: dtypes a 0-d (scalar) tensor is stored inline with, as a plain column of the row instead of in chunks
#: (docs/FORMAT.md, "Scalar tensors"); uint64 has no lossless signed 64-bit column type and stays chunked.
INLINE_DTYPES = frozenset(DTYPES) - {"uint64"}
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _parse_shape(shape: Any, tensor: str) -> tuple[int | None, ...] | None:
    if shape is None:
        return None
    if isinstance(shape, str):
        text = shape.strip().strip("()[]")
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            shape = [None if p.lower() in ("none", "?", "*") else int(p) for p in parts]
        except ValueError as e:
            raise SchemaError(f"tensor {tensor!r}: cannot parse shape {shape!r}") from e
    try:
        dims = list(shape)
    except TypeError as e:
        raise SchemaError(f"tensor {tensor!r}: shape {shape!r} is not a sequence of dimensions") from e
    # the chunk header holds at most MAX_NDIM dims per sample: a longer spec could never be filled
    if len(dims) > MAX_NDIM:
        raise SchemaError(f"tensor {tensor!r}: shape has {len(dims)} dimensions, above the format's limit of "
                          f"{MAX_NDIM}")
    out: list[int | None] = []
    for dim in dims:
        if dim is None:
            out.append(None)
        elif isinstance(dim, (int, np.integer)) and not isinstance(dim, (bool, np.bool_)) and 0 <= int(dim) <= MAX_DIM:
            out.append(int(dim))
        elif isinstance(dim, (int, np.integer)) and not isinstance(dim, (bool, np.bool_)) and int(dim) < 0:
            raise SchemaError(f"tensor {tensor!r}: negative dimension {dim} in shape {tuple(dims)}; use None for a "
                              "dimension that varies per sample, e.g. shape=(None, 4)")
        else:
            raise SchemaError(f"tensor {tensor!r}: bad dimension {dim!r} in shape {tuple(dims)} (a dimension is "
                              f"None or an int in 0..{MAX_DIM})")
    return tuple(out)


@dataclass(frozen=True)
class TensorSpec:
    """How one tensor column is stored.

    ``shape`` is ``None`` for ragged samples of any rank, or a tuple whose entries are fixed sizes
    or ``None`` for a dimension that varies per sample (e.g. ``(None, 4)`` for boxes).
    """

    name: str
    htype: str = "generic"
    dtype: str = "float32"
    shape: tuple[int | None, ...] | None = None
    compression: str = "none"
    chunk_size: int = DEFAULT_CHUNK_SIZE
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    #: for class_label tensors: the name of each label value (``class_names[3]`` names label 3)
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise SchemaError(f"tensor name {self.name!r} must match {_NAME_RE.pattern}")
        if self.htype not in _HTYPE_DEFAULTS:
            raise SchemaError(f"tensor {self.name!r}: unknown htype {self.htype!r}; expected one of {HTYPES}")
        if self.dtype not in DTYPES:
            raise SchemaError(f"tensor {self.name!r}: unknown dtype {self.dtype!r}; expected one of {tuple(DTYPES)}")
        if self.compression not in COMPRESSIONS:
            raise SchemaError(
                f"tensor {self.name!r}: unknown compression {self.compression!r}; expected one of {tuple(COMPRESSIONS)}"
            )
        object.__setattr__(self, "shape", _parse_shape(self.shape, self.name))
        if self.compression in SAMPLE_COMPRESSIONS:
            if self.dtype != "uint8":
                raise SchemaError(f"tensor {self.name!r}: {self.compression} compression needs dtype uint8, not {self.dtype}")
            if self.shape is not None and len(self.shape) not in (2, 3):
                raise SchemaError(
                    f"tensor {self.name!r}: {self.compression} images must have rank 2 or 3, not shape {self.shape}"
                )
        if self.dtype == "str":
            if self.shape not in (None, ()):
                raise SchemaError(f"tensor {self.name!r}: str samples are 0-d; shape {self.shape} is not allowed")
            object.__setattr__(self, "shape", ())
            if self.compression in SAMPLE_COMPRESSIONS:
                raise SchemaError(f"tensor {self.name!r}: str tensors cannot use {self.compression}")
        if not isinstance(self.chunk_size, int) or isinstance(self.chunk_size, bool) or self.chunk_size <= 0:
            raise SchemaError(f"tensor {self.name!r}: chunk_size must be a positive int, not {self.chunk_size!r}")
        if self.class_names is not None:
            object.__setattr__(self, "class_names", _parse_class_names(self.class_names, self.name, self.htype))

    @classmethod
    def create(
        cls,
        name: str,
        htype: str = "generic",
        *,
        dtype: str | None = None,
        shape: Any = "default",
        compression: str | None = None,
        chunk_size: int | None = None,
        class_names: Any = None,
    ) -> TensorSpec:
        """Build a spec, filling unset fields from the htype's defaults."""
        if htype not in _HTYPE_DEFAULTS:
            raise SchemaError(f"tensor {name!r}: unknown htype {htype!r}; expected one of {HTYPES}")
        d_dtype, d_shape, d_comp = _HTYPE_DEFAULTS[htype]
        dtype = normalize_dtype(dtype, name) if dtype is not None else None
        return cls(
            name=name,
            htype=htype,
            dtype=dtype or d_dtype,
            shape=d_shape if isinstance(shape, str) and shape == "default" else shape,
            compression=compression or d_comp,
            chunk_size=DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size,  # 0 is refused, not defaulted
            class_names=class_names,
        )

    @property
    def numpy_dtype(self) -> np.dtype:
        return np.dtype(object) if self.dtype == "str" else np.dtype(self.dtype)

    @property
    def is_sample_compressed(self) -> bool:
        return self.compression in SAMPLE_COMPRESSIONS

    @property
    def is_scalar(self) -> bool:
        """True for a 0-d tensor of a dtype new datasets store inline, as a plain column (not in chunks)."""
        return self.shape == () and self.dtype in INLINE_DTYPES

    def class_name(self, label: Any) -> str | None:
        """The class name of ``label`` (an int) when this tensor has class names that cover it, else None."""
        if self.class_names is None or label is None:
            return None
        try:
            index = int(label)
        except (TypeError, ValueError):
            return None
        return self.class_names[index] if 0 <= index < len(self.class_names) else None

    def with_name(self, name: str) -> TensorSpec:
        return replace(self, name=name)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "htype": self.htype,
            "dtype": self.dtype,
            "shape": None if self.shape is None else list(self.shape),
            "compression": self.compression,
            "chunk_size": self.chunk_size,
        }
        if self.class_names is not None:  # absent otherwise: specs without names keep their JSON
            out["class_names"] = list(self.class_names)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorSpec:
        """The spec stored as ``data`` (e.g. parsed from Delta metadata); SchemaError when malformed."""
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise SchemaError(f"a tensor spec must be a JSON object with a name, not {str(data)[:200]!r}")
        name = data["name"]
        shape = data.get("shape")
        if isinstance(shape, str) or not (shape is None or isinstance(shape, (list, tuple))):
            raise SchemaError(f"tensor {name!r}: shape {shape!r} is not a list of dimensions")
        fields = {key: data.get(key, default) for key, default in
                  (("htype", "generic"), ("dtype", "float32"), ("compression", "none"))}
        for key, value in fields.items():
            if not isinstance(value, str):
                raise SchemaError(f"tensor {name!r}: {key} {value!r} is not a string")
        chunk_size = data.get("chunk_size", DEFAULT_CHUNK_SIZE)
        try:
            chunk_size = int(chunk_size) if isinstance(chunk_size, (int, str)) else chunk_size
        except ValueError as e:
            raise SchemaError(f"tensor {name!r}: chunk_size {chunk_size!r} is not an int") from e
        class_names = data.get("class_names")
        if class_names is not None and not isinstance(class_names, list):
            raise SchemaError(f"tensor {name!r}: class_names {str(class_names)[:200]!r} is not a list of names")
        return cls(name=name, shape=None if shape is None else tuple(shape), chunk_size=chunk_size,
                   class_names=class_names, **fields)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _parse_class_names(names: Any, tensor: str, htype: str) -> tuple[str, ...]:
    if htype != "class_label":
        raise SchemaError(f"tensor {tensor!r}: class_names only apply to class_label tensors, not htype {htype!r}")
    if isinstance(names, (str, bytes)) or not isinstance(names, (list, tuple)):
        raise SchemaError(f"tensor {tensor!r}: class_names must be a list of str, not {type(names).__name__}")
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise SchemaError(f"tensor {tensor!r}: class_names must be str; {bad[0]!r} is a {type(bad[0]).__name__}")
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise SchemaError(f"tensor {tensor!r}: class name {n!r} appears twice in class_names; names must be unique")
        seen.add(n)
    return tuple(names)


def normalize_dtype(dtype: Any, tensor: str) -> str:
    """Map numpy-style dtype names/objects (``"f4"``, ``np.float32``) to the format's dtype names."""
    if isinstance(dtype, str) and dtype.lower() in ("str", "string", "text", "utf8"):
        return "str"
    try:
        name = np.dtype(dtype).name
    except TypeError as e:
        raise SchemaError(f"tensor {tensor!r}: unknown dtype {dtype!r}") from e
    if name not in DTYPES:
        raise SchemaError(f"tensor {tensor!r}: unsupported dtype {name!r}; expected one of {tuple(DTYPES)}")
    return name
