"""Case 9's aggregation over rounds (bench/cases/jvm_scan.py): medians of the rounds' figures and of
the rounds' own ratios, so one slow round (a burst of load from other processes) moves no figure."""

from __future__ import annotations

from bench.cases.jvm_scan import median_of_rounds, median_ratios


def one_round(jvm: float, python: float, cpu: float = 1.0) -> list[dict]:
    return [{"case": "scan_bytes", "system": "deeplake-jvm", "seconds": jvm, "cpu_seconds": cpu, "result": 7},
            {"case": "scan_bytes", "system": "deeplake", "seconds": python, "cpu_seconds": 3 * cpu, "result": 7}]


def test_figures_are_medians_and_one_slow_round_does_not_move_them():
    got = {r["system"]: r for r in median_of_rounds([one_round(1.0, 3.0), one_round(9.0, 3.1), one_round(1.1, 2.9)])}
    assert got["deeplake-jvm"]["seconds"] == 1.1 and got["deeplake"]["seconds"] == 3.0
    assert got["deeplake-jvm"]["cpu_seconds"] == 1.0 and got["deeplake"]["cpu_seconds"] == 3.0
    assert got["deeplake-jvm"]["rounds"] == 3 and got["deeplake-jvm"]["result"] == 7
    assert got["deeplake-jvm"]["spread"] == round((9.0 - 1.0) / 1.1, 2)     # the slow round shows as spread


def test_speedups_are_medians_of_each_rounds_own_ratio():
    rounds = [{"scan_bytes": {"vs_python": 3.0, "vs_parquet": 1.5, "cpu_vs_python": 2.9}},
              {"scan_bytes": {"vs_python": 0.8, "vs_parquet": 0.4, "cpu_vs_python": 3.0}},   # a round under load
              {"scan_bytes": {"vs_python": 3.2, "vs_parquet": 1.6, "cpu_vs_python": 3.1}}]
    assert median_ratios(rounds) == {"scan_bytes": {"vs_python": 3.0, "vs_parquet": 1.5, "cpu_vs_python": 3.0}}
