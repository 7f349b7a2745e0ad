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


# ------------------------------------------------------------------ issue 12: limits and typed errors
@pytest.fixture
def typed(tmp_path):
    """A dataset with one column of each kind whose bad values used to raise builtin errors."""
    ds = dls.create(str(tmp_path / "typed"), {
        "id": "int64",
        "txt": dls.tensor("text"),
        "js": dls.tensor("json"),
        "img": dls.tensor("image", compression="png"),
        "mask": dls.tensor("binary_mask"),
        "g": dls.tensor("generic"),
    })
    ds.append(_typed_rows())
    return ds


def _typed_rows(n: int = 2, **overrides):
    data = {"id": list(range(n)), "txt": ["a"] * n, "js": [{"k": 1}] * n, "img": [IMG] * n,
            "mask": [np.zeros((2, 2), bool)] * n, "g": [np.zeros(2, np.float32)] * n}
    for column, values in overrides.items():  # the given values become the last rows
        data[column] = values if isinstance(values, np.ndarray) else data[column][: n - len(values)] + list(values)
    return data


TYPED_BAD = {
    # name: (the bad value of the last of 3 rows, error, words in the message)
    "rank 33 in a generic tensor": ({"g": [np.zeros((1,) * 33, np.float32)]}, SchemaError, "above the format's limit of 32"),
    "a dimension above u32": ({"mask": [np.zeros((2**32, 0), bool)]}, SchemaError, "u32"),
    "a huge empty bool shape": ({"mask": [np.zeros((2**33, 2**20, 0), bool)]}, SchemaError, "u32"),
    "a lone surrogate in text": ({"txt": ["ok \ud800"]}, SchemaError, "not valid Unicode"),
    "a non-JSON value in a json tensor": ({"js": [{"when": object()}]}, SchemaError, "not JSON"),
    "NaN in a json tensor": ({"js": [{"x": float("nan")}]}, SchemaError, "not JSON"),
    "a (0, 0, 3) PNG": ({"img": [np.zeros((0, 0, 3), np.uint8)]}, SchemaError, "no pixels"),
}


@pytest.mark.parametrize("case", list(TYPED_BAD))
def test_values_the_format_cannot_hold_are_refused_at_append(typed, case):
    overrides, error, words = TYPED_BAD[case]
    column = next(iter(overrides))
    before = _state(typed.path)
    with pytest.raises(error) as info:
        typed.append(_typed_rows(3, **overrides))
    message = str(info.value)
    assert isinstance(info.value, DeepLakeSparkError)
    assert typed.path in message and f"tensor {column!r}" in message and "row 2" in message and words in message, message
    after = _state(typed.path)
    assert after["version"] == before["version"] and after["files"] == before["files"]
    assert len(dls.open(typed.path)) == 2


def test_every_rank_up_to_the_limit_reads_back(typed):
    """Writer and reader agree on MAX_NDIM: rank 32 commits and reads back, in every path."""
    from deeplake_spark.format.limits import MAX_NDIM

    sample = np.arange(2, dtype=np.float32).reshape((1,) * (MAX_NDIM - 1) + (2,))
    typed.append(_typed_rows(1, g=[sample]))
    typed.append(_typed_rows(2, g=np.stack([sample, sample])))  # the numpy block path
    ds = dls.open(typed.path)
    for i in (2, 3, 4):
        np.testing.assert_array_equal(ds[i]["g"], sample)


def test_rank_33_through_the_arrow_path_is_refused(tmp_path):
    """Distributed (Spark) writes convert nested Arrow lists without format.samples: same limit."""
    import pyarrow as pa

    from deeplake_spark.dataset.distributed import TaskWriter
    from deeplake_spark.dataset.schema import DatasetSchema

    value: object = [1.0]
    for _ in range(32):
        value = [value]
    schema = DatasetSchema.from_mapping({"g": dls.tensor("generic")})
    task = TaskWriter(str(tmp_path / "ds"), schema)
    with pytest.raises(SchemaError, match="rank 33 is above the format's limit of 32") as info:
        task.write({"g": pa.array([value])})
    assert "tensor 'g'" in str(info.value) and "row 0" in str(info.value)
    task.discard()
    assert not (tmp_path / "ds" / "_tensors").exists() or not any((tmp_path / "ds" / "_tensors").rglob("*.dltc"))


def test_columns_differing_only_in_case_are_refused_at_create(tmp_path):
    with pytest.raises(SchemaError) as info:
        dls.create(str(tmp_path / "ds"), {"A": "int64", "img": dls.tensor("image"), "a": "int64"})
    assert "'A'" in str(info.value) and "'a'" in str(info.value) and "case" in str(info.value)
    assert not (tmp_path / "ds").exists()


def test_duplicate_arrow_column_names_are_refused(typed):
    import pyarrow as pa

    rows = _typed_rows()
    arrays = [pa.array(rows["id"]), pa.array(rows["id"]), pa.array(rows["txt"])]
    before = _state(typed.path)
    with pytest.raises(SchemaError) as info:
        typed.append(pa.table(arrays, names=["id", "id", "txt"]))
    assert typed.path in str(info.value) and "'id'" in str(info.value) and "more than once" in str(info.value)
    assert _state(typed.path) == before


@pytest.mark.parametrize("kwargs, words", [
    ({"shape": (-1,)}, "use None"),
    ({"shape": (None, -1)}, "use None"),
    ({"shape": "(-1, 4)"}, "use None"),
    ({"shape": (1,) * 33}, "33 dimensions"),
    ({"shape": (True, 4)}, "bad dimension"),
    ({"chunk_size": 0}, "chunk_size"),
    ({"chunk_size": -5}, "chunk_size"),
    ({"chunk_size": True}, "chunk_size"),
])
def test_specs_refuse_negative_dims_and_a_zero_chunk_size(kwargs, words):
    with pytest.raises(SchemaError, match=words):
        dls.tensor("generic", **kwargs)
    assert dls.tensor("generic", shape=(None, 4)).shape == (None, 4)  # None is the way to say "varies"
    assert dls.tensor("generic", shape="(?, 4)").shape == (None, 4)


@pytest.mark.parametrize("call", [
    lambda ds: ds.delete("id = 1 garbage"),
    lambda ds: ds.delete("id >= 2; this is not sql"),
    lambda ds: ds.delete("id = 1) OR (1 = 1"),
    lambda ds: ds.delete("id = 1 LIMIT 5"),
    lambda ds: ds.delete("no_such_column = 1"),
    lambda ds: ds.delete(""),
    lambda ds: ds.update({"id": "id + 1 garbage"}),
    lambda ds: ds.update({"id": "id + 1"}, predicate="id = 0 garbage"),
    lambda ds: ds.update(new_values={"id": 5}, predicate="id >= 0; drop table t"),
], ids=["trailing word", "semicolon", "unbalanced parens", "limit", "unknown column", "empty", "update expression",
        "update predicate", "update new_values predicate"])
def test_sql_that_does_not_parse_whole_commits_nothing(typed, call):
    before = _state(typed.path)
    with pytest.raises(SchemaError) as info:
        call(typed)
    message = str(info.value)
    assert typed.path in message and "nothing was changed" in message, message
    assert ("predicate" in message or "expression" in message) and ("delete" in message or "update" in message)
    assert _state(typed.path) == before
    assert list(dls.open(typed.path).table(columns=["id"]).column("id").to_pylist()) == [0, 1]


def test_valid_sql_still_works(typed):
    typed.update({"id": "id + 10"}, predicate="id >= 1 -- a trailing comment is fine")
    typed.delete("id = 0")
    assert dls.open(typed.path).table(columns=["id"]).column("id").to_pylist() == [11]


def test_restore_of_the_latest_version_is_a_no_op(typed):
    latest = typed.version
    assert typed.restore(latest) == latest
    assert dls.open(typed.path).version == latest and len(typed.history()) == latest + 1
    assert typed.restore(0) == latest + 1 and len(dls.open(typed.path)) == 0


def test_opening_a_vacuumed_version_names_it(typed):
    typed.overwrite(_typed_rows(1))
    typed.vacuum(0, enforce_retention_duration=False)
    with pytest.raises(VersionNotFound) as info:
        dls.open(typed.path, version=1)
    assert typed.path in str(info.value) and "version 1" in str(info.value) and "vacuumed" in str(info.value)
    assert len(dls.open(typed.path, version=2)) == 1


def _mount_tmpfs(folder, size: str = "16m") -> bool:
    import subprocess

    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    return done.returncode == 0


def test_delete_on_a_read_only_filesystem_is_a_storage_error(tmp_path):
    import subprocess

    from deeplake_spark.errors import StorageError

    mount = tmp_path / "mnt"
    if os.geteuid() != 0 or not _mount_tmpfs(mount):
        pytest.skip("needs root to mount a tmpfs")
    try:
        ds = dls.create(str(mount / "ds"), {"id": "int64", "g": dls.tensor("generic")})
        ds.append({"id": [1, 2], "g": [np.zeros(2, np.float32)] * 2})
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        for call in (lambda: ds.delete("id = 1"), lambda: ds.delete(), lambda: ds.update({"id": "id + 1"})):
            with pytest.raises(StorageError) as info:
                call()
            assert ds.path in str(info.value) and "Read-only file system" in str(info.value)
        assert len(dls.open(ds.path)) == 2
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


_FAILING_APPEND = """
import os, resource, signal, sys
import numpy as np
import deeplake_spark as dls
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-big write fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
ds = dls.open(sys.argv[1])
try:
    # small chunks (written) but a Parquet file of incompressible text above the limit (fails)
    ds.append({"id": list(range(20)), "blob": [os.urandom(20_000).hex() for _ in range(20)],
               "g": [np.arange(2, dtype=np.float32)] * 20})
except Exception as e:
    print("ERROR", type(e).__name__, e)
else:
    print("APPENDED")
"""


def test_a_failed_commit_removes_the_chunks_it_wrote(tmp_path):
    """The commit step fails (the Parquet file hits RLIMIT_FSIZE in a child process) after the
    chunks were written: the log shows no commit of this append, so its chunks are deleted."""
    import subprocess
    import sys

    ds = dls.create(str(tmp_path / "ds"), {"id": "int64", "blob": "string", "g": dls.tensor("generic")})
    ds.append({"id": [0], "blob": ["x"], "g": [np.zeros(2, np.float32)]})
    chunks_before = sorted(os.listdir(os.path.join(ds.path, "_tensors", "g")))
    done = subprocess.run([sys.executable, "-c", _FAILING_APPEND, ds.path], capture_output=True, text=True,
                          timeout=300)
    assert done.stdout.startswith("ERROR StorageError") and ds.path in done.stdout, done.stdout + done.stderr
    assert dls.open(ds.path).version == 1 and len(dls.open(ds.path)) == 1
    assert sorted(os.listdir(os.path.join(ds.path, "_tensors", "g"))) == chunks_before  # no orphan chunk
    ds.append({"id": [1], "blob": ["y"], "g": [np.ones(2, np.float32)]})
    np.testing.assert_array_equal(dls.open(ds.path)[1]["g"], np.ones(2, np.float32))
