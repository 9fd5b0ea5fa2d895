"""Tiny reference servers the benchmarks measure hookline against (``baseline_asgi``,
``baseline_quart``) and load the generator check with (``trivial``).

Each runs as ``python -m benchmarks.servers.<name> --bind 127.0.0.1:PORT`` and stops
on SIGTERM or SIGINT.
"""
