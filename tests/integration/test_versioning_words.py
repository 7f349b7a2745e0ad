"""Deep Lake's versioning words on our datasets: commit messages (Delta ``userMetadata``), tags
(``ds.tag``, ``open(path, tag=)``, kept from vacuum, never overwritten, local and S3) and a clear
error for URL schemes we cannot serve."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

import deeplake_spark as dls
from deeplake_spark.cli import main
from deeplake_spark.dataset.tags import CLAIMS_DIR, TAGS_DIR
from deeplake_spark.errors import (
    CommitConflict,
    CorruptDatasetError,
    DatasetNotFoundError,
    InvalidOptionError,
    StorageError,
    VersionNotFound,
)

SCHEMA = {"image": dls.tensor("generic", dtype="uint8", shape=(4, 4, 3), compression="lz4"), "id": "int64"}


def _images(ids: np.ndarray) -> np.ndarray:
    return np.stack([np.full((4, 4, 3), i % 251, dtype=np.uint8) for i in ids])


def _append(ds: dls.Dataset, start: int, n: int = 5, **kwargs) -> int:
    ids = np.arange(start, start + n)
    return ds.append({"image": _images(ids), "id": ids}, **kwargs)


def _ids(ds: dls.Dataset) -> list[int]:
    return sorted(ds.table(columns=["id"]).column("id").to_pylist())


def _commit_file(path: str, version: int) -> dict:
    with open(os.path.join(path, "_delta_log", f"{version:020d}.json")) as f:
        return next(a["commitInfo"] for a in map(json.loads, f) if "commitInfo" in a)


# ------------------------------------------------------------------ messages
def test_every_writing_operation_keeps_its_message_in_the_delta_commit_info(ds_path):
    ds = dls.create(ds_path, SCHEMA)
    assert _append(ds, 0, message="first five") == 1
    assert _append(ds, 5) == 2  # no message
    assert ds.delete("id = 1", message="drop 1") == 3
    assert ds.update(new_values={"id": 100}, predicate="id = 2", message="fix 2") == 4
    assert ds.overwrite({"image": _images(np.arange(3)), "id": np.arange(3)}, message="reset") == 5
    assert ds.restore(2, message="back to 2 — ünïcode") == 6
    expected = {6: "back to 2 — ünïcode", 5: "reset", 4: "fix 2", 3: "drop 1", 2: None, 1: "first five", 0: None}
    assert {c["version"]: c["message"] for c in ds.history()} == expected
    for version, message in expected.items():  # the field delta-spark's DESCRIBE HISTORY reads
        assert _commit_file(ds_path, version).get("userMetadata") == message
    assert dls.open(ds_path, version=4).history(limit=1)[0]["message"] == "fix 2"
    assert _ids(dls.open(ds_path)) == list(range(10))  # the restore itself worked


def test_a_message_that_is_not_a_string_is_refused_before_anything_is_written(ds_path):
    ds = dls.create(ds_path, SCHEMA)
    with pytest.raises(InvalidOptionError, match=r"append\(message=...\) must be a string, not int"):
        _append(ds, 0, message=3)
    with pytest.raises(InvalidOptionError, match=r"delete\(message=...\) has 10001 characters"):
        ds.delete("id = 1", message="x" * 10_001)
    assert dls.open(ds_path).version == 0
    assert not os.path.exists(os.path.join(ds_path, "_tensors"))  # refused before any chunk was written


def test_delta_spark_describe_history_shows_our_messages_and_we_show_its(delta_spark, ds_path):
    ds = dls.create(ds_path, SCHEMA)
    _append(ds, 0, message="from deeplake-spark")
    history = delta_spark.sql(f"DESCRIBE HISTORY delta.`{ds_path}`")
    assert {r["version"]: r["userMetadata"] for r in history} == {1: "from deeplake-spark", 0: None}
    delta_spark.sql("SET spark.databricks.delta.commitInfo.userMetadata=from spark")
    try:
        delta_spark.sql(f"DELETE FROM delta.`{ds_path}` WHERE id = 3")
    finally:
        delta_spark.sql("RESET spark.databricks.delta.commitInfo.userMetadata")
    latest = dls.open(ds_path)
    assert latest.history(limit=1)[0]["message"] == "from spark"
    assert _ids(latest) == [0, 1, 2, 4]


def test_cli_history_shows_messages_and_tags(ds_path, capsys):
    ds = dls.create(ds_path, SCHEMA)
    _append(ds, 0, message="first rows")
    ds.tag("v1.0")
    assert main(["history", ds_path]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert '"first rows"' in lines[1] and "[tag: v1.0]" in lines[1] and lines[1].split()[0] == "1"
    assert main(["restore", ds_path, "0", "-m", "empty again"]) == 0
    assert main(["history", ds_path, "--json", "--limit", "1"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("["):])[0]["message"] == "empty again"


# ---------------------------------------------------------------------- tags
def test_a_tagged_version_survives_vacuum_and_opens_by_tag(ds_path):
    ds = dls.create(ds_path, SCHEMA)
    _append(ds, 0)
    assert ds.tag("v1.0") == 1
    _append(ds, 5)
    ds.overwrite({"image": _images(np.arange(50, 52)), "id": np.arange(50, 52)})  # version 3: v1's files unused
    ds.tag("untagged-later", version=2)
    ds.delete_tag("untagged-later")
    result = ds.vacuum(0, enforce_retention_duration=False)
    assert result.retained_versions == [1, 3]
    assert result.files  # version 2's own Parquet file and chunks went
    tagged = dls.open(ds_path, tag="v1.0")
    assert (tagged.version, tagged.read_only, _ids(tagged)) == (1, True, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(tagged[:].numpy()["image"], _images(np.arange(5)))
    with pytest.raises(VersionNotFound, match="vacuumed"):
        dls.open(ds_path, version=2)
    with pytest.raises(VersionNotFound, match="cannot tag version 2: its data file .* was vacuumed"):
        ds.tag("too-late", version=2)
    with pytest.raises(VersionNotFound, match="cannot restore version 2: its data file .* was vacuumed"):
        ds.restore(2)
    assert ds.restore(1, message="back to v1.0") == 4 and _ids(dls.open(ds_path)) == [0, 1, 2, 3, 4]
    # once the tag is gone, the next vacuum may remove the version's files
    ds.delete_tag("v1.0")
    assert ds.vacuum(0, enforce_retention_duration=False).retained_versions == [4]
    with pytest.raises(VersionNotFound, match=r"no tag 'v1.0'; its tags: none"):
        dls.open(ds_path, tag="v1.0")


def test_tags_are_listed_and_never_silently_overwritten(ds_path):
    ds = dls.create(ds_path, SCHEMA)
    _append(ds, 0)
    _append(ds, 5)
    assert ds.tag("b", version=1) == 1 and ds.tag("a") == 2
    assert ds.tags() == {"a": 2, "b": 1}
    with pytest.raises(InvalidOptionError, match=r"tag 'b' already exists \(version 1\).*delete_tag\('b'\)"):
        ds.tag("b", version=2)
    assert dls.open(ds_path).tags() == {"a": 2, "b": 1}
    assert dls.open(ds_path, tag="b").version == 1
    with pytest.raises(InvalidOptionError, match="one of version, timestamp and tag"):
        dls.open(ds_path, version=1, tag="b")
    with pytest.raises(VersionNotFound, match=r"version 7 does not exist"):
        ds.tag("c", version=7)
    with pytest.raises(VersionNotFound, match="no tag 'zzz'"):
        ds.delete_tag("zzz")


@pytest.mark.parametrize("name", ["../x", "..", "a/b", "/etc/passwd", "", ".hidden", "x" * 129, "a\\b", "v 1", None])
def test_a_tag_name_that_is_no_plain_file_name_is_refused(ds_path, name):
    ds = dls.create(ds_path, SCHEMA)
    with pytest.raises(InvalidOptionError, match="invalid tag name"):
        ds.tag(name)
    if name is not None:  # open(tag=None) means "no tag"
        with pytest.raises(InvalidOptionError, match="invalid tag name"):
            dls.open(ds_path, tag=name)
    assert not os.path.exists(os.path.join(ds_path, "_deeplake"))
    assert not os.path.exists(os.path.join(os.path.dirname(ds_path), "x.json"))


@pytest.mark.parametrize("where", ["local", "s3"])
def test_concurrent_creators_of_one_tag_give_exactly_one_winner(ds_path, where, request):
    options = None
    if where == "s3":
        server = request.getfixturevalue("s3_server")
        ds_path, options = server.uri("race-" + os.urandom(4).hex()), server.storage_options
    ds = dls.create(ds_path, SCHEMA, storage_options=options)
    for start in range(0, 40, 5):
        _append(ds, start)
    barrier, outcomes = threading.Barrier(8), {}

    def create(version: int) -> None:
        handle = dls.open(ds_path, storage_options=options)
        barrier.wait()
        try:
            handle.tag("release", version=version)
            outcomes[version] = "won"
        except (InvalidOptionError, CommitConflict) as e:
            outcomes[version] = type(e).__name__

    threads = [threading.Thread(target=create, args=(v,)) for v in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [v for v, o in outcomes.items() if o == "won"]
    assert len(outcomes) == 8 and len(winners) <= 1
    tags = dls.open(ds_path, storage_options=options).tags()
    if winners:
        assert tags == {"release": winners[0]}
    else:  # every creator saw another's claim: none may have written the tag
        assert tags == {}
        ds.tag("release", version=3)  # and the name is free again
        assert ds.tags() == {"release": 3}
    assert len(ds.storage.list(f"{CLAIMS_DIR}/release")) == 1  # losers removed their claims


def test_an_interrupted_tag_creation_blocks_the_name_until_delete_tag(ds_path):
    ds = dls.create(ds_path, SCHEMA)
    _append(ds, 0)
    os.makedirs(os.path.join(ds_path, CLAIMS_DIR, "v1"))
    with open(os.path.join(ds_path, CLAIMS_DIR, "v1", "0" * 32 + ".json"), "w") as f:
        f.write('{"format": 1, "name": "v1", "version": 0}')
    with pytest.raises(CommitConflict, match="interrupted creation left its claim"):
        ds.tag("v1")
    assert ds.tags() == {}
    assert ds.delete_tag("v1") is None
    assert ds.tag("v1") == 1 and ds.tags() == {"v1": 1}


def test_a_damaged_tag_file_is_named(ds_path):
    ds = dls.create(ds_path, SCHEMA)
    os.makedirs(os.path.join(ds_path, TAGS_DIR))
    with open(os.path.join(ds_path, TAGS_DIR, "v1.json"), "w") as f:
        f.write('{"name": "v2", "version": 0}')
    with pytest.raises(CorruptDatasetError, match="tag file _deeplake/tags/v1.json does not hold a tag record"):
        ds.tags()
    with pytest.raises(CorruptDatasetError, match="v1.json"):
        ds.vacuum(0, enforce_retention_duration=False)  # never guesses which versions to keep


def test_cli_tag_and_tags(ds_path, capsys):
    ds = dls.create(ds_path, SCHEMA)
    _append(ds, 0)
    _append(ds, 5)
    assert main(["tag", ds_path, "v1", "--version", "1"]) == 0
    assert main(["tag", ds_path, "v2"]) == 0
    assert main(["tags", ds_path, "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{"):]) == {"v1": 1, "v2": 2}
    assert main(["tag", ds_path, "v1"]) == 1
    assert "InvalidOptionError: dataset" in capsys.readouterr().err
    assert main(["tag", ds_path, "../v3"]) == 1
    assert "invalid tag name '../v3'" in capsys.readouterr().err
    assert main(["info", ds_path, "--tag", "v1", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["version"], info["rows"], info["latest_version"], info["tags"]) == (1, 5, 2, {"v1": 1, "v2": 2})
    assert main(["tag", ds_path, "v1", "--delete"]) == 0
    assert main(["tags", ds_path]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "v2\t2"


def test_tags_on_s3(s3_server):
    uri, options = s3_server.uri("tags-" + os.urandom(4).hex()), s3_server.storage_options
    ds = dls.create(uri, SCHEMA, storage_options=options)
    _append(ds, 0, message="on s3")
    assert ds.tag("v1.0") == 1
    _append(ds, 5)
    with pytest.raises(InvalidOptionError, match="already exists"):
        ds.tag("v1.0", version=2)
    with pytest.raises(InvalidOptionError, match="invalid tag name"):
        ds.tag("../v1.0")
    ds.overwrite({"image": _images(np.arange(2)), "id": np.arange(2)})
    assert ds.vacuum(0, enforce_retention_duration=False).retained_versions == [1, 3]
    tagged = dls.open(uri, tag="v1.0", storage_options=options)
    assert _ids(tagged) == [0, 1, 2, 3, 4]
    assert tagged.history(limit=1)[0]["message"] == "on s3"
    np.testing.assert_array_equal(tagged[:].numpy()["image"], _images(np.arange(5)))
    assert ds.tags() == {"v1.0": 1}
    ds.delete_tag("v1.0")
    assert dls.open(uri, storage_options=options).tags() == {}


# -------------------------------------------------------------------- schemes
@pytest.mark.parametrize("uri", ["al://org/ds", "hf://datasets/x", "ftp://host/ds", "gs://bucket/ds", "gcs://bucket/ds",
                                 "abfs://container/ds", "hdfs://namenode/ds"])
def test_an_unsupported_url_scheme_is_named_not_reported_as_a_missing_dataset(uri, monkeypatch):
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_SERVICE_ACCOUNT", "GOOGLE_SERVICE_ACCOUNT_PATH"):
        monkeypatch.delenv(name, raising=False)
    scheme = uri.split("://")[0]
    for action in (lambda: dls.open(uri), lambda: dls.create(uri, SCHEMA)):
        with pytest.raises(StorageError, match=rf"{uri}: URL scheme '{scheme}' is not supported") as caught:
            action()
        assert not isinstance(caught.value, DatasetNotFoundError)
        assert "s3://" in str(caught.value) and "file://" in str(caught.value)
        assert "\x1b[" not in str(caught.value)  # no terminal colour codes of delta-rs' error chain


def test_cli_names_an_unsupported_scheme(capsys):
    assert main(["info", "hf://datasets/x"]) == 1
    err = capsys.readouterr().err
    assert "StorageError: hf://datasets/x: URL scheme 'hf' is not supported; supported: local paths" in err
