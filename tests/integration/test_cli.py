"""The ``deeplake-spark`` command: as an installed console script (subprocess) and in-process ``main``."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import deeplake_spark as dls
from deeplake_spark.cli import main

SCRIPT = os.path.join(os.path.dirname(sys.executable), "deeplake-spark")
COLOURS = {"cat": (200, 40, 40), "dog": (40, 40, 200), "eel": (40, 160, 40)}


def files_under(root: str) -> set[str]:
    return {p.relative_to(root).as_posix() for p in Path(root).rglob("*") if p.is_file()}


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, *args], check=False, capture_output=True, text=True, timeout=120)


@pytest.fixture
def image_folder(tmp_path):
    """folder/<class>/<n>.jpg|png: 2 cats, 2 dogs, 1 eel (as PNG), plus files that are not images."""
    root = tmp_path / "images"
    counts = {"cat": 2, "dog": 2, "eel": 1}
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            suffix = "png" if name == "eel" else "jpg"
            Image.fromarray(np.full((24, 32, 3), COLOURS[name], np.uint8)).save(root / name / f"{i}.{suffix}")
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "README").write_text("top-level file, not a class")
    return root


@pytest.fixture
def imported(image_folder, tmp_path):
    path = str(tmp_path / "pets")
    assert main(["import-folder", str(image_folder), path, "--engine", "python", "--quiet"]) == 0
    return path


def test_script_version_and_help():
    out = run_script("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"deeplake-spark {dls.__version__}"
    out = run_script("--help")
    assert out.returncode == 0
    sub = run_script("vacuum", "--help")
    assert sub.returncode == 0 and sub.stdout.startswith("usage: deeplake-spark vacuum")
    assert "--retention-hours" in sub.stdout and "--dry-run" in sub.stdout


@pytest.mark.parametrize("command", ["info", "history", "show", "vacuum", "restore", "import-folder"])
def test_help_everywhere(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: deeplake-spark {command}") and "--quiet" in out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert command in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    [], ["frobnicate"], ["info"], ["show", "somewhere"], ["info", "x", "--version", "latest"],
    ["vacuum", "x"], ["restore", "x"], ["show", "x", "--out", "g.png", "--bbox-format", "yolo"],
])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage: deeplake-spark" in capsys.readouterr().err


def test_script_library_error_exits_1_with_one_line(tmp_path):
    missing = str(tmp_path / "nothing-here")
    out = run_script("info", missing)
    assert out.returncode == 1 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("deeplake-spark info: error: DatasetNotFoundError:") and missing in lines[0]
    out = run_script("frobnicate")
    assert out.returncode == 2


def test_script_import_folder_then_info(image_folder, tmp_path):
    path = str(tmp_path / "pets")
    out = run_script("import-folder", str(image_folder), path, "--engine", "python")
    assert out.returncode == 0, out.stderr
    assert f"imported 5 images in 3 classes ['cat', 'dog', 'eel'] into {path}" in out.stdout
    assert "5/5" in out.stderr  # the progress bar
    out = run_script("info", path, "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["rows"] == 5 and info["version"] == 1 and info["versions"] == [0, 1]
    assert [c["name"] for c in info["columns"]] == ["image", "label", "label_name", "filename"]
    assert info["columns"][0]["htype"] == "image" and info["columns"][0]["chunk_files"] >= 1
    on_disk = sum(f.stat().st_size for f in (tmp_path / "pets").rglob("*") if f.is_file())
    assert info["size_bytes"] == on_disk


def test_import_folder_stores_the_original_bytes_and_labels(image_folder, imported):
    ds = dls.open(imported)
    rows = ds.table(columns=["label", "label_name", "filename"]).to_pylist()
    assert [r["filename"] for r in rows] == ["cat/0.jpg", "cat/1.jpg", "dog/0.jpg", "dog/1.jpg", "eel/0.png"]
    assert [(r["label"], r["label_name"]) for r in rows] == [(0, "cat"), (0, "cat"), (1, "dog"), (1, "dog"),
                                                             (2, "eel")]
    assert ds.tensors["label"].htype == "class_label" and ds.tensors["label"].class_name(2) == "eel"
    raw = ds.read_tensor("image", ds.table(columns=["image"]).column("image").to_pylist(), raw=True)
    for row, data in zip(rows, raw):
        assert data == (image_folder / row["filename"]).read_bytes()
    assert tuple(ds[4]["image"][0, 0]) == COLOURS["eel"]  # PNG kept lossless


def test_import_folder_errors(tmp_path, capsys):
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    assert main(["import-folder", str(tmp_path / "empty"), str(tmp_path / "ds")]) == 1
    assert "has no class sub-folders holding" in capsys.readouterr().err
    assert main(["import-folder", str(tmp_path / "nope"), str(tmp_path / "ds")]) == 1
    assert "is not a folder" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()
    (tmp_path / "imgs" / "a").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "imgs" / "a" / "x.png")
    dls.create(str(tmp_path / "taken"), {"x": "int64"})
    assert main(["import-folder", str(tmp_path / "imgs"), str(tmp_path / "taken"), "--engine", "python"]) == 1
    assert "DatasetExistsError" in capsys.readouterr().err


def test_import_folder_quiet_prints_nothing(image_folder, tmp_path, capsys):
    assert main(["-q", "import-folder", str(image_folder), str(tmp_path / "q"), "--engine", "python"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert len(dls.open(str(tmp_path / "q"))) == 5


def test_info_text_and_past_version(imported, capsys):
    assert main(["info", imported]) == 0
    out = capsys.readouterr().out
    assert f"dataset   {imported}" in out and "rows      5" in out and "versions  0..1 (2 commits" in out
    assert "image       tensor image uint8 ragged jpeg" in out and "label_name  string" in out
    assert main(["info", imported, "--version", "0"]) == 0
    out = capsys.readouterr().out
    assert "version   0 (latest is 1)" in out and "rows      0" in out
    assert main(["info", imported, "--version", "7"]) == 1
    err = capsys.readouterr().err
    assert "VersionNotFound" in err and len(err.strip().splitlines()) == 1


def test_history_lists_every_commit(imported, capsys):
    ds = dls.open(imported)
    ds.delete("label = 2")
    assert main(["history", imported]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["VERSION", "TIMESTAMP", "(UTC)", "OPERATION", "DETAILS"]
    assert [int(line.split()[0]) for line in lines[1:]] == [2, 1, 0]
    assert "DELETE" in lines[1] and "append" in lines[2] and "added rows: 5" in lines[2]
    assert main(["history", imported, "--limit", "1", "--json"]) == 0
    commits = json.loads(capsys.readouterr().out)
    assert [c["version"] for c in commits] == [2]


def test_show_writes_a_png_grid(imported, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["show", imported, "--out", str(out), "-n", "3", "--columns", "image,label", "--tile-size", "48"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    with Image.open(out) as img:
        pixels = np.asarray(img.convert("RGB")).reshape(-1, 3).astype(int)
    near = lambda colour: (np.abs(pixels - colour).max(axis=1) < 12).sum()
    # 3 samples shown: 2 cats and 1 dog, each 48x36 after scaling; the eel (4th) is not shown
    assert near(COLOURS["cat"]) >= 2 * 48 * 30 and near(COLOURS["dog"]) >= 48 * 30 and near(COLOURS["eel"]) == 0
    assert main(["show", imported, "--out", str(out), "--columns", "nope"]) == 1
    assert "unknown column(s) ['nope']" in capsys.readouterr().err


def test_vacuum_prints_exactly_the_files_it_deletes(imported, capsys):
    ds = dls.open(imported)
    ds.overwrite({"image": [], "label": [], "label_name": [], "filename": []})
    before = files_under(imported)
    assert main(["vacuum", imported, "--retention-hours", "0"]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["vacuum", imported, "--retention-hours", "0", "--force", "--dry-run"]) == 0
    captured = capsys.readouterr()
    would = captured.out.split()
    assert would and any(p.startswith("_tensors/image/") for p in would) and any(p.endswith(".parquet") for p in would)
    assert set(would) <= before and "would delete" in captured.err
    assert main(["vacuum", imported, "--retention-hours", "0", "--force"]) == 0
    deleted = capsys.readouterr().out.split()
    assert deleted == would
    # vacuum itself commits VACUUM START/END entries to the Delta log; nothing else appears
    assert {p for p in files_under(imported) if not p.startswith("_delta_log/")} == {
        p for p in before - set(deleted) if not p.startswith("_delta_log/")}
    assert len(dls.open(imported)) == 0


def test_restore_makes_an_old_version_latest(imported, capsys):
    ds = dls.open(imported)
    ds.delete("label_name = 'cat'")
    assert len(dls.open(imported)) == 3
    assert main(["restore", imported, "1"]) == 0
    assert f"restored {imported} to 1: new version 3 (was 2)" in capsys.readouterr().out
    restored = dls.open(imported)
    assert restored.version == 3 and len(restored) == 5
    assert main(["restore", imported, "42"]) == 1
    assert "VersionNotFound" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("deeplake_spark.spark.writer") is None,
                    reason="the deeplake Spark writer is not in this build")
def test_import_folder_with_spark_matches_the_python_engine(spark, image_folder, imported, tmp_path, capsys):
    path = str(tmp_path / "pets-spark")
    folder = tmp_path / "my images"  # a space in the path: Spark's file URIs must still map back
    shutil.copytree(image_folder, folder)
    (folder / ".cache").mkdir()
    shutil.copy(image_folder / "cat" / "0.jpg", folder / ".cache" / "0.jpg")  # hidden: not a class
    assert main(["import-folder", str(folder), path, "--engine", "spark"]) == 0
    captured = capsys.readouterr()
    assert "imported 5 images in 3 classes ['cat', 'dog', 'eel']" in captured.out and "engine spark" in captured.out
    assert "warning" not in captured.err
    assert spark.range(1).count() == 1  # the test's session was reused, not stopped
    by_spark, by_python = dls.open(path), dls.open(imported)
    columns = ["label", "label_name", "filename"]
    assert sorted(by_spark.table(columns=columns).to_pylist(), key=lambda r: r["filename"]) == \
        by_python.table(columns=columns).to_pylist()
    for ds in (by_spark, by_python):  # label: a class_label stored inline, named after the folders
        assert ds.schema.inline == {"label"} and ds.tensors["label"].class_names == ("cat", "dog", "eel")
    spark_rows = by_spark.table(columns=["image", "filename"]).to_pylist()
    raw = by_spark.read_tensor("image", [r["image"] for r in spark_rows], raw=True)
    for row, data in zip(spark_rows, raw):
        assert data == (image_folder / row["filename"]).read_bytes()
    assert main(["import-folder", str(image_folder), path, "--engine", "spark", "-q"]) == 1
    assert "DatasetExistsError" in capsys.readouterr().err
