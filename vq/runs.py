"""A trained run read back from its workdir: config, task and variables."""
import ml_collections

from vq import checkpoint, history
from vq.run_config import load_config
from vq.tasks import get_task_class


def override(config, overrides):
  """A copy of `config` with {dotted field: value} set; unknown fields are
  refused."""
  config = ml_collections.ConfigDict(config.to_dict())
  for field, value in (overrides or {}).items():
    section, _, name = field.rpartition(".")
    parent = config
    for part in filter(None, section.split(".")):
      parent = parent[part]
    if name not in parent:
      raise KeyError(f"{field}: no such config field")
    parent[name] = value
  return config


def choose_step(workdir, which, config):
  """'latest', 'best' (by config.best_metric; the latest when the run has
  no ranked evaluation) or a step number -> a saved step."""
  steps = checkpoint.saved_steps(workdir)
  if not steps:
    raise FileNotFoundError(f"no checkpoint in {workdir}/checkpoints")
  if which == "latest":
    return max(steps)
  if which == "best":
    ranked = [r for r in history.read(workdir, history.EVAL)
              if r["step"] in steps and config.best_metric in r]
    if not ranked:
      return max(steps)
    sign = -1 if config.get("best_metric_mode", "max") == "min" else 1
    return max(ranked, key=lambda r: (sign * r[config.best_metric],
                                      r["step"]))["step"]
  step = int(which)
  if step not in steps:
    raise ValueError(f"step {step} is not saved in {workdir}; saved: {steps}")
  return step


def eval_scalars(workdir, step):
  """The evaluation scalars recorded at `step` ({} if not evaluated)."""
  for record in history.read(workdir, history.EVAL):
    if record["step"] == step:
      return record
  return {}


def load_run(workdir, which="best", config=None):
  """(config, task, variables, step) of a trained run; the task carries the
  calibration (e.g. anomaly thresholds) of that step's evaluation."""
  config = config or load_config(workdir)
  task = get_task_class(config.task)(config)
  task.use_workdir(workdir)
  step = choose_step(workdir, which, config)
  task.calibration = task.calibrate(eval_scalars(workdir, step))
  return config, task, checkpoint.load_variables(workdir, step), step
