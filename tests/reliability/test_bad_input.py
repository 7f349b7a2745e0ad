"""Bad input through the Python API: a clear typed error, and nothing committed or left behind.

What is allowed (documented in README "Reliability"): NaN/inf in float tensors and float columns;
``None`` for a whole tensor cell (stored as a null ref, reads back as ``None``) and in tabular
columns (all nullable). Refused: NaN/inf/non-integral floats in int/bool/class_label tensors and in
int columns, ``None`` inside a sample, strings in numeric tensors, wrong rank/shape, undecodable
image bytes, unknown/missing columns, columns of different lengths.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import deeplake_spark as dls
from deeplake_spark.errors import (
    DatasetExistsError,
    DatasetNotFoundError,
    DecodeError,
    DeepLakeSparkError,
    ReadOnlyError,
    SchemaError,
    VersionNotFound,
)

IMG = np.full((4, 5, 3), 7, dtype=np.uint8)
ROWS = 3


@pytest.fixture
def ds(tmp_path):
    ds = dls.create(str(tmp_path / "ds"), {
        "img": dls.tensor("image", compression="png", chunk_size=1),
        "vec": dls.tensor("generic", dtype="float32", shape=(3,), chunk_size=12),
        "label": dls.tensor("class_label", chunk_size=4),
        "txt": dls.tensor("text", chunk_size=1),
        "name": "string",
        "score": "float64",
        "n": "int64",
    })
    ds.append(_good())
    return ds


def _good(**overrides):
    data = {
        "img": [IMG] * ROWS,
        "vec": [np.ones(3, np.float32)] * ROWS,
        "label": list(range(ROWS)),
        "txt": ["a"] * ROWS,
        "name": ["x"] * ROWS,
        "score": [1.0] * ROWS,
        "n": list(range(ROWS)),
    }
    data.update(overrides)
    return data


def _state(path: str) -> dict:
    """Version, every file, and the modification time of each tensor folder."""
    files = {os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs}
    folders = {name: os.stat(os.path.join(path, "_tensors", name)).st_mtime_ns
               for name in os.listdir(os.path.join(path, "_tensors"))}
    return {"version": dls.open(path).version, "files": files, "folders": folders}


def _without(column):
    data = _good()
    del data[column]
    return data


BAD = {
    # name: (data, error, words in the message)
    "wrong rank": (_good(vec=[np.ones((3, 1))] * ROWS), SchemaError, "rank"),
    "wrong shape in the last row": (_good(vec=[np.ones(3), np.ones(3), np.ones(4)]), SchemaError, "row 2"),
    "wrong rank, numpy block": (_good(vec=np.ones((ROWS, 3, 1))), SchemaError, "rank"),
    "strings in a numeric tensor": (_good(vec=[["a", "b", "c"]] * ROWS), SchemaError, "'vec'"),
    "string in a class_label tensor": (_good(label=[0, "cat", 1]), SchemaError, "row 1"),
    "NaN in a class_label tensor": (_good(label=[0, float("nan"), 1]), SchemaError, "non-finite"),
    "inf in a class_label tensor": (_good(label=[0, 1, float("inf")]), SchemaError, "row 2"),
    "non-integral class label": (_good(label=[0, 1.5, 1]), SchemaError, "non-integral"),
    "class label out of int32 range": (_good(label=[0, 2**40, 1]), SchemaError, "range"),
    "null inside a sample": (_good(vec=[[1.0, None, 3.0]] * ROWS), SchemaError, "'vec'"),
    "number in a text tensor": (_good(txt=["a", 5, "b"]), SchemaError, "row 1"),
    "undecodable image bytes": (_good(img=[IMG, IMG, b"\x89PNG\r\n\x1a\n broken"]), DecodeError, "row 2"),
    "bytes that are no image": (_good(img=[b"hello", IMG, IMG]), DecodeError, "not a JPEG or PNG"),
    "image of the wrong dtype": (_good(img=[IMG, np.full((4, 5, 3), 0.5), IMG]), SchemaError, "'img'"),
    "int in a string column": (_good(name=["x", 1, "y"]), SchemaError, "'name'"),
    "string in a float column": (_good(score=["high", 1.0, 2.0]), SchemaError, "'score'"),
    "non-integral float in an int column": (_good(n=[0, 1.5, 2]), SchemaError, "'n'"),
    "columns of different lengths": (_good(n=[1, 2]), SchemaError, "different lengths"),
    "unknown column": (_good(extra=[1, 2, 3]), SchemaError, "unknown column"),
    "missing column": (_without("n"), SchemaError, "missing column"),
    "list of non-dicts": ([1, 2, 3], SchemaError, "one dict per row"),
    "a string": ("rows", SchemaError, "cannot append str"),
    "row missing a column": ([{"img": IMG}], SchemaError, "missing column"),
    "None for a whole column": (_good(vec=None), SchemaError, "'vec'"),
    "None for a row": ([None], SchemaError, "one dict per row"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_append_raises_a_typed_error_and_commits_nothing(ds, case):
    data, error, words = BAD[case]
    before = _state(ds.path)
    with pytest.raises(error) as info:
        ds.append(data)
    assert isinstance(info.value, DeepLakeSparkError)
    assert ds.path in str(info.value) and words in str(info.value), str(info.value)
    after = _state(ds.path)
    assert after["version"] == before["version"] and ds.version == before["version"]
    assert after["files"] == before["files"]  # no commit, no Parquet file, no chunk left behind
    assert len(dls.open(ds.path)) == ROWS
    assert np.array_equal(dls.open(ds.path)[ROWS - 1]["img"], IMG)
    ds.append(_good())  # the dataset still takes a good append
    assert len(dls.open(ds.path)) == 2 * ROWS


@pytest.mark.parametrize("case", ["number in a text tensor", "string in a float column",
                                  "wrong shape in the last row", "undecodable image bytes"])
def test_chunks_written_before_a_late_failure_are_deleted(ds, case):
    """The failure comes after earlier columns (or rows) were already written as chunk files."""
    data, error, _ = BAD[case]
    before = _state(ds.path)
    with pytest.raises(error):
        ds.append(data)
    after = _state(ds.path)
    touched = [name for name in before["folders"] if after["folders"][name] != before["folders"][name]]
    assert touched, "expected the failed append to have written (and removed) chunk files"
    assert after["files"] == before["files"]


def test_allowed_values_nan_inf_and_nulls(ds):
    version = ds.append(_good(
        vec=[np.array([np.nan, np.inf, -np.inf], np.float32), None, np.zeros(3, np.float32)],
        img=[None, IMG, IMG],
        label=[None, 1, 2],
        name=[None, "y", "z"], score=[float("nan"), None, 2.0], n=[None, 1, 2],
        txt=["", None, "é"],
    ))
    rows = dls.open(ds.path, version=version)[ROWS:]
    assert np.isnan(rows["vec"][0][0]) and rows["vec"][0][1] == np.inf and rows["vec"][1] is None
    assert rows["img"][0] is None and rows["label"][0] is None and rows["txt"][1] is None
    assert list(rows["txt"][::2]) == ["", "é"]
    # integral floats are accepted into integer tensors (values, not dtypes, are checked)
    ds.append(_good(label=np.array([0.0, 1.0, 2.0])))


def test_paths_and_versions_that_do_not_exist(tmp_path, ds):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("not a dataset")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "data.parquet").write_bytes(b"PAR1")
    for path in (tmp_path / "missing", tmp_path / "empty", tmp_path / "file.txt", tmp_path / "other"):
        with pytest.raises(DatasetNotFoundError, match="no deeplake dataset"):
            dls.open(str(path))
    latest = ds.version
    for version in (latest + 1, 99, -1, "1", 1.0):
        with pytest.raises(VersionNotFound, match=f"versions 0..{latest}"):
            dls.open(ds.path, version=version)
    with pytest.raises(VersionNotFound, match="first commit"):
        dls.open(ds.path, timestamp="2001-01-01T00:00:00Z")
    with pytest.raises(VersionNotFound, match="ISO 8601"):
        dls.open(ds.path, timestamp="yesterday")
    with pytest.raises(VersionNotFound):
        ds.restore(99)
    with pytest.raises(DatasetExistsError):
        dls.create(ds.path, {"a": "int64"})
    with pytest.raises(ReadOnlyError, match="read-only at version 0"):
        dls.open(ds.path, version=0).append(_good())
    with pytest.raises(SchemaError, match="unknown column"):
        ds.table(columns=["nope"])
    with pytest.raises(SchemaError, match="not a tensor column"):
        ds.read_tensor("name", [])
    with pytest.raises(IndexError, match="out of range"):
        ds[ROWS]
    assert dls.open(ds.path).version == latest
