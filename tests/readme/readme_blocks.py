"""README.md's fenced code blocks, as steps a runner executes in order (used by test_readme_blocks).

Rules the README follows so that every block runs verbatim:

* every block names its language: ``python``, ``sql``, ``bash`` run; ``text`` (layouts, diagrams,
  printed output) does not;
* the Quick start's ``python3 -m venv ...`` lines are the set-up/CI commands (checked against
  ``.ci/run`` by ``tests/unit/test_readme_commands.py``), not run here; its other lines run;
* blocks run in README order in one Python process, sharing names like notebook cells; a ``python``
  block whose first line is a comment saying ``new Python process`` runs alone in a fresh process
  (a JVM's Delta catalog is fixed when its session starts), between its neighbours; ``sql`` blocks
  run statement by statement on the main process's ``spark``; ``bash`` blocks run with
  ``.venv/bin`` first on ``PATH``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
RUN_LANGUAGES = ("python", "sql", "bash")
LANGUAGES = (*RUN_LANGUAGES, "text")
_FENCE = re.compile(r"^```([A-Za-z]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
_SETUP_LINE = re.compile(r"^python3 -m venv \.venv && ")
NEW_PROCESS = "new Python process"


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int  # line of the opening fence in README.md

    @property
    def where(self) -> str:
        return f"README.md:{self.line} ({self.language})"

    @property
    def starts_process(self) -> bool:
        first = self.code.lstrip().splitlines()[0] if self.code.strip() else ""
        return self.language == "python" and first.startswith("#") and NEW_PROCESS in first


def blocks(text: str | None = None) -> list[Block]:
    """Every fenced block of the README, in order."""
    text = README.read_text() if text is None else text
    return [Block(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in _FENCE.finditer(text)]


def runnable(block: Block) -> Block | None:
    """The part of ``block`` that runs here (None when nothing does)."""
    if block.language not in RUN_LANGUAGES:
        return None
    if block.language == "bash":
        lines = [line for line in block.code.splitlines() if not _SETUP_LINE.match(line)]
        code = "\n".join(lines)
        if not any(line.strip() and not line.lstrip().startswith("#") for line in lines):
            return None
        return Block(block.language, code + "\n", block.line)
    return block


def steps(all_blocks: list[Block]) -> list[Block]:
    """The runnable part of every block, in README order."""
    return [step for step in map(runnable, all_blocks) if step is not None]
