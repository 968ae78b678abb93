"""Checkpoints with orbax: the train state, the grain iterator and a
description of the model, saved together under WORKDIR/checkpoints/<step>.

Rerunning with the same workdir resumes from the latest step; a workdir whose
checkpoint describes a different model is refused at start.
"""
import os

import flax.traverse_util
import grain
import jax
import numpy as np
import orbax.checkpoint as ocp


class CheckpointMismatchError(ValueError):
  """The workdir holds a checkpoint of another model."""


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


class Checkpoints:
  """Saves and restores (train state, data iterator) by step."""

  def __init__(self, workdir, keep):
    self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
    self.manager = ocp.CheckpointManager(
        self.directory,
        item_names=("state", "data", "model"),
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
    )

  def latest_step(self):
    return self.manager.latest_step()

  def save(self, step, state, data_iterator, description, force=False):
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=grain.checkpoint.CheckpointSave(data_iterator),
        model=ocp.args.JsonSave(description)), force=force)

  def restore_latest(self, abstract_state, data_iterator, description):
    """Restores the latest checkpoint into the given shapes and shardings.

    Returns:
      (state, step), or (None, None) when the workdir has no checkpoint.
    """
    step = self.manager.latest_step()
    if step is None:
      return None, None
    saved = self.manager.restore(step, args=ocp.args.Composite(
        model=ocp.args.JsonRestore()))["model"]
    diff = _differences(saved, description)
    if diff:
      raise CheckpointMismatchError(
          f"{self.directory} holds a checkpoint (step {step}) of a different "
          f"model; use a new --workdir or remove it. Differences:\n  " +
          "\n  ".join(diff[:10]) +
          (f"\n  ... and {len(diff) - 10} more" if len(diff) > 10 else ""))
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state),
        data=grain.checkpoint.CheckpointRestore(data_iterator)))
    return restored["state"], step

  def reached_preemption(self, step):
    """True on every process at the same step once any got SIGTERM
    (multi-process runs)."""
    return jax.process_count() > 1 and self.manager.reached_preemption(step)

  def wait_until_finished(self):
    self.manager.wait_until_finished()

  def close(self):
    self.manager.close()


def load_variables(workdir):
  """Model variables (params, batch_stats) of a workdir's latest checkpoint,
  as numpy arrays on the host, whatever mesh saved them."""
  directory = os.path.join(workdir, "checkpoints")
  steps = ocp.utils.checkpoint_steps(directory) if os.path.isdir(directory) else []
  if not steps:
    raise FileNotFoundError(f"no vq checkpoint in {directory}")
  path = os.path.join(directory, str(max(steps)), "state")
  checkpointer = ocp.PyTreeCheckpointer()
  tree = checkpointer.metadata(path).item_metadata.tree
  state = checkpointer.restore(path, restore_args=jax.tree.map(
      lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree))
  return {"params": state["params"], "batch_stats": state["batch_stats"]}
