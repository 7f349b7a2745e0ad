"""Baseline: plain ``.jpg`` files in one folder, a map-style torch Dataset decoding with PIL."""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

import numpy as np

from bench import data


def build(path: str, kind: str, n: int) -> dict[str, Any]:
    if kind != "images":
        raise NotImplementedError("a JPEG folder holds images only")
    img = data.images(n)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    start = time.perf_counter()
    for i, jpeg in enumerate(img.jpegs):
        with open(os.path.join(path, f"{i:07d}.jpg"), "wb") as f:
            f.write(jpeg)
    np.save(os.path.join(path, "labels.npy"), img.labels)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows": n, "disk_bytes": sum(len(j) for j in img.jpegs)}


class JpegFolder:
    """``dataset[i]`` opens file ``i`` and decodes it with PIL."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.labels = np.load(os.path.join(path, "labels.npy"))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch
        from PIL import Image

        with Image.open(os.path.join(self.path, f"{i:07d}.jpg")) as img:
            arr = np.asarray(img.convert("RGB"))
        return {"image": torch.from_numpy(arr.copy()), "label": int(self.labels[i])}


def stream(path: str, kind: str, batch_size: int, workers: int, min_seconds: float) -> dict[str, Any]:
    import torch
    from torch.utils.data import DataLoader

    from bench.measure import consume

    loader = DataLoader(JpegFolder(path), batch_size=batch_size, num_workers=workers, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    return consume(lambda: loader, min_seconds=min_seconds)
