"""Multi-process start-up: jax.distributed.initialize when launched as several
processes.

Recognised launches:
  * JAX_COORDINATOR_ADDRESS=host:port with VQ_NUM_PROCESSES and VQ_PROCESS_ID
    (any launcher, e.g. several local processes: launch/local_multiprocess.sh);
  * SLURM with more than one task, Open MPI, Kubernetes indexed Jobs and Cloud
    TPU pods, detected by jax itself, when VQ_DISTRIBUTED=1 or SLURM_NTASKS > 1.
"""
import json
import os

import jax
import numpy as np


def initialize_if_launched():
  """Initializes jax.distributed when the environment asks for it."""
  env = os.environ
  if env.get("JAX_COORDINATOR_ADDRESS") and env.get("VQ_NUM_PROCESSES"):
    jax.distributed.initialize(
        coordinator_address=env["JAX_COORDINATOR_ADDRESS"],
        num_processes=int(env["VQ_NUM_PROCESSES"]),
        process_id=int(env["VQ_PROCESS_ID"]))
  elif env.get("VQ_DISTRIBUTED") == "1" or int(env.get("SLURM_NTASKS", "1")) > 1:
    jax.distributed.initialize()


def allgather_lists(items):
  """Every process's list (of JSON-serialisable items) joined in process
  order; the list itself on one process."""
  if jax.process_count() == 1:
    return list(items)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  data = np.frombuffer(json.dumps(list(items)).encode(), np.uint8)
  sizes = multihost_utils.process_allgather(np.int32(data.size))
  padded = np.zeros(int(sizes.max()), np.int32)
  padded[:data.size] = data
  rows = multihost_utils.process_allgather(padded)
  joined = []
  for row, size in zip(rows, sizes):
    joined += json.loads(row[:size].astype(np.uint8).tobytes().decode())
  return joined
