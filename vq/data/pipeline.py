"""grain pipelines shared by every task.

Training: shuffle -> repeat (reshuffled each epoch) -> random_map(transform)
-> this process's slice -> batch. Every process builds the same global order
and takes every n-th element, so the union of the processes' batches at a
step is the same global batch whatever the number of processes.
"""
import os

import grain
import numpy as np
from absl import flags

MAX_AUTO_WORKERS = 16


def auto_data_workers(platform, cores=None):
  """Grain worker processes for `data_workers=auto` on a `platform`
  (jax.default_backend()): none on CPU, whose cores run the step itself;
  on GPU or TPU every core this process may run on (its affinity: a SLURM
  task's share) but two (the training loop and XLA's runtime threads), at
  least one, at most MAX_AUTO_WORKERS."""
  if platform == "cpu":
    return 0
  cores = cores or len(os.sched_getaffinity(0))
  return max(1, min(cores - 2, MAX_AUTO_WORKERS))


def data_workers(value, platform):
  """config.data_workers ('auto' or a count, as text or int) -> a count
  (`auto_data_workers` on `platform`)."""
  if value == "auto":
    return auto_data_workers(platform)
  text = str(value)
  if not text.isdigit():
    raise ValueError(f"config.data_workers must be 'auto' or a number of "
                     f"worker processes (0: none), got {value!r}")
  return int(text)


def train_dataset(source, transform, *, global_batch_size, seed,
                  process_index=0, process_count=1):
  """Infinite per-process batches of `transform(record, rng)` outputs."""
  if global_batch_size % process_count:
    raise ValueError(f"batch_size {global_batch_size} must be divisible by the "
                     f"number of processes {process_count}")
  if len(source) == 0:
    raise ValueError("the training dataset is empty")
  ds = grain.MapDataset.source(source).seed(seed).shuffle().repeat()
  ds = ds.random_map(transform)
  ds = ds[process_index::process_count]
  return ds.batch(global_batch_size // process_count, drop_remainder=True)


def train_iterator(dataset, num_threads=2, num_workers=0, prefetch=64):
  """A checkpointable iterator reading ahead on `num_threads` threads.

  With `num_workers` > 0, that many worker processes read, decode and
  augment (each with its threads), so JPEG decoding and augmentation leave
  the training process's interpreter; the batches and their order are the
  same as without workers.
  """
  options = grain.ReadOptions(num_threads=num_threads,
                              prefetch_buffer_size=prefetch)
  ds = dataset.to_iter_dataset(options)
  if num_workers:
    if not flags.FLAGS.is_parsed():  # grain's workers read absl flags
      flags.FLAGS.mark_as_parsed()
    ds = ds.mp_prefetch(grain.MultiprocessingOptions(
        num_workers=num_workers, per_worker_buffer_size=2))
  return iter(ds)


def eval_batches(source, transform, batch_size, num_threads=2):
  """The whole `source` once, in order, as batches with a `batch_mask` entry.

  The last batch is padded to `batch_size` by repeating its final element;
  `batch_mask` is False on padding. Every process reads the whole evaluation set.
  """
  n = len(source)
  if n == 0:
    raise ValueError("the evaluation dataset is empty")
  ds = grain.MapDataset.source(source).map(transform)
  options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=64)
  elements = iter(ds.to_iter_dataset(options))
  for start in range(0, n, batch_size):
    items = [next(elements) for _ in range(min(batch_size, n - start))]
    batch_mask = np.arange(batch_size) < len(items)
    items += [items[-1]] * (batch_size - len(items))
    batch = {k: np.stack([it[k] for it in items]) for k in items[0]}
    batch["batch_mask"] = batch_mask
    yield batch
