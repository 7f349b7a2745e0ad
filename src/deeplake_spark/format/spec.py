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

#: compression name -> on-disk code. lz4 is chunk-level; jpeg/png (images) and the video containers
#: mp4/webm/mkv/avi are sample-level: each sample is one complete file, stored as given.
COMPRESSIONS: dict[str, int] = {"none": 0, "lz4": 1, "jpeg": 2, "png": 3, "mp4": 4, "webm": 5, "mkv": 6, "avi": 7}
COMPRESSION_BY_CODE = {code: name for name, code in COMPRESSIONS.items()}
IMAGE_COMPRESSIONS = frozenset({"jpeg", "png"})
VIDEO_COMPRESSIONS = frozenset({"mp4", "webm", "mkv", "avi"})
SAMPLE_COMPRESSIONS = IMAGE_COMPRESSIONS | VIDEO_COMPRESSIONS
#: what a link tensor's target is read as: the file's bytes, a decoded image array or a video
LINK_TARGETS = ("bytes", "image", "video")

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
    "point_cloud": ("float32", (None, None), "lz4"),
    "video": ("uint8", None, "mp4"),
    "link": ("str", (), "none"),
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
    #: for link tensors: what the linked file is read as (one of LINK_TARGETS; None elsewhere)
    link_to: str | None = None

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
        _check_media(self)
        if self.compression in IMAGE_COMPRESSIONS:
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
        object.__setattr__(self, "link_to", _parse_link_to(self.link_to, self.name, self.htype))

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
        link_to: str | None = None,
    ) -> TensorSpec:
        """Build a spec, filling unset fields from the htype's defaults.

        ``htype`` may be Deep Lake's ``"link[image]"`` spelling, the same as ``htype="link", link_to="image"``.
        """
        htype, link_to = _split_link_htype(htype, link_to, name)
        if htype not in _HTYPE_DEFAULTS:
            raise SchemaError(f"tensor {name!r}: unknown htype {htype!r}; expected one of {HTYPES}")
        d_dtype, d_shape, d_comp = _HTYPE_DEFAULTS[htype]
        dtype = normalize_dtype(dtype, name) if dtype is not None else None
        if htype == "point_cloud" and shape is None:
            raise SchemaError(f"tensor {name!r}: a point_cloud tensor has shape (points, 3 or more values per point), "
                              "e.g. (None, None) or (None, 3), not None")
        return cls(
            name=name,
            htype=htype,
            dtype=dtype or d_dtype,
            shape=d_shape if isinstance(shape, str) and shape == "default" else shape,
            compression=compression or d_comp,
            chunk_size=DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size,  # 0 is refused, not defaulted
            class_names=class_names,
            link_to=link_to,
        )

    @property
    def numpy_dtype(self) -> np.dtype:
        return np.dtype(object) if self.dtype == "str" else np.dtype(self.dtype)

    @property
    def is_sample_compressed(self) -> bool:
        return self.compression in SAMPLE_COMPRESSIONS

    @property
    def is_video(self) -> bool:
        """True for a tensor whose samples are video container files (mp4, webm, mkv, avi)."""
        return self.compression in VIDEO_COMPRESSIONS

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
        if self.link_to is not None:  # link tensors only
            out["link_to"] = self.link_to
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
        link_to = data.get("link_to")
        if link_to is not None and not isinstance(link_to, str):
            raise SchemaError(f"tensor {name!r}: link_to {str(link_to)[:200]!r} is not a string")
        return cls(name=name, shape=None if shape is None else tuple(shape), chunk_size=chunk_size,
                   class_names=class_names, link_to=link_to, **fields)

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


def _split_link_htype(htype: str, link_to: str | None, tensor: str) -> tuple[str, str | None]:
    """``"link[image]"`` -> ("link", "image"); other htypes unchanged."""
    if not isinstance(htype, str) or not (htype.startswith("link[") and htype.endswith("]")):
        return htype, link_to
    inner = htype[len("link["):-1]
    if link_to is not None and link_to != inner:
        raise SchemaError(f"tensor {tensor!r}: htype {htype!r} and link_to={link_to!r} disagree; give one of them")
    return "link", inner


def _parse_link_to(link_to: Any, tensor: str, htype: str) -> str | None:
    if htype != "link":
        if link_to is not None:
            raise SchemaError(f"tensor {tensor!r}: link_to only applies to link tensors, not htype {htype!r}")
        return None
    if link_to is None:
        return "bytes"
    if link_to not in LINK_TARGETS:
        raise SchemaError(f"tensor {tensor!r}: link_to {link_to!r} is not one of {LINK_TARGETS}")
    return str(link_to)


def _check_media(spec: TensorSpec) -> None:
    """The rules of the media htypes: video holds container files, point_cloud (N, >=3) floats, link text."""
    name = spec.name
    if spec.is_video != (spec.htype == "video"):
        if spec.htype == "video":
            raise SchemaError(f"tensor {name!r}: a video tensor needs a video container compression "
                              f"{sorted(VIDEO_COMPRESSIONS)}, not {spec.compression!r}")
        raise SchemaError(f"tensor {name!r}: {spec.compression} compression is for htype 'video', not {spec.htype!r}")
    if spec.htype == "video" and spec.shape is not None:
        raise SchemaError(f"tensor {name!r}: a video tensor has no declared shape (each sample records its own "
                          f"(frames, height, width, 3)); leave shape unset, not {spec.shape}")
    if spec.htype == "point_cloud":
        if spec.dtype not in ("float16", "float32", "float64"):
            raise SchemaError(f"tensor {name!r}: a point_cloud tensor holds float coordinates, not dtype {spec.dtype}")
        # shape None is only refused in create(): internal copies with the shape dropped stay valid
        if spec.shape is not None and (len(spec.shape) != 2 or (spec.shape[1] is not None and spec.shape[1] < 3)):
            raise SchemaError(f"tensor {name!r}: a point_cloud tensor has shape (points, 3 or more values per point), "
                              f"e.g. (None, None) or (None, 3), not {spec.shape}")
    if spec.htype == "link" and (spec.dtype != "str" or spec.compression != "none"):
        raise SchemaError(f"tensor {name!r}: a link tensor stores URL/path text (dtype str, no compression), not "
                          f"dtype {spec.dtype} with compression {spec.compression}")


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
