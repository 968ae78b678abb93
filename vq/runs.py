"""A trained run read back from its workdir: config, task and variables."""
import json
import os

import ml_collections
from absl import logging

from vq import checkpoint, config_base, history
from vq.tasks import get_task_class


def tuples(value):
  """JSON lists back to the tuples configs use."""
  if isinstance(value, dict):
    return {k: tuples(v) for k, v in value.items()}
  if isinstance(value, list):
    return tuple(tuples(v) for v in value)
  return value


def load_config(workdir):
  """The ConfigDict the run trained with (WORKDIR/config.json), on top of
  today's defaults: a field added since the run was trained takes its
  default; one since removed is dropped with a warning."""
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{workdir} is not a vq run: no config.json")
  try:
    with open(path, "rb") as f:
      saved = tuples(json.loads(f.read().decode("utf-8")))
    task_class = get_task_class(saved["task"])
  except (ValueError, KeyError, TypeError, AttributeError) as e:
    # json's and UTF-8's errors are ValueErrors; a record without a task,
    # or not an object at all, the others.
    raise config_base.ConfigError(
        f"{path}: damaged or not a vq run's config ({type(e).__name__}: "
        f"{str(e)[:200]})") from None
  config = config_base.trainer_config()
  config.update(task_class.default_config())
  _merge(config, saved, path)
  return config


def _merge(config, saved, path, prefix=""):
  for key, value in saved.items():
    if key not in config:
      logging.warning("%s: field %s%s is no longer used; ignored", path,
                      prefix, key)
    elif isinstance(value, dict):
      _merge(config[key], value, path, f"{prefix}{key}.")
    else:
      config[key] = value


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
  step = choose_step(workdir, which, config)
  task.calibration = task.calibrate(eval_scalars(workdir, step))
  return config, task, checkpoint.load_variables(workdir, step), step
