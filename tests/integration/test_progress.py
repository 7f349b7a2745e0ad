"""Progress bars on long Python-API work (ingest, vacuum): shown when asked, silent when asked."""

from __future__ import annotations

import numpy as np

import deeplake_spark as dls


def _ds(path):
    ds = dls.create(path, {"x": dls.tensor("generic", dtype="int32", shape=(2,)), "id": "int64"})
    return ds


def test_append_and_vacuum_report_progress_when_asked(ds_path, capsys):
    ds = _ds(ds_path)
    ds.append({"x": np.zeros((50, 2), np.int32), "id": np.arange(50)}, progress=True)
    ds.overwrite({"x": np.ones((5, 2), np.int32), "id": np.arange(5)}, progress=True)
    ds.vacuum(0, enforce_retention_duration=False, progress=True)
    err = capsys.readouterr().err
    assert "append ds" in err and "/50 " in err and "overwrite ds" in err
    assert "vacuum: scanning refs" in err and "vacuum: deleting chunks" in err


def test_progress_false_is_silent(ds_path, capsys):
    ds = _ds(ds_path)
    ds.append({"x": np.zeros((50, 2), np.int32), "id": np.arange(50)}, progress=False)
    ds.vacuum(0, enforce_retention_duration=False, progress=False)
    assert capsys.readouterr().err == ""
    assert len(ds) == 50
