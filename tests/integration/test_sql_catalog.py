"""SQL a Delta user expects, on deeplake datasets: the path catalog ``deeplake.`/path``` with time
travel, ``deeplake_history(path)``, ``ALTER TABLE ... ADD COLUMNS``, and the format names.

Every test runs real SQL on the shared session that ``spark_session()`` built (jar on ``spark.jars``,
``spark.sql.catalog.deeplake`` and the jar's SQL extensions set) over datasets written by the Python API;
results are checked with ``deeplake_spark.open`` and the Delta log itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import deeplake_spark as dls

pytest.importorskip("pyspark")

from py4j.protocol import Py4JJavaError  # noqa: E402
from pyspark.errors import PySparkException  # noqa: E402

from deeplake_spark.errors import DeepLakeSparkError  # noqa: E402
from deeplake_spark.spark import jvm  # noqa: E402

SPARK_ERRORS = (Py4JJavaError, PySparkException)
pytestmark = pytest.mark.skipif(shutil.which("mvn") is None and not jvm.jar_file().exists(),
                                reason="no mvn to build the deeplake-jvm jar and no prebuilt jar")


def _make(path: str) -> str:
    """Three commits: create (v0), ids 0..4 (v1), ids 5..9 (v2); a float tensor 'emb' of shape (2,)."""
    ds = dls.create(path, {"id": "int64", "emb": dls.tensor(dtype="float32", shape=(2,))})
    for start in (0, 5):
        ids = list(range(start, start + 5))
        ds.append({"id": ids, "emb": [np.full(2, i, np.float32) for i in ids]})
    return path


@pytest.fixture
def pets(tmp_path) -> str:
    return _make(str(tmp_path / "pets"))


def _ids(spark, sql: str) -> list[int]:
    return sorted(r["id"] for r in spark.sql(sql).collect())


def _log_versions(path: str) -> list[int]:
    return sorted(int(f[:20]) for f in os.listdir(os.path.join(path, "_delta_log")) if f.endswith(".json"))


def _commit(path: str, version: int) -> list[dict]:
    with open(os.path.join(path, "_delta_log", f"{version:020d}.json")) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_session_has_the_catalog_and_extensions(spark):
    assert spark.conf.get("spark.sql.catalog.deeplake") == "deeplake.spark.jvm.catalog.DeepLakeCatalog"
    assert "deeplake.spark.jvm.DeepLakeSparkSessionExtensions" in spark.conf.get("spark.sql.extensions")


def test_select_by_path_latest_version_and_timestamp(spark, pets):
    assert _ids(spark, f"SELECT id FROM deeplake.`{pets}`") == list(range(10))
    assert _ids(spark, f"SELECT id FROM deeplake.`{pets}` VERSION AS OF 1") == list(range(5))
    assert _ids(spark, f"SELECT id FROM deeplake.`{pets}` VERSION AS OF 0") == []
    # A trailing slash names the same dataset.
    assert _ids(spark, f"SELECT id FROM deeplake.`{pets}/` VERSION AS OF 2") == list(range(10))
    v1_time = spark.sql(f"SELECT timestamp FROM deeplake_history('{pets}') WHERE version = 1").collect()[0][0]
    assert _ids(spark, f"SELECT id FROM deeplake.`{pets}` TIMESTAMP AS OF '{v1_time.isoformat(sep=' ')}'") \
        == list(range(5))
    # Expressions work too (they are evaluated before the catalog is asked).
    assert _ids(spark, f"SELECT id FROM deeplake.`{pets}` TIMESTAMP AS OF current_timestamp()") == list(range(10))
    assert _ids(spark, f"SELECT id FROM deeplake.`{pets}` TIMESTAMP AS OF "
                       f"(SELECT max(timestamp) FROM deeplake_history('{pets}') WHERE version = 1)") == list(range(5))
    # The tables are the JVM reader's: tensor refs in the default mode, with the column contract.
    df = spark.sql(f"SELECT * FROM deeplake.`{pets}` VERSION AS OF 2")
    assert df.schema["emb"].metadata["deeplake.version"] == 2
    row = df.where("id = 7").collect()[0]
    assert row["emb"]["shape"] == [2] and row["emb"]["nbytes"] == 8


def test_catalog_settings_insert_and_describe(spark, pets):
    """Catalog settings fix read options for its tables; INSERT INTO goes through the JVM writer;
    DESCRIBE shows the dataset's columns."""
    spark.conf.set("spark.sql.catalog.deeplake_arrays", "deeplake.spark.jvm.catalog.DeepLakeCatalog")
    spark.conf.set("spark.sql.catalog.deeplake_arrays.tensors", "array")
    rows = spark.sql(f"SELECT id, emb FROM deeplake_arrays.`{pets}` WHERE id = 7").collect()
    assert rows[0]["emb"] == [7.0, 7.0]
    spark.sql(f"INSERT INTO deeplake.`{pets}` SELECT 42 AS id, array(4.5f, 5.5f) AS emb")
    ds = dls.open(pets)
    assert ds.version == 3 and len(ds) == 11
    np.testing.assert_array_equal(ds[10]["emb"], np.array([4.5, 5.5], np.float32))
    assert spark.sql(f"SELECT emb FROM deeplake_arrays.`{pets}` WHERE id = 42").collect()[0][0] == [4.5, 5.5]
    described = [(r["col_name"], r["data_type"]) for r in spark.sql(f"DESCRIBE TABLE deeplake.`{pets}`").collect()]
    assert described[:2] == [("id", "bigint"), ("emb", "struct<chunk:string,index:int,shape:array<bigint>,nbytes:bigint>")]
    spark.sql(f"ALTER TABLE deeplake.`{pets}` ADD COLUMN rank INT FIRST")
    assert spark.sql(f"SELECT * FROM deeplake.`{pets}`").columns == ["rank", "id", "emb"]


def test_register_without_the_jar_keeps_the_python_source(tmp_path):
    """In a plain session (no jar on spark.jars) ``deeplake`` stays the Python source; asking for the JVM
    one is an error that says how to add the jar."""
    script = tmp_path / "plain.py"
    script.write_text(
        "import os, sys\n"
        "os.environ['PYSPARK_PYTHON'] = sys.executable\n"
        "from pyspark.sql import SparkSession\n"
        "from deeplake_spark.errors import DeepLakeSparkError\n"
        "from deeplake_spark.spark import register\n"
        "spark = SparkSession.builder.master('local[1]').config('spark.ui.enabled', 'false').getOrCreate()\n"
        "try:\n"
        "    register(spark, default='jvm')\n"
        "except DeepLakeSparkError as e:\n"
        "    print('REFUSED ' + str(e).split(':')[0])\n"
        "register(spark)\n"
        "print('DEFAULT ' + spark.conf.get('spark.deeplake.defaultFormat'))\n"
        "spark.stop()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SPARK_CONF_DIR"}  # a plain session: no site defaults
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=str(tmp_path),
                          env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "REFUSED format('deeplake') cannot be the JVM source here" in done.stdout
    assert "DEFAULT python" in done.stdout


def test_time_travel_and_path_errors_name_path_and_version(spark, pets, tmp_path):
    with pytest.raises(SPARK_ERRORS, match=rf"{pets}: version 9 does not exist \(versions 0..2\)"):
        spark.sql(f"SELECT * FROM deeplake.`{pets}` VERSION AS OF 9").collect()
    with pytest.raises(SPARK_ERRORS, match="VERSION AS OF 'v1' is not a version number"):
        spark.sql(f"SELECT * FROM deeplake.`{pets}` VERSION AS OF 'v1'").collect()
    with pytest.raises(SPARK_ERRORS, match=rf"{pets}: no version at or before timestamp 2001-01-01"):
        spark.sql(f"SELECT * FROM deeplake.`{pets}` TIMESTAMP AS OF '2001-01-01 00:00:00'").collect()
    missing = str(tmp_path / "nope")
    with pytest.raises(SPARK_ERRORS, match=rf"no deeplake dataset at {missing} \(no Delta log found\)"):
        spark.sql(f"SELECT * FROM deeplake.`{missing}`").collect()
    with pytest.raises(SPARK_ERRORS, match=r"'deeplake.db.pets' is not a dataset path"):
        spark.sql("SELECT * FROM deeplake.db.pets").collect()


def test_history_table_function_lists_commits_newest_first(spark, pets):
    rows = spark.sql(f"SELECT * FROM deeplake_history('{pets}')").collect()
    assert [r["version"] for r in rows] == [2, 1, 0]
    assert [r["operation"] for r in rows] == ["WRITE", "WRITE", "CREATE TABLE"]
    assert rows[0]["operationParameters"]["mode"] == "Append"
    assert rows[0]["timestamp"] >= rows[1]["timestamp"] >= rows[2]["timestamp"]
    assert rows[0].asDict().keys() >= {"version", "timestamp", "operation", "operationParameters", "readVersion",
                                       "isBlindAppend", "operationMetrics", "userMetadata", "engineInfo"}
    # Each history timestamp travels to its own version.
    for r in rows[:2]:
        at = spark.sql(f"SELECT count(*) AS n FROM deeplake.`{pets}` TIMESTAMP AS OF "
                       f"'{r['timestamp'].isoformat(sep=' ')}'").collect()[0]["n"]
        assert at == len(dls.open(pets, version=r["version"]))
    assert spark.sql(f"SELECT version FROM deeplake_history('{pets}') ORDER BY version LIMIT 1").collect()[0][0] == 0
    with pytest.raises(SPARK_ERRORS, match=r"deeplake_history\(path\) takes one argument"):
        spark.sql("SELECT * FROM deeplake_history()").collect()


def test_add_columns_commits_the_schema_to_the_dataset(spark, pets):
    before = _commit(pets, 0)
    metadata_before = next(a["metaData"] for a in before if "metaData" in a)
    spark.sql(f"ALTER TABLE deeplake.`{pets}` ADD COLUMNS (score DOUBLE COMMENT 'quality', tag STRING AFTER id)")
    assert _log_versions(pets) == [0, 1, 2, 3]
    actions = _commit(pets, 3)
    assert [next(iter(a)) for a in actions] == ["commitInfo", "metaData"]
    assert actions[0]["commitInfo"]["operation"] == "ADD COLUMNS" and actions[0]["commitInfo"]["readVersion"] == 2
    metadata = actions[1]["metaData"]
    for key in ("id", "format", "partitionColumns", "configuration", "createdTime"):
        assert metadata.get(key) == metadata_before.get(key), key
    fields = json.loads(metadata["schemaString"])["fields"]
    assert [f["name"] for f in fields] == ["id", "tag", "emb", "score"]
    assert fields[3]["metadata"] == {"comment": "quality"} and all(f["nullable"] for f in fields[1::2])
    # The tensor column keeps its spec.
    assert "deeplake.tensor" in fields[2]["metadata"]

    ds = dls.open(pets)
    assert ds.version == 3 and {"score", "tag"} <= set(ds.schema.tabular.names)
    assert np.isnan(ds[0]["score"]) and ds[0]["tag"] is None  # the dataset reads a null double as NaN
    rows = spark.sql(f"SELECT id, tag, score FROM deeplake.`{pets}` ORDER BY id").collect()
    assert len(rows) == 10 and all(r["score"] is None and r["tag"] is None for r in rows)
    ds.append({"id": [10], "tag": ["new"], "score": [0.5], "emb": [np.zeros(2, np.float32)]})
    assert spark.sql(f"SELECT tag, score FROM deeplake.`{pets}` WHERE id = 10").collect()[0].asDict() \
        == {"tag": "new", "score": 0.5}
    history = spark.sql(f"SELECT version, operation FROM deeplake_history('{pets}')").collect()
    assert [(r[0], r[1]) for r in history[:2]] == [(4, "WRITE"), (3, "ADD COLUMNS")]
    # Earlier versions keep their schema.
    assert "score" not in spark.sql(f"SELECT * FROM deeplake.`{pets}` VERSION AS OF 2").columns


@pytest.mark.parametrize(("statement", "message"), [
    ("DROP COLUMN id", "DROP COLUMN id is not supported on deeplake datasets"),
    ("RENAME COLUMN id TO key", "RENAME COLUMN id TO key is not supported"),
    ("ALTER COLUMN id TYPE DOUBLE", "changing the type of column id to DOUBLE is not supported"),
    ("ALTER COLUMN id COMMENT 'x'", "changing the comment of column id is not supported"),
    ("ADD COLUMNS (must INT NOT NULL)", "cannot add column 'must' as NOT NULL"),
    ("ADD COLUMNS (emb.extra INT)", "cannot add field 'emb.extra'"),
    ("ALTER COLUMN id SET NOT NULL", "Cannot change nullable column to non-nullable: id"),  # Spark itself
    ("ALTER COLUMN id FIRST", "moving column id is not supported"),
    ("ALTER COLUMN id SET DEFAULT 1", "setting a default for column id is not supported"),
    ("ADD COLUMNS (t TIMESTAMP_NTZ)", "TIMESTAMP_NTZ needs the Delta feature timestampNtz"),
    ("ADD COLUMNS (v VARIANT)", "VARIANT needs the Delta feature variantType"),
    ("SET TBLPROPERTIES ('delta.appendOnly' = 'true')", "changing table property 'delta.appendOnly'"),
])
def test_other_alterations_are_refused_by_name_and_commit_nothing(spark, pets, statement, message):
    with pytest.raises(SPARK_ERRORS, match=message) as caught:
        spark.sql(f"ALTER TABLE deeplake.`{pets}` {statement}")
    assert pets in str(caught.value) or "delta.appendOnly" in statement
    assert _log_versions(pets) == [0, 1, 2]


def test_add_existing_column_is_refused(spark, pets):
    with pytest.raises(SPARK_ERRORS, match="(?i)already exists|already has a column"):
        spark.sql(f"ALTER TABLE deeplake.`{pets}` ADD COLUMNS (ID INT)")
    assert _log_versions(pets) == [0, 1, 2]


def test_drop_and_create_through_the_catalog_are_refused(spark, pets, tmp_path):
    with pytest.raises(SPARK_ERRORS, match="never deletes datasets"):
        spark.sql(f"DROP TABLE deeplake.`{pets}`")
    assert len(dls.open(pets)) == 10
    target = str(tmp_path / "new")
    with pytest.raises(SPARK_ERRORS, match="is not supported: create the dataset with"):
        spark.sql(f"CREATE TABLE deeplake.`{target}` (id BIGINT)")
    assert not os.path.exists(target)


def test_add_columns_on_a_jvm_source_catalog_table_reaches_the_dataset(spark, pets):
    spark.sql(f"CREATE TABLE pets_jvm USING `deeplake-jvm` LOCATION '{pets}'")
    try:
        spark.sql("ALTER TABLE pets_jvm ADD COLUMNS (score DOUBLE)")
        assert "score" in dls.open(pets).schema.tabular.names
        assert _commit(pets, 3)[0]["commitInfo"]["operation"] == "ADD COLUMNS"
        with pytest.raises(SPARK_ERRORS, match="DROP COLUMN score is not supported"):
            spark.sql("ALTER TABLE pets_jvm DROP COLUMN score")
        assert _log_versions(pets) == [0, 1, 2, 3]
    finally:
        spark.sql("DROP TABLE pets_jvm")
    assert len(dls.open(pets)) == 10  # dropping the catalog entry leaves the dataset alone


def test_jvm_source_catalog_table_reads_the_added_column(spark, pets):
    spark.sql(f"CREATE TABLE pets_jvm2 USING `deeplake-jvm` LOCATION '{pets}'")
    try:
        spark.sql("ALTER TABLE pets_jvm2 ADD COLUMNS (score DOUBLE)")
        rows = spark.sql("SELECT id, score FROM pets_jvm2").collect()
        assert len(rows) == 10 and all(r["score"] is None for r in rows)
    finally:
        spark.sql("DROP TABLE pets_jvm2")


def test_add_columns_on_a_python_source_catalog_table_reaches_the_dataset(spark, pets):
    spark.sql(f"CREATE TABLE pets_py USING deeplake OPTIONS (path '{pets}')")
    try:
        spark.sql("ALTER TABLE pets_py ADD COLUMNS (score DOUBLE)")
        assert "score" in dls.open(pets).schema.tabular.names
        rows = spark.sql("SELECT id, score FROM pets_py").collect()
        assert len(rows) == 10 and all(r["score"] is None for r in rows)
        with pytest.raises(SPARK_ERRORS, match="RENAME COLUMN score TO s is not supported"):
            spark.sql("ALTER TABLE pets_py RENAME COLUMN score TO s")
        assert _log_versions(pets) == [0, 1, 2, 3]
    finally:
        spark.sql("DROP TABLE pets_py")


def test_python_source_reads_an_added_column_as_null(spark, pets):
    spark.sql(f"ALTER TABLE deeplake.`{pets}` ADD COLUMNS (score DOUBLE)")
    rows = spark.read.format("deeplake").load(pets).select("id", "score").collect()
    assert len(rows) == 10 and all(r["score"] is None for r in rows)


@pytest.fixture
def python_default(spark):
    """The session with ``deeplake`` = the Python source for one test (the run may have chosen jvm)."""
    chosen = spark.conf.get("spark.deeplake.defaultFormat", "python")
    dls.spark.register(spark, default="python")
    yield spark
    dls.spark.register(spark, default=chosen)


def test_format_names_with_the_python_default(python_default, pets):
    spark = python_default
    assert spark.conf.get("spark.deeplake.defaultFormat") == "python"
    python_df = spark.read.format("deeplake").load(pets)
    named_df = spark.read.format("deeplake-python").load(pets)
    jvm_df = spark.read.format("deeplake-jvm").load(pets)
    # The Python source marks its first field with its read options; the JVM source does not.
    assert "deeplake.source" in python_df.schema.fields[0].metadata
    assert "deeplake.source" in named_df.schema.fields[0].metadata
    assert "deeplake.source" not in jvm_df.schema.fields[0].metadata
    assert python_df.count() == named_df.count() == jvm_df.count() == 10
    with pytest.raises(DeepLakeSparkError, match="allowed values are"):
        dls.spark.register(spark, default="scala")
    dls.spark.register(spark)  # registering again keeps the setting
    assert spark.conf.get("spark.deeplake.defaultFormat") == "python"
    # register() gives a running session the catalog (looked up by name when first used).
    spark.conf.unset("spark.sql.catalog.deeplake")
    dls.spark.register(spark)
    assert spark.conf.get("spark.sql.catalog.deeplake") == "deeplake.spark.jvm.catalog.DeepLakeCatalog"


def test_format_deeplake_switches_between_python_and_jvm_in_a_running_session(python_default, pets, tmp_path):
    """Spark looks JVM sources up before Python ones, so the switch works after the Python source was
    registered as ``deeplake``; catalog tables resolve their provider name at each query."""
    spark = python_default
    spark.sql(f"CREATE TABLE pets_switch USING deeplake LOCATION '{pets}'")
    try:
        dls.spark.register(spark, default="jvm")
        assert spark.conf.get("spark.deeplake.defaultFormat") == "jvm"
        assert "deeplake.source" not in spark.read.format("deeplake").load(pets).schema.fields[0].metadata
        assert "deeplake.source" not in spark.table("pets_switch").schema.fields[0].metadata
        assert spark.read.format("deeplake-python").load(pets).count() == 10
        assert spark.sql("SELECT count(*) FROM pets_switch").collect()[0][0] == 10
        # writes under the default name reach the JVM writer: a new path, no mode, write options
        new = str(tmp_path / "written_by_default_name")
        spark.createDataFrame([(1, [1.0, 2.0]), (2, [3.0, 4.0])], "id long, emb array<float>") \
            .write.format("deeplake").option("tensor.emb.shape", "2").save(new)
        written = dls.open(new)
        assert len(written) == 2 and written[1]["emb"].tolist() == [3.0, 4.0]
    finally:
        dls.spark.register(spark, default="python")
    assert "deeplake.source" in spark.read.format("deeplake").load(pets).schema.fields[0].metadata
    try:
        assert "deeplake.source" in spark.table("pets_switch").schema.fields[0].metadata
    finally:
        spark.sql("DROP TABLE pets_switch")


def test_format_names_with_the_jvm_default_in_a_new_session(pets, tmp_path):
    """``deeplake`` is the JVM source in a session started with spark.deeplake.defaultFormat=jvm; the
    Python source stays ``deeplake-python``. A session's JVM is its own, so this runs in a child process."""
    script = tmp_path / "jvm_default.py"
    script.write_text(
        "import json, sys\n"
        "from deeplake_spark.spark import spark_session\n"
        "spark = spark_session(master='local[1]', **{'spark.deeplake.defaultFormat': 'jvm'})\n"
        f"path = {pets!r}\n"
        "out = {}\n"
        "df = spark.read.format('deeplake').load(path)\n"
        "out['deeplake_is_python'] = 'deeplake.source' in df.schema.fields[0].metadata\n"
        "out['deeplake_rows'] = df.count()\n"
        "py = spark.read.format('deeplake-python').load(path)\n"
        "out['python_is_python'] = 'deeplake.source' in py.schema.fields[0].metadata\n"
        "spark.sql(f\"CREATE TABLE t USING deeplake LOCATION '{path}'\")\n"
        "out['sql_rows'] = spark.sql('SELECT count(*) FROM t').collect()[0][0]\n"
        "spark.sql('ALTER TABLE t ADD COLUMNS (score DOUBLE)')\n"
        "spark.sql('DROP TABLE t')\n"
        "print('RESULT ' + json.dumps(out))\n"
        "spark.stop()\n"
    )
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=400, env=env,
                          cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert result == {"deeplake_is_python": False, "deeplake_rows": 10, "python_is_python": True, "sql_rows": 10}
    assert "score" in dls.open(pets).schema.tabular.names  # ALTER on a table USING deeplake (= JVM) reached the dataset
