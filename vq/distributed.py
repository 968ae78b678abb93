"""Multi-process start-up: jax.distributed.initialize when launched as several
processes.

Recognised launches:
  * JAX_COORDINATOR_ADDRESS=host:port with VQ_NUM_PROCESSES and VQ_PROCESS_ID
    (any launcher, e.g. several local processes: launch/local_multiprocess.sh);
  * SLURM with more than one task, Open MPI, Kubernetes indexed Jobs and Cloud
    TPU pods, detected by jax itself, when VQ_DISTRIBUTED=1 or SLURM_NTASKS > 1.
"""
import os

import jax


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
