"""Benchmarks (`make bench`): each bench_*.py measures on this machine and writes
its section of docs/BENCHMARKS.md."""
