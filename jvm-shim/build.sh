#!/usr/bin/env bash
# Build the JVM reader jar with plain javac/jar against the installed pyspark wheel's jars (no Maven).
#   jvm-shim/build.sh [PYTHON]   (default: .venv/bin/python of the repository, else python3)
# Output: src/deeplake_spark/jars/deeplake-spark-jvm-<version>.jar (what spark_session() puts on spark.jars).
# The same build runs from Python: deeplake_spark.spark.jvm.build_jar(), and lazily in spark_session().
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
python="${1:-$repo/.venv/bin/python}"
[ -x "$python" ] || python=python3
jars="$("$python" -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')"
version="$("$python" -c 'import runpy; print(runpy.run_path("'"$repo"'/src/deeplake_spark/_version.py")["__version__"])')"
out="$repo/src/deeplake_spark/jars/deeplake-spark-jvm-$version.jar"
build="$here/build"
rm -rf "$build" && mkdir -p "$build/classes"
javac --release 17 -nowarn -encoding UTF-8 -cp "$jars/*" -d "$build/classes" $(find "$here/src/main/java" -name '*.java')
cp -r "$here/src/main/resources/." "$build/classes/"
mkdir -p "$(dirname "$out")"
rm -f "$(dirname "$out")"/deeplake-spark-jvm-*.jar
jar --create --file "$out.tmp" -C "$build/classes" . && mv "$out.tmp" "$out"
echo "$out"
