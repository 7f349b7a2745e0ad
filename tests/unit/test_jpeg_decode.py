"""JPEG decoding through libjpeg-turbo directly (``format.images.decode_jpeg_turbo``) gives Pillow's
pixels, decodes into a caller's buffer, and leaves every other JPEG (CMYK, damaged, a colour image
asked for in gray) to Pillow, with the same result or error as before."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from deeplake_spark.errors import DecodeError
from deeplake_spark.format.images import decode_image, decode_jpeg_turbo


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth image with edges (what JPEG is made for) plus noise (what stresses the IDCT)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 7) % 256], axis=-1)
    noise = rng.integers(-40, 40, size=(h, w, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _jpeg(arr: np.ndarray, mode: str = "RGB", **options: object) -> bytes:
    img = Image.fromarray(arr).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **options)
    return buf.getvalue()


def _pillow(data: bytes, mode: str) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert(mode))


ENCODINGS = [dict(subsampling=0), dict(subsampling=1), dict(subsampling=2), dict(progressive=True),
             dict(quality=40, optimize=True), dict(restart_marker_blocks=3), dict(quality=100, subsampling=0)]


@pytest.mark.parametrize("size", [(1, 1), (7, 13), (64, 64), (255, 257), (31, 400)])
@pytest.mark.parametrize("options", ENCODINGS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_same_pixels_as_pillow_color_and_gray(size: tuple[int, int], options: dict[str, object]) -> None:
    arr = _photo(*size, seed=size[0] * 1000 + size[1])
    color = _jpeg(arr, "RGB", **options)
    got = decode_jpeg_turbo(color, (*size, 3), None)
    assert got is not None and got.shape == (*size, 3)
    np.testing.assert_array_equal(got, _pillow(color, "RGB"))
    gray = _jpeg(arr, "L", **options)
    for shape in (size, (*size, 1)):
        got = decode_jpeg_turbo(gray, shape, None)
        assert got is not None and got.shape == shape
        np.testing.assert_array_equal(got.reshape(size), _pillow(gray, "L"))
    # a gray JPEG stored as RGB: replicated channels, as Pillow's convert("RGB")
    np.testing.assert_array_equal(decode_jpeg_turbo(gray, (*size, 3), None), _pillow(gray, "RGB"))


def test_decodes_into_the_callers_buffer_row() -> None:
    images = [_photo(48, 40, seed=s) for s in range(3)]
    batch = np.zeros((3, 48, 40, 3), np.uint8)
    for k, arr in enumerate(images):
        data = _jpeg(arr, quality=90)
        row = batch[k, ...]
        assert decode_image(data, (48, 40, 3), where="t", out=row) is row
        np.testing.assert_array_equal(batch[k], _pillow(data, "RGB"))
    strided = np.zeros((48, 40, 6), np.uint8)[:, :, ::2]  # not contiguous: decoded aside, then copied in
    data = _jpeg(images[0])
    assert decode_image(data, (48, 40, 3), where="t", out=strided) is strided
    np.testing.assert_array_equal(strided, _pillow(data, "RGB"))


def test_pillow_decides_what_libjpeg_turbo_does_not_take() -> None:
    arr = _photo(40, 30, seed=9)
    color = _jpeg(arr)
    # a colour JPEG asked for in gray: Pillow's luma weights, not libjpeg's Y channel
    assert decode_jpeg_turbo(color, (40, 30), None) is None
    np.testing.assert_array_equal(decode_image(color, (40, 30), where="t"), _pillow(color, "L"))
    # CMYK: Pillow's conversion
    cmyk = _jpeg(arr, "CMYK")
    assert decode_jpeg_turbo(cmyk, (40, 30, 3), None) is None
    np.testing.assert_array_equal(decode_image(cmyk, (40, 30, 3), where="t"), _pillow(cmyk, "RGB"))
    # another size than stored: never decoded into the buffer, Pillow's path refuses it
    assert decode_jpeg_turbo(color, (30, 40, 3), None) is None
    with pytest.raises(DecodeError, match="does not match its stored shape"):
        decode_image(color, (30, 40, 3), where="tensor 'image', sample 3")
    # RGBA / 2-channel targets: Pillow's convert
    np.testing.assert_array_equal(decode_image(color, (40, 30, 4), where="t"), _pillow(color, "RGBA"))


def test_damaged_jpeg_is_a_typed_error_naming_the_sample() -> None:
    data = _jpeg(_photo(64, 64, seed=2))
    out = np.full((64, 64, 3), 7, np.uint8)
    with pytest.raises(DecodeError, match="tensor 'image', sample 5"):
        decode_image(data[: len(data) // 2], (64, 64, 3), where="tensor 'image', sample 5", out=out)
    garbage = data[:200] + bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8)) + b"\xff\xd9"
    try:
        got = decode_image(garbage, (64, 64, 3), where="t")
    except DecodeError:
        return
    # libjpeg-turbo refused it strictly; whatever Pillow made of it is what the loader returned before
    np.testing.assert_array_equal(got, _pillow(garbage, "RGB"))


def test_decode_pil_maps_the_rgbx_decode_as_pillows_rgb_image() -> None:
    """``decode_method="pil"``: a colour JPEG becomes an RGB ``PIL.Image`` over its RGBX decode, no
    copy; mode, size, pixels and a transform's resize are what Pillow's own decode gives, and a
    transform that draws on the image gets a copy (the image is read-only, as ``frombuffer`` makes)."""
    from deeplake_spark.format import ChunkBuilder, ChunkReader, TensorSpec, encode_sample
    from deeplake_spark.torch.pil_decode import decode_pil, rgb_mapping_works

    assert rgb_mapping_works()  # the pinned Pillow maps RGBX as RGB: the path below is the mapped one
    spec = TensorSpec.create("image", htype="image", dtype="uint8", shape=None, compression="jpeg")
    sizes = [(7, 13), (64, 64), (255, 257), (31, 400)]
    blobs = [_jpeg(_photo(*size, seed=k), "RGB", **ENCODINGS[k % len(ENCODINGS)]) for k, size in enumerate(sizes)]
    blobs.append(_jpeg(_photo(20, 30, seed=9), "L"))  # gray stored as gray: mode L
    builder = ChunkBuilder(spec)
    for blob in blobs:
        builder.add(encode_sample(spec, blob))
    reader = ChunkReader(builder.finish(), where="test chunk")
    for i, blob in enumerate(blobs):
        image = decode_pil(reader, i)
        with Image.open(io.BytesIO(blob)) as own:
            own.load()
            assert (image.mode, image.size) == (own.mode, own.size)
            np.testing.assert_array_equal(np.asarray(image), np.asarray(own))
            np.testing.assert_array_equal(np.asarray(image.resize((50, 40), Image.BILINEAR)),
                                          np.asarray(own.resize((50, 40), Image.BILINEAR)))
        if image.mode == "RGB":
            assert image.readonly
            image.paste((255, 0, 0), (0, 0, 3, 3))  # copies first, then draws
            assert np.asarray(image)[0, 0].tolist() == [255, 0, 0]
            again = decode_pil(reader, i)
            np.testing.assert_array_equal(np.asarray(again), _pillow(blob, "RGB"))


def test_rgbx_decode_is_for_a_new_colour_array_only() -> None:
    color = _jpeg(_photo(8, 8, seed=1))
    got = decode_jpeg_turbo(color, (8, 8, 3), None, rgbx=True)
    assert got is not None and got.shape == (8, 8, 4) and np.all(got[..., 3] == 255)
    np.testing.assert_array_equal(got[..., :3], _pillow(color, "RGB"))
    with pytest.raises(ValueError, match="rgbx"):
        decode_jpeg_turbo(color, (8, 8, 3), np.empty((8, 8, 3), np.uint8), rgbx=True)
    with pytest.raises(ValueError, match="rgbx"):
        decode_jpeg_turbo(_jpeg(_photo(8, 8, seed=1), "L"), (8, 8), None, rgbx=True)
