"""The README's test command is exactly what CI runs (.ci/run)."""

from __future__ import annotations

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_ci_runs_the_readme_test_command():
    readme = open(os.path.join(ROOT, "README.md")).read()
    commands = re.findall(r"^(python3 -m venv \.venv && .+)$", readme, flags=re.M)
    assert len(commands) >= 2 and commands[1].endswith("-m pytest -q")
    ci = [line for line in open(os.path.join(ROOT, ".ci", "run")).read().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == commands[1]
    assert commands[0].endswith("-m deeplake_spark.demo")
