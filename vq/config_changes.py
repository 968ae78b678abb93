"""A resumed run's config against the one its checkpoints were trained
with (WORKDIR/config.json).

Fields that only say how long the run goes, how often it logs, evaluates
and saves, or how it reads its data may change on resume. Any other
difference (model, data, batch size, optimizer, ...) is refused with the
list of differences, unless the config sets `allow_changes`: then the
differences are logged and appended to WORKDIR/config_changes.jsonl.
"""
import json
import os

from absl import logging
from flax import traverse_util

from vq import config_base

CHANGES_FILE = "config_changes.jsonl"
# (Not data_workers: a resumed data iterator needs the worker count it
# saved its position with.)
MAY_CHANGE = ("num_train_steps", "log_every_steps", "eval_every_steps",
              "checkpoint_every_steps", "keep_checkpoints", "eval_batch_size",
              "data_threads", "data_check", "profile_steps", "allow_changes",
              "model.depthwise", "device_memory_gb",
              "device_peak_tflops")


def differences(stored, current):
  """{field: (stored value, current value)} of the fields set in both
  (JSON-like dicts) that differ, other than MAY_CHANGE."""
  old, new = (traverse_util.flatten_dict(c, sep=".")
              for c in (stored, current))
  # A value written the same as text is the same (data_workers, once an
  # int, is now text: 0 and "0").
  return {k: (old[k], new[k]) for k in sorted(old.keys() & new.keys())
          if k not in MAY_CHANGE and old[k] != new[k]
          and str(old[k]) != str(new[k])}


def stored_value(workdir, field):
  """`field` (dotted) of WORKDIR/config.json, or None (no file, no such
  field, or a damaged file, which `check_resume` reports)."""
  try:
    with open(os.path.join(workdir, "config.json"), "rb") as f:
      stored = json.loads(f.read().decode("utf-8"))
  except (OSError, ValueError):
    return None
  return traverse_util.flatten_dict(stored, sep=".").get(field)


def check_resume(workdir, config, step):
  """Refuses (ConfigError) to resume `workdir` at `step` with a `config`
  that differs from its config.json in what was trained, unless
  config.allow_changes (then records the differences)."""
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    return
  try:
    with open(path, "rb") as f:
      stored = json.loads(f.read().decode("utf-8"))
  except ValueError as e:
    raise config_base.ConfigError(
        f"{path}: damaged ({e}); the run at step {step} cannot be compared "
        "with the new config: start a new --workdir") from None
  current = json.loads(config.to_json_best_effort())
  changed = differences(stored, current)
  if not changed:
    return
  listed = "; ".join(f"{k}: {old!r} -> {new!r}"
                     for k, (old, new) in changed.items())
  if not config.allow_changes:
    raise config_base.ConfigError(
        f"{workdir} holds a run trained to step {step} with another config "
        f"({listed}); start a new --workdir, or pass "
        "--config.allow_changes=True to go on with these changes (recorded "
        f"in {CHANGES_FILE})")
  logging.warning("Resuming %s at step %d with changes: %s", workdir, step,
                  listed)
  line = json.dumps({"step": int(step), "changes": {
      k: {"from": old, "to": new} for k, (old, new) in changed.items()}})
  with open(os.path.join(workdir, CHANGES_FILE), "a") as f:
    f.write(line + "\n")
