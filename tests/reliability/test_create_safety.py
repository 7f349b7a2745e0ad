"""A dataset is only ever created in a missing or empty folder, never over someone else's files.

``create()`` used to accept a project folder (README.md, src/, raw images) and a later vacuum
deleted those files; ``deeplake-spark import-folder pets pets`` put the dataset inside its own
source. Each case checks the typed error, that its message names the path and what is there, and
that every file is still on disk and no Delta log was started.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from PIL import Image

import deeplake_spark as dls
from deeplake_spark.cli import import_folder, main
from deeplake_spark.dataset.distributed import TaskWriter, commit_written
from deeplake_spark.dataset.schema import DatasetSchema
from deeplake_spark.errors import DatasetExistsError, InvalidOptionError

SCHEMA = {"image": dls.tensor("image", compression="png"), "label": "int64"}


def _files(root) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


def _project(root) -> set[str]:
    (root / "src").mkdir(parents=True)
    (root / "raw_images").mkdir()
    (root / "README.md").write_text("# my project\n")
    (root / "src" / "train.py").write_text("print('train')\n")
    (root / "raw_images" / "cat.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    return _files(root)


def test_create_refuses_a_folder_that_holds_files(tmp_path):
    project = tmp_path / "project"
    before = _project(project)
    with pytest.raises(DatasetExistsError) as info:
        dls.create(str(project), SCHEMA)
    message = str(info.value)
    assert str(project) in message and "README.md" in message and "raw_images/" in message, message
    assert "empty or new folder" in message
    assert _files(project) == before  # nothing deleted, nothing added
    assert not (project / "_delta_log").exists() and not (project / "_tensors").exists()


def test_create_refuses_a_single_hidden_file_or_empty_sub_folder(tmp_path):
    for name, make in ((".env", lambda p: p.write_text("SECRET=1")), ("cache", lambda p: p.mkdir())):
        folder = tmp_path / name.strip(".")
        folder.mkdir()
        make(folder / name)
        with pytest.raises(DatasetExistsError, match=name):
            dls.create(str(folder), SCHEMA)
        assert os.listdir(folder) == [name]


def test_create_refuses_a_file_and_an_existing_dataset(tmp_path):
    file_path = tmp_path / "notes.txt"
    file_path.write_text("keep me")
    with pytest.raises(DatasetExistsError, match="is a file"):
        dls.create(str(file_path), SCHEMA)
    assert file_path.read_text() == "keep me"
    ds = dls.create(str(tmp_path / "ds"), SCHEMA)
    with pytest.raises(DatasetExistsError, match="already holds a Delta table"):
        dls.create(ds.path, {"other": "string"})
    assert dls.open(ds.path).schema.order == ("image", "label")


def test_create_accepts_a_missing_path_and_an_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    for path in (tmp_path / "empty", tmp_path / "new" / "nested"):
        ds = dls.create(str(path), SCHEMA)
        ds.append({"image": [np.zeros((2, 3, 3), np.uint8)], "label": [1]})
        assert len(dls.open(str(path))) == 1


def test_a_first_distributed_write_refuses_a_non_empty_folder(tmp_path):
    """The commit that creates the table (Spark's first write) checks the folder too: only the
    job's own Parquet files and chunks may be there."""
    target = tmp_path / "project"
    before = _project(target)
    schema = DatasetSchema.from_mapping(SCHEMA)
    from deeplake_spark.dataset.create_target import check_create_target

    with pytest.raises(DatasetExistsError, match="README.md"):
        check_create_target(str(target))  # what the Spark writer calls on the driver before any task
    task = TaskWriter(str(target), schema, task_id=0)
    task.write({"image": [np.zeros((2, 2, 3), np.uint8)], "label": pa.array([1])})
    written = task.finish()
    with pytest.raises(DatasetExistsError) as info:
        commit_written(str(target), schema, [written])
    assert str(target) in str(info.value) and "README.md" in str(info.value)
    assert not (target / "_delta_log").exists()
    assert before <= _files(target)

    fresh = tmp_path / "fresh"
    leftover = TaskWriter(str(fresh), schema, task_id=1)  # a killed attempt's file: not the user's
    leftover.write({"image": [np.zeros((2, 2, 3), np.uint8)], "label": pa.array([9])})
    leftover.finish()
    task = TaskWriter(str(fresh), schema, task_id=0)
    task.write({"image": [np.zeros((2, 2, 3), np.uint8)], "label": pa.array([1])})
    assert commit_written(str(fresh), schema, [task.finish()]) == 0
    assert dls.open(str(fresh))[0]["label"] == 1 and len(dls.open(str(fresh))) == 1


def test_a_first_spark_write_into_a_non_empty_folder_is_refused_before_any_task(spark, tmp_path):
    """``df.write.format("deeplake")`` and ``dls.write`` create the dataset on their first write:
    into a project folder they fail on the driver, and no task writes a Parquet or chunk file there."""
    target = tmp_path / "project"
    before = _project(target)
    df = spark.createDataFrame([(1, [1.0, 2.0]), (2, [3.0, 4.0])], "label long, emb array<float>")
    for write in (lambda: df.write.format("deeplake").mode("append").save(str(target)),
                  lambda: dls.write(df, str(target), mode="errorifexists")):
        with pytest.raises(Exception, match="DatasetExistsError") as info:
            write()
        assert "README.md" in str(info.value)
        assert _files(target) == before


def test_the_jvm_writer_refuses_a_non_empty_folder_in_every_save_mode(spark, tmp_path):
    """``format("deeplake-jvm")`` makes the same check on the driver: a project folder is never turned
    into a dataset (no mode, append, overwrite, ignore, saveAsTable), and nothing is written into it."""
    target = tmp_path / "project"
    before = _project(target)
    df = spark.createDataFrame([(1, [1.0, 2.0]), (2, [3.0, 4.0])], "label long, emb array<float>")
    writer = df.write.format("deeplake-jvm")
    for mode in ("errorifexists", "append", "overwrite", "ignore"):
        with pytest.raises(Exception, match="is not empty") as info:
            writer.mode(mode).save(str(target))
        assert "is not a dataset" in str(info.value), mode
        assert _files(target) == before, mode
    with pytest.raises(Exception, match="is not empty"):
        writer.option("path", str(target)).saveAsTable("jvm_into_a_project")
    assert _files(target) == before
    spark.sql("DROP TABLE IF EXISTS jvm_into_a_project")


def test_create_refuses_a_non_empty_s3_prefix(s3_server):
    uri, options = s3_server.uri(), s3_server.storage_options
    fs = s3_server.filesystem()
    key = uri[len("s3://"):]
    with fs.open_output_stream(f"{key}/README.md") as f:
        f.write(b"# project")
    with pytest.raises(DatasetExistsError) as info:
        dls.create(uri, SCHEMA, storage_options=options)
    assert uri in str(info.value) and "README.md" in str(info.value)
    assert [i.base_name for i in fs.get_file_info(pafs.FileSelector(key))] == ["README.md"]
    empty_prefix = s3_server.uri()
    assert len(dls.create(empty_prefix, SCHEMA, storage_options=options)) == 0


# ------------------------------------------------------------------------------ import-folder
@pytest.fixture
def pets(tmp_path):
    root = tmp_path / "pets"
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        Image.fromarray(np.full((4, 5, 3), 7, np.uint8)).save(root / label / "a.png")
    (tmp_path / "link").symlink_to(root)
    return root


@pytest.mark.parametrize("target", ["pets", "pets/../pets/x", "pets/cat", "link/ds", "link"])
def test_import_folder_refuses_a_target_inside_its_source(pets, target, capsys, monkeypatch):
    monkeypatch.chdir(pets.parent)
    before = _files(pets)
    assert main(["import-folder", "pets", target, "--engine", "python", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "inside the image folder" in err and target in err, err
    assert _files(pets) == before  # nothing written into the source
    assert not os.path.exists(pets / "_delta_log") and not os.path.exists(pets / "x")
    with pytest.raises(InvalidOptionError, match="inside the image folder"):  # the Python API too
        import_folder("pets", target, engine="python", quiet=True)


def test_import_folder_refuses_a_non_empty_target_and_accepts_a_sibling(pets, capsys):
    project = pets.parent / "project"
    project.mkdir()
    (project / "README.md").write_text("keep")
    assert main(["import-folder", str(pets), str(project), "--engine", "python", "-q"]) == 1
    assert "not empty" in capsys.readouterr().err and (project / "README.md").read_text() == "keep"
    assert main(["import-folder", str(pets), str(pets.parent / "pets_ds"), "--engine", "python", "-q"]) == 0
    assert len(dls.open(str(pets.parent / "pets_ds"))) == 2
