"""Benchmarks: `python -m bench NAME` runs bench/NAME.py and writes bench/results/NAME.md."""
