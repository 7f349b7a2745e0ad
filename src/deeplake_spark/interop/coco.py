"""Import a COCO-layout folder (images + an instances JSON) as a new dataset, one row per image.

>>> ds = deeplake_spark.from_coco("coco/val2017", "coco/annotations/instances_val2017.json", "/data/coco_val")
>>> ds.tensors["categories"].class_names[:3]
('person', 'bicycle', 'car')

Columns, per image of the JSON's ``images`` list (in that order):

- ``image``: the file's bytes, passed through (JPEG or PNG; compression named after the first image);
- ``image_id`` (int64), ``file_name`` (string), ``height`` / ``width`` (int32): from the JSON;
- ``boxes``: bbox (N, 4) float32 in COCO's ``[x, y, width, height]`` pixels, one row per annotation;
- ``categories``: class_label (N,) int32, the index of each annotation's category in ``class_names``
  (the JSON's categories sorted by id; COCO's sparse ids are not the labels);
- ``category_ids`` (N,) int64 (COCO's ids), ``annotation_ids`` (N,) int64, ``iscrowd`` (N,) bool;
- ``masks``: with ``masks="binary"`` a binary_mask (H, W, N) bool, one channel per annotation, decoded
  from polygons or RLE (see :mod:`deeplake_spark.interop.coco_masks`); with ``"segment"`` a
  segment_mask (H, W) int32 holding COCO category ids (0 = background, later annotations drawn over
  earlier ones); ``"none"``: no mask column.

The whole import is one commit (see :mod:`deeplake_spark.interop.sink`): nothing is visible at the
destination until it is complete. The JSON is loaded whole; images are read ``batch_rows`` at a time.

The JSON is untrusted input: every image's ``file_name`` must be a relative path inside ``images_dir``
(no ``..`` component, absolute path or URL, also after percent-decoding, and no symbolic link leading
out of a local ``images_dir``: :class:`UnsafePathError`); ids, sizes, categories and boxes must have
their COCO types, image ids must be unique, and an image's masks may take at most
``MAX_MASK_BYTES`` (a header claiming a huge image is refused before anything is allocated):
:class:`SchemaError` naming the file, image and annotation.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import numpy as np

from deeplake_spark.dataset import Dataset, DatasetSchema, tensor
from deeplake_spark.errors import (
    DatasetNotFoundError,
    InvalidOptionError,
    SchemaError,
    StorageError,
    UnsafePathError,
)
from deeplake_spark.format.images import image_format, probe_image
from deeplake_spark.interop.coco_masks import annotation_mask
from deeplake_spark.interop.sink import check_target, write_new_dataset
from deeplake_spark.storage import Storage

log = logging.getLogger(__name__)

MASK_MODES = ("binary", "segment", "none")
DEFAULT_BATCH_ROWS = 16
#: The most bytes one image's masks may take (binary: H * W * annotations, segment: 4 * H * W).
MAX_MASK_BYTES = 1 << 30
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _int(value: Any, what: str) -> int:
    """``value`` as an int when it is a JSON integer (or an integral number); SchemaError naming ``what``."""
    number = value if isinstance(value, int) and not isinstance(value, bool) else \
        int(value) if isinstance(value, float) and math.isfinite(value) and value.is_integer() else None
    if number is None or not -(2**63) <= number < 2**63:
        raise SchemaError(f"{what} must be a 64-bit integer, not {str(value)[:60]}")
    return number


def _file_name(value: Any, what: str) -> str:
    """``value`` when it is a relative path that stays inside the images folder; UnsafePathError otherwise."""
    if not isinstance(value, str) or not value:
        raise SchemaError(f"{what}: file_name must be a non-empty string, not {value!r}"[:300])
    for text in (value, unquote(value)):
        parts = re.split(r"[/\\]", text)
        if "\x00" in text or _SCHEME.match(text) or text.startswith(("/", "\\")) or ".." in parts:
            raise UnsafePathError(f"{what}: file_name {value!r} is not a relative path inside the images folder "
                                  "(absolute paths, URLs and '..' components are refused)")
    return value


def _image_entry(image: Any, path: str) -> dict[str, Any]:
    """One entry of ``images`` with its checked fields (id, file_name, height, width) normalized."""
    if not isinstance(image, dict):
        raise SchemaError(f"COCO annotations file {path}: an image entry is not an object: {str(image)[:120]}")
    missing = [k for k in ("id", "file_name", "height", "width") if k not in image]
    if missing:
        raise SchemaError(f"COCO annotations file {path}: image entry {str(image)[:120]} lacks {missing}")
    what = f"COCO annotations file {path}: image {str(image.get('id'))[:40]}"
    entry = {**image, "id": _int(image["id"], f"{what}: id"),
             "file_name": _file_name(image["file_name"], what)}
    for key in ("height", "width"):
        entry[key] = _int(image[key], f"{what}: {key}")
        if entry[key] <= 0:
            raise SchemaError(f"{what}: {key} must be positive, not {entry[key]}")
    return entry


def _annotation_entry(ann: Any, path: str) -> dict[str, Any]:
    """One entry of ``annotations`` with image_id / category_id / id as ints and bbox checked."""
    if not isinstance(ann, dict):
        raise SchemaError(f"COCO annotations file {path}: an annotation entry is not an object: {str(ann)[:120]}")
    what = f"COCO annotations file {path}: annotation {str(ann.get('id'))[:40]}"
    for key in ("image_id", "category_id"):
        if key not in ann:
            raise SchemaError(f"{what} lacks {key!r}")
    entry = {**ann, "image_id": _int(ann["image_id"], f"{what}: image_id"),
             "category_id": _int(ann["category_id"], f"{what}: category_id")}
    if "id" in ann:
        entry["id"] = _int(ann["id"], f"{what}: id")
    if "bbox" in ann:
        box = ann["bbox"]
        if not isinstance(box, list) or len(box) != 4 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box):
            raise SchemaError(f"{what}: bbox must be 4 finite numbers [x, y, width, height], not {str(box)[:120]}")
    return entry


def _category_entry(category: Any, path: str) -> tuple[int, str]:
    if not isinstance(category, dict) or "id" not in category or not isinstance(category.get("name"), str):
        raise SchemaError(f"COCO annotations file {path}: a category needs an integer 'id' and a string 'name', "
                          f"got {str(category)[:120]}")
    return _int(category["id"], f"COCO annotations file {path}: category {category['name']!r}: id"), category["name"]


@dataclass(frozen=True)
class CocoIndex:
    """The parts of a COCO instances file an import needs."""

    images: list[dict[str, Any]]
    annotations: dict[int, list[dict[str, Any]]]  # image id -> its annotations, in file order
    category_ids: list[int]  # sorted; the label of category ``category_ids[i]`` is i
    class_names: list[str]

    @classmethod
    def load(cls, path: str) -> CocoIndex:
        """Read and check ``path``; SchemaError naming what is missing or malformed."""
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError as e:
            raise DatasetNotFoundError(f"COCO annotations file {path} does not exist") from e
        except (OSError, ValueError, RecursionError) as e:  # RecursionError: nesting deeper than json can parse
            raise SchemaError(f"COCO annotations file {path} cannot be read as JSON: {type(e).__name__}: "
                              f"{str(e)[:200]}") from e
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise SchemaError(f"COCO annotations file {path} has no 'images' list")
        for key in ("categories", "annotations"):
            if not isinstance(data.get(key) or [], list):
                raise SchemaError(f"COCO annotations file {path}: '{key}' is not a list")
        categories = sorted(_category_entry(c, path) for c in data.get("categories") or [])
        ids = [cid for cid, _ in categories]
        if len(set(ids)) != len(ids):
            raise SchemaError(f"COCO annotations file {path}: category ids repeat: {ids}")
        images = [_image_entry(image, path) for image in data["images"]]
        seen: dict[int, str] = {}
        for image in images:
            if image["id"] in seen:
                raise SchemaError(f"COCO annotations file {path}: image id {image['id']} is used by both "
                                  f"{seen[image['id']]!r} and {image['file_name']!r}; image ids must be unique")
            seen[image["id"]] = image["file_name"]
        by_image: dict[int, list[dict[str, Any]]] = {}
        for ann in data.get("annotations") or []:
            entry = _annotation_entry(ann, path)
            by_image.setdefault(entry["image_id"], []).append(entry)
        orphans = set(by_image) - set(seen)
        if orphans:
            log.warning("COCO annotations file %s: %d annotations refer to %d image ids that are not in 'images' "
                        "(e.g. %s); they are not imported", path, sum(len(by_image[i]) for i in orphans),
                        len(orphans), sorted(orphans)[:5])
        return cls(images, by_image, ids, [name for _, name in categories])


def coco_schema(image_compression: str, class_names: Sequence[str], masks: str) -> DatasetSchema:
    """The schema of an imported COCO folder (see the module docstring)."""
    columns: dict[str, Any] = {
        "image": tensor("image", compression=image_compression),
        "image_id": "int64",
        "file_name": "string",
        "height": "int32",
        "width": "int32",
        "boxes": tensor("bbox"),
        "categories": tensor("class_label", shape=(None,), class_names=list(class_names) or None),
        "category_ids": tensor("generic", dtype="int64", shape=(None,)),
        "annotation_ids": tensor("generic", dtype="int64", shape=(None,)),
        "iscrowd": tensor("generic", dtype="bool", shape=(None,)),
    }
    if masks == "binary":
        columns["masks"] = tensor("binary_mask", shape=(None, None, None))
    elif masks == "segment":
        columns["masks"] = tensor("segment_mask", shape=(None, None))
    return DatasetSchema.from_mapping(columns)


def _read_image(storage: Storage, image: dict[str, Any]) -> bytes:
    name = image["file_name"]  # checked by _file_name: relative, no '..'
    if storage.is_local:  # a symbolic link inside images_dir must not lead out of it
        root = os.path.realpath(storage.uri)
        real = os.path.realpath(os.path.join(root, name))
        if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
            raise UnsafePathError(f"COCO image {name!r} (id {image['id']}) leads through a symbolic link to {real}, "
                                  f"outside the images folder {storage.uri}")
        if os.path.exists(real) and not stat.S_ISREG(os.stat(real).st_mode):  # a FIFO would block the read forever
            raise SchemaError(f"COCO image {name!r} (id {image['id']}) in {storage.uri} is not a regular file")
    try:
        return storage.read(name)
    except (StorageError, OSError) as e:
        raise StorageError(f"COCO image {name} (id {image['id']}) cannot be read from {storage.uri}: {e}") from e


def _row(index: CocoIndex, storage: Storage, image: dict[str, Any], masks: str) -> dict[str, Any]:
    data = _read_image(storage, image)
    height, width = int(image["height"]), int(image["width"])
    where = f"COCO image {image['file_name']} (id {image['id']})"
    shape = probe_image(data, where=where)
    if tuple(shape[:2]) != (height, width):
        raise SchemaError(f"{where}: the file is {shape[0]}x{shape[1]} pixels but the annotations say "
                          f"{height}x{width}")
    anns = index.annotations.get(int(image["id"]), [])
    label_of = {cid: i for i, cid in enumerate(index.category_ids)}
    labels = []
    for ann in anns:
        if int(ann["category_id"]) not in label_of:
            raise SchemaError(f"{where}: annotation {ann.get('id')} has category_id {ann['category_id']}, which "
                              "is not in the file's categories")
        labels.append(label_of[int(ann["category_id"])])
    row: dict[str, Any] = {
        "image": data, "image_id": int(image["id"]), "file_name": str(image["file_name"]),
        "height": height, "width": width,
        "boxes": np.asarray([a.get("bbox", [0, 0, 0, 0]) for a in anns], dtype=np.float32).reshape(-1, 4),
        "categories": np.asarray(labels, dtype=np.int32),
        "category_ids": np.asarray([int(a["category_id"]) for a in anns], dtype=np.int64),
        "annotation_ids": np.asarray([int(a.get("id", -1)) for a in anns], dtype=np.int64),
        "iscrowd": np.asarray([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool),
    }
    if masks != "none":
        need = height * width * (max(len(anns), 1) if masks == "binary" else 4)
        if need > MAX_MASK_BYTES:
            raise SchemaError(f"{where}: its masks would take {need} bytes ({height}x{width} pixels, {len(anns)} "
                              f"annotations), over MAX_MASK_BYTES={MAX_MASK_BYTES}; import with masks='none'"
                              + (" or 'segment'" if masks == "binary" and 4 * height * width <= MAX_MASK_BYTES
                                 else ""))
        per_ann = [annotation_mask(a.get("segmentation") or [], height, width,
                                   where=f"{where}, annotation {a.get('id')}") for a in anns]
        if masks == "binary":
            row["masks"] = (np.stack(per_ann, axis=-1) if per_ann else np.zeros((height, width, 0), dtype=bool))
        else:
            segment = np.zeros((height, width), dtype=np.int32)
            for ann, mask in zip(anns, per_ann):
                if not 0 < ann["category_id"] < 2**31:
                    raise SchemaError(f"{where}: annotation {ann.get('id')} has category_id {ann['category_id']}, "
                                      "which a segment mask (int32, 0 = background) cannot hold; use masks='binary'")
                segment[mask] = int(ann["category_id"])
            row["masks"] = segment
    return row


def _batches(index: CocoIndex, storage: Storage, schema: DatasetSchema, masks: str, batch_rows: int
             ) -> Iterator[dict[str, list[Any]]]:
    for start in range(0, len(index.images), batch_rows):
        rows = [_row(index, storage, image, masks) for image in index.images[start:start + batch_rows]]
        yield {name: [r[name] for r in rows] for name in schema.order}


def _first_compression(index: CocoIndex, storage: Storage) -> str:
    if not index.images:
        return "jpeg"
    head = _read_image(storage, index.images[0])[:16]
    found = image_format(head)
    if found is None:
        raise SchemaError(f"COCO image {index.images[0]['file_name']} is neither JPEG nor PNG (first bytes "
                          f"{head[:8]!r}); only those are passed through")
    return found


def from_coco(images_dir: str | os.PathLike[str], annotations: str | os.PathLike[str], dst: str | os.PathLike[str], *,
              masks: str = "binary", storage_options: Mapping[str, str] | None = None,
              images_storage_options: Mapping[str, str] | None = None, batch_rows: int = DEFAULT_BATCH_ROWS,
              progress: bool | None = None) -> Dataset:
    """Import the COCO folder ``images_dir`` with instances file ``annotations`` into a new dataset at ``dst``.

    ``masks``: ``"binary"`` (default), ``"segment"`` or ``"none"`` (see the module docstring).
    ``storage_options`` is for ``dst``, ``images_storage_options`` for an ``s3://`` ``images_dir``.
    Returns the new dataset (version 0).
    """
    if masks not in MASK_MODES:
        raise InvalidOptionError(f"masks must be one of {MASK_MODES}, not {masks!r}")
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows <= 0:
        raise InvalidOptionError(f"batch_rows must be a positive int, not {batch_rows!r}")
    uri = check_target(dst, storage_options)
    index = CocoIndex.load(os.fspath(annotations))
    storage = Storage(os.fspath(images_dir), images_storage_options)
    schema = coco_schema(_first_compression(index, storage), index.class_names, masks)
    return write_new_dataset(uri, schema, _batches(index, storage, schema, masks, batch_rows),
                             total_rows=len(index.images), storage_options=storage_options,
                             operation="import coco", progress=progress)
