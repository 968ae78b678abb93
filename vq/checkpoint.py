"""Checkpoints with orbax: the train state, the grain iterator and a
description of the model, saved together under WORKDIR/checkpoints/<step>.

Rerunning with the same workdir resumes from the latest step; a workdir whose
checkpoint describes a different model is refused at start.
"""
import os
import shutil

import flax.traverse_util
import grain
import jax
import orbax.checkpoint as ocp
from absl import logging
from orbax.checkpoint.checkpoint_managers import (
    preservation_policy as preservation)


class CheckpointMismatchError(ValueError):
  """The workdir holds a checkpoint of another model."""


class CheckpointCorruptError(RuntimeError):
  """No checkpoint of the workdir can be restored."""


def _first_line(error):
  text = str(error).strip().splitlines()
  return f"{type(error).__name__}: {text[0][:300] if text else ''}"


def model_description(task_name, params):
  """What must match for a checkpoint to resume: task and parameter shapes."""
  flat = flax.traverse_util.flatten_dict(params, sep="/")
  return {"task": task_name,
          "params": {k: list(v.shape) for k, v in sorted(flat.items())}}


def _differences(saved, current):
  lines = []
  if saved.get("task") != current["task"]:
    lines.append(f"task {saved.get('task')!r} != {current['task']!r}")
  sp, cp = saved.get("params", {}), current["params"]
  for k in sorted(set(sp) | set(cp)):
    if sp.get(k) != cp.get(k):
      lines.append(f"{k}: checkpoint {sp.get(k, 'absent')} vs model "
                   f"{cp.get(k, 'absent')}")
  return lines


def _item_handlers():
  return {"state": ocp.StandardCheckpointHandler(),
          "data": grain.checkpoint.CheckpointHandler(),
          "model": ocp.JsonCheckpointHandler()}


class Checkpoints:
  """Saves and restores (train state, data iterator) by step.

  Keeps the latest `keep` checkpoints and, when `best_metric` names an eval
  scalar, also the one with the best value of it (orbax preservation
  policies).
  """

  def __init__(self, workdir, keep, best_metric="", best_mode="max"):
    self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
    self.best_metric = best_metric
    policies = [preservation.LatestN(keep)]
    if best_metric:
      policies.append(preservation.BestN(
          get_metric_fn=lambda metrics: metrics[best_metric],
          reverse=best_mode == "min", n=1,
          keep_checkpoints_without_metrics=False))
    self.manager = ocp.CheckpointManager(
        self.directory, item_handlers=_item_handlers(),
        options=ocp.CheckpointManagerOptions(
            create=True,
            preservation_policy=preservation.AnyPreservationPolicy(policies)))

  def latest_step(self):
    return self.manager.latest_step()

  def save(self, step, state, data_iterator, description, metrics=None,
           force=False):
    """Saves; `metrics` (eval scalars) rank it for the best checkpoint."""
    if metrics is not None and self.best_metric:
      metrics = {self.best_metric: float(metrics[self.best_metric])}
    else:
      metrics = None
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=grain.checkpoint.CheckpointSave(data_iterator),
        model=ocp.args.JsonSave(description)), metrics=metrics, force=force)

  def check_compatible(self, description):
    """Raises CheckpointMismatchError when the newest checkpoint whose
    description reads is of another model."""
    for step in sorted(self.manager.all_steps(), reverse=True):
      try:
        saved = self.manager.restore(step, args=ocp.args.Composite(
            model=ocp.args.JsonRestore()))["model"]
      except Exception:  # pylint: disable=broad-except
        continue  # unreadable: restore_latest sets it aside and says why
      break
    else:
      return
    diff = _differences(saved, description)
    if diff:
      raise CheckpointMismatchError(
          f"{self.directory} holds a checkpoint (step {step}) of a different "
          f"model; use a new --workdir or remove it. Differences:\n  " +
          "\n  ".join(diff[:10]) +
          (f"\n  ... and {len(diff) - 10} more" if len(diff) > 10 else ""))

  def restore_latest(self, abstract_state, data_iterator):
    """Restores the newest checkpoint that restores into the given shapes
    and shardings (call `check_compatible` first). A newer one that does
    not (truncated or missing files) is moved to WORKDIR/corrupt_checkpoints
    with a warning saying why.

    Returns:
      (state, step), or (None, None) when the workdir has no checkpoint.
    """
    failures = []
    for step in sorted(self.manager.all_steps(), reverse=True):
      try:
        restored = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state),
            data=grain.checkpoint.CheckpointRestore(data_iterator)))
      except Exception as e:  # pylint: disable=broad-except
        # orbax and TensorStore raise many types for damaged files.
        reason = _first_line(e)
        failures.append(f"step {step}: {reason}")
        logging.warning("checkpoint %d in %s cannot be restored (%s); it is "
                        "moved to %s and the one before is tried", step,
                        self.directory, reason, self._set_aside(step))
        continue
      return restored["state"], step
    if failures:
      raise CheckpointCorruptError(
          f"no checkpoint in {self.directory} restores (each moved to "
          f"corrupt_checkpoints/):\n  " + "\n  ".join(failures))
    return None, None

  def _set_aside(self, step):
    """Moves a damaged step out of the manager's sight; returns where."""
    aside = os.path.join(os.path.dirname(self.directory),
                         "corrupt_checkpoints", str(step))
    if jax.process_index() == 0:
      os.makedirs(os.path.dirname(aside), exist_ok=True)
      if os.path.exists(aside):
        shutil.rmtree(aside)
      os.replace(os.path.join(self.directory, str(step)), aside)
    if jax.process_count() > 1:
      ocp.multihost.sync_global_processes(f"vq_set_aside_{step}")
    self.manager.reload()
    return aside

  def reached_preemption(self, step):
    """True on every process at the same step once any got SIGTERM
    (multi-process runs)."""
    return jax.process_count() > 1 and self.manager.reached_preemption(step)

  def wait_until_finished(self):
    self.manager.wait_until_finished()

  def close(self):
    self.manager.close()


def _host_restore_target(metadata):
  """Abstract arrays on this host's first CPU device for saved metadata."""
  cpu = jax.sharding.SingleDeviceSharding(jax.local_devices(backend="cpu")[0])
  return jax.tree.map(
      lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=cpu), metadata)


def saved_steps(workdir):
  directory = os.path.join(workdir, "checkpoints")
  return ocp.utils.checkpoint_steps(directory) if os.path.isdir(directory) else []


def load_variables(workdir, step=None):
  """Model variables (params, batch_stats) of a workdir's checkpoint (the
  latest unless `step` is given) as numpy arrays, whatever mesh saved them."""
  directory = os.path.join(workdir, "checkpoints")
  steps = saved_steps(workdir)
  if not steps:
    raise FileNotFoundError(f"no vq checkpoint in {directory}")
  step = max(steps) if step is None else step
  with ocp.CheckpointManager(directory, item_handlers=_item_handlers(),
                             options=ocp.CheckpointManagerOptions(
                                 create=False)) as manager:
    metadata = manager.item_metadata(step)["state"]
    target = _host_restore_target(metadata)
    state = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(target)))["state"]
  state = jax.device_get(state)
  return {"params": state["params"], "batch_stats": state["batch_stats"]}
