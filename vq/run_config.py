"""A run's config read back from WORKDIR/config.json on top of today's
defaults (the tasks must be registered: import vq.tasks)."""
import json
import os

import ml_collections
from absl import logging

from vq import config_base
from vq.task_registry import get_task_class


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
    elif isinstance(value, dict) and not config[key]:
      # An open field (empty by default, config_base.validate): as saved.
      config[key] = ml_collections.ConfigDict(value)
    elif isinstance(value, dict):
      _merge(config[key], value, path, f"{prefix}{key}.")
    elif isinstance(config[key], str) and not isinstance(value, str):
      config[key] = str(value)  # a field since written as text (data_workers)
    else:
      config[key] = value
