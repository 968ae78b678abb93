"""A trained run read back from its workdir: config, task and variables."""
import json
import os

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


def calibrating_evaluation(workdir, name, step, task_class):
  """The run's evaluation `name` (RUN/evaluations/<name>.json, written by
  `vq.evaluate --name`) as written, refused unless it evaluated `step` and
  changed no config field but the task's `calibration_fields`."""
  path = os.path.join(workdir, "evaluations", name + ".json")
  if not task_class.calibration_fields:
    raise ValueError(f"--calibration: prediction of a {task_class.name} run "
                     "takes no decision settings from an evaluation")
  try:
    with open(path, "rb") as f:
      record = json.loads(f.read().decode("utf-8"))
  except FileNotFoundError:
    raise FileNotFoundError(
        f"{path}: no such evaluation; write it with python -m vq.evaluate "
        f"--workdir={workdir} --name={name} --config.<field>=...") from None
  except ValueError as e:
    raise ValueError(f"{path}: damaged ({e})") from None
  if not (isinstance(record, dict) and isinstance(record.get("changes"), dict)
          and isinstance(record.get("scalars"), dict)):
    raise ValueError(f"{path}: not an evaluation that records the config "
                     "fields it changed (written by an older vq.evaluate?); "
                     "evaluate again")
  if record.get("step") != step:
    raise ValueError(f"{path} evaluated step {record.get('step')}, not step "
                     f"{step}: pass --step={record.get('step')}")
  other = sorted(set(record["changes"]) - set(task_class.calibration_fields))
  if other:
    raise ValueError(
        f"{path}: the evaluation changed {', '.join(other)}, which change the "
        "scores prediction computes with the run's config; only "
        f"{', '.join(task_class.calibration_fields)} may differ")
  return record


def load_run(workdir, which="best", config=None, calibration=""):
  """(config, task, variables, step) of a trained run; the task carries the
  calibration (e.g. anomaly thresholds) of that step's evaluation, or of
  the run's evaluation named `calibration` (`calibrating_evaluation`), whose
  changed fields the config then takes."""
  config = config or load_config(workdir)
  task_class = get_task_class(config.task)
  step = choose_step(workdir, which, config)
  if calibration:
    record = calibrating_evaluation(workdir, calibration, step, task_class)
    config = override(config, {k: change["to"] for k, change
                               in record["changes"].items()})
    scalars = record["scalars"]
  else:
    scalars = eval_scalars(workdir, step)
  task = task_class(config)
  task.use_workdir(workdir)
  task.calibration = task.calibrate(scalars)
  return config, task, checkpoint.load_variables(workdir, step), step
