"""Every code block of README.md runs verbatim, in order, on the data its Quick start makes.

The blocks run in a fresh folder holding a link to this interpreter's venv as ``.venv`` (so the
README's ``.venv/bin/...`` lines run as written) with ``AWS_*`` variables pointing at the suite's
SeaweedFS server (the README's S3 block takes its endpoint from the environment). Rules and the
block parser: readme_blocks.py; the runner: run_blocks.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from readme_blocks import LANGUAGES, README, Block, blocks, steps

pytest.importorskip("pyspark")
RUNNER = Path(__file__).with_name("run_blocks.py")


def test_every_block_names_a_known_language():
    found = blocks()
    assert len(found) >= 10
    unknown = [b.where for b in found if b.language not in LANGUAGES]
    assert not unknown, f"README blocks without a known language (python/sql/bash/text): {unknown}"


def test_the_quick_start_makes_the_example_data_first():
    first = steps(blocks())[0]
    assert first.language == "bash" and "deeplake_spark.sample_data" in first.code
    assert "python3 -m venv" not in first.code  # set-up lines are checked against .ci/run, not run here


class Runner:
    """One runner process fed blocks one at a time, so that blocks in their own process run between."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd, self.env, self.log = cwd, env, cwd / f"runner-{id(self)}.log"
        self.process = subprocess.Popen([sys.executable, str(RUNNER)], cwd=cwd, env=env, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(self.log, "w"))

    def run(self, block: Block) -> None:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps({"language": block.language, "code": block.code, "where": block.where}) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        if answer != f"OK {block.where}":
            self.process.kill()
            pytest.fail(f"{block.where} failed ({answer or 'runner died'}):\n{block.code}\n"
                        f"--- stderr tail ---\n{self.log.read_text()[-6000:]}")

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin
            self.process.stdin.close()
            assert self.process.wait(timeout=120) == 0, self.log.read_text()[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_every_block_runs_verbatim(tmp_path, s3_server):
    (tmp_path / ".venv").symlink_to(sys.prefix)  # the venv this suite runs in is the README's .venv
    env = {**os.environ, **s3_server.env, "DEEPLAKE_SPARK_PROGRESS": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(README.parent / "src"), os.environ.get("PYTHONPATH")]))}
    main = Runner(tmp_path, env)
    seconds: dict[str, float] = {}
    for block in steps(blocks()):
        start = time.perf_counter()
        if block.starts_process:
            alone = Runner(tmp_path, env)
            alone.run(block)
            alone.close()
        else:
            main.run(block)
        seconds[block.where] = time.perf_counter() - start
    main.close()
    assert len(seconds) >= 10
    print("slowest README blocks:", ", ".join(f"{w} {s:.1f} s" for w, s in sorted(seconds.items(), key=lambda x: -x[1])[:6]))
