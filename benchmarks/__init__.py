"""hookline's load benchmarks: throughput and latency beside reference servers.

Run ``python -m benchmarks [scenario ...] [--duration S] [--connections C] [--quick]``.
Each scenario starts its server as a separate process on 127.0.0.1, loads it with
``wrk`` (``benchmarks/install-wrk.sh`` installs it) or, without wrk, a built-in trio
load generator, then prints a table and writes ``benchmarks/results/<timestamp>.json``
with the machine's facts and the commands to reproduce each figure.

Scenarios live in :mod:`benchmarks._scenarios`; the reference servers in
``benchmarks/servers/``. A benchmark is not a test: it asserts no speed.
"""
