"""Media htypes: point_cloud (float (N, >=3) arrays), video (container files stored as given, frames
decoded lazily with PyAV) and link (URL/path text resolved at read time, only under allowed roots).

Real datasets (Delta log + chunks), the real torch loader, the shared local Spark session for both
readers, videos encoded by PyAV in the test.
"""

from __future__ import annotations

import io
import os
import sys

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

import deeplake_spark as dls
from deeplake_spark.dataset.links import LinkResolver, resolve_link_columns
from deeplake_spark.errors import DecodeError, LinkError, MissingDependencyError, SchemaError, UnsafePathError
from deeplake_spark.format.video import VideoSample, read_video_frames, video_container

FORMATS = pytest.mark.parametrize("source", ["deeplake-python", "deeplake-jvm"])


def make_video(container: str = "mp4", codec: str = "mpeg4", frames: int = 6, height: int = 32,
               width: int = 48, gop: int | None = None) -> bytes:
    """A tiny video whose frame i has red = 40 * i (mod 256) and a green band growing with i."""
    av = pytest.importorskip("av")
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if gop is not None:
            stream.gop_size = gop
        for i in range(frames):
            img = np.zeros((height, width, 3), np.uint8)
            img[:, :, 0] = 40 * i % 256
            img[: (4 * i + 1) % height, :, 1] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def jpeg(value: int, shape=(8, 6, 3)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full(shape, value, np.uint8)).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def png(value: int, shape=(5, 7, 3)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full(shape, value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------------------------ point_cloud
CLOUDS = [np.arange(i * 12, dtype=np.float32).reshape(-1, 3 + i % 2) / 7 for i in range(1, 7)]


@pytest.fixture(scope="module")
def clouds(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("htypes") / "clouds")
    ds = dls.create(path, {"id": "int64", "lidar": dls.tensor("point_cloud")})
    ds.append({"id": np.arange(6), "lidar": CLOUDS})
    return path


def test_point_cloud_round_trips_through_dataset_and_loader(clouds):
    ds = dls.open(clouds)
    assert ds.tensors["lidar"].htype == "point_cloud" and ds.tensors["lidar"].compression == "lz4"
    for i in (0, 3, 5):
        np.testing.assert_array_equal(ds[i]["lidar"], CLOUDS[i])
    got = [cloud for batch in ds.pytorch(batch_size=4, shuffle=False, collate={"lidar": "list"})
           for cloud in batch["lidar"]]
    assert [c.dtype for c in got] == [__import__("torch").float32] * 6
    for cloud, want in zip(got, CLOUDS):
        np.testing.assert_array_equal(cloud.numpy(), want)


def test_point_clouds_with_fewer_than_three_values_per_point_are_refused(tmp_path):
    ds = dls.create(str(tmp_path / "pc"), {"lidar": dls.tensor("point_cloud", shape=(None, None))})
    with pytest.raises(SchemaError, match=r"tensor 'lidar', row 1: a point cloud of shape \(4, 2\)"):
        ds.append({"lidar": [np.zeros((3, 3)), np.zeros((4, 2))]})
    with pytest.raises(SchemaError, match="needs at least 3"):  # the whole-block fast path checks it too
        ds.append({"lidar": np.zeros((2, 5, 2), np.float32)})
    assert len(ds) == 0
    ds.append({"lidar": [[], np.zeros((0, 3))]})  # a scan without points is a valid (empty) cloud
    assert [ds[i]["lidar"].shape for i in range(2)] == [(0, 0), (0, 3)]
    # the Arrow list path (what the Spark writers and Arrow appends send) applies the same rule
    nested = pa.array([[[1.0, 2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]], pa.list_(pa.list_(pa.float32())))
    with pytest.raises(SchemaError, match=r"row 1: a point cloud of shape \(2, 2\) has 2 values per point"):
        ds.append(pa.table({"lidar": nested}))
    assert len(ds) == 2


@FORMATS
def test_point_cloud_is_a_nested_array_in_both_spark_readers(spark, clouds, source):
    rows = spark.read.format(source).option("tensors", "array").load(clouds).orderBy("id").collect()
    assert [np.array(r["lidar"], np.float32).tolist() for r in rows] == [c.tolist() for c in CLOUDS]


# ------------------------------------------------------------------------------------------ video
@pytest.fixture(scope="module")
def videos():
    return {"mpeg4": make_video(), "h264": make_video(codec="libx264", frames=4, height=16, width=24),
            "webm": make_video("webm", "libvpx", frames=5)}


@pytest.fixture(scope="module")
def clips(tmp_path_factory, videos):
    path = str(tmp_path_factory.mktemp("htypes") / "clips")
    ds = dls.create(path, {"id": "int64", "clip": dls.tensor("video")})
    ds.append({"id": [0, 1], "clip": [videos["mpeg4"], videos["h264"]]})
    return path


def test_video_bytes_are_stored_as_given_with_their_shape(clips, videos):
    ds = dls.open(clips)
    first, second = ds[0]["clip"], ds[1]["clip"]
    assert isinstance(first, VideoSample) and first.container == "mp4"
    assert bytes(first) == videos["mpeg4"] and bytes(second) == videos["h264"]  # never re-encoded
    assert (first.shape, second.shape) == ((6, 32, 48, 3), (4, 16, 24, 3))
    stored = ds.table(columns=["clip"])["clip"].to_pylist()
    assert [ref["shape"] for ref in stored] == [[6, 32, 48, 3], [4, 16, 24, 3]]
    assert [ref["nbytes"] for ref in stored] == [len(videos["mpeg4"]), len(videos["h264"])]


def test_video_frames_decode_lazily_with_slices(clips, videos):
    clip = dls.open(clips)[0]["clip"]
    every = clip.frames()
    assert every.shape == (6, 32, 48, 3) and every.dtype == np.uint8
    reds = every[:, :, :, 0].mean(axis=(1, 2))
    np.testing.assert_allclose(reds, 40 * np.arange(6), atol=8)  # lossy codec: near the painted value
    np.testing.assert_array_equal(clip.frames(1, 5, 2), every[1:5:2])
    np.testing.assert_array_equal(clip.frames(start=-2), every[-2:])
    np.testing.assert_array_equal(read_video_frames(videos["mpeg4"], stop=3), every[:3])
    assert clip.frames(4, 2).shape == (0, 32, 48, 3)
    np.testing.assert_array_equal(dls.open(clips).video_frames("clip", 0, start=3), every[3:])


@pytest.mark.parametrize("container, codec", [("mp4", "libx264"), ("webm", "libvpx")])
def test_frames_far_into_a_video_seek_and_equal_a_full_decode(container, codec):
    from deeplake_spark.format.video import SEEK_FROM

    data = make_video(container, codec, frames=90, height=16, width=24, gop=10)
    clip = VideoSample(data, container, None)
    every = clip.frames()
    assert len(every) == 90
    for start, stop, step in [(SEEK_FROM + 1, 60, 3), (75, 80, 1), (89, None, 1), (70, 60, 1)]:
        np.testing.assert_array_equal(clip.frames(start, stop, step), every[start:stop:step])


def test_webm_goes_into_mkv_tensors_and_containers_are_checked_by_name(tmp_path, videos):
    ds = dls.create(str(tmp_path / "v"), {"clip": dls.tensor("video", compression="mkv")})
    ds.append({"clip": [videos["webm"]]})
    assert ds[0]["clip"].container == "webm" and ds[0]["clip"].shape == (5, 32, 48, 3)
    mp4 = dls.create(str(tmp_path / "mp4"), {"clip": dls.tensor("video")})
    with pytest.raises(DecodeError, match=r"tensor 'clip', row 0: bytes are a webm video .* compression='webm'"):
        mp4.append({"clip": [videos["webm"]]})
    with pytest.raises(DecodeError, match=r"row 1: bytes are a JPEG image; a mp4 video tensor"):
        mp4.append({"clip": [videos["mpeg4"], jpeg(9)]})
    with pytest.raises(DecodeError, match="not a video file"):
        mp4.append({"clip": [b"hello world, not a video"]})
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"
    assert video_container(heic) is None  # ISO-BMFF still images are not videos
    with pytest.raises(DecodeError, match="undecodable video"):  # right magic, broken body (PyAV checks it)
        mp4.append({"clip": [videos["mpeg4"][:40]]})
    with pytest.raises(SchemaError, match="stores mp4 file bytes, not ndarray"):
        mp4.append({"clip": [np.zeros((2, 4, 4, 3), np.uint8)]})
    assert len(mp4) == 0


def test_video_without_pyav_stores_bytes_and_names_the_extra(tmp_path, videos, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` raises ImportError, as when it is not installed
    ds = dls.create(str(tmp_path / "v"), {"clip": dls.tensor("video")})
    ds.append({"clip": [videos["mpeg4"]]})
    clip = ds[0]["clip"]
    assert bytes(clip) == videos["mpeg4"] and clip.shape is None  # shape not known without a probe
    with pytest.raises(MissingDependencyError, match=r"pip install 'deeplake-spark\[video\]'"):
        clip.frames()
    with pytest.raises(DecodeError, match="JPEG image"):  # the magic check needs no PyAV
        ds.append({"clip": [jpeg(3)]})


def test_video_samples_reach_loader_workers(clips, videos):
    loader = dls.open(clips).pytorch(batch_size=2, shuffle=False, num_workers=2, engine="processes")
    (batch,) = list(loader)
    assert [bytes(v) for v in batch["clip"]] == [videos["mpeg4"], videos["h264"]]
    assert batch["clip"][1].frames(0, 1).shape == (1, 16, 24, 3)


@FORMATS
def test_spark_readers_give_video_container_bytes(spark, clips, videos, source):
    rows = spark.read.format(source).option("tensors", "bytes").load(clips).orderBy("id").collect()
    assert [bytes(r["clip"]["data"]) for r in rows] == [videos["mpeg4"], videos["h264"]]
    assert [list(r["clip"]["shape"]) for r in rows] == [[6, 32, 48, 3], [4, 16, 24, 3]]


@FORMATS
def test_spark_readers_refuse_video_as_arrays_by_name(spark, clips, source):
    with pytest.raises(Exception, match="tensor 'clip'") as info:
        spark.read.format(source).option("tensors", "array").load(clips).collect()
    assert "tensors='bytes'" in str(info.value)


# ------------------------------------------------------------------------------------------- link
@pytest.fixture(scope="module")
def linked(tmp_path_factory):
    """A dataset with image files in its own folder and in a second root, links of every spelling."""
    base = tmp_path_factory.mktemp("links")
    path, outside = str(base / "ds"), base / "photos"
    ds = dls.create(path, {"id": "int64", "photo": dls.tensor("link", link_to="image"),
                           "raw": dls.tensor("link[bytes]")})
    os.makedirs(os.path.join(path, "media"))
    outside.mkdir()
    (outside / "b.png").write_bytes(png(50))
    with open(os.path.join(path, "media", "a.jpg"), "wb") as f:
        f.write(jpeg(200))
    links = ["media/a.jpg", str(outside / "b.png"), (outside / "b.png").as_uri(), None]
    ds.append({"id": [0, 1, 2, 3], "photo": links, "raw": links})
    return path, str(outside)


def test_links_are_text_in_the_table_and_content_when_read(linked):
    path, outside = linked
    ds = dls.open(path, link_roots=[outside])
    assert ds.table(columns=["photo"])["photo"].to_pylist()[0] == "media/a.jpg"
    first = ds[0]["photo"]
    assert first.shape == (8, 6, 3) and abs(int(first.mean()) - 200) <= 2
    np.testing.assert_array_equal(ds[1]["photo"], np.full((5, 7, 3), 50, np.uint8))
    np.testing.assert_array_equal(ds[2]["photo"], ds[1]["photo"])  # file:// URL of the same file
    assert ds[3]["photo"] is None and ds[3]["raw"] is None
    assert ds[1]["raw"] == png(50)
    assert ds[1:3]["photo"].shape == (2, 5, 7, 3)  # views resolve too, stacked when shapes agree


def test_links_outside_the_allowed_roots_are_refused_by_row_column_and_link(linked):
    path, outside = linked
    ds = dls.open(path)  # no extra roots: only the dataset folder
    np.testing.assert_array_equal(ds[0]["photo"].shape, (8, 6, 3))
    with pytest.raises(UnsafePathError, match=r"tensor 'photo', row 1: link '.*b\.png' is outside the allowed roots"):
        _ = ds[1]["photo"]


@pytest.mark.parametrize("engine, workers", [("main", 0), ("threads", 2), ("processes", 2)])
def test_the_loader_reads_linked_content_on_every_engine(linked, engine, workers):
    path, outside = linked
    ds = dls.open(path, link_roots=[outside])
    options = {"transform": lambda s: s} if engine == "processes" else {"engine": engine} if workers else {}
    loader = ds[1:3].pytorch(batch_size=2, num_workers=workers, shuffle=False, columns=["id", "photo", "raw"],
                             **options)
    (batch,) = list(loader)
    assert loader.engine == engine
    assert batch["id"].tolist() == [1, 2] and batch["raw"] == [png(50), png(50)]
    np.testing.assert_array_equal(batch["photo"].numpy(), np.full((2, 5, 7, 3), 50, np.uint8))
    # without the root, the loader refuses the link by dataset row (1), not by its place in the view
    with pytest.raises(UnsafePathError, match=r"tensor 'photo', row 1: link '.*b\.png' is outside the allowed roots"):
        list(dls.open(path)[1:3].pytorch(batch_size=2, num_workers=0, shuffle=False, columns=["photo"]))


@pytest.mark.parametrize("link, error, message", [
    ("../photos/b.png", UnsafePathError, "has a '..' component"),
    ("media/%2E%2E/%2E%2E/photos/b.png", UnsafePathError, "has a '..' component"),
    ("media/escape.jpg", UnsafePathError, "leads through a symbolic link"),
    ("media/missing.jpg", LinkError, "linked file 'media/missing.jpg' is missing"),
    ("http://example.com/x.jpg", LinkError, "URL scheme 'http' is not supported"),
    ("media", LinkError, "cannot read linked file 'media'.*is a directory"),
])
def test_hostile_or_broken_links_get_typed_errors(linked, link, error, message):
    path, outside = linked
    escape = os.path.join(path, "media", "escape.jpg")
    if not os.path.lexists(escape):
        os.symlink(os.path.join(outside, "b.png"), escape)
    ds = dls.open(path)
    spec = ds.tensors["photo"]
    resolver = LinkResolver(path)
    with pytest.raises(error, match=message) as info:
        resolve_link_columns({"photo": np.array([link], dtype=object)}, ds.schema, resolver, [7])
    assert "tensor 'photo', row 7" in str(info.value)
    assert spec.link_to == "image"


@FORMATS
def test_spark_readers_give_links_as_text(spark, linked, source):
    path, _ = linked
    rows = spark.read.format(source).load(path).orderBy("id").collect()
    assert rows[0]["photo"] == "media/a.jpg" and rows[3]["raw"] is None


def test_s3_links_resolve_with_the_dataset_storage_options(s3_server):
    from deeplake_spark.storage import Storage

    uri, options, other = s3_server.uri(), s3_server.storage_options, s3_server.uri()
    ds = dls.create(uri, {"id": "int64", "photo": dls.tensor("link[image]")}, storage_options=options)
    Storage(uri, options).write("media/a.png", png(77))
    Storage(other, options).write("b.png", png(99, (3, 4, 3)))
    ds.append({"id": [0, 1, 2], "photo": ["media/a.png", f"{other}/b.png", "media/gone.png"]})
    ds = dls.open(uri, storage_options=options, link_roots=[other])
    np.testing.assert_array_equal(ds[0]["photo"], np.full((5, 7, 3), 77, np.uint8))
    np.testing.assert_array_equal(ds[1]["photo"], np.full((3, 4, 3), 99, np.uint8))
    with pytest.raises(LinkError, match=r"tensor 'photo', row 2: linked file 'media/gone.png' is missing"):
        _ = ds[2]["photo"]
    with pytest.raises(UnsafePathError, match="outside the allowed roots"):
        _ = dls.open(uri, storage_options=options)[1]["photo"]
