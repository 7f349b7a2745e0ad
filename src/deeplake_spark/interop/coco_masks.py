"""COCO instance segmentations -> boolean masks: polygons, uncompressed RLE and compressed RLE.

Polygons are rasterized by pixel centres: pixel ``(row, col)`` is inside when the point
``(col + 0.5, row + 0.5)`` lies inside the polygon (even-odd rule). A rectangle with integer corners
``x0..x1`` by ``y0..y1`` covers exactly ``(x1 - x0) * (y1 - y0)`` pixels, the box's COCO area.
pycocotools rasterizes at 5x resolution, so edge pixels of slanted polygons can differ from it.

RLE follows COCO's ``maskApi``: counts of alternating 0/1 runs (starting with 0) over the mask in
column-major order; compressed counts are its 6-bit LEB128-like string.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deeplake_spark.errors import SchemaError


def polygon_mask(polygons: Sequence[Sequence[float]], height: int, width: int, *, where: str) -> np.ndarray:
    """(height, width) bool mask of the union of COCO polygons ``[x0, y0, x1, y1, ...]`` (even-odd within each)."""
    mask = np.zeros((height, width), dtype=bool)
    for polygon in polygons:
        try:
            coords = np.asarray(polygon, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise SchemaError(f"{where}: a polygon must be a flat list of numbers: {e}") from e
        if coords.ndim != 1 or len(coords) < 6 or len(coords) % 2 or not np.isfinite(coords).all():
            raise SchemaError(f"{where}: a polygon needs at least 3 finite (x, y) points as a flat list, got "
                              f"{coords.size} numbers of shape {coords.shape}")
        _fill_polygon(mask, coords[0::2], coords[1::2])  # the parts of one object: a union, as COCO merges them
    return mask


#: scanlines x edges (or x columns) of one block of ``_fill_polygon``: bounds its memory (~8 bytes each)
_BLOCK_CELLS = 1 << 22


def _fill_polygon(mask: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> None:
    """Set the pixels of ``mask`` whose centres lie inside the polygon (scanlines in blocks of bounded size)."""
    height, width = mask.shape
    row_lo = max(int(np.floor(ys.min() - 0.5)), 0)
    row_hi = min(int(np.ceil(ys.max() - 0.5)), height - 1)
    step = max(1, _BLOCK_CELLS // max(len(xs), width))
    for start in range(row_lo, row_hi + 1, step):
        _fill_rows(mask, xs, ys, start, min(start + step, row_hi + 1))


def _fill_rows(mask: np.ndarray, xs: np.ndarray, ys: np.ndarray, row_lo: int, row_end: int) -> None:
    """``_fill_polygon`` for the scanlines ``row_lo .. row_end - 1``, all at once."""
    width = mask.shape[1]
    centres_y = np.arange(row_lo, row_end, dtype=np.float64)[:, None] + 0.5  # (rows, 1)
    x_next, y_next = np.roll(xs, -1), np.roll(ys, -1)
    # an edge crosses a scanline when its ends lie on either side (half-open: a shared vertex counts once)
    crosses = (ys <= centres_y) != (y_next <= centres_y)  # (rows, edges)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        hits = xs + (centres_y - ys) * (x_next - xs) / (y_next - ys)
    hits = np.sort(np.where(crosses, hits, np.inf), axis=1)  # crossings first, left to right
    centres_x = np.arange(width, dtype=np.float64) + 0.5
    rows = mask[row_lo:row_end]
    for pair in range(int(crosses.sum(axis=1).max()) // 2):
        left, right = hits[:, 2 * pair, None], hits[:, 2 * pair + 1, None]
        rows |= (centres_x >= left) & (centres_x < right)


def _counts_from_string(text: str, where: str) -> list[int]:
    """COCO's compressed RLE string -> run lengths (maskApi.c ``rleFrString``)."""
    counts: list[int] = []
    try:
        data = text.encode("ascii")
    except UnicodeEncodeError as e:
        raise SchemaError(f"{where}: compressed RLE counts hold a non-ASCII character at {e.start}") from e
    pos = 0
    while pos < len(data):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(data):
                raise SchemaError(f"{where}: truncated compressed RLE counts")
            c = data[pos] - 48
            value |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            pos += 1
            shift += 1
            if not more and c & 0x10:
                value |= -1 << (5 * shift)
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def rle_mask(rle: dict[str, Any], height: int, width: int, *, where: str) -> np.ndarray:
    """(height, width) bool mask of a COCO RLE ``{"size": [h, w], "counts": [...] or "..."}``."""
    size = rle.get("size")
    if not isinstance(size, (list, tuple)) or list(size) != [height, width] \
            or any(isinstance(s, bool) or not isinstance(s, int) for s in size):
        raise SchemaError(f"{where}: RLE size {str(size)[:80]} does not match the image's {height}x{width}")
    raw = rle.get("counts")
    if isinstance(raw, str):
        counts = _counts_from_string(raw, where)
    elif isinstance(raw, (list, tuple)) and all(isinstance(c, int) and not isinstance(c, bool) for c in raw):
        counts = list(raw)
    else:
        raise SchemaError(f"{where}: RLE counts must be a list of ints or a string, not {str(raw)[:80]}")
    pixels = height * width
    # checked as Python ints: a run past the image (or runs whose int64 sum would wrap) never reaches numpy
    if any(c < 0 or c > pixels for c in counts) or sum(counts) != pixels:
        raise SchemaError(f"{where}: RLE runs must be non-negative and cover exactly the image's {pixels} pixels; "
                          f"they cover {sum(counts)}" + (" (some are negative or larger than the image)"
                                                         if any(c < 0 or c > pixels for c in counts) else ""))
    runs = np.asarray(counts, dtype=np.int64)
    values = np.zeros(len(runs), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, runs)
    return flat.reshape((width, height)).T.copy()


def annotation_mask(segmentation: Any, height: int, width: int, *, where: str) -> np.ndarray:
    """The (height, width) bool mask of one annotation's ``segmentation`` (polygons or RLE)."""
    if isinstance(segmentation, dict):
        return rle_mask(segmentation, height, width, where=where)
    if isinstance(segmentation, list):
        if segmentation and isinstance(segmentation[0], (int, float)):
            segmentation = [segmentation]  # a single flat polygon
        return polygon_mask(segmentation, height, width, where=where)
    raise SchemaError(f"{where}: segmentation must be a list of polygons or an RLE dict, not "
                      f"{type(segmentation).__name__}")
