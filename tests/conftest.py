"""Shared fixtures, one of each per test run: a local Spark session, a delta-spark worker process, a
SeaweedFS S3 server; and temp dataset paths."""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def delta_spark():
    """A real Spark + delta-spark session in its own process, shared by the whole run
    (``delta_spark_worker.DeltaSpark``: ``.sql(statement)``, ``.read(path, format=, select=, **options)``).
    Leave it as found: drop the tables you create and RESET the settings you SET."""
    pytest.importorskip("delta")
    from delta_spark_worker import DeltaSpark

    session = DeltaSpark()
    yield session
    session.close()


@pytest.fixture
def ds_path(tmp_path):
    """A fresh path for a dataset (does not exist yet)."""
    return str(tmp_path / "ds")


_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001 - pytest hook signature
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):  # noqa: ARG001 - pytest hook signature
    # delta-rs sometimes aborts the interpreter at exit ("terminate called without an active
    # exception", delta-rs#2184), turning a green run into exit code 134. Leave with pytest's own
    # status instead, after everything has been reported.
    if _EXIT_STATUS and os.environ.get("DEEPLAKE_SPARK_NO_HARD_EXIT") != "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])
