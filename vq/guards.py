"""What guards a training run's process and workdir: SIGTERM turned into a
clean save-and-exit, and one run per workdir."""
import fcntl
import os
import signal
import threading

import jax
from absl import logging


class TermSignal:
  """Records SIGTERM (preemption) so the loop can save and exit cleanly.

  Single-process runs only: with several processes, JAX's preemption service
  handles SIGTERM and orbax's `reached_preemption` tells every process when to
  save.
  """

  def __init__(self):
    self.received = False
    self._previous = None

  def __enter__(self):
    if (jax.process_count() == 1 and
        threading.current_thread() is threading.main_thread()):
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def _handle(self, signum, frame):
    del signum, frame
    logging.warning("SIGTERM received: saving a checkpoint, then exiting.")
    self.received = True

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


class WorkdirLock:
  """An exclusive lock on WORKDIR/.lock for the run (chief process): a
  second run in the same workdir is refused instead of mixing checkpoints."""

  def __init__(self, workdir, active):
    self.path = os.path.join(workdir, ".lock")
    self.active = active
    self.file = None

  def __enter__(self):
    if self.active:
      os.makedirs(os.path.dirname(self.path), exist_ok=True)
      self.file = open(self.path, "a")
      try:
        fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        self.file.close()
        raise RuntimeError(f"another run is using {os.path.dirname(self.path)}"
                           f" (it holds {self.path}); use another --workdir"
                           ) from None
    return self

  def __exit__(self, *exc):
    if self.file:
      self.file.close()
