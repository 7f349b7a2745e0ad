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
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from deeplake_spark.dataset import Dataset, DatasetSchema, tensor
from deeplake_spark.errors import DatasetNotFoundError, InvalidOptionError, SchemaError, StorageError
from deeplake_spark.format.images import image_format, probe_image
from deeplake_spark.interop.coco_masks import annotation_mask
from deeplake_spark.interop.sink import check_target, write_new_dataset
from deeplake_spark.storage import Storage

log = logging.getLogger(__name__)

MASK_MODES = ("binary", "segment", "none")
DEFAULT_BATCH_ROWS = 16


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
        except (OSError, ValueError) as e:
            raise SchemaError(f"COCO annotations file {path} cannot be read as JSON: {e}") from e
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise SchemaError(f"COCO annotations file {path} has no 'images' list")
        categories = sorted(data.get("categories") or [], key=lambda c: int(c["id"]))
        ids = [int(c["id"]) for c in categories]
        if len(set(ids)) != len(ids):
            raise SchemaError(f"COCO annotations file {path}: category ids repeat: {ids}")
        by_image: dict[int, list[dict[str, Any]]] = {}
        for ann in data.get("annotations") or []:
            by_image.setdefault(int(ann["image_id"]), []).append(ann)
        for image in data["images"]:
            missing = [k for k in ("id", "file_name", "height", "width") if k not in image]
            if missing:
                raise SchemaError(f"COCO annotations file {path}: image entry {str(image)[:120]} lacks {missing}")
        orphans = set(by_image) - {int(image["id"]) for image in data["images"]}
        if orphans:
            log.warning("COCO annotations file %s: %d annotations refer to %d image ids that are not in 'images' "
                        "(e.g. %s); they are not imported", path, sum(len(by_image[i]) for i in orphans),
                        len(orphans), sorted(orphans)[:5])
        return cls(data["images"], by_image, ids, [str(c["name"]) for c in categories])


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
    name = str(image["file_name"])
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
        per_ann = [annotation_mask(a.get("segmentation") or [], height, width,
                                   where=f"{where}, annotation {a.get('id')}") for a in anns]
        if masks == "binary":
            row["masks"] = (np.stack(per_ann, axis=-1) if per_ann else np.zeros((height, width, 0), dtype=bool))
        else:
            segment = np.zeros((height, width), dtype=np.int32)
            for ann, mask in zip(anns, per_ann):
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
