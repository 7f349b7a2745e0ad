"""Does the session's Python worker interpreter have what the deeplake source needs (pyarrow)?

A plain ``SparkSession`` started without ``PYSPARK_PYTHON`` runs its Python workers with ``python3``
from the PATH, often another interpreter than the driver's virtual environment: every read of the
Python source then fails in the workers with ``No module named 'pyarrow'``. ``register()`` calls
:func:`worker_python_problem` to say so up front, with the fix.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

#: Modules the Python source's workers import.
WORKER_MODULES = ("pyarrow", "deeplake_spark")


def worker_python(spark: Any) -> str | None:
    """The interpreter the session starts Python workers with (``SparkContext.pythonExec``, else
    ``spark.pyspark.python``, ``PYSPARK_PYTHON``, ``python3``); None where unknown (Spark Connect)."""
    try:
        exec_ = spark.sparkContext.pythonExec
    except Exception:  # noqa: BLE001 - Spark Connect has no SparkContext; nothing to check then
        return None
    return exec_ or spark.conf.get("spark.pyspark.python", None) or os.environ.get("PYSPARK_PYTHON") or "python3"


def _same_interpreter(exec_: str) -> bool:
    found = shutil.which(exec_)
    return found is not None and os.path.realpath(found) == os.path.realpath(sys.executable)


def worker_python_problem(exec_: str | None, *, master: str, timeout: float = 60) -> str | None:
    """Why Python workers started with ``exec_`` on a ``local`` master cannot run the deeplake source,
    and how to fix it; None when they can (the driver's own interpreter, or one that imports
    :data:`WORKER_MODULES`) or when it cannot be checked here (a cluster master, Spark Connect)."""
    if exec_ is None or not master.strip().startswith("local") or _same_interpreter(exec_):
        return None
    fix = (f"start the session with PYSPARK_PYTHON={sys.executable} set in the environment (before the "
           "SparkSession is created), or use deeplake_spark.spark_session(), which does that")
    if shutil.which(exec_) is None:
        return f"Spark's Python workers would run {exec_!r}, which is not found; {fix}"
    code = "import " + ", ".join(WORKER_MODULES)
    try:
        result = subprocess.run([exec_, "-c", code], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"Spark's Python workers would run {exec_!r}, which could not be started ({e}); {fix}"
    if result.returncode == 0:
        return None
    last = (result.stderr.strip().splitlines() or ["exit status " + str(result.returncode)])[-1]
    return (f"Spark's Python workers run {exec_!r}, not the driver's {sys.executable!r}, and it fails on "
            f"'{code}' ({last}): reads of format('deeplake-python') would fail in the workers; {fix}")
