"""Shared fixtures, one of each per test run: a local Spark session, a delta-spark worker process, a
SeaweedFS S3 server; and temp dataset paths."""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest
from s3_server import s3_server_fixture  # noqa: F401 - the run's one SeaweedFS server (``s3_server``)

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def spark():
    """A real local[2] SparkSession with deeplake registered (shared by all tests)."""
    pyspark = pytest.importorskip("pyspark")
    del pyspark
    from deeplake_spark.spark import spark_session

    session = spark_session(master="local[2]")
    yield session
    session.stop()


#: The run's delta-spark workers by fixture name: the settings each session starts with.
DELTA_WORKERS = {
    "delta_spark": {},
}
_STARTED: dict = {}  # fixture name -> DeltaSpark started early by pytest_collection_finish


def pytest_collection_finish(session):
    """Start the delta-spark workers the selected tests use as soon as that is known, without waiting:
    each JVM (15-30 s) boots while the tests before its first user run."""
    if session.config.option.collectonly or importlib.util.find_spec("delta") is None:
        return
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # every xdist worker collects every test: start a worker lazily in the one that uses it
    from delta_spark_worker import DeltaSpark

    used = {name for item in session.items for name in getattr(item, "fixturenames", ())}
    for name, conf in DELTA_WORKERS.items():
        if name in used:
            _STARTED[name] = DeltaSpark(conf, wait=False)


def _delta_worker(name: str):
    pytest.importorskip("delta")
    from delta_spark_worker import DeltaSpark

    session = _STARTED.pop(name, None) or DeltaSpark(DELTA_WORKERS[name])
    try:
        session.version  # noqa: B018 - fails here (not in a test's body) when the worker cannot start
        yield session
    finally:
        session.close()


@pytest.fixture(scope="session")
def delta_spark():
    """A real Spark + delta-spark session in its own process, shared by the whole run
    (``delta_spark_worker.DeltaSpark``: ``.sql(statement)``, ``.read(path, format=, select=, **options)``).
    Leave it as found: drop the tables you create and RESET the settings you SET."""
    yield from _delta_worker("delta_spark")


@pytest.fixture
def ds_path(tmp_path):
    """A fresh path for a dataset (does not exist yet)."""
    return str(tmp_path / "ds")


_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001 - pytest hook signature
    _EXIT_STATUS.append(int(exitstatus))
    while _STARTED:  # started early but never used (e.g. its tests were skipped)
        _STARTED.popitem()[1].close()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):  # noqa: ARG001 - pytest hook signature
    # delta-rs sometimes aborts the interpreter at exit ("terminate called without an active
    # exception", delta-rs#2184), turning a green run into exit code 134. Leave with pytest's own
    # status instead, after everything has been reported.
    if _EXIT_STATUS and os.environ.get("DEEPLAKE_SPARK_NO_HARD_EXIT") != "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])
