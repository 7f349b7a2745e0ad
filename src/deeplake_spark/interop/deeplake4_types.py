"""Deep Lake 4 column types -> deeplake-spark columns: what each column becomes and how it is read.

Only the attributes Deep Lake 4's Python API exposes on a column type are used (``kind``,
``data_type``/``id``, ``shape``, ``sample_compression``, ``is_nullable``, ``str()`` for the wrapped type of
a ``Nullable``); no Deep Lake file is parsed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from deeplake_spark.format.spec import DTYPES, TensorSpec

#: Deep Lake 4 reports an unknown dimension as the largest uint64.
_UNKNOWN_DIM = 2**64 - 1

#: Scalar dtypes Delta has a column type for: such Deep Lake 4 scalars become tabular columns.
_TABULAR_SCALARS: dict[str, pa.DataType] = {
    "bool": pa.bool_(), "int8": pa.int8(), "int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64(),
    "float32": pa.float32(), "float64": pa.float64(),
}

#: How a column's values are read from Deep Lake 4 (see ``deeplake4.read_batch``).
READ_BYTES = "bytes"  # column.get_bytes(): encoded JPEG/PNG bytes exactly as stored
READ_VALUES = "values"  # column[a:b]: numpy arrays / scalars / str (None for a null of a Nullable)
READ_JSON = "json"  # column.get_bytes(): the JSON text Deep Lake 4 stores for a dict
READ_STRUCT = "struct"  # column[a:b]: Dict objects, turned into JSON text
READ_BINARY = "binary"  # column.get_bytes(): a bytes column
READ_TEXT = "text"  # column.get_bytes(): UTF-8 text (a link's URL/path)


@dataclass(frozen=True)
class ColumnPlan:
    """One Deep Lake 4 column and what it becomes.

    ``target`` is a :class:`TensorSpec` (a tensor column) or a ``pyarrow.DataType`` (a tabular column).
    """

    name: str
    source_type: str
    target: TensorSpec | pa.DataType
    read: str
    note: str = ""

    @property
    def is_tensor(self) -> bool:
        return isinstance(self.target, TensorSpec)


class Unsupported(Exception):  # noqa: N818 -- internal signal, turned into a SchemaError naming every column
    """A column type deeplake-spark cannot represent; ``args[0]`` says what it is."""


def type_name(dtype: Any) -> str:
    """A short name of a Deep Lake 4 column type for messages: ``image``, ``polygon``, ``nullable[int32]``."""
    kind = str(getattr(dtype, "kind", "")).rsplit(".", 1)[-1]
    if kind in ("", "???"):
        return "struct" if ":" in str(getattr(dtype, "id", "")) else str(dtype).split("\n", 1)[0]
    text = str(dtype)
    return text if kind in ("Nullable", "Sequence") else kind.lower()


def _shape(dtype: Any) -> tuple[int | None, ...]:
    dims = getattr(dtype, "shape", None) or []
    return tuple(None if int(d) == _UNKNOWN_DIM else int(d) for d in dims)


def _dtype(dtype: Any, column: str, what: str) -> str:
    name = str(dtype.id)
    if name not in DTYPES or name == "str":
        raise Unsupported(f"{what} of dtype {name}")
    return name


def _spec(column: str, htype: str, dtype: str, shape: Any, compression: str | None = None, **extra: Any) -> TensorSpec:
    return TensorSpec.create(column, htype, dtype=dtype, shape=shape, compression=compression, **extra)


def plan_column(column: str, dtype: Any, class_names: list[str] | None) -> ColumnPlan:
    """What Deep Lake 4 column ``column`` of type ``dtype`` becomes; :class:`Unsupported` when nothing fits.

    ``class_names``: the column's ``metadata["class_names"]`` (class_label columns).
    """
    kind = str(getattr(dtype, "kind", "")).rsplit(".", 1)[-1]
    name = type_name(dtype)
    shape = _shape(dtype)
    compression = dtype.sample_compression
    if kind == "Image":
        pixel = _dtype(dtype, column, "an image")
        if compression in ("jpeg", "png") and pixel == "uint8":
            return ColumnPlan(column, name, _spec(column, "image", "uint8", None, compression), READ_BYTES,
                              f"{compression} bytes passed through")
        return ColumnPlan(column, name, _spec(column, "image", pixel, None, "lz4"), READ_VALUES,
                          "uncompressed pixels, stored lz4")
    if kind == "ClassLabel":
        label = _dtype(dtype, column, "a class_label")
        return ColumnPlan(column, name, _spec(column, "class_label", label, shape if shape else (),
                                              class_names=class_names), READ_VALUES)
    if kind == "BoundingBox":
        box_dtype = _dtype(dtype, column, "a bbox")
        return ColumnPlan(column, name, _spec(column, "bbox", box_dtype, (None, 4)), READ_VALUES,
                          f"coordinates copied as stored; {_box_layout(dtype, box_dtype)}")
    if kind == "BinaryMask":
        return ColumnPlan(column, name, _spec(column, "binary_mask", "bool", None), READ_VALUES)
    if kind == "SegmentMask":
        return ColumnPlan(column, name, _spec(column, "segment_mask", _dtype(dtype, column, "a segment_mask"), None),
                          READ_VALUES)
    if kind == "Embedding":
        return ColumnPlan(column, name, _spec(column, "embedding", _dtype(dtype, column, "an embedding"), shape),
                          READ_VALUES)
    if kind == "Text":
        return ColumnPlan(column, name, _spec(column, "text", "str", ()), READ_VALUES)
    if kind == "Dict":
        return ColumnPlan(column, name, _spec(column, "json", "str", ()), READ_JSON)
    if name == "struct":
        return ColumnPlan(column, name, _spec(column, "json", "str", ()), READ_STRUCT, "struct fields as a JSON object")
    if kind == "Link":
        return _plan_link(column, dtype, name)
    if kind == "Video":
        # get_bytes raises "Not implemented" for video: only decoded frames would come out
        raise Unsupported(f"{name}; Deep Lake 4 gives no video file bytes, only decoded frames")
    if kind == "Point":
        return ColumnPlan(column, name, _spec(column, "generic", _dtype(dtype, column, "a point"), None), READ_VALUES,
                          "points as a generic array")
    if kind == "Generic":
        return _plan_generic(column, dtype, name, shape)
    if kind == "Nullable":
        return _plan_nullable(column, dtype, name, shape)
    raise Unsupported(name)


#: Deep Lake 4 box formats -> the names ``Dataset.show(bbox_format=...)`` / ``show --bbox-format`` use
_BOX_FORMATS = {"ltwh": "xywh", "ltrb": "xyxy", "ccwh": "cxcywh"}


def _box_layout(dtype: Any, box_dtype: str) -> str:
    """Words for a BoundingBox column's format. Deep Lake 4 exposes it only through type equality, so each
    (format, bbox_type) pair is compared."""
    import deeplake

    for fmt in (*_BOX_FORMATS, "unknown"):
        for pixels in ("pixel", "fractional"):
            if dtype == deeplake.types.BoundingBox(box_dtype, fmt, pixels):
                if fmt == "unknown":
                    return f"Deep Lake 4 box format unknown ({pixels})"
                return (f"Deep Lake 4 box format {fmt} ({pixels}) = {_BOX_FORMATS[fmt]}"
                        + (", normalized" if pixels == "fractional" else ""))
    return "Deep Lake 4 box format not set"


def _plan_link(column: str, dtype: Any, name: str) -> ColumnPlan:
    # "kind=link subtype=[kind=image, ...]" / "kind=link subtype=[bytes]": the target is only visible in str()
    subtype = str(dtype).split("subtype=[", 1)[-1]
    if subtype.startswith("kind=image"):
        target = "image"
    elif subtype.startswith("bytes"):
        target = "bytes"
    else:
        raise Unsupported(name)
    return ColumnPlan(column, name, _spec(column, "link", "str", (), link_to=target), READ_TEXT,
                      f"the links' URLs/paths, resolved when read (link_to={target!r})")


def _plan_generic(column: str, dtype: Any, name: str, shape: tuple[int | None, ...]) -> ColumnPlan:
    ident = str(dtype.id)
    if ident == "bytes" and not shape:
        return ColumnPlan(column, name, pa.binary(), READ_BINARY)
    if not shape and ident in _TABULAR_SCALARS:
        return ColumnPlan(column, name, _TABULAR_SCALARS[ident], READ_VALUES)
    return ColumnPlan(column, name, _spec(column, "generic", _dtype(dtype, column, "an array"), shape), READ_VALUES)


def _plan_nullable(column: str, dtype: Any, name: str, shape: tuple[int | None, ...]) -> ColumnPlan:
    # the wrapped type is only visible in str(): "nullable[int32]", "nullable[kind=image, ...]", "nullable[text]"
    inner = str(dtype)[len("nullable["):]
    if inner.startswith("text"):
        return ColumnPlan(column, name, _spec(column, "text", "str", ()), READ_VALUES)
    if inner.startswith("kind=image"):
        # Deep Lake 4 gives no encoded bytes for a nullable image column (get_bytes refuses it)
        return ColumnPlan(column, name, _spec(column, "image", _dtype(dtype, column, "an image"), None, "lz4"),
                          READ_VALUES, "decoded pixels, stored lz4 (Deep Lake 4 gives no bytes for nullable images)")
    if inner.startswith("kind=") or inner.startswith("dict"):
        raise Unsupported(name)
    return _plan_generic(column, dtype, name, shape)
