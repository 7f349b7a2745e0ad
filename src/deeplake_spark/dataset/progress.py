"""Progress bars for long dataset work (ingest, vacuum): tqdm, silent when asked.

``progress=None`` (the default) shows a bar only for big jobs and only on a terminal/notebook;
``False`` silences it; ``True`` forces it. ``DEEPLAKE_SPARK_PROGRESS=0`` silences every bar. Jobs
whose size is unknown up front (the converter's materialize) use :func:`show_progress`.
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


def interactive() -> bool:
    """True on a terminal (stderr is a TTY) or in a Jupyter/IPython kernel, where bars redraw in place;
    False in logs, pipes and CI, where every redraw would be another line."""
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    if shell is not None and getattr(shell, "kernel", None) is not None:  # a Jupyter kernel, not just imported
        return True
    stream = sys.stderr
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def show_progress(progress: bool | None) -> bool:
    """Whether a job whose size is unknown up front shows a bar: ``True`` forces it, ``False`` or
    ``DEEPLAKE_SPARK_PROGRESS=0`` silences it, None (auto) shows it only where :func:`interactive`."""
    if progress is False or os.environ.get("DEEPLAKE_SPARK_PROGRESS") == "0":
        return False
    return True if progress is True else interactive()
