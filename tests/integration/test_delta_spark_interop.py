"""delta-spark in the loop: a real Spark + delta-spark session works on our datasets, and our dataset
layer stays right after every delta-spark command (open, ``ds[i]`` by id, time travel, loader, vacuum)."""

from __future__ import annotations

import multiprocessing as mp
import shutil

import numpy as np
import pytest
from delta_spark_worker import DeltaSparkError

import deeplake_spark as dls
from deeplake_spark.errors import DeepLakeSparkError, VersionNotFound

pytest.importorskip("pyspark")
pytest.importorskip("delta")


@pytest.fixture
def delta(delta_spark):
    """The run's shared delta-spark worker (tests/conftest.py)."""
    return delta_spark


def _image(i: int) -> np.ndarray:
    return np.full((4, 4, 3), i % 251, dtype=np.uint8)


def _make(path: str) -> dls.Dataset:
    """Two commits: ids 0..9 then 10..19; label = id % 3; a raw uint8 tensor derived from the id."""
    ds = dls.create(path, {"image": dls.tensor("generic", dtype="uint8", shape=(4, 4, 3), compression="lz4"),
                           "id": "int64", "label": "int64", "split": "string"})
    for start in (0, 10):
        ids = np.arange(start, start + 10)
        ds.append({"image": np.stack([_image(int(i)) for i in ids]), "id": ids, "label": ids % 3,
                   "split": ["train" if i % 4 else "test" for i in ids]})
    return ds


def _rows_by_id(ds: dls.Dataset) -> dict[int, dict]:
    table = ds.table(columns=["id", "label"]).to_pylist()
    return {row["id"]: {"index": i, "label": row["label"]} for i, row in enumerate(table)}


def _check_ours(path: str, labels: dict[int, int], no_image: frozenset[int] = frozenset()) -> None:
    """Our readers see exactly ``labels`` ({id: label}) and every image by id (``None`` for the ids in
    ``no_image``, rows another engine inserted without tensors), the torch loader included."""
    ds = dls.open(path)
    rows = _rows_by_id(ds)
    assert {i: r["label"] for i, r in rows.items()} == labels
    for i in sorted(labels)[:: max(1, len(labels) // 5)] + sorted(no_image):
        sample = ds[rows[i]["index"]]
        assert sample["id"] == i
        if i in no_image:
            assert sample["image"] is None
        else:
            np.testing.assert_array_equal(sample["image"], _image(i))
    seen: dict[int, np.ndarray] = {}
    columns = ["id", "label"] if no_image else ["id", "image"]
    for batch in ds.pytorch(batch_size=7, num_workers=0, shuffle=False, columns=columns):
        for k, i in enumerate(batch["id"].tolist()):
            seen[i] = batch["label"][k].item() if no_image else batch["image"][k].numpy()
    assert sorted(seen) == sorted(labels)
    for i, value in seen.items():
        if no_image:
            assert value == labels[i]
        else:
            np.testing.assert_array_equal(value, _image(i))


def _vacuum_keeps_latest(path: str, labels: dict[int, int], no_image: frozenset[int] = frozenset()) -> None:
    ds = dls.open(path)
    dry = ds.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=True)
    done = ds.vacuum(retention_hours=0, enforce_retention_duration=False)
    assert sorted(done.files) == sorted(dry.files)
    _check_ours(path, labels, no_image)


@pytest.fixture
def table(tmp_path):
    path = str(tmp_path / "ds")
    _make(path)
    return path


def _labels(ids, label=lambda i: i % 3) -> dict[int, int]:
    return {int(i): int(label(i)) for i in ids}


def test_the_delta_session_runs_on_the_maven_fetched_delta_spark_jars(delta):
    """The README set-up's Maven build copies delta-spark and what it needs beyond pyspark/jars to
    jvm-shim/target/delta/; spark_session(delta=True) puts those on spark.jars and asks Ivy for
    nothing (two sessions resolving with Ivy at once on a fresh machine raced on ~/.ivy2 and failed)."""
    from deeplake_spark.spark.jvm import delta_jars
    from deeplake_spark.spark.session import delta_jar_conf, delta_package

    package = delta_package()
    local = delta_jars(package)
    artifact, version = package.split(":")[1:]
    assert f"{artifact}-{version}.jar" in {p.name for p in local}
    # a session built by hand (the Databricks notebook's stand-in) gets the same jars
    assert delta_jar_conf() == {"spark.jars": ",".join(map(str, local))}
    jars = delta.sql("SET spark.jars")[0]["value"].split(",")
    assert {str(p) for p in local} <= set(jars)
    assert delta.sql("SET spark.jars.packages")[0]["value"] == "<undefined>"


def test_format_delta_reads_our_dataset_and_its_versions(delta, table):
    rows = delta.read(table, select="id,label,split,image.shape AS shape,image.nbytes AS nbytes")
    assert len(rows) == 20
    row = next(r for r in rows if r["id"] == 13)
    assert (row["label"], row["split"], row["shape"], row["nbytes"]) == (1, "train", [4, 4, 3], 48)
    for version in (0, 1, 2):
        assert len(delta.read(table, versionAsOf=version)) == len(dls.open(table, version=version))
        assert len(delta.sql(f"SELECT id FROM delta.`{table}` VERSION AS OF {version}")) == len(
            dls.open(table, version=version))
    # the tensor spec travels in the Delta schema's field metadata, visible to delta-spark
    described = delta.sql(f"DESCRIBE DETAIL delta.`{table}`")[0]
    assert described["format"] == "delta" and described["numFiles"] == 2


DML = {
    "update": (["UPDATE delta.`{p}` SET label = 7 WHERE id >= 15"],
               lambda: _labels(range(20), lambda i: 7 if i >= 15 else i % 3)),
    "delete": (["DELETE FROM delta.`{p}` WHERE split = 'test'"],
               lambda: _labels([i for i in range(20) if i % 4])),
    "merge": (["MERGE INTO delta.`{p}` t USING (SELECT id, id * 10 AS new_label FROM range(15, 25)) s ON t.id = s.id "
               "WHEN MATCHED THEN UPDATE SET label = s.new_label"],
              lambda: _labels(range(20), lambda i: i * 10 if i >= 15 else i % 3)),
    "optimize": (["OPTIMIZE delta.`{p}`"], lambda: _labels(range(20))),
    "zorder": (["OPTIMIZE delta.`{p}` ZORDER BY (label)"], lambda: _labels(range(20))),
    "restore": (["DELETE FROM delta.`{p}` WHERE id < 5", "RESTORE TABLE delta.`{p}` TO VERSION AS OF 1"],
                lambda: _labels(range(10))),
}


@pytest.mark.parametrize("command", sorted(DML))
def test_delta_spark_commands_then_our_dataset_is_right(delta, table, command):
    statements, expected = DML[command]
    for sql in statements:
        delta.sql(sql.format(p=table))
    history = delta.sql(f"DESCRIBE HISTORY delta.`{table}`")
    assert history[0]["version"] == dls.open(table).version
    assert {"WRITE", "CREATE TABLE"} <= {r["operation"] for r in history}
    _check_ours(table, expected())
    # time travel to before the command still gives the original rows
    old = dls.open(table, version=2)
    assert {i: r["label"] for i, r in _rows_by_id(old).items()} == _labels(range(20))
    np.testing.assert_array_equal(old[_rows_by_id(old)[17]["index"]]["image"], _image(17))
    _vacuum_keeps_latest(table, expected())


def test_merge_insert_from_delta_spark_gives_rows_without_tensors(delta, table):
    delta.sql(f"MERGE INTO delta.`{table}` t USING (SELECT 100 AS id, 1 AS label) s ON t.id = s.id "
              "WHEN NOT MATCHED THEN INSERT (id, label, split) VALUES (s.id, s.label, 'new')")
    ds = dls.open(table)
    rows = _rows_by_id(ds)
    assert rows[100]["label"] == 1 and ds[rows[100]["index"]]["image"] is None
    _vacuum_keeps_latest(table, {**_labels(range(20)), 100: 1}, frozenset({100}))


def test_delta_spark_vacuum_then_our_vacuum_and_time_travel(delta, table):
    delta.sql(f"DELETE FROM delta.`{table}` WHERE id < 10")  # removes the first commit's file
    delta.sql("SET spark.databricks.delta.retentionDurationCheck.enabled = false")
    try:
        delta.sql(f"VACUUM delta.`{table}` RETAIN 0 HOURS")
    finally:
        delta.sql("RESET spark.databricks.delta.retentionDurationCheck.enabled")
    _check_ours(table, _labels(range(10, 20)))
    with pytest.raises(VersionNotFound, match="version 1"):
        dls.open(table, version=1).table()
    _vacuum_keeps_latest(table, _labels(range(10, 20)))


def _our_appender(path: str, start: int, count: int) -> None:
    ds = dls.open(path)
    for i in range(start, start + count):
        ds.append({"image": _image(i)[None], "id": [i], "label": [i % 3], "split": ["ours"]})


def test_delta_spark_and_our_writer_commit_concurrently_without_loss(delta, table):
    ctx = mp.get_context("spawn")
    ours = ctx.Process(target=_our_appender, args=(table, 1000, 12))
    ours.start()
    for i in range(2000, 2012):
        delta.sql(f"INSERT INTO delta.`{table}` (id, label, split) VALUES ({i}, {i % 3}, 'spark')")
    ours.join(300)
    assert ours.exitcode == 0
    ids = sorted(_rows_by_id(dls.open(table)))
    assert ids == list(range(20)) + list(range(1000, 1012)) + list(range(2000, 2012))
    assert len(delta.read(table)) == 44
    ds = dls.open(table)
    rows = _rows_by_id(ds)
    np.testing.assert_array_equal(ds[rows[1005]["index"]]["image"], _image(1005))


# Newer Delta features written by delta-spark: read correctly, or refused with an error naming the feature.
FEATURES = {
    "deletionVectors": ("ALTER TABLE delta.`{p}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')",
                        "DELETE FROM delta.`{p}` WHERE id = 3"),
    "columnMapping": ("ALTER TABLE delta.`{p}` SET TBLPROPERTIES ('delta.columnMapping.mode' = 'name', "
                      "'delta.minReaderVersion' = '2', 'delta.minWriterVersion' = '5')",
                      "ALTER TABLE delta.`{p}` RENAME COLUMN split TO part"),
    "v2Checkpoint": ("ALTER TABLE delta.`{p}` SET TBLPROPERTIES ('delta.checkpointPolicy' = 'v2', "
                     "'delta.checkpointInterval' = '1')",
                     "UPDATE delta.`{p}` SET label = label WHERE id = 0"),
    "rowTracking": ("ALTER TABLE delta.`{p}` SET TBLPROPERTIES ('delta.enableRowTracking' = 'true')",
                    "UPDATE delta.`{p}` SET label = label WHERE id = 0"),
}


@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_newer_delta_features_are_read_right_or_refused_by_name(delta, spark, table, feature):
    for sql in FEATURES[feature]:
        delta.sql(sql.format(p=table))
    expected_ids = sorted(r["id"] for r in delta.read(table))
    try:
        ds = dls.open(table)
        ids = sorted(_rows_by_id(ds))
    except DeepLakeSparkError as e:
        assert feature in str(e) and table in str(e)
        for source in ("deeplake", "deeplake-jvm"):
            with pytest.raises(Exception, match=feature):
                spark.read.format(source).load(table).count()
        return
    assert ids == expected_ids
    rows = _rows_by_id(ds)
    np.testing.assert_array_equal(ds[rows[17]["index"]]["image"], _image(17))
    for source in ("deeplake", "deeplake-jvm"):
        assert spark.read.format(source).load(table).count() == len(expected_ids)


def test_our_dataset_copy_is_independent(delta, table, tmp_path):
    """A copied dataset folder (e.g. to another bucket) is a working Delta table for both engines."""
    copy = str(tmp_path / "copy")
    shutil.copytree(table, copy)
    delta.sql(f"UPDATE delta.`{copy}` SET label = 0")
    assert len(delta.read(table, select="label")) == 20
    assert sum(r["label"] == 0 for r in delta.read(table, select="label")) == 7
    _check_ours(copy, _labels(range(20), lambda i: 0))


def test_deeplake_sql_works_next_to_delta_spark(delta, table):
    """In a delta-spark session (its extension + DeltaCatalog as spark_catalog) our catalog, table function
    and ADD COLUMNS work too, and delta-spark reads the schema commit ADD COLUMNS made."""
    assert [r["n"] for r in delta.sql(f"SELECT count(*) AS n FROM deeplake.`{table}` VERSION AS OF 1")] == [10]
    delta.sql(f"ALTER TABLE deeplake.`{table}` ADD COLUMNS (score DOUBLE)")
    ours = delta.sql(f"SELECT version, operation FROM deeplake_history('{table}')")
    theirs = delta.sql(f"DESCRIBE HISTORY delta.`{table}`")
    assert [(r["version"], r["operation"]) for r in ours] == [(r["version"], r["operation"]) for r in theirs]
    assert ours[0] == {"version": 3, "operation": "ADD COLUMNS"}
    rows = delta.read(table, select="id,score")
    assert len(rows) == 20 and all(r["score"] is None for r in rows)
    delta.sql(f"UPDATE delta.`{table}` SET score = id * 0.5 WHERE id < 3")
    after = dls.open(table).table(columns=["id", "score"]).to_pydict()
    scores = dict(zip(after["id"], after["score"]))
    assert {i: scores[i] for i in range(4)} == {0: 0.0, 1: 0.5, 2: 1.0, 3: None}
    _check_ours(table, _labels(range(20)))


def test_create_table_using_the_python_source_in_a_delta_session_cannot_be_read(delta, table):
    """DeltaCatalog replaces the session catalog and resolves non-Delta tables through Spark's V1 path: a
    table ``USING `deeplake-python``` (the Python source) is created but cannot be read."""
    delta.sql(f"CREATE TABLE pets_py USING `deeplake-python` LOCATION '{table}'")
    try:
        with pytest.raises(DeltaSparkError, match="deeplake-python is not a valid Spark SQL Data Source"):
            delta.sql("SELECT count(*) AS n FROM pets_py")
    finally:
        delta.sql("DROP TABLE pets_py")


def test_create_table_using_deeplake_jvm_in_a_delta_session(delta, table):
    """``USING `deeplake-jvm``` reads through DeltaCatalog (the JVM source's V1 relation) with the dataset's
    current schema; ADD COLUMNS on the table is refused with the way that works."""
    delta.sql(f"CREATE TABLE pets_jvm USING `deeplake-jvm` LOCATION '{table}'")
    try:
        assert delta.sql("SELECT count(*) AS n FROM pets_jvm WHERE label = 1")[0]["n"] == 7
        with pytest.raises(DeltaSparkError, match=rf"add the column to the dataset with ALTER TABLE deeplake.`{table}`"):
            delta.sql("ALTER TABLE pets_jvm ADD COLUMNS (note STRING)")
        delta.sql(f"ALTER TABLE deeplake.`{table}` ADD COLUMNS (note STRING)")
        delta.sql("REFRESH TABLE pets_jvm")  # a V1 catalog caches the table's relation (and schema) until then
        assert "note" in dls.open(table).schema.tabular.names
        assert delta.sql("SELECT count(*) AS n FROM pets_jvm WHERE note IS NULL")[0]["n"] == 20
    finally:
        delta.sql("DROP TABLE IF EXISTS pets_jvm")
    assert len(dls.open(table)) == 20


def test_create_table_using_deeplake_in_a_delta_session_is_the_jvm_source(delta, table):
    """``USING deeplake`` in a Delta session is the JVM source (the default name with the jar): it reads
    (V1 relation over the JVM reader) with the dataset's current schema; ADD COLUMNS on the table is
    refused with the way that works."""
    session = delta
    try:
        session.sql(f"CREATE TABLE pets USING deeplake LOCATION '{table}'")
        assert session.sql("SELECT count(*) AS n FROM pets WHERE label = 2")[0]["n"] == 6
        with pytest.raises(DeltaSparkError, match=rf"add the column to the dataset with ALTER TABLE deeplake.`{table}`"):
            session.sql("ALTER TABLE pets ADD COLUMNS (note STRING)")
        session.sql(f"ALTER TABLE deeplake.`{table}` ADD COLUMNS (note STRING)")
        session.sql("REFRESH TABLE pets")  # a V1 catalog caches the table's relation (and schema) until then
        assert session.sql("SELECT count(*) AS n FROM pets WHERE note IS NULL")[0]["n"] == 20
        assert [r["id"] for r in session.read(table, format="deeplake", select="id")] == list(range(20))
    finally:
        session.sql("DROP TABLE IF EXISTS pets")
