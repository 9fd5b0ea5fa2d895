"""hookline's benchmarks suite: throughput and latency beside the stack's ceiling and a
peer, measured in one run.

Run ``python -m benchmarks [scenario ...] [--target URL] [--rate R] [--duration D]
[--connections C] [--quick]`` or ``make bench``; benchmarks/README.md says what each
scenario measures and how load is generated. Servers run as separate processes on
127.0.0.1; closed-loop load comes from ``wrk`` (or a built-in generator), open-loop
load from the built-in generator in :mod:`benchmarks._openloop`. A benchmark is not a
test: it asserts no speed.
"""
