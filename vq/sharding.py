"""Device mesh and shardings: data parallelism over every device of every
process, batches as global `jax.Array`s built from each process's local part.
"""
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def make_mesh():
  """A 1-D mesh whose data axis spans all devices of all processes."""
  return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def batch_sharding(mesh):
  """Leading (batch) axis split over the data axis."""
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh):
  return NamedSharding(mesh, P())


def global_batch(local_batch, mesh):
  """Assembles each process's local rows into global arrays.

  Process p's rows become rows [p * n_local, (p + 1) * n_local) of the global
  batch.
  """
  sharding = batch_sharding(mesh)
  num_devices = mesh.devices.size
  def to_global(x):
    global_rows = x.shape[0] * jax.process_count()
    if global_rows % num_devices:
      raise ValueError(
          f"global batch of {global_rows} rows does not split over "
          f"{num_devices} devices: make batch_size a multiple of {num_devices}")
    return jax.make_array_from_process_local_data(sharding, x)
  return jax.tree.map(to_global, local_batch)


def replicated_batch_as_global(full_batch, mesh):
  """A batch every process holds whole (evaluation), split over devices."""
  sharding = batch_sharding(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, x, x.shape),
      full_batch)
