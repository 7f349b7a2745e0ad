"""Hostile input against this session's new surfaces: COCO and Deep Lake 4 imports, link tensors, SQL over
DuckDB (ds.query / ds.sql / ds.filter) and ds.search. Real files, real datasets, real DuckDB, a real torch
DataLoader; each attack must end in a typed error naming what is at fault (or a correct answer), never a
read outside what the user allowed, a crash, a silent wrong answer or a half-written dataset."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

import deeplake_spark as dls
from deeplake_spark.dataset import links as links_module
from deeplake_spark.dataset.links import LinkResolver, resolve_link_columns
from deeplake_spark.dataset.search import search
from deeplake_spark.dataset.view import DatasetView
from deeplake_spark.errors import (
    CorruptChunkError,
    DatasetNotFoundError,
    DeepLakeSparkError,
    InvalidOptionError,
    LinkError,
    SchemaError,
    UnsafePathError,
)
from deeplake_spark.interop import coco as coco_module
from deeplake_spark.interop.coco_masks import annotation_mask, polygon_mask, rle_mask

H, W = 6, 8
SECRET = b"top secret bytes outside every allowed folder"


def _png(value: int = 10, size: tuple[int, int] = (H, W)) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((*size, 3), value, np.uint8)).save(out, format="PNG")
    return out.getvalue()


def _png_header_claiming(height: int, width: int) -> bytes:
    """A real PNG whose IHDR is rewritten to claim ``height`` x ``width`` (CRC fixed): a memory bomb's header."""
    import zlib

    data = bytearray(_png())
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr:ihdr + 4] = width.to_bytes(4, "big")
    data[ihdr + 4:ihdr + 8] = height.to_bytes(4, "big")
    data[ihdr + 13:ihdr + 17] = zlib.crc32(bytes(data[ihdr - 4:ihdr + 13])).to_bytes(4, "big")
    return bytes(data)


# ============================================================================ COCO import
@pytest.fixture(scope="module")
def coco_dir(tmp_path_factory):
    """images/ with two PNGs (one in a subfolder), a secret file beside images/, a symlink escaping images/."""
    root = tmp_path_factory.mktemp("coco_hostile")
    images = root / "images"
    (images / "sub").mkdir(parents=True)
    (images / "a.png").write_bytes(_png(1))
    (images / "sub" / "b.png").write_bytes(_png(2))
    (root / "secret.png").write_bytes(_png(99))  # a valid image the JSON must not reach
    (images / "escape.png").symlink_to(root / "secret.png")
    (images / "inside.png").symlink_to(images / "a.png")  # a link that stays inside is fine
    return root


def _instances(images=None, annotations=None, categories=None) -> dict:
    return {
        "images": images if images is not None else [
            {"id": 1, "file_name": "a.png", "height": H, "width": W},
            {"id": 2, "file_name": "sub/b.png", "height": H, "width": W}],
        "categories": categories if categories is not None else [{"id": 5, "name": "cat"}],
        "annotations": annotations if annotations is not None else [
            {"id": 10, "image_id": 1, "category_id": 5, "bbox": [0, 0, 2, 2], "segmentation": [[0, 0, 2, 0, 2, 2]]}],
    }


def _import(root, data, name, **options):
    path = root / f"{name}.json"
    path.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
    dst = root / f"out_{name}"
    try:
        return dls.from_coco(root / "images", path, dst, progress=False, **options)
    finally:
        if not (dst / "_delta_log").exists():
            assert not dst.exists() or not any(dst.rglob("*")), list(dst.rglob("*"))


@pytest.mark.parametrize("file_name", [
    "../secret.png", "sub/../../secret.png", "%2e%2e/secret.png", "..\\secret.png", "/etc/passwd",
    "file:///etc/passwd", "s3://other-bucket/x.png", "http://example.com/x.png", "C:/x.png", "a.png\x00.jpg",
])
def test_coco_file_names_outside_the_images_folder_are_refused(coco_dir, file_name):
    data = _instances(images=[{"id": 1, "file_name": file_name, "height": H, "width": W}], annotations=[])
    with pytest.raises(UnsafePathError, match="file_name") as info:
        _import(coco_dir, data, "unsafe")
    assert "relative path inside the images folder" in str(info.value)


def test_coco_symlink_out_of_the_images_folder_is_refused_but_one_inside_is_read(coco_dir):
    data = _instances(images=[{"id": 1, "file_name": "escape.png", "height": H, "width": W}], annotations=[])
    with pytest.raises(UnsafePathError, match="escape.png.*symbolic link.*outside the images folder"):
        _import(coco_dir, data, "escape")
    inside = _instances(images=[{"id": 1, "file_name": "inside.png", "height": H, "width": W}], annotations=[])
    ds = _import(coco_dir, inside, "inside", masks="none")
    assert ds.read_tensor("image", ds.table(["image"])["image"].to_pylist(), raw=True)[0] == _png(1)


def test_coco_image_that_is_a_fifo_or_a_folder_is_refused_not_a_hang(coco_dir):
    fifo = coco_dir / "images" / "pipe.png"
    if not fifo.exists():
        os.mkfifo(fifo)
    for name in ("pipe.png", "sub"):
        data = _instances(images=[{"id": 1, "file_name": name, "height": H, "width": W}], annotations=[])
        with pytest.raises(SchemaError, match=f"COCO image '{name}' \\(id 1\\).*is not a regular file"):
            _import(coco_dir, data, "fifo")


@pytest.mark.parametrize("change, message", [
    (lambda d: d["images"].append({"id": 1, "file_name": "sub/b.png", "height": H, "width": W}),
     "image id 1 is used by both 'a.png' and 'sub/b.png'"),
    (lambda d: d["images"].__setitem__(0, 7), "image entry is not an object"),
    (lambda d: d["images"][0].update(id="one"), "image one: id must be a 64-bit integer"),
    (lambda d: d["images"][0].update(id=2**70), "id must be a 64-bit integer"),
    (lambda d: d["images"][0].update(id=10**400), "id must be a 64-bit integer"),
    (lambda d: d["images"][0].update(height=-6), "height must be positive"),
    (lambda d: d["images"][0].update(width=8.5), "width must be a 64-bit integer"),
    (lambda d: d["images"][0].update(file_name=["a.png"]), "file_name must be a non-empty string"),
    (lambda d: d["annotations"][0].pop("image_id"), "annotation 10 lacks 'image_id'"),
    (lambda d: d["annotations"][0].update(category_id=None), "category_id must be a 64-bit integer"),
    (lambda d: d["annotations"][0].update(bbox=[0, 0, 2]), "bbox must be 4 finite numbers"),
    (lambda d: d["annotations"].append("x"), "annotation entry is not an object"),
    (lambda d: d["categories"].append({"id": 6}), "a category needs an integer 'id' and a string 'name'"),
    (lambda d: d.update(annotations={"a": 1}), "'annotations' is not a list"),
])
def test_coco_malformed_json_entries_are_schema_errors_naming_the_entry(coco_dir, change, message):
    data = _instances()
    change(data)
    with pytest.raises(SchemaError, match=message):
        _import(coco_dir, data, "malformed")


def test_coco_bbox_with_nan_or_infinity_is_refused(coco_dir):
    # json.dumps writes NaN / Infinity, which Python's json (and many COCO tools) read back as floats
    for bad in (float("nan"), float("inf")):
        data = _instances()
        data["annotations"][0]["bbox"] = [0, 0, bad, 2]
        with pytest.raises(SchemaError, match="annotation 10: bbox must be 4 finite numbers"):
            _import(coco_dir, data, "nanbox")


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe{not utf8", "cannot be read as JSON"), (b"{'images': []}", "cannot be read as JSON"),
    (b"[1, 2]", "has no 'images' list"), (b"", "cannot be read as JSON"),
    (b'{"images": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", "cannot be read as JSON: RecursionError"),
])
def test_coco_non_json_files_are_schema_errors(coco_dir, content, message):
    with pytest.raises(SchemaError, match=message):
        _import(coco_dir, content, "notjson")


def test_coco_missing_annotations_file_is_not_found(coco_dir):
    with pytest.raises(DatasetNotFoundError, match="nope.json"):
        dls.from_coco(coco_dir / "images", coco_dir / "nope.json", coco_dir / "out_nope", progress=False)


def test_coco_header_claiming_a_huge_image_is_refused_before_masks_are_allocated(tmp_path):
    """A 100000 x 100000 PNG header with one annotation: 10 GB of mask; refused by size, nothing allocated."""
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "bomb.png").write_bytes(_png_header_claiming(100_000, 100_000))
    data = _instances(images=[{"id": 1, "file_name": "bomb.png", "height": 100_000, "width": 100_000}])
    with pytest.raises(SchemaError, match=r"bomb.png.*masks would take 10000000000 bytes.*masks='none'"):
        _import(tmp_path, data, "bomb")
    with pytest.raises(SchemaError, match=r"masks would take 40000000000 bytes"):
        _import(tmp_path, data, "bomb_segment", masks="segment")
    assert coco_module.MAX_MASK_BYTES == 1 << 30


@pytest.mark.parametrize("rle, message", [
    ({"size": [H, W], "counts": [2**62, 2**62, 2**62, 2**62 + H * W]}, "larger than the image"),  # int64 sum wraps
    ({"size": [H, W], "counts": [H * W + 5, -5]}, "some are negative or larger"),
    ({"size": [H, W], "counts": [1, 2]}, "cover exactly the image's 48 pixels; they cover 3"),
    ({"size": [H, W], "counts": ["48"]}, "must be a list of ints or a string"),
    ({"size": [H, W], "counts": [47.5, 0.5]}, "must be a list of ints or a string"),
    ({"size": [H, W], "counts": None}, "must be a list of ints or a string"),
    ({"size": ["six", W], "counts": [48]}, "does not match the image's 6x8"),
    ({"size": [H * 1000, W * 1000], "counts": [48_000_000]}, "does not match the image's 6x8"),
    ({"size": [H, W], "counts": "ΩΩ"}, "non-ASCII"),
    ({"size": [H, W], "counts": "d"}, "truncated compressed RLE"),
    ({"size": [H, W], "counts": "0" * 100}, "cover exactly"),
])
def test_rle_counts_that_do_not_cover_the_image_exactly_are_refused(rle, message):
    with pytest.raises(SchemaError, match=message) as info:
        rle_mask(rle, H, W, where="COCO image x (id 1), annotation 3")
    assert "annotation 3" in str(info.value)


def test_polygons_with_nan_infinity_or_too_few_points_are_refused_and_huge_ones_stay_bounded():
    for bad in ([[0, 0, 1, float("nan"), 2, 2]], [[0, 0, float("inf"), 1, 2, 2]], [[0, 0, 1, 1]], [["a", 1, 2]],
                [[{"x": 1}, 2, 3, 4, 5, 6]], [[[0, 0], [1, 1], [2]]], [[0, 0, 1, 1, 2, 2], 5]):
        with pytest.raises(SchemaError, match="annotation 4: a polygon"):
            annotation_mask(bad, H, W, where="COCO image x, annotation 4")
    # far-away / huge coordinates only cover what lies inside the image
    assert polygon_mask([[-1e300, -1e300, 1e300, -1e300, 1e300, 1e300, -1e300, 1e300]], H, W, where="w").all()
    assert not polygon_mask([[1e9, 1e9, 1e9 + 5, 1e9, 1e9, 1e9 + 5]], H, W, where="w").any()
    # a polygon of 200,000 points over a 300-row image: scanlines are processed in blocks (no rows x edges blow-up)
    angles = np.linspace(0, 2 * np.pi, 200_000, endpoint=False)
    circle = np.stack([150 + 100 * np.cos(angles), 150 + 100 * np.sin(angles)], axis=1).ravel()
    mask = polygon_mask([circle.tolist()], 300, 300, where="w")
    assert abs(int(mask.sum()) - round(np.pi * 100**2)) < 400


def test_coco_damage_in_a_later_batch_leaves_nothing_at_the_destination(coco_dir):
    data = _instances(annotations=[
        {"id": 10, "image_id": 1, "category_id": 5, "segmentation": [[0, 0, 2, 0, 2, 2]]},
        {"id": 11, "image_id": 2, "category_id": 5, "segmentation": {"size": [H, W], "counts": [2**62] * 4}}])
    with pytest.raises(SchemaError, match=r"sub/b.png \(id 2\), annotation 11"):
        _import(coco_dir, data, "late", batch_rows=1)
    with pytest.raises(DatasetNotFoundError):
        dls.open(coco_dir / "out_late")


# (the Deep Lake 4 import's hostile-input tests live in tests/integration/test_import_deeplake.py, which runs
# in a process of its own)


# ============================================================================ link tensors
@pytest.fixture(scope="module")
def linked(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile_links")
    (base / "secret.bin").write_bytes(SECRET)
    path = str(base / "ds")
    ds = dls.create(path, {"id": "int64", "raw": dls.tensor("link[bytes]")})
    os.makedirs(os.path.join(path, "media"))
    with open(os.path.join(path, "media", "ok.bin"), "wb") as f:
        f.write(b"fine")
    (base / "ds-evil").mkdir()  # a sibling whose name starts with the dataset folder's name
    (base / "ds-evil" / "x.bin").write_bytes(SECRET)
    ds.append({"id": [0, 1], "raw": ["media/ok.bin", str(base / "secret.bin")]})
    return base, path


@pytest.mark.parametrize("link, error, message", [
    ("file:///etc/passwd", UnsafePathError, "outside the allowed roots"),
    ("/etc/passwd", UnsafePathError, "outside the allowed roots"),
    ("file://localhost/etc/passwd", UnsafePathError, "outside the allowed roots"),
    ("{base}/ds-evil/x.bin", UnsafePathError, "outside the allowed roots"),  # prefix of the root, not under it
    ("{base}/ds/../secret.bin", UnsafePathError, "'..' component"),
    ("media/%2e%2e/%2E%2E/secret.bin", UnsafePathError, "'..' component"),
    ("media\\..\\..\\secret.bin", UnsafePathError, "'..' component"),
    ("file:{base}/ds/media/%2e%2e/%2e%2e/secret.bin", UnsafePathError, "'..' component"),
    ("s3://bucket/ds/x.bin", UnsafePathError, "outside the allowed roots"),
    ("ftp://example.com/x.bin", LinkError, "URL scheme 'ftp' is not supported"),
    ("media/ok.bin\x00.png", UnsafePathError, "is not a path or URL"),
])
def test_links_never_read_outside_the_allowed_roots(linked, link, error, message):
    base, path = linked
    ds = dls.open(path)
    with pytest.raises(error, match=message) as info:
        resolve_link_columns({"raw": [link.format(base=base)]}, ds.schema, LinkResolver(path), [3])
    assert "tensor 'raw', row 3" in str(info.value)


def test_s3_links_stay_in_their_bucket_and_prefix():
    resolver = LinkResolver("s3://bucket/ds", roots=["s3://shared/images"])
    storage, key = resolver.target("s3://shared/images/a/b.png", where="w")
    assert key == "a/b.png" and storage.uri == "s3://shared/images"
    assert resolver.target("s3a://bucket/ds/x.png", where="w")[1] == "x.png"
    for link in ("s3://bucket/ds-other/x.png", "s3://other/ds/x.png", "s3://shared/imagesX/a.png",
                 "s3://bucket/ds/../other/x.png", "s3://bucket/ds/%2E%2E/other/x.png"):
        with pytest.raises(UnsafePathError, match="outside the allowed roots|'..' component"):
            resolver.target(link, where="w")


def test_a_dataset_row_with_an_outside_link_is_refused_and_the_loader_never_gives_its_content(linked):
    base, path = linked
    ds = dls.open(path)
    assert ds[0]["raw"] == b"fine"
    with pytest.raises(UnsafePathError, match="tensor 'raw', row 1"):
        _ = ds[1]["raw"]
    with pytest.raises(UnsafePathError):
        _ = ds[0:2]["raw"]
    # the loader resolves links through the same resolver: the batch holding row 1 is refused, naming it
    with pytest.raises(UnsafePathError, match="row 1"):
        list(ds.pytorch(batch_size=2, shuffle=False, num_workers=0))
    assert [bytes(v) for b in ds[0:1].pytorch(batch_size=1, shuffle=False, num_workers=0) for v in b["raw"]] \
        == [b"fine"]


def test_link_to_a_fifo_inside_the_dataset_folder_is_refused_not_a_hang(linked):
    """A hostile dataset folder may hold a named pipe: opening it for reading blocks forever."""
    base, path = linked
    fifo = os.path.join(path, "media", "pipe")
    if not os.path.exists(fifo):
        os.mkfifo(fifo)
    script = textwrap.dedent(f"""
        import deeplake_spark as dls
        from deeplake_spark.dataset.links import LinkResolver, resolve_link_columns
        from deeplake_spark.errors import LinkError
        ds = dls.open({path!r})
        try:
            resolve_link_columns({{"raw": ["media/pipe"]}}, ds.schema, LinkResolver({path!r}), [0])
        except LinkError as e:
            print("LinkError", e)
    """)
    try:
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=8)
    except subprocess.TimeoutExpired:
        pytest.fail("reading a link to a FIFO hangs")
    assert "LinkError" in out.stdout and "media/pipe" in out.stdout, out.stdout + out.stderr[-2000:]


def test_link_to_a_file_larger_than_the_bound_is_refused_before_reading(linked, monkeypatch):
    """A link to a huge file must not be read whole into memory: links.MAX_LINK_BYTES bounds it."""
    base, path = linked
    with open(os.path.join(path, "media", "big.bin"), "wb") as f:
        f.truncate(4096)
    monkeypatch.setattr(links_module, "MAX_LINK_BYTES", 1024)
    ds = dls.open(path)
    with pytest.raises(LinkError, match="media/big.bin.*4096 bytes"):
        resolve_link_columns({"raw": ["media/big.bin"]}, ds.schema, LinkResolver(path), [0])


# ============================================================================ SQL over DuckDB
@pytest.fixture(scope="module")
def table_ds(tmp_path_factory):
    ds = dls.create(str(tmp_path_factory.mktemp("hostile_sql") / "ds"),
                    {"id": "int64", "name": "string", "img": dls.tensor("generic", shape=(None,))})
    ds.append({"id": np.arange(6), "name": list("aabbcc"), "img": [np.zeros(i + 1, np.float32) for i in range(6)]})
    return ds


@pytest.mark.parametrize("kind, text", [
    ("sql", "SELECT * FROM read_csv('/etc/passwd')"), ("sql", "SELECT * FROM '/etc/passwd'"),
    ("sql", "FROM read_text('/etc/passwd')"), ("sql", "SELECT content FROM read_blob('/etc/hostname')"),
    ("sql", "SELECT * FROM read_parquet('{path}/*.parquet')"), ("sql", "SELECT * FROM glob('/etc/*')"),
    ("sql", "COPY ds TO '{out}'"), ("sql", "ATTACH '{out}'"), ("sql", "INSTALL httpfs"), ("sql", "LOAD httpfs"),
    ("sql", "SET enable_external_access = true"), ("sql", "PRAGMA database_list"),
    ("sql", "SELECT 1 FROM ds; COPY ds TO '{out}'"), ("sql", "SELECT 1 FROM ds /* x */; DROP TABLE ds"),
    ("sql", "WITH t AS (SELECT * FROM duckdb_settings()) SELECT * FROM t"),
    ("sql", "SELECT getenv('HOME') FROM ds"), ("sql", "SELECT * FROM ds UNION ALL SELECT * FROM duckdb_secrets()"),
    ("sql", "SELECT * FROM ds WHERE id IN (SELECT 1 FROM read_csv('/etc/passwd'))"),
    ("sql", "SELECT * FROM query('SELECT * FROM read_csv(''/etc/passwd'')')"),
    ("sql", "SELECT * FROM ds JOIN information_schema.tables ON true"), ("sql", "SELECT * FROM ds, range(10)"),
    ("query", "SELECT * FROM ds, LATERAL (SELECT * FROM read_csv('/etc/passwd'))"),
    ("filter", "id > 1) UNION SELECT 1 FROM read_csv('/etc/passwd') --"),
    ("filter", "id IN (SELECT 1 FROM read_csv('/etc/passwd'))"), ("filter", "getenv('HOME') IS NOT NULL"),
])
def test_sql_text_cannot_reach_files_settings_or_other_statements(table_ds, tmp_path, kind, text):
    out = tmp_path / "pwned"
    text = text.format(path=table_ds.path, out=out)
    view = DatasetView(table_ds)
    with pytest.raises(InvalidOptionError) as info:
        getattr(view, kind)(text)
    assert str(table_ds.path) in str(info.value)
    assert not out.exists()


def test_a_comment_cannot_hide_a_second_statement(table_ds, tmp_path):
    out = tmp_path / "pwned.csv"
    table = DatasetView(table_ds).sql(f"SELECT count(*) AS n FROM ds -- ; COPY ds TO '{out}'")
    assert table.to_pydict() == {"n": [6]} and not out.exists()


def test_query_rows_ties_limit_offset_and_views_of_views_map_to_the_right_rows(table_ds):
    view = DatasetView(table_ds)
    assert view.query("SELECT * FROM ds ORDER BY name DESC").indices.tolist() == [4, 5, 2, 3, 0, 1]
    assert view.query("SELECT * FROM ds ORDER BY name LIMIT 3 OFFSET 1").indices.tolist() == [1, 2, 3]
    assert view.query("SELECT id FROM ds WHERE id > 2 ORDER BY 1 DESC").indices.tolist() == [5, 4, 3]
    with pytest.raises(InvalidOptionError, match="DISTINCT"):
        view.query("SELECT DISTINCT img FROM ds")
    inner = table_ds[[5, 3, 3, 1]][1:4]  # positions 3, 3, 1 of the version
    assert inner.query("SELECT * FROM ds ORDER BY id").indices.tolist() == [1, 3, 3]
    assert inner.filter("id = 3").indices.tolist() == [3, 3]
    assert inner.query("SELECT * FROM ds WHERE img.shape[1] = 4").numpy(["id"])["id"].tolist() == [3, 3]


def test_query_ties_keep_row_order_even_with_an_alias_named_like_the_hidden_row_column(table_ds):
    got = DatasetView(table_ds).query("SELECT -id AS __dls_row, name FROM ds ORDER BY name").indices.tolist()
    assert got == [0, 1, 2, 3, 4, 5]


def test_query_orders_by_a_dataset_column_named_like_the_hidden_position_column(tmp_path):
    """A dataset (written by anyone) may have a column named ``__dls_position``: ORDER BY it must sort by its values."""
    ds = dls.create(str(tmp_path / "ds"), {"__dls_position": "int64", "k": "int64"})
    ds.append({"__dls_position": [3, 1, 2], "k": [0, 0, 1]})
    assert DatasetView(ds).query('SELECT * FROM ds ORDER BY "__dls_position"').indices.tolist() == [1, 2, 0]


def test_an_apostrophe_in_a_comment_does_not_change_a_string_literal(tmp_path):
    """Spark-style `name` quoting is rewritten to "name" outside string literals; a quote inside a comment must
    not shift what counts as a literal (it turned 'x`y`z' into 'x"y"z' and matched the other row)."""
    ds = dls.create(str(tmp_path / "ds"), {"name": "string"})
    ds.append({"name": ["x`y`z", 'x"y"z']})
    view = DatasetView(ds)
    assert view.filter("name = 'x`y`z'").indices.tolist() == [0]
    assert view.filter("/* don't */ name = 'x`y`z'").indices.tolist() == [0]
    assert view.query("SELECT * FROM ds -- it's\nWHERE name = 'x`y`z'").indices.tolist() == [0]


def test_spark_backticks_are_rewritten_only_outside_literals_and_comments(tmp_path):
    ds = dls.create(str(tmp_path / "ds"), {"it's": "int64", 'say "hi"': "int64", "name": "string"})
    ds.append({"it's": [1, 2], 'say "hi"': [5, 6], "name": ["x`y`z", 'x"y"z']})
    view = DatasetView(ds)
    assert view.filter("/* a /* nested */ don't */ name = 'x`y`z'").indices.tolist() == [0]
    assert view.filter("name = $$x`y`z$$").indices.tolist() == [0]
    assert view.filter("`it's` = 2 AND name = 'x\"y\"z'").indices.tolist() == [1]
    assert view.filter('`say "hi"` = 5').indices.tolist() == [0]
    assert view.sql("SELECT `it's` AS `a``b` FROM ds -- `x`\nORDER BY 1 DESC").to_pydict() == {"a`b": [2, 1]}
    with pytest.raises(InvalidOptionError):
        view.filter("`it's = 1")  # unterminated: DuckDB's parser error, typed


def test_condition_size_and_nesting_bounds(table_ds):
    view = DatasetView(table_ds)
    assert view.query("SELECT * FROM ds WHERE " + " OR ".join(["id = 1"] * 20000)).indices.tolist() == [1]
    with pytest.raises(InvalidOptionError, match="20001 terms joined by AND/OR; at most 20000.*IN"):
        view.filter(" OR ".join(["id = 1"] * 20001))
    assert view.filter("id IN (" + ",".join(map(str, range(3, 30_000))) + ")").indices.tolist() == [3, 4, 5]
    with pytest.raises(InvalidOptionError, match="nested too deeply|depth"):
        view.filter("abs(" * 900 + "id" + ")" * 900 + " > 1")


def test_a_very_long_condition_is_an_error_not_a_crash(table_ds):
    """DuckDB 1.4 overflowed its stack on ~9000 ORed comparisons or a 10,000-string IN list pushed into the
    Arrow scan (SIGSEGV killed the caller's process): the pushdown is off, both run."""
    script = textwrap.dedent(f"""
        import deeplake_spark as dls
        from deeplake_spark.dataset.view import DatasetView
        from deeplake_spark.errors import InvalidOptionError
        view = DatasetView(dls.open({table_ds.path!r}))
        text = "SELECT * FROM ds WHERE name = " + "'x' OR name = " * 12000 + "'a'"
        print("rows", view.sql(text).num_rows)
        text = "SELECT * FROM ds WHERE name IN (" + ",".join(f"'v{{i}}'" for i in range(20000)) + ", 'b')"
        print("rows", view.query(text).indices.tolist())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"rc {out.returncode}: {out.stderr[-2000:]}"
    assert out.stdout.split("\n")[:2] == ["rows 2", "rows [2, 3]"], out.stdout


# ============================================================================ ds.search
@pytest.fixture()
def vectors_ds(tmp_path):
    ds = dls.create(str(tmp_path / "emb"), {"emb": dls.tensor("embedding", shape=(4,), chunk_size=4 * 4 * 10)})
    ds.append({"emb": np.random.default_rng(3).standard_normal((30, 4)).astype(np.float32)})
    return ds


@pytest.mark.parametrize("options, message", [
    ({"query": [np.nan, 0, 0, 1]}, "NaN or infinity"), ({"query": [np.inf, 0, 0, 1]}, "NaN or infinity"),
    ({"query": [1e39, 0, 0, 1]}, "outside the float32 range"), ({"query": [1 + 2j, 0, 0, 1]}, "numbers"),
    ({"query": ["1", "2", "3", "4"]}, "numbers"), ({"query": [1, None, 0, 1]}, "numbers"),
    ({"query": np.array(["2020-01-01"] * 4, dtype="datetime64[D]")}, "numbers"), ({"query": []}, "empty"),
    ({"query": [[1, 0], [0, 1, 0]]}, "not a vector|numbers"), ({"query": [1, 0, 0]}, "dimension 3"),
    ({"k": 0}, "positive integer"), ({"k": -5}, "positive integer"), ({"k": 2.0}, "positive integer"),
    ({"k": "3"}, "positive integer"), ({"k": True}, "positive integer"), ({"metric": "COSINE; DROP"}, "unknown metric"),
])
def test_bad_queries_and_options_are_typed_errors(vectors_ds, options, message):
    with pytest.raises(InvalidOptionError, match=message):
        search(vectors_ds, **{"query": [1, 0, 0, 1], **options})


def test_huge_k_gives_every_row_once(vectors_ds):
    hits = search(vectors_ds, [1, 0, 0, 1], k=10**18, metric="l2")
    assert sorted(hits.indices.tolist()) == list(range(30)) and np.all(np.diff(hits.scores) >= 0)
    assert search(vectors_ds, np.zeros((0, 4)), k=3) == []


def _chunk_files(ds) -> list[str]:
    folder = os.path.join(ds.path, "_tensors", "emb")
    return [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if not n.startswith(".")]


def test_a_chunk_rewritten_in_place_with_its_mtime_restored_is_verified_again(vectors_ds):
    """Size, inode and mtime unchanged (os.utime puts the mtime back): the changed ctime still says the
    file changed, so the cached mapping is not trusted and the checksum catches the edit."""
    assert len(search(vectors_ds, [1, 0, 0, 1], k=3)) == 3
    path = _chunk_files(vectors_ds)[0]
    before = os.stat(path)
    with open(path, "r+b") as f:  # the last vector of the chunk becomes a huge match
        f.seek(-16, os.SEEK_END)
        f.write(np.full(4, 1e30, np.float32).tobytes())
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    with pytest.raises(CorruptChunkError, match=os.path.basename(path)):
        search(vectors_ds, [1, 0, 0, 1], k=3, metric="dot")


def test_a_truncated_chunk_is_refused(vectors_ds):
    assert len(search(vectors_ds, [1, 0, 0, 1], k=3)) == 3
    path = _chunk_files(vectors_ds)[-1]
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 7)
    with pytest.raises(CorruptChunkError, match=os.path.basename(path)):
        search(vectors_ds, [1, 0, 0, 1], k=3)
    with open(path, "r+b") as f:
        f.truncate(0)
    with pytest.raises(DeepLakeSparkError, match=os.path.basename(path)):
        search(vectors_ds, [1, 0, 0, 1], k=3)


def test_a_chunk_file_replaced_by_a_fifo_is_refused_not_a_hang(vectors_ds):
    path = _chunk_files(vectors_ds)[1]
    os.remove(path)
    os.mkfifo(path)
    script = textwrap.dedent(f"""
        import deeplake_spark as dls
        from deeplake_spark.dataset.search import search
        from deeplake_spark.errors import CorruptChunkError
        try:
            search(dls.open({vectors_ds.path!r}), [1, 0, 0, 1], k=3)
        except CorruptChunkError as e:
            print("CorruptChunkError", e)
    """)
    try:
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("search blocks on a chunk file that is a FIFO")
    assert "CorruptChunkError" in out.stdout and "not a regular file" in out.stdout, out.stdout + out.stderr[-2000:]


def test_a_fifo_in_place_of_a_chunk_file_is_a_storage_error_not_a_hang(tmp_path):
    """A hostile dataset folder may hold a named pipe where a chunk file belongs: every local read
    (ds[i], views, the loader) refuses it instead of blocking on open() forever."""
    path = str(tmp_path / "ds")
    ds = dls.create(path, {"emb": dls.tensor("embedding", shape=(4,))})
    ds.append({"emb": np.ones((3, 4), np.float32)})
    chunks = [os.path.join(root, f) for root, _, files in os.walk(os.path.join(path, "_tensors")) for f in files]
    assert chunks
    for chunk in chunks:
        os.remove(chunk)
        os.mkfifo(chunk)
    script = textwrap.dedent(f"""
        import deeplake_spark as dls
        from deeplake_spark.errors import StorageError
        try:
            dls.open({path!r})[0]["emb"]
        except StorageError as e:
            print("StorageError", e)
    """)
    try:
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("reading a chunk that is a FIFO hangs")
    assert "StorageError" in out.stdout and "not a regular file" in out.stdout, out.stdout + out.stderr[-2000:]
