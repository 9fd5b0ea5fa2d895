"""Tiny reference servers the benchmarks measure hookline against.

Each runs as ``python -m benchmarks.servers.<name> --bind 127.0.0.1:PORT`` and stops
on SIGTERM or SIGINT.
"""
