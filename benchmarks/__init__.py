"""Ficus benchmarks: `python -m benchmarks --tier S` (see docs/performance.md)."""
