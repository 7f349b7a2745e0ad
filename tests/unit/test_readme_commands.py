"""The README's test command is exactly what CI runs (.ci/run), and both README commands build the JVM reader."""

from __future__ import annotations

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SETUP = 'python3 -m venv .venv && .venv/bin/pip install -e ".[all,test]"'


def test_ci_runs_the_readme_test_command():
    readme = open(os.path.join(ROOT, "README.md")).read()
    commands = re.findall(r"^(python3 -m venv \.venv && .+)$", readme, flags=re.M)
    assert len(commands) >= 2 and commands[1].endswith("-m pytest -q")
    ci = [line for line in open(os.path.join(ROOT, ".ci", "run")).read().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == commands[1]
    assert commands[0].endswith("-m deeplake_spark.demo")


def test_readme_commands_build_the_jvm_reader_with_maven():
    """The demo builds the jar (no tests); the test command also runs the JUnit tests (``verify``)."""
    readme = open(os.path.join(ROOT, "README.md")).read()
    demo, test = re.findall(r"^(python3 -m venv \.venv && .+)$", readme, flags=re.M)[:2]
    assert demo == f"{SETUP} && mvn -q -f jvm-shim/pom.xml package -DskipTests && .venv/bin/python -m deeplake_spark.demo"
    assert test == f"{SETUP} && mvn -q -f jvm-shim/pom.xml verify && .venv/bin/python -m pytest -q"
