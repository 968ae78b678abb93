"""Trainer config fields shared by every task, and config validation.

A config is the trainer's fields (below) plus the fields of its task's
`default_config()`. Any other field is an error, reported at start.
"""
import difflib
import importlib.util
import os

import ml_collections
from absl import logging


class ConfigError(ValueError):
  """A config that cannot run: an unknown field, argument or choice."""


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
  c.keep_checkpoints = 2           # the latest; the best is kept as well
  c.best_metric = ""             # eval scalar that ranks the best checkpoint
  c.best_metric_mode = "max"     # max | min
  c.eval_batch_size = 64
  c.data_threads = 2             # grain reader threads per process
  c.data_workers = "auto"        # grain worker processes per process that
                                 # decode and augment: a count (0: in this
                                 # process) or auto (0 on CPU; on GPU/TPU
                                 # the process's cores but two, at most 16)
  c.data_check = "skip"          # at start, load every file once: skip (bad
                                 # records left out) | fatal | off
  c.freeze = ()                  # regexes over 'a/b/kernel' parameter paths
  c.profile_steps = 0            # >0: profile this many steps after step 10
  c.allow_changes = False        # resume with a config that changes what
                                 # was trained (vq.config_changes)
  c.compute_dtype = "auto"       # activations and convolutions: float32 |
                                 # bfloat16 | auto (bfloat16 on GPU/TPU,
                                 # float32 on CPU); parameters, optimizer
                                 # state, BatchNorm statistics, losses and
                                 # metrics stay float32
  c.device_memory_gb = 0.0       # memory a train step may use per device,
                                 # checked before the first step (0: what
                                 # the device reports; CPU: unchecked)
  c.device_peak_tflops = 0.0     # a device's peak for the logged MFU (0:
                                 # by device kind, vq.step_cost; CPU: none)

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
  if "depthwise" in config.get("model", {}):
    # XLA's grouped convolution compiles faster than the shifted
    # multiply-adds 'auto' picks on CPU (same outputs, tests/
    # test_mobilenet_v2.py); a few steps' run is mostly compilation.
    config.model.depthwise = "grouped"


def set_run(config, *, batch_size, num_train_steps, learning_rate,
            best_metric, best_metric_mode="max", warmup_steps=0,
            evaluations=2, log_every_steps=100, optimizer="adam",
            schedule="cosine"):
  """Sets the trainer fields most configs choose: evaluations (and saves)
  at equal intervals, the last at the final step; the checkpoint with the
  best `best_metric` is kept."""
  config.batch_size = batch_size
  config.num_train_steps = num_train_steps
  config.log_every_steps = log_every_steps
  config.eval_every_steps = config.checkpoint_every_steps = max(
      num_train_steps // evaluations, 1)
  config.best_metric = best_metric
  config.best_metric_mode = best_metric_mode
  config.optimizer.name = optimizer
  config.optimizer.learning_rate = learning_rate
  config.optimizer.schedule = schedule
  config.optimizer.warmup_steps = warmup_steps


def _typed(name, text, default):
  if isinstance(default, bool):
    if text.lower() not in ("1", "0", "true", "false"):
      raise ConfigError(f"config argument {name}={text!r}: expected 1/0 or "
                       f"true/false")
    return text.lower() in ("1", "true")
  try:
    return type(default)(text)
  except ValueError:
    raise ConfigError(f"config argument {name}={text!r}: expected "
                     f"{type(default).__name__}") from None


def parse_arg(arg, **defaults):
  """A config file's argument 'a=1,b=x' -> ConfigDict of `defaults`' keys.

  Values take the type of their default; a tuple default lists the allowed
  strings, its first the default. A key without a default is refused with
  the known keys (big_vision's `parse_arg` convention).
  """
  choices = {k: v for k, v in defaults.items() if isinstance(v, tuple)}
  args = ml_collections.ConfigDict(
      {k: v[0] if k in choices else v for k, v in defaults.items()})
  for item in filter(None, (arg or "").split(",")):
    key, sep, text = item.partition("=")
    if not sep:
      raise ConfigError(f"config argument {item!r}: expected key=value")
    if key not in defaults:
      close = difflib.get_close_matches(key, defaults, n=1)
      hint = f" (did you mean {close[0]}?)" if close else ""
      raise ConfigError(f"unknown config argument {key!r}{hint}; known: "
                       f"{', '.join(sorted(defaults))}")
    if key in choices:
      check_choice(f"config argument {key}", text, choices[key])
      args[key] = text
    else:
      args[key] = _typed(key, text, defaults[key])
  return args


def check_choice(name, value, choices):
  if value not in choices:
    raise ConfigError(f"{name} must be one of {', '.join(map(str, choices))}; "
                     f"got {value!r}")


def check_probability(name, value):
  if not 0.0 <= value <= 1.0:
    raise ConfigError(f"{name} is a probability (0 to 1), got {value}")


def check_space_to_depth(block):
  """model.space_to_depth: 1 (off) or the side of the pixel blocks."""
  if block < 1:
    raise ConfigError(f"model.space_to_depth must be 1 (off) or a block side "
                      f"of 2 or more, got {block}")


def nearest_multiple(hw, multiple):
  """(height, width) rounded to the nearest multiple (at least one)."""
  return tuple(max(multiple, round(v / multiple) * multiple) for v in hw)


def refuse_inapplicable(section, defaults, selector, fields_by_choice,
                        prefix="model"):
  """Refuses fields of `section` changed from `defaults` that the chosen
  `section[selector]` does not use.

  fields_by_choice: {choice: fields it uses}; a field named under no choice
  applies to all.
  """
  choice = section[selector]
  check_choice(f"{prefix}.{selector}", choice, tuple(fields_by_choice))
  specific = set().union(*map(set, fields_by_choice.values()))
  unused = sorted(k for k in specific - set(fields_by_choice[choice])
                  if section[k] != defaults[k])
  if unused:
    users = {k: [c for c, f in fields_by_choice.items() if k in f]
             for k in unused}
    raise ConfigError(
        f"{prefix}.{selector}={choice!r} does not use " + "; ".join(
            f"{prefix}.{k} (only {', '.join(users[k])})" for k in unused))


def _flat_keys(config, prefix=""):
  keys = set()
  for k, v in config.items():
    name = prefix + k
    if isinstance(v, ml_collections.ConfigDict):
      keys |= _flat_keys(v, name + ".")
    else:
      keys.add(name)
  return keys


def _open_fields(config, prefix=""):
  """Dotted names of the empty ConfigDicts in `config`: fields that take
  any sub-fields, checked by their task (the anomaly task's
  eval.candidates)."""
  names = []
  for k, v in config.items():
    if isinstance(v, ml_collections.ConfigDict):
      names += ([prefix + k] if not v else _open_fields(v, prefix + k + "."))
  return names


def validate(config, task_defaults):
  """Raises ConfigError naming each field neither the trainer nor the task
  knows, with the closest known names."""
  known = _flat_keys(trainer_config()) | _flat_keys(task_defaults)
  open_fields = tuple(name + "." for name in _open_fields(task_defaults))
  given = {name for name in _flat_keys(config)
           if not name.startswith(open_fields)}
  unknown = sorted(given - known)
  if unknown:
    lines = []
    for name in unknown:
      close = difflib.get_close_matches(name, known, n=2, cutoff=0.6)
      hint = f" (did you mean {' or '.join(close)}?)" if close else ""
      lines.append(f"  {name}{hint}")
    raise ConfigError(f"unknown config field(s) for task {config.task!r}:\n" +
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


def load_config_file(path, arg=None):
  """`get_config(arg)` of a config file named by path."""
  spec = importlib.util.spec_from_file_location(
      "vq_config_" + os.path.splitext(os.path.basename(path))[0], path)
  if spec is None or not os.path.isfile(path):
    raise FileNotFoundError(f"config file not found: {path}")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def per_class(values, class_names, name):
  """A value per class from one for all, one per class, or 'class=value'
  entries ('*=value' for the classes not named)."""
  values, n = tuple(values), len(class_names)
  if any(isinstance(v, str) for v in values):
    return _by_class_name(values, class_names, name)
  if len(values) == 1:
    return values * n
  if len(values) != n:
    raise ValueError(f"{name} needs 1 or {n} values (classes "
                     f"{class_names}), or 'class=value' entries, got "
                     f"{values}")
  return values


def _by_class_name(values, class_names, name):
  named = {}
  for entry in values:
    key, sep, value = str(entry).partition("=")
    try:
      number = float(value)
      named[key.strip()] = int(number) if number.is_integer() else number
    except ValueError:
      sep = ""
    if not sep:
      raise ValueError(f"{name}: {entry!r} is not 'class=value' (e.g. "
                       f"'{class_names[0]}=30', or '*=30' for the rest)")
  unknown = set(named) - set(class_names) - {"*"}
  if unknown and "*" not in named:
    raise ValueError(f"{name} names {sorted(unknown)}, not among the classes "
                     f"{class_names}; add '*=value' for the classes not named")
  if unknown:
    logging.info("%s names %s, not among the classes %s: ignored", name,
                 sorted(unknown), class_names)
  missing = [c for c in class_names if c not in named and "*" not in named]
  if missing:
    raise ValueError(f"{name} has no value for {missing}: name them, or add "
                     "'*=value' for the classes not named")
  return tuple(named.get(c, named.get("*")) for c in class_names)
