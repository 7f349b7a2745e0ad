"""The small example data every README snippet runs on: ``python -m deeplake_spark.sample_data data``.

Makes, under the given folder (default ``data``):

* ``pets/`` — a deeplake dataset of 120 synthetic pets in two appends (versions 1 and 2):
  ``image`` (JPEG, 40-64 px), ``label`` (``class_label`` with :data:`CLASS_NAMES`), ``boxes``
  (``bbox``, 0-3 boxes), ``embedding`` (768 float32, LZ4), ``id`` and ``split`` (train/val/test);
* ``labels/`` — a plain Parquet table ``(id, owner, weight_kg)`` to join with;
* ``raw/<class name>/<id>.jpg`` — the same images as files, for Spark's ``binaryFile`` source and
  ``deeplake-spark import-folder``.

Everything is generated from a fixed seed, so two runs make the same rows.
"""

from __future__ import annotations

import argparse
import io
import os
from pathlib import Path

import numpy as np

#: Class names of the ``label`` tensor (``label = 3`` is a fish).
CLASS_NAMES = ["cat", "dog", "bird", "fish", "rabbit"]
ROWS = 120
SPLITS = ("train", "train", "train", "val", "test")


def _jpeg(rng: np.random.Generator, label: int) -> bytes:
    from PIL import Image

    height, width = (int(v) for v in rng.integers(40, 65, size=2))
    base = np.array([(label * 50) % 256, 255 - label * 40, 80 + label * 30], dtype=np.int16)
    noise = rng.integers(-30, 30, size=(height, width, 3))
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _rows(start: int, stop: int) -> dict[str, list]:
    rng = np.random.default_rng(start)
    columns: dict[str, list] = {name: [] for name in ("image", "label", "boxes", "embedding", "id", "split")}
    for i in range(start, stop):
        label = i % len(CLASS_NAMES)
        columns["image"].append(_jpeg(rng, label))
        columns["label"].append(label)
        count = int(rng.integers(0, 4))
        columns["boxes"].append(np.round(rng.uniform(0, 40, size=(count, 4)), 1).astype(np.float32))
        columns["embedding"].append(rng.standard_normal(768).astype(np.float32))
        columns["id"].append(i)
        columns["split"].append(SPLITS[i % len(SPLITS)])
    return columns


def make_pets(root: str | os.PathLike[str] = "data") -> Path:
    """Write ``pets/``, ``labels/`` and ``raw/`` under ``root`` (which must not hold them yet);
    returns the path of the ``pets`` dataset."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import deeplake_spark as dls

    root = Path(root)
    pets = root / "pets"
    ds = dls.create(str(pets), {
        "image": dls.tensor("image"),
        "label": dls.tensor("class_label", class_names=CLASS_NAMES),
        "boxes": dls.tensor("bbox"),
        "embedding": dls.tensor("embedding", shape=(768,), compression="lz4"),
        "id": "int64", "split": "string",
    })
    half = ROWS // 2
    for start, stop in ((0, half), (half, ROWS)):
        ds.append(_rows(start, stop), progress=False)

    labels = root / "labels"
    labels.mkdir(parents=True, exist_ok=False)
    rng = np.random.default_rng(7)
    pq.write_table(pa.table({
        "id": pa.array(range(ROWS), pa.int64()),
        "owner": [f"owner-{i % 17}" for i in range(ROWS)],
        "weight_kg": np.round(rng.uniform(0.2, 30.0, ROWS), 2),
    }), labels / "part-0.parquet")

    rows = _rows(0, ROWS)
    for image, label, row_id in zip(rows["image"], rows["label"], rows["id"]):
        folder = root / "raw" / CLASS_NAMES[label]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{row_id:04d}.jpg").write_bytes(image)
    return pets


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deeplake_spark.sample_data", description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="data", help="folder to make (default: data)")
    args = parser.parse_args(argv)
    pets = make_pets(args.root)
    print(f"made {pets} ({ROWS} rows), {Path(args.root) / 'labels'} and {Path(args.root) / 'raw'}")


if __name__ == "__main__":
    main()
