"""The JVM reader (``spark.read.format("deeplake-jvm")``): find, build and check its jar.

The Java sources live in ``jvm-shim/`` of a source checkout; the jar is built with plain ``javac``
against the jars of the installed pyspark wheel (no Maven) into ``deeplake_spark/jars/``, where
:func:`deeplake_spark.spark.session.spark_session` puts it on ``spark.jars``. An installed wheel
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
    return candidate if (candidate / "src" / "main" / "java").is_dir() else None


def pyspark_jars_dir() -> Path:
    """The jars of the installed pyspark wheel: the compile classpath."""
    import pyspark

    folder = Path(pyspark.__file__).resolve().parent / "jars"
    if not folder.is_dir():
        raise DeepLakeSparkError(f"pyspark at {folder.parent} has no jars/ folder; cannot build the JVM reader")
    return folder


def _source_entries(src: Path) -> list[Path]:
    # Folders too: deleting or adding a source file changes its folder's mtime.
    main = src / "src" / "main"
    return [main, *main.rglob("*")]


def is_stale() -> bool:
    """True when sources exist and the jar is missing or older than one of them."""
    src = source_dir()
    if src is None:
        return False
    jar = jar_file()
    if not jar.exists():
        return True
    built = jar.stat().st_mtime
    return any(p.stat().st_mtime > built for p in _source_entries(src))


def build_jar(*, force: bool = False, javac: str | None = None) -> str:
    """Compile ``jvm-shim/`` into ``deeplake_spark/jars/deeplake-spark-jvm-<version>.jar``; returns its path.

    Skips the build when the jar is newer than every source unless ``force``. Safe to call from
    several processes at once (a file lock serializes builds; the jar is replaced atomically).
    """
    src = source_dir()
    if src is None:
        raise DeepLakeSparkError("no jvm-shim/ sources next to this package (installed wheel?); nothing to build")
    javac = javac or shutil.which("javac")
    if javac is None:
        raise DeepLakeSparkError("javac not found on PATH; install a JDK 17+ to build the JVM reader")
    folder = jars_dir()
    folder.mkdir(parents=True, exist_ok=True)
    # The lock lives outside the package so a checkout never shows it as an untracked file.
    lock_name = f"deeplake-spark-jvm-{hashlib.sha1(str(folder).encode()).hexdigest()[:12]}.lock"
    with open(Path(tempfile.gettempdir()) / lock_name, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and not is_stale():
            return str(jar_file())
        _compile_and_package(src, Path(javac), jar_file())
    for old in folder.glob(f"{JAR_PREFIX}*.jar"):
        if old != jar_file():
            old.unlink(missing_ok=True)
    log.info("built %s", jar_file())
    return str(jar_file())


def _compile_and_package(src: Path, javac: Path, target: Path) -> None:
    java_files = [str(p) for p in sorted((src / "src" / "main" / "java").rglob("*.java"))]
    classpath = str(pyspark_jars_dir() / "*")
    with tempfile.TemporaryDirectory(prefix="deeplake-jvm-") as tmp:
        classes = Path(tmp) / "classes"
        classes.mkdir()
        command = [str(javac), "--release", "17", "-nowarn", "-encoding", "UTF-8", "-cp", classpath,
                   "-d", str(classes), *java_files]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise DeepLakeSparkError(f"javac failed building the JVM reader ({src}):\n{result.stderr[-4000:]}")
        resources = src / "src" / "main" / "resources"
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as jar:
            jar.writestr("META-INF/MANIFEST.MF", f"Manifest-Version: 1.0\nImplementation-Title: deeplake-spark-jvm\n"
                                                 f"Implementation-Version: {__version__}\n\n")
            for path in sorted(resources.rglob("*")):
                if path.is_file():
                    jar.write(path, path.relative_to(resources).as_posix())
            for path in sorted(classes.rglob("*.class")):
                jar.write(path, path.relative_to(classes).as_posix())
        os.replace(partial, target)


def ensure_jar() -> str | None:
    """The jar to put on ``spark.jars``, building it first when sources are newer and javac exists.

    Never raises: a failed build is logged and the existing jar (if any) is used, so Spark sessions
    still start; ``format("deeplake-jvm")`` then fails with Spark's "data source not found".
    """
    jar = jar_file()
    if is_stale():
        if shutil.which("javac") is None:
            log.warning("JVM reader jar %s is missing or older than jvm-shim/ and javac is not on PATH; "
                        "format('deeplake-jvm') may be unavailable or outdated", jar)
        else:
            try:
                return build_jar()
            except DeepLakeSparkError as e:
                log.warning("could not build the JVM reader jar: %s", e)
    return str(jar) if jar.exists() else None


def is_available(jar: str | None = None) -> bool:
    """True when a jar with the source registration exists (it still has to be on the JVM classpath)."""
    path = Path(jar) if jar else jar_file()
    if not path.exists():
        return False
    with zipfile.ZipFile(path) as archive:
        return _SERVICES in archive.namelist()
