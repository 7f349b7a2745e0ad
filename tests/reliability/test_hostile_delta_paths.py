"""Delta add actions naming files outside the table: the Python API, ``format("deeplake")`` and
``format("deeplake-jvm")`` refuse the same table alike, with one typed error naming the action.

The table is written by our writer; then a foreign (here: hand-written) commit adds a real Parquet
file outside the table, with the table's schema and refs to the table's own chunks, so a reader
that followed the path would return its rows as if they were the dataset's.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import time

import numpy as np
import pytest

import deeplake_spark as dls
from deeplake_spark.errors import UnsafePathError

ROWS = 3


def spark_errors() -> tuple[type[BaseException], ...]:
    """What a failed Spark job raises in the driver (the executor's error is in its message)."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    return Py4JJavaError, PySparkException


def hostile_paths(root: str) -> dict[str, str]:
    outside = os.path.join(root, "outside", "x.parquet")
    return {
        "relative": "../outside/x.parquet",
        "encoded": "%2E%2E/outside/x.parquet",
        "file-uri": "file://" + outside,
        "absolute": outside,
    }


def write_dataset(path: str) -> None:
    ds = dls.create(path, {"id": "int64", "v": dls.tensor(dtype="uint8", shape=(4,))})
    ds.append({"id": np.arange(ROWS), "v": np.arange(ROWS * 4, dtype=np.uint8).reshape(ROWS, 4)})


def add_foreign_file(path: str, add_path: str) -> None:
    """Commit version 2 by hand: one add action for ``add_path`` (what a foreign writer may do)."""
    part = glob.glob(os.path.join(path, "*.parquet"))[0]
    outside = os.path.join(os.path.dirname(path), "outside", "x.parquet")
    os.makedirs(os.path.dirname(outside), exist_ok=True)
    shutil.copy(part, outside)
    now = int(time.time() * 1000)
    actions = [
        {"commitInfo": {"timestamp": now, "operation": "WRITE", "operationParameters": {"mode": "Append"}}},
        {"add": {"path": add_path, "partitionValues": {}, "size": os.path.getsize(outside), "modificationTime": now,
                 "dataChange": True, "stats": json.dumps({"numRecords": ROWS})}},
    ]
    with open(os.path.join(path, "_delta_log", f"{2:020d}.json"), "w") as f:
        f.write("\n".join(json.dumps(a) for a in actions) + "\n")


@pytest.fixture(params=["relative", "encoded", "file-uri", "absolute"])
def hostile(request, tmp_path):
    """(dataset path, the add action's path) of a table whose version 2 adds a file outside it."""
    root = str(tmp_path / "parent")
    path = os.path.join(root, "ds")
    write_dataset(path)
    add_path = hostile_paths(root)[request.param]
    add_foreign_file(path, add_path)
    return path, add_path


def assert_names_action(message: str, add_path: str) -> None:
    assert "add action" in message and add_path in message, message


def test_python_api_refuses_an_add_action_outside_the_table(hostile):
    path, add_path = hostile
    for read in (len, lambda ds: ds[0], lambda ds: ds.table(), lambda ds: ds[:]):
        with pytest.raises(UnsafePathError) as error:
            read(dls.open(path))
        assert_names_action(str(error.value), add_path)
    # the version before the foreign commit is untouched and still reads
    old = dls.open(path, version=1)
    assert len(old) == ROWS and old[ROWS - 1]["v"].tolist() == list(range(8, 12))


def test_spark_python_source_refuses_an_add_action_outside_the_table(spark, hostile):
    path, add_path = hostile
    for mode in ("ref", "bytes"):
        with pytest.raises(spark_errors()) as error:
            spark.read.format("deeplake").option("tensors", mode).load(path).collect()
        assert "UnsafePathError" in str(error.value)
        assert_names_action(str(error.value), add_path)


def test_jvm_source_refuses_an_add_action_outside_the_table(spark, hostile):
    from deeplake_spark.spark import jvm

    if shutil.which("mvn") is None and not jvm.jar_file().exists():
        pytest.skip("no mvn to build the deeplake-jvm jar and no prebuilt jar")
    path, add_path = hostile
    with pytest.raises(spark_errors()) as error:
        spark.read.format("deeplake-jvm").load(path).collect()
    message = str(error.value)
    assert "UnsafePathException" in message and "outside the table" in message
    assert_names_action(message, add_path)


def test_the_three_readers_agree_on_the_table_before_the_foreign_commit(spark, tmp_path):
    """The control: the same table without the hostile commit reads the same rows everywhere."""
    from deeplake_spark.spark import jvm

    path = str(tmp_path / "ds")
    write_dataset(path)
    expected = [[4 * i + j for j in range(4)] for i in range(ROWS)]
    ds = dls.open(path)
    assert [ds[i]["v"].tolist() for i in range(len(ds))] == expected
    sources = ["deeplake"] + (["deeplake-jvm"] if shutil.which("mvn") or jvm.jar_file().exists() else [])
    for source in sources:
        rows = spark.read.format(source).option("tensors", "array").load(path).orderBy("id").collect()
        assert [list(r["v"]) for r in rows] == expected, source
