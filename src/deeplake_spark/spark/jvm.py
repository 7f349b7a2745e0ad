"""The JVM reader (``spark.read.format("deeplake-jvm")``): find, build and check its jar.

The Java sources live in ``jvm-shim/`` of a source checkout, a Maven project (``jvm-shim/pom.xml``).
The README set-up builds it once (``mvn -q -f jvm-shim/pom.xml verify``) into
``deeplake_spark/jars/deeplake-spark-jvm-<version>.jar`` (Delta Kernel shaded inside) and copies the
S3A jars (hadoop-aws and the AWS SDK modules it needs) to ``jvm-shim/target/s3a/``;
:func:`deeplake_spark.spark.session.spark_session` puts both on ``spark.jars`` (:func:`session_jars`).
In a source checkout the jar is rebuilt with Maven when a source is newer than it. An installed wheel
ships the jar and has no sources, so nothing is built there.

>>> from deeplake_spark.spark.jvm import build_jar
>>> build_jar()  # doctest: +SKIP
'.../deeplake_spark/jars/deeplake-spark-jvm-0.1.0.jar'
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from deeplake_spark._version import __version__
from deeplake_spark.errors import DeepLakeSparkError

log = logging.getLogger(__name__)

#: ``spark.read.format(SHORT_NAME)`` selects the JVM reader.
SHORT_NAME = "deeplake-jvm"
JAR_PREFIX = "deeplake-spark-jvm-"
#: The README set-up command that builds the jar, runs the JUnit tests and fetches the S3A jars.
SETUP_COMMAND = "mvn -q -f jvm-shim/pom.xml verify"
_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_SERVICES = "META-INF/services/org.apache.spark.sql.sources.DataSourceRegister"


def jars_dir() -> Path:
    """Folder inside the package that holds the built jar (shipped as package data)."""
    return _PACKAGE_DIR / "jars"


def jar_file() -> Path:
    """Where the jar of this package version is (or will be) built."""
    return jars_dir() / f"{JAR_PREFIX}{__version__}.jar"


def source_dir() -> Path | None:
    """``jvm-shim/`` of a source checkout, or None for an installed wheel."""
    candidate = _PACKAGE_DIR.parent.parent / "jvm-shim"
    return candidate if (candidate / "pom.xml").is_file() and (candidate / "src" / "main" / "java").is_dir() else None


def s3a_jars() -> list[Path]:
    """hadoop-aws and the AWS SDK modules Maven copied to ``jvm-shim/target/s3a/`` (empty when absent).

    pyspark ships no S3 FileSystem; with these on ``spark.jars`` both readers open ``s3a://`` paths.
    """
    return _copied_jars("s3a")


def delta_jars(package: str) -> list[Path]:
    """The jars Maven copied to ``jvm-shim/target/delta/`` when they hold ``package``'s delta-spark jar
    (``io.delta:delta-spark_4.2_2.13:4.4.0`` -> ``delta-spark_4.2_2.13-4.4.0.jar``), else empty: then
    Spark resolves ``package`` itself (``spark.jars.packages``)."""
    _, artifact, version = package.split(":")
    jars = _copied_jars("delta")
    return jars if f"{artifact}-{version}.jar" in {j.name for j in jars} else []


def _copied_jars(name: str) -> list[Path]:
    """The jars Maven's ``dependency:copy`` put in ``jvm-shim/target/<name>/`` (empty when absent)."""
    src = source_dir()
    folder = src / "target" / name if src is not None else None
    return sorted(folder.glob("*.jar")) if folder is not None and folder.is_dir() else []


def session_jars() -> list[str]:
    """What :func:`~deeplake_spark.spark.session.spark_session` puts on ``spark.jars``: the reader jar
    (built first when stale, see :func:`ensure_jar`) and the S3A jars, those that exist."""
    jar = ensure_jar()
    return ([jar] if jar else []) + [str(p) for p in s3a_jars()]


def _source_entries(src: Path) -> list[Path]:
    # Folders too: deleting or adding a source file changes its folder's mtime.
    main = src / "src" / "main"
    return [src / "pom.xml", main, *main.rglob("*")]


def is_stale() -> bool:
    """True when sources exist and the jar is missing or older than one of them (or the pom)."""
    src = source_dir()
    if src is None:
        return False
    jar = jar_file()
    if not jar.exists():
        return True
    built = jar.stat().st_mtime
    return any(p.stat().st_mtime > built for p in _source_entries(src))


def build_jar(*, force: bool = False, mvn: str | None = None) -> str:
    """Build ``jvm-shim/`` with Maven into ``deeplake_spark/jars/deeplake-spark-jvm-<version>.jar``; returns its path.

    Runs ``mvn -q -o -f jvm-shim/pom.xml package -DskipTests`` (offline, from ``~/.m2``), and online
    when that fails (first build on a machine). Skips the build when the jar is newer than every
    source unless ``force``. Safe to call from several processes at once (a file lock serializes
    builds; the jar is replaced atomically).
    """
    src = source_dir()
    if src is None:
        raise DeepLakeSparkError("no jvm-shim/ sources next to this package (installed wheel?); nothing to build")
    mvn = mvn or shutil.which("mvn")
    if mvn is None:
        raise DeepLakeSparkError(f"Maven (mvn) not found on PATH; cannot build the JVM reader jar {jar_file()}. "
                                 f"Install Maven 3.8+ and a JDK 17+, then run the README set-up: {SETUP_COMMAND}")
    folder = jars_dir()
    folder.mkdir(parents=True, exist_ok=True)
    # The lock lives outside the package so a checkout never shows it as an untracked file.
    lock_name = f"deeplake-spark-jvm-{hashlib.sha1(str(folder).encode()).hexdigest()[:12]}.lock"
    with open(Path(tempfile.gettempdir()) / lock_name, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and not is_stale():
            return str(jar_file())
        _maven_package(src, mvn, jar_file())
    for old in folder.glob(f"{JAR_PREFIX}*.jar"):
        if old != jar_file():
            old.unlink(missing_ok=True)
    log.info("built %s", jar_file())
    return str(jar_file())


def _maven_package(src: Path, mvn: str, target: Path) -> None:
    # Maven writes the shaded jar next to the target under a temporary name; os.replace swaps it in.
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    command = [mvn, "-q", "-B", "-f", str(src / "pom.xml"), "package", "-DskipTests", f"-Djar.output={partial}"]
    try:
        result = subprocess.run([*command[:2], "-o", *command[2:]], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log.info("offline Maven build failed, retrying online (first build on this machine?)")
            result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not partial.is_file():
            output = (result.stdout + result.stderr)[-4000:]
            raise DeepLakeSparkError(f"Maven failed building the JVM reader ({src / 'pom.xml'}):\n{output}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def ensure_jar() -> str | None:
    """The jar to put on ``spark.jars``, rebuilt first when sources are newer and Maven exists.

    Never raises, so Spark sessions start without it: without Maven, or when the build fails, it logs
    why (and how to build it) and returns the existing jar, if any; ``format("deeplake-jvm")`` is then
    unavailable or outdated.
    """
    jar = jar_file()
    if is_stale():
        try:
            return build_jar()
        except DeepLakeSparkError as e:
            state = "is older than jvm-shim/ sources" if jar.exists() else "is missing"
            log.warning("the JVM reader jar %s %s and could not be built: %s", jar, state, e)
    return str(jar) if jar.exists() else None


def is_available(jar: str | None = None) -> bool:
    """True when a jar with the source registration exists (it still has to be on the JVM classpath)."""
    path = Path(jar) if jar else jar_file()
    if not path.exists():
        return False
    with zipfile.ZipFile(path) as archive:
        return _SERVICES in archive.namelist()
