"""Dataset = Delta table + chunks: append, read, time travel, restore, delete/update, vacuum, errors."""

from __future__ import annotations

import io
import os
import time
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

import deeplake_spark as dls
from deeplake_spark.errors import (
    DatasetExistsError,
    DatasetNotFoundError,
    DecodeError,
    ReadOnlyError,
    SchemaError,
    StorageError,
    VersionNotFound,
)


def jpeg(seed: int, h: int = 12, w: int = 10) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


SCHEMA = {
    "image": dls.tensor("image"),
    "label": dls.tensor("class_label"),
    "boxes": dls.tensor("bbox"),
    "emb": dls.tensor("embedding", shape=(4,), compression="lz4"),
    "caption": dls.tensor("text"),
    "id": "int64",
    "split": "string",
}


def rows(start: int, n: int) -> dict:
    return {
        "image": [jpeg(i) for i in range(start, start + n)],
        "label": np.arange(start, start + n) % 3,
        "boxes": [np.full((i % 3, 4), i, dtype=np.float32) for i in range(start, start + n)],
        "emb": np.arange(start * 4, (start + n) * 4, dtype=np.float32).reshape(n, 4),
        "caption": [f"sample {i}" for i in range(start, start + n)],
        "id": np.arange(start, start + n),
        "split": ["train" if i % 4 else "test" for i in range(start, start + n)],
    }


@pytest.fixture
def ds(ds_path):
    dataset = dls.create(ds_path, SCHEMA)
    # an append of scalars and small chunks can land in the create's millisecond; timestamp time travel
    # (test_time_travel_after_append_delete_overwrite) needs version 0 and 1 at different times
    time.sleep(0.005)
    dataset.append(rows(0, 10))
    return dataset


def test_append_and_read_every_kind(ds):
    assert len(ds) == 10 and ds.version == 1
    row = ds[7]
    assert row["id"] == 7 and row["split"] == "train" and row["caption"] == "sample 7"
    assert row["image"].shape == (12, 10, 3) and row["image"].dtype == np.uint8
    assert int(row["label"]) == 1 and row["label"].shape == ()
    np.testing.assert_array_equal(row["boxes"], np.full((1, 4), 7, np.float32))
    np.testing.assert_array_equal(row["emb"], [28, 29, 30, 31])
    batch = ds[2:5]  # a DatasetView (tests/integration/test_views.py); view["column"] gives the values
    assert isinstance(batch, dls.DatasetView) and len(batch) == 3
    assert batch["emb"].shape == (3, 4) and list(batch["id"]) == [2, 3, 4]
    assert isinstance(batch["boxes"], list) and [b.shape for b in batch["boxes"]] == [(2, 4), (0, 4), (1, 4)]
    picked = ds[[9, 0]]
    assert list(picked["id"]) == [9, 0] and list(picked["caption"]) == ["sample 9", "sample 0"]
    # the stored image bytes are the JPEG we passed in, untouched
    ref = ds.table(columns=["image"]).column("image")[3].as_py()
    assert ds.read_tensor("image", [ref], raw=True)[0] == jpeg(3)


def test_list_of_dicts_and_arrow_inputs(ds):
    more = rows(10, 2)
    ds.append([{k: v[i] for k, v in more.items()} for i in range(2)])
    extra = rows(12, 1)
    table = pa.table({"id": pa.array(extra["id"]), "split": extra["split"], "caption": extra["caption"],
                      "image": pa.array(extra["image"], pa.binary()), "label": pa.array(extra["label"]),
                      "boxes": pa.array([b.tolist() for b in extra["boxes"]]), "emb": pa.array(extra["emb"].tolist())})
    ds.extend(table)
    assert len(ds) == 13 and list(ds[10:]["id"]) == [10, 11, 12]


def test_time_travel_after_append_delete_overwrite(ds_path, ds):
    time.sleep(0.005)  # version 1 and 2 at different milliseconds (see the ds fixture)
    ds.append(rows(10, 5))                                        # v2
    ds.delete("id < 3")                                           # v3
    ds.overwrite(rows(100, 2))                                    # v4
    assert [len(dls.open(ds_path, version=v)) for v in range(5)] == [0, 10, 15, 12, 2]
    v1 = dls.open(ds_path, version=1)
    assert list(v1[:]["id"]) == list(range(10))
    np.testing.assert_array_equal(v1[9]["emb"], [36, 37, 38, 39])
    v3 = dls.open(ds_path, version=3)
    assert sorted(v3[:]["id"]) == list(range(3, 15))
    assert list(dls.open(ds_path)[:]["id"]) == [100, 101]
    first_ts = ds.history()[-2]["timestamp"]  # version 1's commit time (ms)
    # exactly version 1's commit time (ms precision): the version as of then is version 1
    when = datetime.fromtimestamp(first_ts / 1000, tz=UTC).isoformat(timespec="milliseconds")
    by_time = dls.open(ds_path, timestamp=when)
    assert by_time.version == 1 and len(by_time) == 10
    with pytest.raises(ReadOnlyError):
        v1.append(rows(0, 1))


def test_history_timestamp_is_the_time_travel_time_when_the_file_lands_after_commit_info(ds_path, ds):
    """A writer stamps commitInfo before its commit file lands; under load the file's modification
    time (what Delta, delta-rs and Kernel travel by) is later. history() reports the travel time, so
    each history timestamp opens its own version (not the one before, as CI once saw)."""
    ds.append(rows(10, 5))  # v2
    commit = os.path.join(ds_path, "_delta_log", f"{2:020d}.json")
    landed_ns = os.stat(commit).st_mtime_ns + 250_000_000
    os.utime(commit, ns=(landed_ns, landed_ns))
    stamps = {c["version"]: c["timestamp"] for c in dls.open(ds_path).history()}
    assert stamps[2] == landed_ns // 1_000_000
    for version in (1, 2):
        when = datetime.fromtimestamp(stamps[version] / 1000, tz=UTC).isoformat(timespec="milliseconds")
        assert dls.open(ds_path, timestamp=when).version == version


def test_restore_and_history(ds_path, ds):
    ds.append(rows(10, 5))
    new_version = ds.restore(1)
    assert new_version == 3 and len(ds) == 10
    ops = [h["operation"] for h in ds.history()]
    assert ops[0] == "RESTORE" and ops[-1] == "CREATE TABLE"
    assert len(dls.open(ds_path, version=2)) == 15


def test_update_tabular_columns_and_inline_tensors_only(ds):
    ds.update(new_values={"split": "val"}, predicate="id = 1")
    assert ds[1]["split"] == "val" and ds[2]["split"] == "train"
    ds.update(new_values={"label": 2}, predicate="id = 0")  # a scalar tensor is a plain column
    assert ds[0]["label"] == 2 and ds[0]["label"].dtype == np.int32 and ds[1]["label"] == 1
    with pytest.raises(SchemaError, match="scalar tensors stored inline only; bad column"):
        ds.update(new_values={"emb": 1})


def test_vacuum_removes_unreferenced_chunks_and_keeps_retained_versions(ds_path, ds):
    ds.overwrite(rows(50, 3))
    chunk_dir = os.path.join(ds_path, "_tensors", "emb")
    assert len(os.listdir(chunk_dir)) == 2
    # inside the retention window nothing an old version needs is removed
    kept = ds.vacuum(retention_hours=1, enforce_retention_duration=False)
    assert kept.chunk_files == [] and kept.parquet_files == []
    assert len(dls.open(ds_path, version=1)[:]["id"]) == 10
    dry = ds.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=True)
    # 3 chunked tensors x 1 chunk of version 1 (label and caption are scalars, stored in the rows)
    assert len(dry.chunk_files) == 3 and len(dry.parquet_files) == 1
    assert len(os.listdir(chunk_dir)) == 2
    real = ds.vacuum(retention_hours=0, enforce_retention_duration=False)
    assert real.chunk_files == dry.chunk_files and real.parquet_files == dry.parquet_files
    assert len(os.listdir(chunk_dir)) == 1
    assert list(ds[:]["id"]) == [50, 51, 52]
    np.testing.assert_array_equal(ds[2]["emb"], [208, 209, 210, 211])


def test_vacuum_refuses_short_retention_by_default(ds):
    with pytest.raises(ValueError, match="safety minimum"):
        ds.vacuum(retention_hours=1)


def test_failed_append_commits_nothing_and_leaves_no_chunks(ds_path, ds):
    bad = rows(10, 3)
    bad["image"][2] = b"not an image"
    with pytest.raises(DecodeError, match=r"tensor 'image', row 2"):
        ds.append(bad)
    bad = rows(10, 3)
    bad["emb"] = np.zeros((3, 5), np.float32)
    with pytest.raises(SchemaError, match="emb"):
        ds.append(bad)
    assert ds.version == 1 and len(dls.open(ds_path)) == 10
    for column in SCHEMA:
        folder = os.path.join(ds_path, "_tensors", column)
        if os.path.isdir(folder):
            assert len(os.listdir(folder)) == 1, column


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r.pop("id"), "missing column"),
        (lambda r: r.update(extra=[1] * 3), "unknown column"),
        (lambda r: r.update(id=[1, 2]), "different lengths"),
        (lambda r: r.update(id=["a", "b", "c"]), "'id'"),
        (lambda r: r.update(label=["x", "y", "z"]), "label"),
        (lambda r: r.update(boxes=[np.zeros((1, 3))] * 3), "shape"),
    ],
)
def test_schema_mismatch_errors(ds, mutate, message):
    data = rows(10, 3)
    mutate(data)
    with pytest.raises(SchemaError, match=message):
        ds.append(data)
    assert ds.version == 1


def test_open_errors(tmp_path, ds_path, ds):
    with pytest.raises(DatasetNotFoundError, match="no deeplake dataset"):
        dls.open(str(tmp_path / "nothing"))
    with pytest.raises(VersionNotFound, match=r"version 7 does not exist \(versions 0..1\)"):
        dls.open(ds_path, version=7)
    with pytest.raises(VersionNotFound, match="no version at or before"):
        dls.open(ds_path, timestamp="2001-01-01T00:00:00Z")
    with pytest.raises(DatasetExistsError):
        dls.create(ds_path, SCHEMA)
    with pytest.raises(IndexError, match="out of range"):
        ds[10]


def test_null_tensor_samples_are_null_refs(ds_path):
    dataset = dls.create(ds_path, {"x": dls.tensor("generic", dtype="int16"), "k": "int32"})
    dataset.append({"x": [np.arange(3), None, np.zeros((2, 2))], "k": [1, None, 3]})
    assert dataset[1]["x"] is None
    got = dataset[:]
    assert got["x"][1] is None and got["x"][2].shape == (2, 2)


def test_show_renders_an_html_grid(ds):
    grid = ds.show(3, columns=["image", "label", "caption"])
    html = grid._repr_html_()
    assert html.count("<img") == 3 and "sample 2" in html


def test_random_access_right_after_open_reads_only_the_owning_files(ds_path, ds):
    for start in range(10, 40, 10):
        ds.append(rows(start, 10))
    fresh = dls.open(ds_path)
    first_file = next(iter(fresh.arrow_dataset().get_fragments())).path
    os.remove(first_file if os.path.isabs(first_file) else os.path.join(ds_path, first_file))
    # rows 0..9 live in the first file only: any row of the other files still reads
    for i in (15, 27, 39):
        assert dls.open(ds_path)[i]["id"] == i
    assert list(dls.open(ds_path)[[39, 12]]["id"]) == [39, 12]


def test_vacuum_removes_uncommitted_jvm_writer_files_by_their_footer_key(ds_path, ds):
    """The JVM writer's Parquet files carry ``deeplake.tensor`` as a file-level footer key (no Arrow
    schema, so no field metadata): an uncommitted one is ours to remove; one without the key stays."""
    import pyarrow.parquet as pq

    ours = "part-00003-0123456789abcdef0123456789abcdef.parquet"
    foreign = "part-00004-0123456789abcdef0123456789abcdef.parquet"
    table = pa.table({"id": [1]})
    pq.write_table(table.replace_schema_metadata({"deeplake.tensor": '{"label": "{}"}'}), os.path.join(ds_path, ours))
    pq.write_table(table, os.path.join(ds_path, foreign))
    old = datetime.now(UTC).timestamp() - 3600
    for name in (ours, foreign):
        os.utime(os.path.join(ds_path, name), (old, old))
    result = ds.vacuum(retention_hours=0, enforce_retention_duration=False)
    assert result.parquet_files == [ours]
    assert not os.path.exists(os.path.join(ds_path, ours)) and os.path.exists(os.path.join(ds_path, foreign))


@pytest.mark.parametrize("uri", ["al://bucket/ds", "memory://ds", "AZ://container/ds"])
def test_an_unsupported_url_scheme_is_named_not_reported_as_a_missing_dataset(uri):
    scheme = uri.split("://")[0].lower()
    for call in (lambda: dls.open(uri), lambda: dls.create(uri, {"x": "int64"})):
        with pytest.raises(StorageError, match=f"URL scheme '{scheme}' is not supported.*s3://") as caught:
            call()
        assert not isinstance(caught.value, DatasetNotFoundError)
