"""Look at samples: an HTML grid for Jupyter/Databricks (:func:`show`) or a PNG file (:func:`save_grid`).

>>> import deeplake_spark as dls
>>> from deeplake_spark import viz
>>> viz.show(dls.open("/data/pets"), n=8)                  # renders in Jupyter / Databricks
>>> viz.save_grid(dls.open("/data/pets"), "grid.png", n=16)

What is drawn, per row: the first image column (``image=`` picks another; raw JPEG/PNG bytes
columns such as Spark's binaryFile ``content`` work too), every ``binary_mask``/``segment_mask``
tensor blended over it, every ``bbox`` tensor outlined on top (``[x, y, w, h]`` in pixels by
default, see ``bbox_format`` and ``bbox_normalized``), and one caption line per other column:
class labels (with names from ``class_names``), text and JSON, arrays and embeddings summarised as
``dtype (shape) min .. max``, tabular values. Box ``i`` of a sample is outlined in
``PALETTE[i]``; mask layer ``k`` (segment class ``k + 1``) is blended with ``PALETTE[k]``.

No pyspark import here: Spark DataFrames are duck-typed and their tensor ref columns resolved
through the dataset layer with the ``deeplake.dataset``/``deeplake.version``/``deeplake.tensor``
metadata the ``deeplake`` source puts on each ref column.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from deeplake_spark.errors import InvalidOptionError
from deeplake_spark.viz.grid import CellBox, Grid, GridLayout
from deeplake_spark.viz.render import (
    BBOX_FORMATS,
    MASK_ALPHA,
    PALETTE,
    RenderOptions,
    render,
)
from deeplake_spark.viz.samples import collect

__all__ = ["BBOX_FORMATS", "MASK_ALPHA", "PALETTE", "CellBox", "Grid", "GridLayout", "grid", "save_grid", "show"]


def grid(
    source: Any,
    n: int = 8,
    columns: Sequence[str] | None = None,
    *,
    image: str | None = None,
    class_names: Mapping[str, Sequence[str]] | Sequence[str] | None = None,
    bbox_format: str = "xywh",
    bbox_normalized: bool = False,
    tile_size: int = 192,
    per_row: int = 4,
    storage_options: Mapping[str, str] | None = None,
) -> Grid:
    """Render the first ``n`` rows of ``source`` without displaying them (see :func:`show`)."""
    if not isinstance(per_row, int) or per_row < 1:
        raise InvalidOptionError(f"per_row must be an int >= 1, not {per_row!r}")
    options = RenderOptions(image=image, class_names=class_names, bbox_format=bbox_format,
                            bbox_normalized=bbox_normalized, tile_size=tile_size)
    table = collect(source, n, columns, storage_options)
    return Grid(render(table, options), title=table.title, per_row=per_row, tile_size=tile_size)


def show(
    source: Any,
    n: int = 8,
    columns: Sequence[str] | None = None,
    *,
    image: str | None = None,
    class_names: Mapping[str, Sequence[str]] | Sequence[str] | None = None,
    bbox_format: str = "xywh",
    bbox_normalized: bool = False,
    tile_size: int = 192,
    per_row: int = 4,
    storage_options: Mapping[str, str] | None = None,
) -> Grid:
    """Show the first ``n`` rows of a Dataset, Spark DataFrame or pyarrow Table as a grid of samples.

    Returns a :class:`Grid`: Jupyter renders it (``_repr_html_``); on Databricks it is also sent to
    ``displayHTML``. ``grid.save("x.png")`` writes the same grid as a PNG.

    columns: the columns to show (default all). image: the column drawn as the picture (default the
    first image tensor, else the first column of JPEG/PNG bytes). class_names: label names, either
    ``{column: [names]}`` or one list for every ``class_label`` tensor. bbox_format: ``"xywh"``
    (default), ``"xyxy"`` or ``"cxcywh"``; bbox_normalized: coordinates in [0, 1] of the image size.
    tile_size: pixels of the longer image side. storage_options: for datasets a DataFrame refers to.

    >>> viz.show(ds, n=8, columns=["image", "boxes", "label"], class_names={"label": ["cat", "dog"]})
    """
    result = grid(source, n, columns, image=image, class_names=class_names, bbox_format=bbox_format,
                  bbox_normalized=bbox_normalized, tile_size=tile_size, per_row=per_row,
                  storage_options=storage_options)
    result.display()
    return result


def save_grid(
    source: Any,
    path: str | os.PathLike[str],
    n: int = 8,
    columns: Sequence[str] | None = None,
    **options: Any,
) -> GridLayout:
    """Write the first ``n`` rows as a PNG grid (same drawing and options as :func:`show`).

    Returns the :class:`GridLayout`: image size and, per sample, where its picture was pasted and
    at which scale.

    >>> viz.save_grid(ds, "grid.png", n=16, columns=["image", "label"])
    """
    return grid(source, n, columns, **options).save(path)
