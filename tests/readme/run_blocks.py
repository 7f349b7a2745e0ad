"""Run README blocks sent on stdin, one JSON object per line ({language, code, where}), in order.

Run from the folder the README's paths are relative to. After each block it prints ``OK <where>``
(or ``FAIL <where>`` and the traceback, then exits 1). Blocks share one namespace, like notebook cells.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback


def run_sql(namespace: dict, code: str) -> None:
    spark = namespace["spark"]
    for statement in code.split(";"):
        lines = [line for line in statement.splitlines() if not line.strip().startswith("--")]
        if "".join(lines).strip():
            spark.sql("\n".join(lines)).collect()


def run(namespace: dict, language: str, code: str, where: str) -> None:
    if language == "python":
        exec(compile(code, where, "exec"), namespace)  # noqa: S102 - running the README is the point
    elif language == "sql":
        run_sql(namespace, code)
    else:
        env = dict(os.environ, PATH=os.path.abspath(".venv/bin") + os.pathsep + os.environ.get("PATH", ""))
        subprocess.run(["bash", "-euo", "pipefail", "-c", code], check=True, env=env)


def main() -> None:
    # Answers go to the original stdout; whatever the blocks print (show(), the CLI, Spark) to stderr.
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    namespace: dict = {"__name__": "__readme__"}
    for line in sys.stdin:
        step = json.loads(line)
        try:
            run(namespace, step["language"], step["code"], step["where"])
        except BaseException:  # noqa: BLE001 - reported to the test, which fails
            traceback.print_exc()
            print(f"FAIL {step['where']}", file=answers, flush=True)
            sys.stderr.flush()
            os._exit(1)
        sys.stdout.flush()
        print(f"OK {step['where']}", file=answers, flush=True)
    os._exit(0)  # delta-rs may abort at interpreter exit (delta-rs#2184); every block is done


if __name__ == "__main__":
    main()
