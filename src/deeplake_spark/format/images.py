"""Sample-level image compression: JPEG/PNG pass-through, encode and decode.

Decoding: a baseline or progressive 8-bit JPEG in YCbCr or grayscale, decoded to RGB or gray, goes
straight through libjpeg-turbo (``simplejpeg``), into the caller's buffer when it gives one (a
loader's batch array); everything else goes through Pillow. Both run libjpeg-turbo with the same
settings (accurate integer DCT, fancy upsampling), so the pixels are the same either way (tested);
Pillow also converts the other colour spaces (CMYK, YCCK, Adobe RGB) and decides on every JPEG
that libjpeg-turbo refuses, so an odd file decodes as before or fails with the same error.
"""

from __future__ import annotations

import io
import zlib

import numpy as np
import simplejpeg

from deeplake_spark.errors import DecodeError, SchemaError

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {"L": 1, "1": 1, "P": 3, "RGB": 3, "RGBA": 4, "CMYK": 3, "YCbCr": 3, "LA": 2, "I;16": 1, "I": 1, "F": 1}


def image_format(data: bytes | memoryview) -> str | None:
    """``"jpeg"``, ``"png"`` or ``None`` judged from the first bytes."""
    head = bytes(data[:8])
    if head.startswith(JPEG_MAGIC):
        return "jpeg"
    if head.startswith(PNG_MAGIC):
        return "png"
    return None


_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # colour type -> channels after Pillow's decode


def _jpeg_shape(data: bytes) -> tuple[int, ...] | None:
    """(H, W[, C]) from the JPEG's start-of-frame segment; None when unusual (Pillow decides)."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in _JPEG_SOF:
            if i + 10 > n or data[i + 4] != 8:
                return None
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            components = data[i + 9]
            if not height or not width or components not in (1, 3):
                return None
            return (height, width) if components == 1 else (height, width, 3)
        if marker == 0xDA or length < 2:
            return None
        i += 2 + length
    return None


def _png_shape(data: bytes, where: str) -> tuple[int, ...] | None:
    """(H, W[, C]) from IHDR after checking every chunk's CRC; None when unusual (Pillow decides)."""
    if len(data) < 33 or data[12:16] != b"IHDR":
        return None
    pos, seen_end = 8, False
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        end = pos + 12 + length
        if end > len(data):
            raise DecodeError(f"{where}: truncated PNG")
        if zlib.crc32(data[pos + 4 : end - 4]) != int.from_bytes(data[end - 4 : end], "big"):
            raise DecodeError(f"{where}: undecodable png bytes: chunk CRC mismatch")
        if data[pos + 4 : pos + 8] == b"IEND":
            seen_end = True
            break
        pos = end
    if not seen_end:
        raise DecodeError(f"{where}: truncated PNG (no IEND chunk)")
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    bit_depth, colour_type = data[24], data[25]
    channels = _PNG_CHANNELS.get(colour_type)
    if channels is None or not width or not height or (bit_depth == 16 and colour_type != 0):
        return None
    return (height, width) if channels == 1 else (height, width, channels)


def probe_image(data: bytes, *, where: str) -> tuple[int, ...]:
    """Shape (H, W[, C]) of encoded image bytes, without decoding the pixels.

    Common JPEG/PNG files are read from their headers directly (fast ingest); anything unusual
    goes through Pillow.
    """
    from PIL import Image

    fmt = image_format(data)
    if fmt is None:
        raise DecodeError(f"{where}: bytes are not a JPEG or PNG image (first bytes {bytes(data[:8])!r})")
    if fmt == "jpeg" and not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        raise DecodeError(f"{where}: truncated JPEG (no end-of-image marker)")
    fast = _jpeg_shape(data) if fmt == "jpeg" else _png_shape(data, where)
    if fast is not None:
        return fast
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            mode = img.mode
            if fmt == "png":
                img.verify()
    except Exception as e:  # Pillow raises many unrelated types for bad bytes
        raise DecodeError(f"{where}: undecodable {fmt} bytes: {e}") from e
    channels = _CHANNELS.get(mode, 3)
    return (height, width) if mode in ("L", "1", "I;16", "I", "F") else (height, width, channels)


def decode_jpeg_turbo(data: bytes | memoryview, shape: tuple[int, ...], out: np.ndarray | None, *,
                      rgbx: bool = False) -> np.ndarray | None:
    """The JPEG decoded by libjpeg-turbo into ``out`` (or a new array), or None when Pillow must
    decide: another size than ``shape`` (Pillow raises), another colour space than YCbCr/gray, a
    gray image asked for from a colour one (Pillow's luma weights differ from the Y channel), or
    any error (libjpeg-turbo is strict about recoverable damage; Pillow decides whether it is).

    ``rgbx`` (a colour ``shape`` only, no ``out``): a new (H, W, 4) array, the RGB pixels plus a
    fourth byte of 255 each, Pillow's own layout of an RGB image (``torch.pil_decode``)."""
    gray = len(shape) == 2 or (len(shape) == 3 and shape[2] == 1)
    if not gray and (len(shape) != 3 or shape[2] != 3):
        return None
    if rgbx and (gray or out is not None):
        raise ValueError("rgbx: a colour image into a new array only")
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        if (height, width) != tuple(shape[:2]) or (colorspace != "Gray" and (gray or colorspace != "YCbCr")):
            return None
        if rgbx:
            return simplejpeg.decode_jpeg(data, colorspace="RGBX", buffer=np.empty((height, width, 4), np.uint8))
        target = out if out is not None and out.flags.c_contiguous else np.empty(shape, np.uint8)
        simplejpeg.decode_jpeg(data, colorspace="GRAY" if gray else "RGB", buffer=target)
    except ValueError:
        return None
    if out is not None and target is not out:
        out[...] = target
        return out
    return target


def decode_image(data: bytes | memoryview, shape: tuple[int, ...], *, where: str,
                 out: np.ndarray | None = None) -> np.ndarray:
    """Decode encoded image bytes to a uint8 array of ``shape`` (the shape stored at write time).

    ``out`` (a writable uint8 array of ``shape``, e.g. a row of a batch array): decode into it and
    return it; common JPEGs are decoded straight into it, without a copy.
    """
    from PIL import Image

    if out is not None and (out.shape != tuple(shape) or out.dtype != np.uint8):
        raise ValueError(f"{where}: out has shape {out.shape} and dtype {out.dtype}, expected {tuple(shape)} uint8")
    if bytes(data[:3]) == JPEG_MAGIC:
        fast = decode_jpeg_turbo(data, shape, out)
        if fast is not None:
            return fast
    arr = None
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            # Decode only an image of the stored size: a damaged chunk must not make us decode (and
            # allocate) an image other than the one that was written.
            if len(shape) in (2, 3) and (height, width) == tuple(shape[:2]):
                if len(shape) == 3:
                    want = {1: "L", 3: "RGB", 4: "RGBA", 2: "LA"}.get(shape[2], "RGB")
                    if img.mode != want:
                        img = img.convert(want)
                elif img.mode not in ("L",):
                    img = img.convert("L")
                arr = np.asarray(img)
    except Exception as e:  # Pillow raises many unrelated types for bad bytes
        raise DecodeError(f"{where}: cannot decode image: {e}") from e
    if arr is not None and arr.shape != tuple(shape) and arr.size == int(np.prod(shape)):
        arr = arr.reshape(shape)
    if arr is None or arr.shape != tuple(shape):
        raise DecodeError(f"{where}: image of {height}x{width} pixels does not match its stored shape {tuple(shape)} "
                          "(damaged chunk)")
    if out is not None:
        out[...] = arr
        return out
    return arr


def encode_image(array: np.ndarray, compression: str, *, where: str) -> bytes:
    """Encode a uint8 (H, W[, C]) array as JPEG (quality 90) or PNG."""
    from PIL import Image

    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise DecodeError(
            f"{where}: cannot encode array of dtype {array.dtype} and shape {array.shape} as {compression}; "
            "need uint8 (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise SchemaError(f"{where}: an image of shape {array.shape} has no pixels; {compression} cannot store an "
                          "empty image (store None for a missing image)")
    img = Image.fromarray(array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array)
    buf = io.BytesIO()
    if compression == "jpeg":
        if img.mode == "RGBA":
            raise DecodeError(f"{where}: JPEG cannot store an alpha channel; use compression='png'")
        img.save(buf, format="JPEG", quality=90)
    else:
        img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
