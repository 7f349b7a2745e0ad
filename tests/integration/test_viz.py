"""Sample grids: pixels of drawn boxes and mask overlays in the saved PNG, HTML captions, DataFrames."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import re
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

import deeplake_spark as dls
from deeplake_spark import viz
from deeplake_spark.errors import InvalidOptionError

GREY = 100


def png_bytes(value: int | tuple[int, int, int], height: int = 64, width: int = 64) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def blend(base: int, colour: tuple[int, int, int]) -> tuple[int, ...]:
    return tuple(round(base * (1 - viz.MASK_ALPHA) + c * viz.MASK_ALPHA) for c in colour)


@pytest.fixture
def boxes_ds(ds_path):
    """Two 64x64 grey PNG images; row 0 has two boxes and a binary mask, row 1 a segment mask."""
    ds = dls.create(ds_path, {
        "image": dls.tensor("image", compression="png"),
        "boxes": dls.tensor("bbox"),
        "mask": dls.tensor("binary_mask"),
        "label": dls.tensor("class_label"),
        "caption": dls.tensor("text"),
        "meta": dls.tensor("json"),
        "emb": dls.tensor("embedding"),
        "score": "float64",
    })
    mask0 = np.zeros((64, 64), bool)
    mask0[44:60, 4:20] = True
    ds.append({
        "image": [png_bytes(GREY), png_bytes(GREY)],
        "boxes": [np.array([[10, 10, 20, 15], [30, 30, 20, 20]], np.float32), np.zeros((0, 4), np.float32)],
        "mask": [mask0, np.zeros((64, 64), bool)],
        "label": [np.int32(1), np.int32(0)],
        "caption": ["a <b>bold</b> cat", "plain"],
        "meta": [json.dumps({"source": "unit", "k": [1, 2]}), "{}"],
        "emb": [np.array([0, 1, 2, 3], np.float32), np.array([-1.5, 2.25], np.float32)],
        "score": [0.5, 0.25],
    })
    return ds


def read_png(path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.format == "PNG"
        return np.asarray(img.convert("RGB"))


def px(pixels: np.ndarray, x: int, y: int) -> tuple[int, ...]:
    return tuple(int(v) for v in pixels[y, x])


def test_save_grid_draws_boxes_in_palette_colours_at_their_pixels(boxes_ds, tmp_path):
    out = tmp_path / "grid.png"
    layout = viz.save_grid(boxes_ds, out, n=2, columns=["image", "boxes"], tile_size=64)
    pixels = read_png(out)
    assert pixels.shape[1::-1] == layout.size
    cell = layout.cells[0]
    assert (cell.width, cell.height, cell.scale) == (64, 64, 1.0)
    x, y = cell.x, cell.y
    red, green = viz.PALETTE[0], viz.PALETTE[1]
    # box 0: [x=10, y=10, w=20, h=15] -> columns 10..29, rows 10..24, 2 px outline drawn inwards
    for bx, by in [(10, 10), (29, 10), (10, 24), (29, 24), (20, 10), (20, 11), (10, 17), (28, 17), (20, 24)]:
        assert px(pixels, x + bx, y + by) == red, (bx, by)
    assert px(pixels, x + 20, y + 17) == (GREY,) * 3  # inside: not filled
    assert px(pixels, x + 9, y + 17) == (GREY,) * 3  # just outside
    assert px(pixels, x + 30, y + 17) == (GREY,) * 3
    # box 1: [30, 30, 20, 20] -> 30..49
    for bx, by in [(30, 30), (49, 49), (40, 30), (30, 40), (49, 40)]:
        assert px(pixels, x + bx, y + by) == green, (bx, by)
    assert px(pixels, x + 40, y + 40) == (GREY,) * 3
    # row 1 has no boxes: its image is plain grey
    other = layout.cells[1]
    tile = pixels[other.y:other.y + 64, other.x:other.x + 64]
    assert (tile == GREY).all()


def test_boxes_follow_the_image_scale(boxes_ds, tmp_path):
    layout = viz.save_grid(boxes_ds, tmp_path / "g.png", n=1, columns=["image", "boxes"], tile_size=128)
    pixels = read_png(tmp_path / "g.png")
    cell = layout.cells[0]
    assert cell.scale == 2.0 and (cell.width, cell.height) == (128, 128)
    red = viz.PALETTE[0]
    # box 0 corners (10, 10) and (30, 25) in sample pixels -> (20, 20) and (59, 49) in the tile
    assert px(pixels, cell.x + 20, cell.y + 20) == red
    assert px(pixels, cell.x + 59, cell.y + 49) == red
    assert px(pixels, cell.x + 19, cell.y + 20) == (GREY,) * 3
    assert px(pixels, cell.x + 40, cell.y + 35) == (GREY,) * 3


@pytest.mark.parametrize("fmt, normalized, boxes", [
    ("xyxy", False, [[10, 10, 30, 25]]),
    ("cxcywh", False, [[20, 17.5, 20, 15]]),
    ("xywh", True, [[10 / 64, 10 / 64, 20 / 64, 15 / 64]]),
])
def test_bbox_formats_draw_the_same_box(tmp_path, fmt, normalized, boxes):
    ds = dls.create(str(tmp_path / "ds"), {"image": dls.tensor("image", compression="png"), "boxes": dls.tensor("bbox")})
    ds.append({"image": [png_bytes(GREY)], "boxes": [np.array(boxes, np.float32)]})
    layout = viz.save_grid(ds, tmp_path / "g.png", tile_size=64, bbox_format=fmt, bbox_normalized=normalized)
    pixels = read_png(tmp_path / "g.png")
    cell = layout.cells[0]
    red = viz.PALETTE[0]
    for bx, by in [(10, 10), (29, 24), (10, 24)]:
        assert px(pixels, cell.x + bx, cell.y + by) == red
    assert px(pixels, cell.x + 20, cell.y + 17) == (GREY,) * 3


def test_binary_mask_is_blended_over_the_image(boxes_ds, tmp_path):
    layout = viz.save_grid(boxes_ds, tmp_path / "m.png", n=2, columns=["image", "mask"], tile_size=64)
    pixels = read_png(tmp_path / "m.png")
    cell = layout.cells[0]
    expected = blend(GREY, viz.PALETTE[0])
    for mx, my in [(4, 44), (19, 59), (10, 50)]:
        assert px(pixels, cell.x + mx, cell.y + my) == expected
    for mx, my in [(3, 44), (20, 50), (10, 43), (40, 10)]:
        assert px(pixels, cell.x + mx, cell.y + my) == (GREY,) * 3


def test_segment_mask_classes_get_their_colours_and_mask_without_image(tmp_path):
    ds = dls.create(str(tmp_path / "seg"), {"seg": dls.tensor("segment_mask"), "emb": dls.tensor("embedding")})
    seg = np.zeros((32, 48), np.int32)
    seg[0:10, 0:10] = 1
    seg[20:32, 30:48] = 2
    ds.append({"seg": [seg], "emb": [np.zeros(3, np.float32)]})
    layout = viz.save_grid(ds, tmp_path / "s.png", tile_size=48)
    pixels = read_png(tmp_path / "s.png")
    cell = layout.cells[0]
    assert (cell.width, cell.height) == (48, 32)  # drawn on black at the mask's own size
    assert px(pixels, cell.x + 5, cell.y + 5) == blend(0, viz.PALETTE[0])
    assert px(pixels, cell.x + 40, cell.y + 25) == blend(0, viz.PALETTE[1])
    assert px(pixels, cell.x + 20, cell.y + 15) == (0, 0, 0)


def test_html_grid_inlines_images_and_summarises_other_columns(boxes_ds):
    grid = viz.show(boxes_ds, n=2)
    assert len(grid) == 2
    page = grid._repr_html_()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2
    with Image.open(io.BytesIO(base64.b64decode(images[0]))) as img:
        assert img.size == (192, 192)  # default tile size, 64x64 image scaled by 3
        assert img.getpixel((30, 30)) == viz.PALETTE[0]  # box 0 corner (10, 10) * 3
    assert "2 boxes (xywh)" in page and "0 boxes (xywh)" in page
    assert "a &lt;b&gt;bold&lt;/b&gt; cat" in page and "<b>bold</b>" not in page
    assert "float32 (4,) min 0 max 3" in page and "float32 (2,) min -1.5 max 2.25" in page
    assert '{&quot;source&quot;:&quot;unit&quot;,&quot;k&quot;:[1,2]}' in page
    assert "binary (64, 64), 6.2% set" in page
    assert f"{boxes_ds.path} @ version 1: 2 of 2 rows" in page
    named = viz.show(boxes_ds, n=1, columns=["label", "score"], class_names=["cat", "dog"])._repr_html_()
    assert "1 (dog)" in named and "0.5" in named and "<img" not in named


def test_show_sends_html_to_databricks_display(boxes_ds, monkeypatch):
    shown: list[str] = []
    main = sys.modules["__main__"]
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "15.4")
    monkeypatch.setattr(main, "displayHTML", shown.append, raising=False)
    grid = viz.show(boxes_ds, n=1, columns=["image", "label"])
    assert len(shown) == 1 and shown[0] == grid.to_html() and "data:image/png;base64," in shown[0]
    assert grid._repr_html_() is None  # not drawn a second time by the notebook's repr
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION")
    assert viz.show(boxes_ds, n=1)._repr_html_() is not None


def test_arrow_table_with_ref_metadata_and_image_bytes(boxes_ds):
    # what a Spark DataFrame over the deeplake source carries, as an Arrow table, next to a
    # binaryFile-style column of encoded image bytes
    boxes = boxes_ds.table(columns=["boxes"]).column("boxes")
    meta = {b"deeplake.dataset": boxes_ds.path.encode(), b"deeplake.version": b"1",
            b"deeplake.tensor": boxes_ds.schema.tensors["boxes"].to_json().encode()}
    content = pa.array([png_bytes((0, 0, 255)), png_bytes(GREY)], pa.binary())
    table = pa.Table.from_arrays([boxes, content], schema=pa.schema([
        pa.field("boxes", boxes.type, metadata=meta), pa.field("content", pa.binary())]))
    grid = viz.grid(table, n=2, tile_size=64)
    first = grid.cells[0]
    assert first.image is not None and first.image.getpixel((40, 40)) == (0, 0, 255)  # content bytes drawn
    assert first.image.getpixel((10, 10)) == viz.PALETTE[0]  # boxes resolved through the dataset
    assert [(c.column, c.text) for c in first.captions] == [("boxes", "2 boxes (xywh)")]


def test_ref_column_without_dataset_metadata_is_a_schema_error(boxes_ds):
    boxes = boxes_ds.table(columns=["boxes"]).column("boxes")
    meta = {b"deeplake.tensor": boxes_ds.schema.tensors["boxes"].to_json().encode()}
    table = pa.Table.from_arrays([boxes], schema=pa.schema([pa.field("boxes", boxes.type, metadata=meta)]))
    with pytest.raises(dls.errors.SchemaError, match="deeplake.dataset"):
        viz.grid(table)


def test_spark_dataframe_with_ref_columns(spark, boxes_ds, tmp_path):
    from pyspark.sql import types as T

    ref_type = T.StructType([T.StructField("chunk", T.StringType()), T.StructField("index", T.IntegerType()),
                             T.StructField("shape", T.ArrayType(T.LongType())), T.StructField("nbytes", T.LongType())])

    def ref_field(name: str) -> T.StructField:
        return T.StructField(name, ref_type, metadata={
            "deeplake.dataset": boxes_ds.path, "deeplake.version": 1,
            "deeplake.tensor": boxes_ds.schema.tensors[name].to_json()})

    table = boxes_ds.table(columns=["image", "boxes", "label", "score"])
    # a class_label is stored inline: a plain value with the spec in the array-mode metadata
    label = T.StructField("label", T.IntegerType(), metadata={
        "deeplake.dataset": boxes_ds.path, "deeplake.version": 1, "deeplake.encoding": "array",
        "deeplake.spec": boxes_ds.schema.tensors["label"].to_json()})
    schema = T.StructType([ref_field("image"), ref_field("boxes"), label, T.StructField("score", T.DoubleType())])
    df = spark.createDataFrame(table.to_pylist(), schema=schema)
    grid = viz.show(df.filter("score < 0.4"), n=4)  # only row 1 survives
    assert len(grid) == 1
    assert grid.cells[0].image is not None and grid.cells[0].image.getpixel((96, 96)) == (GREY,) * 3
    texts = {c.column: c.text for c in grid.cells[0].captions}
    assert texts == {"boxes": "0 boxes (xywh)", "label": "0", "score": "0.25"}
    layout = viz.save_grid(df, tmp_path / "df.png", n=2, columns=["image", "boxes"], tile_size=64)
    assert len(layout.cells) == 2
    pixels = read_png(tmp_path / "df.png")
    assert px(pixels, layout.cells[0].x + 10, layout.cells[0].y + 10) == viz.PALETTE[0]


@pytest.mark.skipif(importlib.util.find_spec("deeplake_spark.spark.source") is None,
                    reason="the deeplake Spark source is not in this build")
@pytest.mark.parametrize("tensors", ["ref", "bytes", "image=bytes,boxes=array,label=array"])
def test_dataframe_read_through_the_deeplake_source(spark, boxes_ds, tmp_path, tensors):
    df = spark.read.format("deeplake").option("tensors", tensors).load(boxes_ds.path)
    layout = viz.save_grid(df.filter("score > 0.4"), tmp_path / "df.png", n=2,
                           columns=["image", "boxes", "mask", "label"], tile_size=64, class_names=["cat", "dog"])
    assert len(layout.cells) == 1
    pixels = read_png(tmp_path / "df.png")
    cell = layout.cells[0]
    assert px(pixels, cell.x + 10, cell.y + 10) == viz.PALETTE[0]
    assert px(pixels, cell.x + 30, cell.y + 40) == viz.PALETTE[1]
    assert px(pixels, cell.x + 10, cell.y + 50) == blend(GREY, viz.PALETTE[0])
    grid = viz.grid(df.filter("score > 0.4"), columns=["label", "emb"], class_names=["cat", "dog"])
    assert [c.text for c in grid.cells[0].captions] == ["1 (dog)", "float32 (4,) min 0 max 3"]


def test_bad_options_raise_library_errors(boxes_ds, tmp_path):
    with pytest.raises(InvalidOptionError, match="unknown column"):
        viz.show(boxes_ds, columns=["nope"])
    with pytest.raises(InvalidOptionError, match="bbox_format"):
        viz.show(boxes_ds, bbox_format="yolo")
    with pytest.raises(InvalidOptionError, match="cannot show list"):
        viz.show([1, 2, 3])
    with pytest.raises(InvalidOptionError, match="n must be"):
        viz.show(boxes_ds, n=-1)
    empty = dls.create(str(tmp_path / "empty"), {"image": dls.tensor("image"), "label": "int64"})
    layout = viz.save_grid(empty, tmp_path / "empty.png")
    assert layout.cells == () and read_png(tmp_path / "empty.png").shape[0] > 0


def test_viz_does_not_import_pyspark():
    code = "import sys, deeplake_spark.viz; print('pyspark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
