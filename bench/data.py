"""Deterministic benchmark data made from real photographs shipped inside installed wheels.

No downloads: the photos come from scikit-learn's ``load_sample_images`` (two photos) and, when
installed, scikit-image's ``data`` module. Each sample is a seeded random crop (scale, position,
flip) of one photo; its label is the photo's index.

- ``images``: 256x256 RGB JPEG bytes (quality 90) + int64 labels.
- ``tensors``: 224x224x3 uint8 arrays + labels (stored LZ4 by the systems that can).
- ``embeddings``: float32[768] rows + labels.
- ``raw``: the ``tensors`` arrays, stored uncompressed by every system.
- ``varjpeg``: JPEG crops of varying size (160-400 px a side, not square), q90, + labels; loaders
  resize them to 224x224 in a transform (:func:`resize_sample`).
- ``f16``: float16[3,128,128] (channels first, values in [0, 1]) crops + labels, uncompressed.
- ``tiny``: uint8[28,28] grayscale crops + labels, uncompressed (MNIST-sized).

Generated samples are cached under ``bench/_work/data`` so repeated runs skip the encoding.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from bench.config import WORK_DIR

log = logging.getLogger(__name__)

IMAGE_SIZE = 256
TENSOR_SIZE = 224
EMBEDDING_DIM = 768
F16_SIZE = 128
TINY_SIZE = 28
RESIZE_TO = 224
VARJPEG_SIDES = (160, 400)
#: tiny samples are drawn from a pool of this many distinct crops (200k PIL crops would take minutes)
TINY_POOL = 2_000
# scikit-image photographs that ship inside its wheel (no pooch download needed).
_SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "immunohistochemistry", "retina",
                   "hubble_deep_field")


@lru_cache(maxsize=1)
def photos() -> tuple[list[np.ndarray], list[str]]:
    """Source photographs as uint8 RGB arrays and their names."""
    try:
        from sklearn.datasets import load_sample_images
    except ImportError as e:
        raise RuntimeError("bench data needs scikit-learn: .venv/bin/pip install scikit-learn") from e
    bunch = load_sample_images()
    out = [np.asarray(img, dtype=np.uint8) for img in bunch.images]
    names = [os.path.basename(f) for f in bunch.filenames]
    try:
        import skimage.data as skdata
    except ImportError:
        log.info("scikit-image not installed: using scikit-learn's %d photos only", len(out))
    else:
        for name in _SKIMAGE_PHOTOS:
            try:
                img = np.asarray(getattr(skdata, name)())
            except (AttributeError, OSError, ModuleNotFoundError, ValueError) as e:
                log.info("skipping scikit-image photo %s: %s", name, e)
                continue
            if img.ndim == 2:
                img = np.stack([img] * 3, axis=-1)
            out.append(np.ascontiguousarray(img[..., :3]).astype(np.uint8))
            names.append(name)
    return out, names


def _crop(rng: np.random.Generator, photo: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    h, w = photo.shape[:2]
    side = int(rng.uniform(0.45, 1.0) * min(h, w))
    side = max(side, min(size, min(h, w)))
    y = int(rng.integers(0, h - side + 1))
    x = int(rng.integers(0, w - side + 1))
    crop = Image.fromarray(photo[y : y + side, x : x + side]).resize((size, size), Image.BILINEAR)
    arr = np.asarray(crop)
    if rng.random() < 0.5:
        arr = arr[:, ::-1]
    return np.ascontiguousarray(arr)


def _labels(n: int, seed: int) -> np.ndarray:
    count = len(photos()[0])
    return np.random.default_rng(seed).integers(0, count, size=n).astype(np.int64)


@dataclass
class ImageData:
    """``jpegs[i]`` is the encoded crop of photo ``labels[i]``."""

    jpegs: list[bytes]
    labels: np.ndarray

    @property
    def stored_bytes(self) -> int:
        return sum(len(j) for j in self.jpegs)

    @property
    def decoded_bytes_per_sample(self) -> int:
        return IMAGE_SIZE * IMAGE_SIZE * 3


def images(n: int) -> ImageData:
    """``n`` JPEG crops, the first ``m`` of ``images(n)`` equal ``images(m)``."""
    path = os.path.join(WORK_DIR, "data", f"images_{n}.npz")
    if os.path.exists(path):
        with np.load(path) as z:
            blob, offsets, labels = z["blob"], z["offsets"], z["labels"]
        data = blob.tobytes()
        return ImageData([data[offsets[i] : offsets[i + 1]] for i in range(n)], labels)
    from PIL import Image

    pics = photos()[0]
    labels = _labels(n, seed=1)
    jpegs = []
    for i in range(n):
        rng = np.random.default_rng([7, i])
        buf = io.BytesIO()
        Image.fromarray(_crop(rng, pics[labels[i]], IMAGE_SIZE)).save(buf, format="JPEG", quality=90)
        jpegs.append(buf.getvalue())
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(j) for j in jpegs], out=offsets[1:])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez(path + ".tmp.npz", blob=np.frombuffer(b"".join(jpegs), dtype=np.uint8), offsets=offsets, labels=labels)
    os.replace(path + ".tmp.npz", path)
    return ImageData(jpegs, labels)


def tensors(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 224, 224, 3)`` uint8 crops and their labels."""
    labels = _labels(n, seed=2)

    def build() -> np.ndarray:
        pics = photos()[0]
        out = np.empty((n, TENSOR_SIZE, TENSOR_SIZE, 3), dtype=np.uint8)
        for i in range(n):
            out[i] = _crop(np.random.default_rng([11, i]), pics[labels[i]], TENSOR_SIZE)
        return out

    return _cached_array(f"tensors_{n}.npy", build), labels


def _cached_array(name: str, build: Any) -> np.ndarray:
    """The array cached as ``<work>/data/<name>`` (memory-mapped), made by ``build()`` and saved
    atomically the first time."""
    path = os.path.join(WORK_DIR, "data", name)
    if os.path.exists(path):
        return np.load(path, mmap_mode="r")
    out = build()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path + ".tmp.npy", out)
    os.replace(path + ".tmp.npy", path)
    return out


def _jpeg_blob(path: str, n: int, make: Any) -> ImageData:
    """``n`` JPEGs from ``make(i) -> (bytes, label)``, cached at ``path`` (npz of blob + offsets)."""
    if os.path.exists(path):
        with np.load(path) as z:
            blob, offsets, labels = z["blob"], z["offsets"], z["labels"]
        raw = blob.tobytes()
        return ImageData([raw[offsets[i] : offsets[i + 1]] for i in range(n)], labels)
    made = [make(i) for i in range(n)]
    jpegs = [m[0] for m in made]
    labels = np.asarray([m[1] for m in made], dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(j) for j in jpegs], out=offsets[1:])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez(path + ".tmp.npz", blob=np.frombuffer(b"".join(jpegs), dtype=np.uint8), offsets=offsets, labels=labels)
    os.replace(path + ".tmp.npz", path)
    return ImageData(jpegs, labels)


def varjpegs(n: int) -> ImageData:
    """``n`` JPEG crops of varying (non-square) size, ``VARJPEG_SIDES`` px a side, q90."""
    from PIL import Image

    pics = photos()[0]
    labels = _labels(n, seed=4)

    def make(i: int) -> tuple[bytes, int]:
        rng = np.random.default_rng([13, i])
        pic = pics[labels[i]]
        h, w = pic.shape[:2]
        out_w, out_h = (int(rng.integers(VARJPEG_SIDES[0], VARJPEG_SIDES[1] + 1)) for _ in range(2))
        side_h = max(8, int(rng.uniform(0.4, 1.0) * h))
        side_w = max(8, int(rng.uniform(0.4, 1.0) * w))
        y = int(rng.integers(0, h - side_h + 1))
        x = int(rng.integers(0, w - side_w + 1))
        crop = Image.fromarray(pic[y : y + side_h, x : x + side_w]).resize((out_w, out_h), Image.BILINEAR)
        buf = io.BytesIO()
        crop.save(buf, format="JPEG", quality=90)
        return buf.getvalue(), int(labels[i])

    return _jpeg_blob(os.path.join(WORK_DIR, "data", f"varjpeg_{n}.npz"), n, make)


def resize_sample(image: Any) -> np.ndarray:
    """The varjpeg transform every system runs per sample: HxWx3 uint8 -> 224x224x3 uint8 (PIL bilinear)."""
    from PIL import Image

    arr = np.asarray(image)
    return np.asarray(Image.fromarray(arr).resize((RESIZE_TO, RESIZE_TO), Image.BILINEAR))


def decode_resize(jpeg: bytes) -> np.ndarray:
    """PIL decode of one varjpeg sample + :func:`resize_sample` (what the bound measures)."""
    from PIL import Image

    with Image.open(io.BytesIO(jpeg)) as img:
        return np.asarray(img.convert("RGB").resize((RESIZE_TO, RESIZE_TO), Image.BILINEAR))


def f16(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 3, 128, 128)`` float16 crops in [0, 1] and labels (cached)."""
    labels = _labels(n, seed=5)

    def build() -> np.ndarray:
        pics = photos()[0]
        out = np.empty((n, 3, F16_SIZE, F16_SIZE), dtype=np.float16)
        for i in range(n):
            crop = _crop(np.random.default_rng([17, i]), pics[labels[i]], F16_SIZE)
            out[i] = (crop.transpose(2, 0, 1) / np.float32(255)).astype(np.float16)
        return out

    return _cached_array(f"f16_{n}.npy", build), labels


def tiny(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 28, 28)`` uint8 grayscale crops and labels: a pool of ``TINY_POOL`` crops, each sample one
    of them picked at random, flipped at random (cheap for 200k samples, not compressible across rows)."""
    rng = np.random.default_rng(19)
    pick = rng.integers(0, TINY_POOL, size=n)
    flip = rng.random(n) < 0.5
    pool_labels = _labels(TINY_POOL, seed=6)
    labels = pool_labels[pick]

    def build() -> np.ndarray:
        pics = photos()[0]
        pool = np.empty((TINY_POOL, TINY_SIZE, TINY_SIZE), dtype=np.uint8)
        for i in range(TINY_POOL):
            crop = _crop(np.random.default_rng([23, i]), pics[pool_labels[i]], TINY_SIZE)
            pool[i] = crop.mean(axis=2).astype(np.uint8)
        out = pool[pick]
        out[flip] = out[flip][:, :, ::-1]
        return out

    return _cached_array(f"tiny_{n}.npy", build), labels


def embeddings(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 768)`` float32 unit vectors and labels (cheap to make: not cached)."""
    rng = np.random.default_rng(3)
    out = rng.standard_normal((n, EMBEDDING_DIM), dtype=np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out, _labels(n, seed=3)


def sample_nbytes(kind: str) -> int:
    """Bytes of one decoded sample as a training loop receives it (the MB/s numerator)."""
    return {"images": IMAGE_SIZE * IMAGE_SIZE * 3, "tensors": TENSOR_SIZE * TENSOR_SIZE * 3,
            "raw": TENSOR_SIZE * TENSOR_SIZE * 3, "varjpeg": RESIZE_TO * RESIZE_TO * 3,
            "f16": 3 * F16_SIZE * F16_SIZE * 2, "tiny": TINY_SIZE * TINY_SIZE,
            "embeddings": EMBEDDING_DIM * 4}[kind]


#: array kinds: kind -> (dtype, sample shape), each stored as fixed-size raw bytes where a system has no
#: tensor type of its own (Parquet, Lance, Mosaic's ``bytes``)
ARRAY_KINDS: dict[str, tuple[str, tuple[int, ...]]] = {
    "tensors": ("uint8", (TENSOR_SIZE, TENSOR_SIZE, 3)),
    "raw": ("uint8", (TENSOR_SIZE, TENSOR_SIZE, 3)),
    "f16": ("float16", (3, F16_SIZE, F16_SIZE)),
    "tiny": ("uint8", (TINY_SIZE, TINY_SIZE)),
}
#: encoded-image kinds (JPEG bytes per sample)
JPEG_KINDS = ("images", "varjpeg")


def load(kind: str, n: int) -> tuple[Any, np.ndarray]:
    """The samples of ``kind`` (a list of JPEG bytes, or an array) and their labels."""
    if kind == "images":
        img = images(n)
        return img.jpegs, img.labels
    if kind == "varjpeg":
        img = varjpegs(n)
        return img.jpegs, img.labels
    if kind in ("tensors", "raw"):
        return tensors(n)
    if kind == "f16":
        return f16(n)
    if kind == "tiny":
        return tiny(n)
    if kind == "embeddings":
        return embeddings(n)
    raise ValueError(f"unknown data kind {kind!r}")


def decode_jpeg(jpeg: bytes) -> np.ndarray:
    """PIL decode of one JPEG sample to HxWx3 uint8."""
    from PIL import Image

    with Image.open(io.BytesIO(jpeg)) as img:
        return np.asarray(img.convert("RGB"))
