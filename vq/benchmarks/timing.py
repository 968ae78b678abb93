"""Timing helper for the benchmarks."""
import time

import jax
import numpy as np


def median_time(fn, *args, runs=5):
  """Median seconds of `fn(*args)` over `runs` calls, after one call that
  compiles; each call is waited for."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(runs):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return float(np.median(times))
