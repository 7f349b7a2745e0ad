"""Reliability soak: the scenarios of tests/reliability, run longer and bigger.

    python -m bench.soak                      # defaults below, a few minutes on 2 cores
    python -m bench.soak --writers 8 --batches 100 --crashes 300 --fuzz-inputs 200000 --rounds 3

Every round runs, on fresh datasets under a temporary folder: N writer processes appending
concurrently while reader processes check each version they see; appends racing a process that
deletes rows; a writer SIGKILLed at injected
and random points (then vacuum); the chunk decoder on seeded mutated chunks in a memory-limited
child. Prints the figures and exits non-zero if any invariant broke.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from typing import Any

_RELIABILITY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "reliability")


def _load_scenarios() -> tuple[Any, Any, Any]:
    # The scenarios live with the tests (one copy of the invariants); children find them through
    # sys.path, which multiprocessing hands down.
    if _RELIABILITY not in sys.path:
        sys.path.insert(0, _RELIABILITY)
    import concurrency_scenarios
    import crash_scenarios
    import fuzz_support

    return concurrency_scenarios, crash_scenarios, fuzz_support


def _fuzz(fuzz_support: Any, inputs: int, seed: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=fuzz_support.campaign_child, args=(inputs, seed, 512 << 20, out))
    proc.start()
    result = out.get(timeout=3600)
    proc.join(60)
    if proc.exitcode != 0:
        result.setdefault("failures", []).append(f"fuzz child exited with {proc.exitcode}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--batches", type=int, default=50, help="appends per writer")
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--delete-rounds", type=int, default=20, help="deletes racing the appends")
    parser.add_argument("--crashes", type=int, default=150)
    parser.add_argument("--fuzz-inputs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--keep", action="store_true", help="keep the datasets of a failed round")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    concurrency, crashes, fuzz_support = _load_scenarios()

    summary: dict[str, Any] = {"seed": args.seed, "commits": 0, "conflicts": 0, "reader_checks": 0, "crashes": 0,
                               "fuzz_inputs": 0, "problems": [], "rounds": []}
    for r in range(args.rounds):
        root = tempfile.mkdtemp(prefix="deeplake-soak-")
        seed = args.seed + r
        t0 = time.monotonic()
        conc = concurrency.run_concurrency(os.path.join(root, "concurrent"), writers=args.writers,
                                         batches=args.batches, readers=args.readers, timeout=3600)
        mixed = concurrency.run_appends_with_deletes(os.path.join(root, "deletes"), writers=3,
                                                   batches=max(1, args.batches // 2),
                                                   delete_rounds=args.delete_rounds, timeout=3600)
        crash = crashes.run_crash_campaign(os.path.join(root, "crash"), crashes=args.crashes, seed=seed)
        fuzz = _fuzz(fuzz_support, args.fuzz_inputs, seed)
        problems = conc.problems + mixed.problems + crash.problems + fuzz.get("failures", [])
        if "crash" in fuzz:
            problems.append(fuzz["crash"])
        summary["commits"] += conc.commits
        summary["conflicts"] += conc.conflicts
        summary["reader_checks"] += conc.reader_checks
        summary["crashes"] += crash.crashes
        summary["fuzz_inputs"] += fuzz.get("inputs", 0)
        summary["problems"] += problems
        summary["rounds"].append({
            "round": r, "seed": seed, "seconds": round(time.monotonic() - t0, 1),
            "concurrency": {"commits": conc.commits, "conflicts": conc.conflicts, "max_attempts": conc.max_attempts,
                            "orphan_parquet_before_vacuum": conc.orphan_parquet, "reader_checks": conc.reader_checks,
                            "reader_versions": conc.reader_versions, "seconds": round(conc.seconds, 1)},
            "deletes_racing_appends": {"appends": mixed.appends, "deletes": mixed.deletes,
                                       "delete_conflicts": mixed.delete_conflicts,
                                       "append_conflicts": mixed.append_conflicts},
            "crash": {"crashes": crash.crashes, "by_point": dict(crash.by_point),
                      "committed_by_point": dict(crash.committed_by_point),
                      "orphans_before_vacuum": crash.orphans_before_vacuum, "vacuumed": crash.vacuumed,
                      "seconds": round(crash.seconds, 1)},
            "fuzz": {k: fuzz.get(k) for k in ("inputs", "outcomes", "slowest_s")},
        })
        if problems and args.keep:
            print(f"round {r} failed; datasets kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        for item in summary["rounds"]:
            print(json.dumps(item, default=str))
        print(f"soak: {summary['commits']} concurrent commits ({summary['conflicts']} CommitConflicts surfaced "
              f"and retried), {summary['reader_checks']} reader checks, {summary['crashes']} SIGKILLs survived, "
              f"{summary['fuzz_inputs']} fuzzed chunks; {len(summary['problems'])} problems")
        for problem in summary["problems"][:50]:
            print("PROBLEM", problem)
    return 1 if summary["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
