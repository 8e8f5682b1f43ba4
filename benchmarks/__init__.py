"""Benchmarks: each ``bench_<name>.py`` runs as ``python -m benchmarks.bench_<name>`` and writes
``benchmarks/results/<name>.json`` through :func:`benchmarks.common.write_result`."""
