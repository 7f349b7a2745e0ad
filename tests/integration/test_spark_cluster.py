"""A real Spark standalone cluster (master + 2 workers on 127.0.0.1, from the pyspark wheel's own
jars) writes a dataset with the deeplake source; it is read back locally, sample for sample.

The driver runs in a subprocess: the suite's shared ``spark`` fixture already holds this process's
only SparkContext.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import deeplake_spark as dls

pyspark = pytest.importorskip("pyspark")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROWS = 24

DRIVER = textwrap.dedent("""
    import io, json, os, sys, time
    import numpy as np
    from PIL import Image
    from pyspark import TaskContext
    from pyspark.sql import functions as F
    from deeplake_spark.spark import spark_session

    master, path, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
    spark = spark_session(master=master, **{
        "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1", "spark.driver.memory": "1g",
        "spark.executor.memory": "512m", "spark.executor.cores": "1", "spark.cores.max": "2",
        "spark.task.maxFailures": "3", "spark.sql.shuffle.partitions": "4",
    })
    def executor_of(_):
        time.sleep(1)
        return os.getcwd()

    deadline = time.time() + 120
    while time.time() < deadline:  # wait until both workers run an executor for this app
        if spark.sparkContext.parallelize(range(2), 2).map(executor_of).distinct().count() == 2:
            break

    def jpeg(i):
        buf = io.BytesIO()
        Image.fromarray(np.full((8, 8, 3), i * 5 % 256, np.uint8)).save(buf, format="JPEG")
        return buf.getvalue()

    data = [(i, i % 3, [float(i), i + 0.5, -float(i)], jpeg(i)) for i in range(rows)]
    df = spark.createDataFrame(data, "id long, label long, emb array<float>, image binary").repartition(4, "id")

    @F.udf("long")
    def fail_first_attempt(i):
        ctx = TaskContext.get()
        if ctx.partitionId() == 1 and ctx.attemptNumber() == 0:
            raise RuntimeError("injected failure of a first attempt")
        return i

    @F.udf("string")
    def executor_dir(i):
        return os.getcwd()

    df.write.format("deeplake").mode("append").option("tensor.label.htype", "class_label").save(path)
    # The second write's partition 1 fails once and is retried by Spark: no row may be duplicated.
    df.withColumn("id", fail_first_attempt("id") + rows).write.format("deeplake").mode("append").save(path)
    dirs = {r[0] for r in df.select(executor_dir("id")).distinct().collect()}
    print("RESULT " + json.dumps({"executor_dirs": sorted(dirs)}), flush=True)
    spark.stop()
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early:\n{log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise RuntimeError(f"port {port} not open after {timeout}s:\n{log.read_text()[-3000:]}")


def jpeg(i: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), i * 5 % 256, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture
def cluster(tmp_path):
    """A standalone master and two 1-core workers; every process stopped at teardown."""
    if shutil.which("java") is None:
        pytest.skip("no java on PATH")
    home = os.path.dirname(pyspark.__file__)
    env = {**os.environ, "SPARK_HOME": home, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "SPARK_NO_DAEMONIZE": "1", "SPARK_SCALA_VERSION": "2.13"}
    classpath = os.path.join(home, "jars", "*")
    port, ui_port = free_port(), free_port()
    procs: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(["java", "-Xmx256m", "-cp", classpath, *args], env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(proc)
        return proc, log

    try:
        master, log = start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                            "--port", str(port), "--webui-port", str(ui_port))
        wait_for_port(port, master, log)
        for i in range(2):
            work = tmp_path / f"work{i}"
            start(f"worker{i}", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                                 "--cores", "1", "--memory", "1g", "--webui-port", str(free_port()),
                                 "--work-dir", str(work), f"spark://127.0.0.1:{port}")
        deadline = time.time() + 180
        while log.read_text().count("Registering worker") < 2:
            if time.time() > deadline:
                raise RuntimeError(f"workers did not register:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield {"master": f"spark://127.0.0.1:{port}", "env": env,
               "work": [str(tmp_path / f"work{i}") for i in range(2)]}
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def test_standalone_cluster_write_reads_back_identically(cluster, tmp_path):
    path = str(tmp_path / "ds")
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    done = subprocess.run([sys.executable, str(script), cluster["master"], path, str(ROWS)], check=False,
                          env=cluster["env"], capture_output=True, text=True, timeout=420)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert "injected failure of a first attempt" in done.stderr   # a task attempt really failed and was retried
    result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
    # tasks ran in executors under the workers' work dirs, on both workers
    assert all(any(d.startswith(w) for w in cluster["work"]) for d in result["executor_dirs"])
    assert {next(w for w in cluster["work"] if d.startswith(w)) for d in result["executor_dirs"]} == set(cluster["work"])

    ds = dls.open(path)
    assert ds.version == 1 and len(ds) == 2 * ROWS
    assert (ds.schema.tensors["label"].htype, ds.schema.tensors["image"].compression) == ("class_label", "jpeg")
    table = ds.table()
    ids = table.column("id").to_pylist()
    assert sorted(ids) == list(range(2 * ROWS))                 # the retried task added no duplicates
    raw = ds.read_tensor("image", table.column("image").to_pylist(), raw=True)
    for i, row_id in enumerate(ids):
        src = row_id % ROWS
        row = ds[i]
        np.testing.assert_array_equal(row["emb"], np.array([src, src + 0.5, -src], dtype=np.float32))
        assert raw[i] == jpeg(src)
        assert row["label"] == src % 3
    history = ds.history()
    assert [h["version"] for h in history] == [1, 0]
