"""``decode_method``: image columns handed to ``transform`` as PIL images instead of numpy arrays.

Deep Lake 3's ``pytorch(decode_method={"images": "pil"})``: a transform written for PIL (torchvision's
``Resize``, ``RandomResizedCrop``, or ``img.resize(...)``) then gets the decoded image itself, without
the numpy array the loader would make and the ``Image.fromarray`` the transform would make back (two
copies of every pixel, ~15% of a decode + resize per sample). The same checks as the numpy path
(``format.images.decode_image``): only an image of the stored size is decoded, in the stored mode.
Common JPEGs are decoded by libjpeg-turbo directly (``format.images.decode_jpeg_turbo``, the same
pixels): Pillow's own JPEG plugin parses the file's markers in Python, which holds the GIL that the
loader's decode threads share. A colour JPEG is decoded as RGBX, Pillow's own memory layout of an RGB
image (4 bytes a pixel), and that buffer becomes the image without a copy (``_rgb_image``; ~7% of a
decode + resize per sample); where this Pillow cannot map it (checked once per process), the
decoded array is copied in with ``Image.fromarray``.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from deeplake_spark.errors import DecodeError, InvalidOptionError
from deeplake_spark.format.chunk_reader import ChunkReader
from deeplake_spark.format.images import decode_jpeg_turbo

METHODS = ("numpy", "pil")
_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def pil_columns(decode_method: str | Mapping[str, str] | None, images: Mapping[str, bool]) -> frozenset[str]:
    """The columns whose images are decoded to PIL. ``images``: the loader's tensor columns, True for
    image (JPEG/PNG) ones. A string applies to every image column; a dict names columns."""
    if decode_method is None:
        return frozenset()
    if isinstance(decode_method, str):
        if decode_method not in METHODS:
            raise InvalidOptionError(f"decode_method={decode_method!r}: expected one of {METHODS} or a dict "
                                     "{column: method}")
        return frozenset(c for c, image in images.items() if image) if decode_method == "pil" else frozenset()
    if not isinstance(decode_method, Mapping):
        raise InvalidOptionError(f"decode_method={decode_method!r}: expected one of {METHODS} or a dict "
                                 "{column: method}")
    out = set()
    for column, method in decode_method.items():
        if method not in METHODS:
            raise InvalidOptionError(f"decode_method={{{column!r}: {method!r}}}: expected one of {METHODS}")
        if column not in images:
            raise InvalidOptionError(f"decode_method names column {column!r}, which is not a tensor column of this "
                                     f"loader ({sorted(images)})")
        if method == "pil":
            if not images[column]:
                raise InvalidOptionError(f"decode_method={{{column!r}: 'pil'}}: column {column!r} does not hold "
                                         "JPEG/PNG images")
            out.add(column)
    return frozenset(out)


def _rgb_image(rgbx: np.ndarray) -> Any:
    """An RGB ``PIL.Image`` (read-only, as ``Image.frombuffer`` makes them) whose pixels are the
    (H, W, 4) uint8 array ``rgbx``, without a copy: Pillow keeps RGB as 4 bytes a pixel, the layout
    ``Image.frombuffer`` maps for RGBX; mapped here with the mode RGB (``Image.core.map_buffer``,
    what ``frombuffer`` calls). The image holds a reference to the array."""
    from PIL import Image

    height, width = rgbx.shape[:2]
    image = Image.new("RGB", (0, 0))._new(Image.core.map_buffer(rgbx, (width, height), "raw", 0, ("RGB", 0, 1)))
    image.readonly = 1
    return image


@functools.lru_cache(maxsize=1)
def rgb_mapping_works() -> bool:
    """Whether this Pillow and libjpeg-turbo give, through ``_rgb_image`` of an RGBX decode, the very
    image ``Image.fromarray`` of the RGB decode gives (mode, size, pixels, fourth byte 255, a resize
    and a write that copies first): checked once on a small JPEG made here; else decode_pil copies."""
    from PIL import Image

    try:
        import simplejpeg

        rng = np.random.default_rng(0)
        pixels = rng.integers(0, 256, size=(16, 24, 3), dtype=np.uint8)
        jpeg = simplejpeg.encode_jpeg(pixels, quality=90, colorspace="RGB")
        rgb = simplejpeg.decode_jpeg(jpeg, colorspace="RGB")
        rgbx = simplejpeg.decode_jpeg(jpeg, colorspace="RGBX")
        mapped, copied = _rgb_image(rgbx), Image.fromarray(rgb)
        ok = (mapped.mode == "RGB" and mapped.size == copied.size and bool(np.all(rgbx[..., 3] == 255))
              and np.array_equal(np.asarray(mapped), rgb)
              and np.array_equal(np.asarray(mapped.resize((7, 5), Image.BILINEAR)),
                                 np.asarray(copied.resize((7, 5), Image.BILINEAR))))
        mapped.putpixel((0, 0), (1, 2, 3))  # a write copies a read-only image first: the buffer stays
        return ok and mapped.getpixel((0, 0)) == (1, 2, 3) and np.array_equal(rgbx[..., :3], rgb)
    except Exception:  # any Pillow that maps otherwise, or not at all: the copying path
        return False


def decode_pil(reader: ChunkReader, index: int) -> Any:
    """Sample ``index`` of an image chunk as a loaded ``PIL.Image`` of its stored size and mode."""
    from PIL import Image

    shape = reader.shape(index)
    where = f"{reader.where}, sample {index}"
    data = reader.sample_bytes(index)
    if reader.header.compression == "jpeg":
        if len(shape) == 3 and shape[2] == 3 and rgb_mapping_works():
            rgbx = decode_jpeg_turbo(data, shape, None, rgbx=True)
            if rgbx is not None:
                return _rgb_image(rgbx)
        arr = decode_jpeg_turbo(data, shape, None)
        if arr is not None:
            return Image.fromarray(arr if arr.ndim == 3 and arr.shape[2] == 3 else arr.reshape(shape[:2]))
    try:
        img = Image.open(io.BytesIO(data))
        width, height = img.size
        # As decode_image: never decode (and allocate) an image other than the one that was written.
        if len(shape) not in (2, 3) or (height, width) != tuple(shape[:2]):
            raise DecodeError(f"{where}: image of {height}x{width} pixels does not match its stored shape "
                              f"{tuple(shape)} (damaged chunk)")
        want = _MODES.get(shape[2], "RGB") if len(shape) == 3 else "L"
        img.load()
        return img if img.mode == want else img.convert(want)
    except DecodeError:
        raise
    except Exception as e:  # Pillow raises many unrelated types for bad bytes
        raise DecodeError(f"{where}: cannot decode image: {e}") from e
