"""from_coco / ``deeplake-spark import-coco``: a COCO folder generated here (JPEG + PNG images, polygons,
uncompressed and compressed RLE, a crowd annotation, sparse category ids) imported into a real dataset;
masks checked against masks computed by hand. Mask decoding also checked property-based: polygons
against per-pixel ray casting, RLE against an encoder ported from COCO's maskApi."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import deeplake_spark as dls
from deeplake_spark.cli import main
from deeplake_spark.errors import DatasetExistsError, DatasetNotFoundError, SchemaError, StorageError
from deeplake_spark.interop.coco_masks import polygon_mask, rle_mask

H, W = 8, 10


def _encoded(seed: int, fmt: str) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    return out.getvalue()


def _rect(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros((H, W), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


# hand-computed masks of the annotations below
RECT = _rect(1, 1, 5, 4)  # polygon with corners (1,1)..(5,4): rows 1-3, cols 1-4, area 12
TRIANGLE = np.zeros((H, W), dtype=bool)  # (0,0),(4,0),(0,4): pixel centres with x + y < 4
for r, c in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0)]:
    TRIANGLE[r, c] = True
TWO_PARTS = _rect(0, 6, 2, 8) | _rect(8, 0, 10, 2)
CROWD = _rect(6, 0, 8, 8)  # uncompressed RLE: 6 columns of zeros, 2 of ones, 2 of zeros (column-major)
# compressed RLE "d0X1d0" = runs [20, 40, 20]: zeros to (row 3, col 2), then 40 ones
COMPRESSED = np.zeros((H, W), dtype=bool)
COMPRESSED[4:, 2] = True
COMPRESSED[:, 3:7] = True
COMPRESSED[:4, 7] = True


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    images_dir = root / "images"
    (images_dir / "sub").mkdir(parents=True)
    files = {"a.jpg": _encoded(1, "JPEG"), "sub/b.png": _encoded(2, "PNG"), "c.jpg": _encoded(3, "JPEG")}
    for name, data in files.items():
        (images_dir / name).write_bytes(data)
    annotations = {
        "images": [{"id": 42, "file_name": "a.jpg", "height": H, "width": W},
                   {"id": 7, "file_name": "sub/b.png", "height": H, "width": W},
                   {"id": 9, "file_name": "c.jpg", "height": H, "width": W}],
        # listed out of id order, ids sparse: labels are positions in id order (cat=0, dog=1, bird=2)
        "categories": [{"id": 11, "name": "bird"}, {"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}],
        "annotations": [
            {"id": 100, "image_id": 42, "category_id": 3, "bbox": [1, 1, 4, 3], "iscrowd": 0,
             "segmentation": [[1, 1, 5, 1, 5, 4, 1, 4]]},
            {"id": 101, "image_id": 42, "category_id": 11, "bbox": [0, 0, 4, 4], "iscrowd": 0,
             "segmentation": [[0, 0, 4, 0, 0, 4]]},
            {"id": 102, "image_id": 7, "category_id": 1, "bbox": [6, 0, 2, 8], "iscrowd": 1,
             "segmentation": {"size": [H, W], "counts": [48, 16, 16]}},
            {"id": 103, "image_id": 7, "category_id": 3, "bbox": [0, 0, 10, 8], "iscrowd": 0,
             "segmentation": [[0, 6, 2, 6, 2, 8, 0, 8], [8, 0, 10, 0, 10, 2, 8, 2]]},
            {"id": 104, "image_id": 42, "category_id": 1, "bbox": [2.5, 0, 5, 8], "iscrowd": 1,
             "segmentation": {"size": [H, W], "counts": "d0X1d0"}},
        ],
    }
    ann_path = root / "instances.json"
    ann_path.write_text(json.dumps(annotations))
    return images_dir, ann_path, files


@pytest.fixture(scope="module")
def imported(coco, tmp_path_factory):
    images_dir, ann_path, _ = coco
    return dls.from_coco(images_dir, ann_path, tmp_path_factory.mktemp("dst") / "ds", batch_rows=2, progress=False)


def test_rows_images_boxes_and_labels(coco, imported):
    _, _, files = coco
    ds = imported
    assert len(ds) == 3 and ds.version == 0
    table = ds.table(["image_id", "file_name", "height", "width"]).to_pydict()
    assert table == {"image_id": [42, 7, 9], "file_name": ["a.jpg", "sub/b.png", "c.jpg"],
                     "height": [H] * 3, "width": [W] * 3}
    # the files' bytes, not re-encoded (the PNG too, in a tensor named jpeg after the first image)
    raw = ds.read_tensor("image", ds.table(["image"])["image"].to_pylist(), raw=True)
    assert [bytes(b) for b in raw] == [files["a.jpg"], files["sub/b.png"], files["c.jpg"]]
    assert ds.tensors["image"].compression == "jpeg"
    assert ds.tensors["categories"].class_names == ("cat", "dog", "bird")
    rows = [ds[i] for i in range(3)]
    np.testing.assert_array_equal(rows[0]["boxes"], np.array([[1, 1, 4, 3], [0, 0, 4, 4], [2.5, 0, 5, 8]], np.float32))
    assert rows[0]["boxes"].dtype == np.float32
    assert rows[0]["categories"].tolist() == [1, 2, 0]  # dog, bird, cat
    assert rows[0]["category_ids"].tolist() == [3, 11, 1]
    assert rows[0]["annotation_ids"].tolist() == [100, 101, 104]
    assert rows[0]["iscrowd"].tolist() == [False, False, True]
    assert rows[1]["categories"].tolist() == [0, 1] and rows[1]["iscrowd"].tolist() == [True, False]
    # an image without annotations: empty per-box columns, an (H, W, 0) mask
    assert rows[2]["boxes"].shape == (0, 4) and rows[2]["categories"].shape == (0,)
    assert rows[2]["masks"].shape == (H, W, 0)
    np.testing.assert_array_equal(rows[0]["image"], np.asarray(Image.open(io.BytesIO(files["a.jpg"]))))


def test_binary_masks_from_polygons_and_rle(imported):
    first, second = imported[0]["masks"], imported[1]["masks"]
    assert first.dtype == bool and first.shape == (H, W, 3)
    np.testing.assert_array_equal(first[..., 0], RECT)
    np.testing.assert_array_equal(first[..., 1], TRIANGLE)
    np.testing.assert_array_equal(first[..., 2], COMPRESSED)
    assert second.shape == (H, W, 2)
    np.testing.assert_array_equal(second[..., 0], CROWD)
    np.testing.assert_array_equal(second[..., 1], TWO_PARTS)
    assert first[..., 0].sum() == 12  # the COCO area of a 4x3 box polygon


def test_segment_masks_hold_category_ids(coco, tmp_path):
    images_dir, ann_path, _ = coco
    ds = dls.from_coco(images_dir, ann_path, tmp_path / "seg", masks="segment", progress=False)
    assert ds.tensors["masks"].htype == "segment_mask"
    expected = np.zeros((H, W), dtype=np.int32)
    expected[RECT] = 3
    expected[TRIANGLE] = 11
    expected[COMPRESSED] = 1  # drawn last: over the others
    np.testing.assert_array_equal(ds[0]["masks"], expected)
    assert ds[2]["masks"].tolist() == np.zeros((H, W)).tolist()
    none = dls.from_coco(images_dir, ann_path, tmp_path / "nomask", masks="none", progress=False)
    assert "masks" not in none.schema.order


def _bad_copy(coco, tmp_path, change) -> str:
    _, ann_path, _ = coco
    data = json.loads(ann_path.read_text())
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_annotations_of_unknown_images_are_reported(coco, tmp_path, caplog):
    images_dir, _, _ = coco
    orphan = _bad_copy(coco, tmp_path, lambda d: d["annotations"].append(
        {"id": 300, "image_id": 12345, "category_id": 1, "bbox": [0, 0, 1, 1]}))
    ds = dls.from_coco(images_dir, orphan, tmp_path / "orphan", masks="none", progress=False)
    assert len(ds) == 3 and 300 not in [a for i in range(3) for a in ds[i]["annotation_ids"].tolist()]
    assert "1 annotations refer to 1 image ids that are not in 'images' (e.g. [12345])" in caplog.text


def test_failures_leave_nothing_at_the_destination(coco, tmp_path):
    images_dir, _, _ = coco
    # the third image (second batch) refers to an unknown category: the first batch was already written
    bad = _bad_copy(coco, tmp_path, lambda d: d["annotations"].append(
        {"id": 200, "image_id": 9, "category_id": 99, "bbox": [0, 0, 1, 1]}))
    dst = tmp_path / "out"
    with pytest.raises(SchemaError, match="category_id 99"):
        dls.from_coco(images_dir, bad, dst, batch_rows=2, progress=False)
    assert not dst.exists(), list(dst.rglob("*"))  # no chunk, no Parquet file, no folder
    with pytest.raises(DatasetNotFoundError):
        dls.open(dst)
    missing = _bad_copy(coco, tmp_path, lambda d: d["images"][2].update(file_name="gone.jpg"))
    with pytest.raises(StorageError, match="gone.jpg"):
        dls.from_coco(images_dir, missing, dst, progress=False)
    size = _bad_copy(coco, tmp_path, lambda d: d["images"][1].update(height=9))
    with pytest.raises(SchemaError, match="sub/b.png"):
        dls.from_coco(images_dir, size, dst, progress=False)
    assert not dst.exists()
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    with pytest.raises(DatasetExistsError, match="not empty"):
        dls.from_coco(images_dir, bad, occupied, progress=False)
    assert os.listdir(occupied) == ["notes.txt"]


def test_cli_import_coco(coco, tmp_path, capsys):
    images_dir, ann_path, _ = coco
    dst = tmp_path / "cli"
    assert main(["import-coco", str(images_dir), str(ann_path), str(dst), "--masks", "segment"]) == 0
    assert "imported 3 images" in capsys.readouterr().out
    ds = dls.open(dst)
    assert len(ds) == 3 and ds.tensors["masks"].htype == "segment_mask"
    assert main(["import-coco", str(images_dir), str(ann_path), str(dst)]) == 1
    assert "DatasetExistsError" in capsys.readouterr().err


# --------------------------------------------------------------- mask decoding, property-based
def _brute_force_polygon(xs: list[float], ys: list[float], height: int, width: int) -> np.ndarray:
    """Even-odd ray casting per pixel centre: an independent reference for coco_masks.polygon_mask."""
    out = np.zeros((height, width), dtype=bool)
    n = len(xs)
    for r in range(height):
        for c in range(width):
            px, py, inside = c + 0.5, r + 0.5, False
            for i in range(n):
                x0, y0, x1, y1 = xs[i], ys[i], xs[(i + 1) % n], ys[(i + 1) % n]
                if (y0 <= py) != (y1 <= py) and px >= x0 + (py - y0) * (x1 - x0) / (y1 - y0):
                    inside = not inside
            out[r, c] = inside
    return out


def _runs(mask: np.ndarray) -> list[int]:
    """COCO RLE counts of ``mask``: alternating runs of 0 and 1, starting with 0, column-major."""
    runs, current, count = [], False, 0
    for value in mask.T.ravel():
        if value != current:
            runs.append(count)
            current, count = value, 0
        count += 1
    return [*runs, count]


def _rle_string(mask: np.ndarray) -> str:
    """COCO's compressed RLE of ``mask`` (a port of maskApi.c rleToString), for the round trip below."""
    counts = _runs(mask)
    out = []
    for i, count in enumerate(counts):
        x = count - counts[i - 2] if i > 2 else count
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            out.append(chr(c + (0x20 if more else 0) + 48))
    return "".join(out)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-3, 15, allow_nan=False), st.floats(-3, 12, allow_nan=False)),
                min_size=3, max_size=9))
def test_polygon_mask_matches_ray_casting(points):
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    flat = [v for p in points for v in p]
    np.testing.assert_array_equal(polygon_mask([flat], 9, 12, where="t"), _brute_force_polygon(xs, ys, 9, 12))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_compressed_and_plain_rle_round_trip(height, width, seed):
    mask = np.random.default_rng(seed).random((height, width)) > 0.5
    assert np.array_equal(rle_mask({"size": [height, width], "counts": _rle_string(mask)}, height, width, where="t"),
                          mask)
    assert np.array_equal(rle_mask({"size": [height, width], "counts": _runs(mask)}, height, width, where="t"), mask)
