"""Trainer config fields shared by every task, and config validation.

A config is the trainer's fields (below) plus the fields of its task's
`default_config()`. Any other field is an error, reported at start.
"""
import difflib

import ml_collections


def trainer_config():
  """Fields the trainer reads, with their defaults."""
  c = ml_collections.ConfigDict()
  c.task = ""                    # key of vq.tasks.TASKS
  c.seed = 0
  c.batch_size = 32              # global, over all processes and devices
  c.num_train_steps = 1000
  c.log_every_steps = 50         # train scalars, NaN check
  c.eval_every_steps = 500       # also evaluates at the last step
  c.checkpoint_every_steps = 500  # also saves at the last step
  c.keep_checkpoints = 2
  c.eval_batch_size = 64
  c.data_threads = 2             # grain reader threads per process
  c.freeze = ()                  # regexes over 'a/b/kernel' parameter paths
  c.profile_steps = 0            # >0: profile this many steps after step 10

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = "adam"      # adam | adamw | sgd | rmsprop
  c.optimizer.learning_rate = 1e-3
  c.optimizer.schedule = "cosine"  # constant | cosine | cosine_restarts | step
  c.optimizer.warmup_steps = 0
  c.optimizer.end_factor = 0.0   # final lr / peak lr for cosine schedules
  c.optimizer.restart_period = 1000  # cosine_restarts: steps per cycle
  c.optimizer.step_boundaries = (0.5, 0.75)  # step: fractions of training
  c.optimizer.step_factor = 0.1  # step: lr multiplier at each boundary
  c.optimizer.b1 = 0.9
  c.optimizer.b2 = 0.999
  c.optimizer.momentum = 0.9     # sgd, rmsprop
  c.optimizer.weight_decay = 1e-4  # adamw
  c.optimizer.grad_clip_norm = 0.0  # 0: no clipping
  return c


def few_step_run(config):
  """Sets the trainer fields of a few-step run (configs' variant=test)."""
  config.batch_size = 8
  config.eval_batch_size = 8
  config.num_train_steps = 4
  config.log_every_steps = 2
  config.eval_every_steps = 4
  config.checkpoint_every_steps = 4
  config.optimizer.warmup_steps = 0


def parse_config_arg(arg):
  """A config file's argument 'a=1,b=x' -> {'a': '1', 'b': 'x'}."""
  return dict(kv.split("=", 1) for kv in arg.split(",") if kv) if arg else {}


def _flat_keys(config, prefix=""):
  keys = set()
  for k, v in config.items():
    name = prefix + k
    if isinstance(v, ml_collections.ConfigDict):
      keys |= _flat_keys(v, name + ".")
    else:
      keys.add(name)
  return keys


def validate(config, task_defaults):
  """Raises ValueError naming each field neither the trainer nor the task
  knows, with the closest known names."""
  known = _flat_keys(trainer_config()) | _flat_keys(task_defaults)
  given = _flat_keys(config)
  unknown = sorted(given - known)
  if unknown:
    lines = []
    for name in unknown:
      close = difflib.get_close_matches(name, known, n=2, cutoff=0.6)
      hint = f" (did you mean {' or '.join(close)}?)" if close else ""
      lines.append(f"  {name}{hint}")
    raise ValueError(f"unknown config field(s) for task {config.task!r}:\n" +
                     "\n".join(lines))


def flatten_for_hparams(config):
  """Dotted-name -> scalar (sequences as strings) for TensorBoard hparams."""
  flat = {}
  for name in _flat_keys(config):
    value = config
    for part in name.split("."):
      value = value[part]
    flat[name] = value if isinstance(value, (bool, int, float, str)) else str(value)
  return flat
