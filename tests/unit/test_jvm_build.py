"""The jvm-shim Maven build: its version, the Java tests' chunk fixtures, the shaded jar's contents."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from deeplake_spark._version import __version__

ROOT = Path(__file__).resolve().parents[2]
SHIM = ROOT / "jvm-shim"


def test_pom_version_is_the_package_version():
    pom = (SHIM / "pom.xml").read_text()
    # the project's own <version>: the first one after its <artifactId>
    match = re.search(r"<artifactId>deeplake-spark-jvm</artifactId>\s*<version>([^<]+)</version>", pom)
    assert match is not None
    assert match.group(1) == __version__


def test_java_chunk_fixtures_are_what_the_python_writer_writes():
    """ChunkTest.java parses these files; they must stay the bytes our writer produces today."""
    folder = SHIM / "src" / "test" / "resources" / "chunks"
    sys.path.insert(0, str(folder))
    try:
        import make_chunks
    finally:
        sys.path.remove(str(folder))
    fixtures = make_chunks.fixtures()
    assert len(fixtures) == 3
    for name, data in fixtures.items():
        assert (folder / name).read_bytes() == data, f"{name} is stale: run {folder / 'make_chunks.py'}"


def test_without_maven_the_build_says_how_to_set_up():
    code = ("from deeplake_spark.spark import jvm\n"
            "from deeplake_spark.errors import DeepLakeSparkError\n"
            "try:\n    jvm.build_jar(force=True)\nexcept DeepLakeSparkError as e:\n    print(e)\n")
    env = {**os.environ, "PATH": "/nonexistent"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Maven (mvn) not found" in done.stdout and "mvn -q -f jvm-shim/pom.xml verify" in done.stdout


def test_the_built_jar_shades_kernel_and_xxh3_under_our_prefix_only():
    from deeplake_spark.spark import jvm

    if not jvm.jar_file().exists():
        pytest.skip(f"no built jar; run the README set-up ({jvm.SETUP_COMMAND})")
    with zipfile.ZipFile(jvm.jar_file()) as jar:
        names = [n for n in jar.namelist() if n.endswith(".class")]
        services = jar.read("META-INF/services/org.apache.spark.sql.sources.DataSourceRegister").decode()
    assert "deeplake.spark.jvm.DeepLakeSource" in services
    assert any(n.startswith("deeplake/shaded/io/delta/kernel/") for n in names)
    assert "deeplake/shaded/net/openhft/hashing/XXH3.class" in names  # the payload checksum writers record
    outside = sorted({n.split("/")[0] + "/" + n.split("/")[1] for n in names if not n.startswith("deeplake/")})
    # nothing Spark ships (hadoop, parquet, jackson, scala, lz4) and no unrelocated Kernel
    assert outside == [], outside
