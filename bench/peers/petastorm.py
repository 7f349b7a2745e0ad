"""petastorm 0.13.1, tried in its own venv (bench/.venv-petastorm, pinned old pyarrow) because it
does not import with current pyarrow. Set up with ``python -m bench.peers.petastorm --setup``.

``status()`` (bench side) says whether it runs, quoting the error verbatim when it does not;
``stream`` (worker side) reads the images Parquet store with ``make_batch_reader`` and petastorm's
torch ``DataLoader``, decoding JPEGs in a ``TransformSpec``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from bench.config import REPO_DIR

VENV = os.path.join(REPO_DIR, "bench", ".venv-petastorm")
PYTHON = os.path.join(VENV, "bin", "python")
PINS = ("petastorm==0.13.1", "pyarrow==10.0.1", "numpy<2", "pandas<2")


def setup() -> int:
    """Create the pinned venv; torch comes from the bench's own venv through a .pth file."""
    subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    rc = subprocess.run([PYTHON, "-m", "pip", "install", "-q", *PINS]).returncode
    site = subprocess.run([PYTHON, "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True,
                          text=True, check=True).stdout.strip()
    import torch

    with open(os.path.join(site, "bench_torch.pth"), "w") as f:
        f.write(os.path.dirname(os.path.dirname(torch.__file__)) + "\n")
    return rc


def _verbatim(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "no output"


def status() -> str:
    """'runs' or why not (the import error, verbatim) in the pinned venv."""
    if not os.path.exists(PYTHON):
        return "pinned venv bench/.venv-petastorm not set up (python -m bench.peers.petastorm --setup)"
    try:
        pinned = subprocess.run([PYTHON, "-c", "import petastorm, petastorm.pytorch"], capture_output=True,
                                text=True, cwd=REPO_DIR, timeout=120)
    except subprocess.TimeoutExpired:
        return "import petastorm timed out in bench/.venv-petastorm"
    if pinned.returncode == 0:
        return "runs"
    return f"in bench/.venv-petastorm ({', '.join(PINS)}): {_verbatim(pinned.stderr)}"


def _decode(frame: Any) -> Any:
    import io

    import numpy as np
    from PIL import Image

    frame["image"] = [np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in frame["image"]]
    return frame


def stream(path: str, kind: str, batch_size: int, workers: int, min_seconds: float) -> dict[str, Any]:
    """petastorm ``make_batch_reader`` (process pool of ``workers``) + its torch ``DataLoader``."""
    import numpy as np
    from petastorm import make_batch_reader
    from petastorm.pytorch import DataLoader
    from petastorm.transform import TransformSpec

    from bench import data
    from bench.measure import consume

    if kind != "images":
        raise NotImplementedError("petastorm is benchmarked on images only")
    spec = TransformSpec(_decode, edit_fields=[("image", np.uint8, (data.IMAGE_SIZE, data.IMAGE_SIZE, 3), False)])

    def epoch() -> Any:
        reader = make_batch_reader(f"file://{path}", reader_pool_type="process", workers_count=workers,
                                   shuffle_row_groups=True, num_epochs=1, transform_spec=spec)
        with DataLoader(reader, batch_size=batch_size, shuffling_queue_capacity=4 * batch_size) as loader:
            yield from loader

    return consume(epoch, min_seconds=min_seconds)


if __name__ == "__main__":
    if "--setup" in sys.argv:
        sys.exit(setup())
    print(status())
