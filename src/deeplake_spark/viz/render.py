"""Draw one sample: its image scaled to a tile, masks blended over it, boxes on top, and captions.

Colours are fixed so that pictures are reproducible: box ``i`` of a sample is outlined in
``PALETTE[i % len(PALETTE)]``; binary mask layer ``k`` (``(H, W)`` or ``(H, W, K)``) and segment
class ``c > 0`` are blended with ``PALETTE[k]`` / ``PALETTE[(c - 1) % len(PALETTE)]`` at
``MASK_ALPHA``.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from deeplake_spark.errors import DecodeError, InvalidOptionError
from deeplake_spark.format import TensorSpec
from deeplake_spark.format.images import image_format
from deeplake_spark.viz.samples import SampleTable

log = logging.getLogger(__name__)

PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25),
    (145, 30, 180), (245, 130, 48), (70, 240, 240), (240, 50, 230),
)
MASK_ALPHA = 0.5
BOX_WIDTH = 2
#: Box layouts: [x, y, w, h] (default), [x0, y0, x1, y1], [cx, cy, w, h].
BBOX_FORMATS = ("xywh", "xyxy", "cxcywh")
MASK_HTYPES = frozenset({"binary_mask", "segment_mask"})


@dataclass(frozen=True)
class RenderOptions:
    """How samples are drawn; see :func:`deeplake_spark.viz.show` for the meaning of each field."""

    image: str | None = None
    class_names: Mapping[str, Sequence[str]] | Sequence[str] | None = None
    bbox_format: str = "xywh"
    bbox_normalized: bool = False
    tile_size: int = 192

    def __post_init__(self) -> None:
        if self.bbox_format not in BBOX_FORMATS:
            raise InvalidOptionError(f"bbox_format={self.bbox_format!r}; expected one of {BBOX_FORMATS}")
        if not isinstance(self.tile_size, int) or self.tile_size < 16:
            raise InvalidOptionError(f"tile_size must be an int >= 16, not {self.tile_size!r}")

    def names_for(self, column: str, spec: TensorSpec | None) -> Sequence[str] | None:
        """Names given in ``class_names`` for ``column``, else the class names stored in its spec."""
        given: Sequence[str] | None = None
        if isinstance(self.class_names, Mapping):
            given = self.class_names.get(column)
        elif self.class_names is not None and spec is not None and spec.htype == "class_label":
            given = self.class_names
        if given is None and spec is not None:
            return spec.class_names
        return given


@dataclass
class Caption:
    """One line under a sample: the column and its value summarised as text."""

    column: str
    text: str
    kind: str = "value"  # "value", "text" (free text / json), "label", "array"


@dataclass
class Cell:
    """A rendered sample: the image with overlays (None when the row has nothing to draw)."""

    index: int
    image: Image.Image | None
    scale: float = 1.0
    captions: list[Caption] = field(default_factory=list)


def _htype(spec: TensorSpec | None) -> str | None:
    return spec.htype if spec is not None else None


def _is_encoded_image(value: Any) -> bool:
    return isinstance(value, (bytes, bytearray, memoryview)) and image_format(value) is not None


def pick_image_column(table: SampleTable, requested: str | None) -> str | None:
    """The column drawn as the tile: ``requested``, else the first image tensor or image-bytes column."""
    if requested is not None:
        if requested not in table.columns:
            raise InvalidOptionError(f"image={requested!r} is not among the shown columns {table.columns}")
        return requested
    for name in table.columns:
        if _htype(table.specs.get(name)) == "image":
            return name
    for name in table.columns:
        if name not in table.specs and any(_is_encoded_image(row[name]) for row in table.rows[:4]):
            return name
    return None


def to_rgb(value: Any, *, column: str, index: int) -> Image.Image:
    """A sample (uint8/float array, or JPEG/PNG bytes) as an RGB Pillow image."""
    if _is_encoded_image(value):
        try:
            with Image.open(io.BytesIO(bytes(value))) as img:
                return img.convert("RGB")
        except OSError as e:
            raise DecodeError(f"column {column!r}, row {index}: cannot decode image bytes: {e}") from e
    arr = np.asarray(value)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise DecodeError(f"column {column!r}, row {index}: cannot draw an array of shape {arr.shape} as an image")
    if arr.dtype != np.uint8:
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 1.0)
        arr = ((arr.astype(np.float64) - lo) / ((hi - lo) or 1.0) * 255).round().astype(np.uint8)
    return Image.fromarray(arr).convert("RGB")


def _fit(img: Image.Image, tile_size: int) -> tuple[Image.Image, float]:
    scale = tile_size / max(img.size)
    if scale == 1.0:
        return img, 1.0
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.BILINEAR
    return img.resize(size, resample), scale


def _mask_layers(mask: np.ndarray, htype: str) -> list[tuple[np.ndarray, tuple[int, int, int]]]:
    """(boolean layer, colour) pairs for a binary or segment mask."""
    if htype == "segment_mask":
        if mask.ndim == 3 and mask.shape[2] == 1:
            mask = mask[:, :, 0]
        classes = [int(c) for c in np.unique(mask) if c > 0]
        return [(mask == c, PALETTE[(c - 1) % len(PALETTE)]) for c in classes]
    if mask.ndim == 2:
        return [(mask.astype(bool), PALETTE[0])]
    return [(mask[:, :, k].astype(bool), PALETTE[k % len(PALETTE)]) for k in range(mask.shape[2])]


def blend_mask(img: Image.Image, mask: np.ndarray, htype: str) -> Image.Image:
    """``img`` with every set mask pixel blended towards its layer colour by ``MASK_ALPHA``."""
    pixels = np.asarray(img, dtype=np.float32).copy()
    for layer, colour in _mask_layers(np.asarray(mask), htype):
        if layer.shape != (img.height, img.width):
            layer = np.asarray(Image.fromarray(layer).resize(img.size, Image.Resampling.NEAREST))
        pixels[layer] = pixels[layer] * (1 - MASK_ALPHA) + np.asarray(colour, np.float32) * MASK_ALPHA
    return Image.fromarray(pixels.round().astype(np.uint8))


def boxes_xyxy(boxes: Any, fmt: str, *, normalized: bool, image_size: tuple[int, int]) -> np.ndarray:
    """Boxes as float ``[x0, y0, x1, y1]`` pixel corners of the original image."""
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if fmt == "xywh":
        arr = np.column_stack([arr[:, 0], arr[:, 1], arr[:, 0] + arr[:, 2], arr[:, 1] + arr[:, 3]])
    elif fmt == "cxcywh":
        half_w, half_h = arr[:, 2] / 2, arr[:, 3] / 2
        arr = np.column_stack([arr[:, 0] - half_w, arr[:, 1] - half_h, arr[:, 0] + half_w, arr[:, 1] + half_h])
    if normalized:
        width, height = image_size
        arr = arr * np.array([width, height, width, height], dtype=np.float64)
    return arr


def draw_boxes(img: Image.Image, corners: np.ndarray, scale: float) -> None:
    """Outline each box (given in original-image pixels) on the scaled ``img``, ``BOX_WIDTH`` px inwards."""
    draw = ImageDraw.Draw(img)
    for i, (x0, y0, x1, y1) in enumerate(corners):
        sx0, sy0 = round(x0 * scale), round(y0 * scale)
        sx1, sy1 = round(x1 * scale) - 1, round(y1 * scale) - 1
        if sx1 < sx0 or sy1 < sy0:
            continue
        draw.rectangle((sx0, sy0, sx1, sy1), outline=PALETTE[i % len(PALETTE)], width=BOX_WIDTH)


def _format_number(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    return str(value.item() if isinstance(value, np.generic) else value)


def summarize_array(value: Any) -> str:
    """``dtype (shape) min .. max`` for an array sample."""
    arr = np.asarray(value)
    text = f"{arr.dtype} {tuple(arr.shape)}"
    if arr.size and arr.dtype != object:
        text += f" min {_format_number(arr.min())} max {_format_number(arr.max())}"
    return text


def _label_text(value: Any, names: Sequence[str] | None) -> str:
    arr = np.asarray(value)
    def one(v: Any) -> str:
        k = int(v)
        return f"{k} ({names[k]})" if names is not None and 0 <= k < len(names) else str(k)
    if arr.ndim == 0:
        return one(arr)
    return "[" + ", ".join(one(v) for v in arr.reshape(-1)) + "]"


def caption_for(column: str, value: Any, spec: TensorSpec | None, options: RenderOptions) -> Caption:
    """Summarise one value (any column kind) as a caption line."""
    htype = _htype(spec)
    names = options.names_for(column, spec)
    if value is None:
        return Caption(column, "null")
    if htype == "class_label" or (names is not None and np.asarray(value).dtype.kind in "iu"):
        return Caption(column, _label_text(value, names), "label")
    if htype == "bbox":
        count = np.asarray(value).reshape(-1, 4).shape[0] if np.asarray(value).size else 0
        return Caption(column, f"{count} box{'es' if count != 1 else ''} ({options.bbox_format})")
    if htype in MASK_HTYPES:
        arr = np.asarray(value)
        if htype == "segment_mask":
            return Caption(column, f"segment {tuple(arr.shape)} classes {[int(c) for c in np.unique(arr) if c > 0]}")
        share = float(arr.astype(bool).mean()) * 100 if arr.size else 0.0
        return Caption(column, f"binary {tuple(arr.shape)}, {share:.1f}% set")
    if htype == "json" and isinstance(value, str):
        try:
            return Caption(column, json.dumps(json.loads(value), separators=(",", ":")), "text")
        except ValueError:
            return Caption(column, value, "text")
    if isinstance(value, str):
        return Caption(column, value, "text")
    if isinstance(value, (bytes, bytearray, memoryview)):
        fmt = image_format(value)
        return Caption(column, f"<{len(value)} bytes{' ' + fmt if fmt else ''}>")
    if isinstance(value, np.ndarray) and value.ndim > 0:
        return Caption(column, summarize_array(value), "array")
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
        return Caption(column, summarize_array(np.asarray(value)), "array")
    return Caption(column, _format_number(value))


def render_row(index: int, row: Mapping[str, Any], table: SampleTable, image_column: str | None,
               options: RenderOptions) -> Cell:
    """Draw one row: base image (or a mask on black), mask overlays, boxes, and captions."""
    base: Image.Image | None = None
    if image_column is not None and row.get(image_column) is not None:
        base = to_rgb(row[image_column], column=image_column, index=index)
    masks = [(c, table.specs[c].htype) for c in table.columns
             if _htype(table.specs.get(c)) in MASK_HTYPES and row.get(c) is not None]
    if base is None and masks:
        shape = np.asarray(row[masks[0][0]]).shape
        base = Image.new("RGB", (shape[1], shape[0]), (0, 0, 0))
    captions = [caption_for(c, row.get(c), table.specs.get(c), options) for c in table.columns if c != image_column]
    if base is None:
        return Cell(index, None, 1.0, captions)
    original_size = base.size
    tile, scale = _fit(base, options.tile_size)
    for column, htype in masks:
        tile = blend_mask(tile, np.asarray(row[column]), htype)
    for column in table.columns:
        if _htype(table.specs.get(column)) == "bbox" and row.get(column) is not None and np.asarray(row[column]).size:
            corners = boxes_xyxy(row[column], options.bbox_format, normalized=options.bbox_normalized,
                                 image_size=original_size)
            draw_boxes(tile, corners, scale)
    return Cell(index, tile, scale, captions)


def render(table: SampleTable, options: RenderOptions) -> list[Cell]:
    """Every row of ``table`` rendered."""
    image_column = pick_image_column(table, options.image)
    return [render_row(i, row, table, image_column, options) for i, row in enumerate(table.rows)]
