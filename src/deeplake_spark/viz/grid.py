"""A grid of rendered samples, as HTML (Jupyter, Databricks) or as one PNG image."""

from __future__ import annotations

import base64
import html
import io
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from deeplake_spark.errors import StorageError
from deeplake_spark.viz.render import Caption, Cell

log = logging.getLogger(__name__)

MARGIN = 8
FONT_SIZE = 11
LINE_HEIGHT = 14
MAX_CAPTION_LINES = 8
HTML_TEXT_CHARS = 300
BACKGROUND = (255, 255, 255)
TEXT_COLOUR = (40, 40, 40)


@dataclass(frozen=True)
class CellBox:
    """Where a sample's image landed in the PNG: ``grid_x = x + sample_x * scale`` (same for y)."""

    index: int
    x: int
    y: int
    width: int
    height: int
    scale: float


@dataclass(frozen=True)
class GridLayout:
    """Geometry of a saved grid: its size and one :class:`CellBox` per sample that has an image."""

    path: str
    size: tuple[int, int]
    cells: tuple[CellBox, ...]


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    text = " ".join(text.split())
    if draw.textlength(text, font=font) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # longest prefix that fits with an ellipsis
        mid = (lo + hi + 1) // 2
        if draw.textlength(text[:mid] + "…", font=font) <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + "…"


def _caption_lines(cell: Cell) -> list[str]:
    lines = [f"#{cell.index}"] + [f"{c.column}: {c.text}" for c in cell.captions]
    if len(lines) > MAX_CAPTION_LINES:
        lines = lines[: MAX_CAPTION_LINES - 1] + [f"(+{len(lines) - MAX_CAPTION_LINES + 1} more)"]
    return lines


class Grid:
    """Rendered samples. Displays itself in Jupyter (``_repr_html_``); ``save(path)`` writes a PNG."""

    def __init__(self, cells: list[Cell], *, title: str, per_row: int, tile_size: int) -> None:
        self.cells = cells
        self.title = title
        self.per_row = per_row
        self.tile_size = tile_size
        self._shown_elsewhere = False

    def __len__(self) -> int:
        return len(self.cells)

    def __repr__(self) -> str:
        return f"Grid({len(self.cells)} samples; {self.title})"

    # ------------------------------------------------------------------ HTML
    def _caption_html(self, caption: Caption) -> str:
        text = caption.text
        if len(text) > HTML_TEXT_CHARS:
            text = text[:HTML_TEXT_CHARS] + "…"
        value = html.escape(text)
        if caption.kind == "text":
            value = f'<span style="white-space:pre-wrap">{value}</span>'
        elif caption.kind == "array":
            value = f"<code>{value}</code>"
        return f'<div><b>{html.escape(caption.column)}</b>: {value}</div>'

    def to_html(self) -> str:
        """A self-contained HTML fragment (images inlined as PNG data URIs)."""
        parts = [
            '<div class="deeplake-spark-grid" style="font-family:sans-serif;font-size:12px">',
            f'<div style="margin:4px 0"><b>{html.escape(self.title)}</b></div>',
            f'<div style="display:grid;grid-template-columns:repeat({self.per_row},{self.tile_size + 16}px);gap:8px">',
        ]
        for cell in self.cells:
            parts.append('<div style="border:1px solid #ddd;padding:4px;overflow:hidden">')
            if cell.image is not None:
                data = base64.b64encode(_png_bytes(cell.image)).decode("ascii")
                parts.append(f'<img src="data:image/png;base64,{data}" width="{cell.image.width}" '
                             f'height="{cell.image.height}" style="display:block;margin:auto">')
            parts.append(f'<div style="color:#888">#{cell.index}</div>')
            parts.extend(self._caption_html(c) for c in cell.captions)
            parts.append("</div>")
        parts.append("</div></div>")
        return "".join(parts)

    def _repr_html_(self) -> str | None:
        # Databricks already got the grid through displayHTML; returning None makes IPython fall
        # back to the one-line repr instead of drawing it twice.
        return None if self._shown_elsewhere else self.to_html()

    # ------------------------------------------------------------------- PNG
    def to_image(self) -> tuple[Image.Image, list[CellBox]]:
        """The whole grid as one RGB image, and where each sample's image is in it."""
        font = ImageFont.load_default(size=FONT_SIZE)
        has_images = any(c.image is not None for c in self.cells)
        tile = self.tile_size if has_images else 0
        n_lines = max((len(_caption_lines(c)) for c in self.cells), default=1)
        cell_h = tile + (MARGIN // 2 if has_images else 0) + n_lines * LINE_HEIGHT
        n_rows = max(1, -(-len(self.cells) // self.per_row))
        top = MARGIN + LINE_HEIGHT + MARGIN
        width = MARGIN + max(1, min(self.per_row, len(self.cells))) * (self.tile_size + MARGIN)
        height = top + n_rows * (cell_h + MARGIN)
        canvas = Image.new("RGB", (width, height), BACKGROUND)
        draw = ImageDraw.Draw(canvas)
        draw.text((MARGIN, MARGIN), _fit_text(draw, self.title, font, width - 2 * MARGIN), fill=TEXT_COLOUR, font=font)
        boxes = []
        for i, cell in enumerate(self.cells):
            cx = MARGIN + (i % self.per_row) * (self.tile_size + MARGIN)
            cy = top + (i // self.per_row) * (cell_h + MARGIN)
            if cell.image is not None:
                x = cx + (self.tile_size - cell.image.width) // 2
                y = cy + (self.tile_size - cell.image.height) // 2
                canvas.paste(cell.image, (x, y))
                boxes.append(CellBox(cell.index, x, y, cell.image.width, cell.image.height, cell.scale))
            ty = cy + tile + (MARGIN // 2 if has_images else 0)
            for line in _caption_lines(cell):
                draw.text((cx, ty), _fit_text(draw, line, font, self.tile_size), fill=TEXT_COLOUR, font=font)
                ty += LINE_HEIGHT
        return canvas, boxes

    def save(self, path: str | os.PathLike[str]) -> GridLayout:
        """Write the grid as a PNG file; returns its layout."""
        canvas, boxes = self.to_image()
        target = os.fspath(path)
        try:
            canvas.save(target, format="PNG")
        except OSError as e:
            raise StorageError(f"writing grid image {target} failed: {e}") from e
        return GridLayout(target, canvas.size, tuple(boxes))

    # ------------------------------------------------------------- notebooks
    def display(self) -> bool:
        """Send the HTML to Databricks' ``displayHTML`` when running there; True if it did."""
        display_html = databricks_display_html()
        if display_html is None:
            return False
        display_html(self.to_html())
        self._shown_elsewhere = True
        return True


def databricks_display_html() -> Callable[[str], Any] | None:
    """Databricks' notebook-global ``displayHTML``, or None outside a Databricks notebook."""
    if "DATABRICKS_RUNTIME_VERSION" not in os.environ:
        return None
    namespaces: list[dict[str, Any]] = []
    ipython_module = sys.modules.get("IPython")
    if ipython_module is not None:
        shell = ipython_module.get_ipython()
        if shell is not None:
            namespaces.append(shell.user_ns)
    main = sys.modules.get("__main__")
    if main is not None:
        namespaces.append(vars(main))
    for namespace in namespaces:
        fn = namespace.get("displayHTML")
        if callable(fn):
            return fn
    log.warning("DATABRICKS_RUNTIME_VERSION is set but no displayHTML was found; use the returned grid instead")
    return None
