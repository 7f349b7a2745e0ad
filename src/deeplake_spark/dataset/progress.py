"""Progress bars for long dataset work (ingest, vacuum): tqdm, silent when asked.

``progress=None`` (the default) shows a bar only for big jobs and only on a terminal/notebook;
``False`` silences it; ``True`` forces it. ``DEEPLAKE_SPARK_PROGRESS=0`` silences every bar.
"""

from __future__ import annotations

import os

from tqdm.auto import tqdm

AUTO_MIN_UNITS = 10_000


def progress_bar(total: int, desc: str, unit: str, progress: bool | None, *, auto_min: int = AUTO_MIN_UNITS) -> tqdm:
    if progress is False or os.environ.get("DEEPLAKE_SPARK_PROGRESS") == "0":
        disable: bool | None = True
    elif progress is True:
        disable = False
    else:
        disable = None if total >= auto_min else True  # None: tqdm hides itself when not on a TTY
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, leave=False, dynamic_ncols=True)
