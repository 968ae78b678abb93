"""Benchmarks whose figures go to docs/benchmarks.md."""
