"""Benchmark suite for deeplake-spark: ``python -m bench [--quick]``.

Every case builds its data deterministically under ``bench/_work/``, runs each system on the same
data and cores, and reports throughput ratios against peers and against hardware-bound baselines.
Results go to ``bench/RESULTS.md`` and ``bench/throughput.png``.
"""
