r"""A trained run's metrics on its evaluation split or on other data.

  python -m vq.evaluate --workdir=RUN
  python -m vq.evaluate --workdir=RUN --config.data.eval_split=test
  python -m vq.evaluate --workdir=RUN --config.data.eval_path=/data/new_val

The run's own config is loaded and `--config.<field>=<value>` overrides it
(data fields: another split, another folder). Writes
RUN/evaluations/<name>.json ({step, data, changes: the fields that differ
from the run's config, scalars}), the evaluation's pictures as PNG files
beside it and <name>_images.csv: a line per image (its file and how it
fared: truth, score and decision; objects found and missed; Dice;
keypoint errors).
"""
import hashlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import jax  # noqa: E402
import ml_collections  # noqa: E402
from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from vq import (atomic_file, config_base, config_changes, per_image,  # noqa: E402
                run_config, runs, train)
from vq.cli import run, tool  # noqa: E402
from vq.data import pipeline  # noqa: E402
from vq.data.images import write_image  # noqa: E402
from vq.tasks import get_task_class  # noqa: E402


def evaluate(workdir, config=None, step="best", name=""):
  """Evaluates a run (with `config` overriding its own) on the records its
  data check (config.data_check, as in training) keeps; returns (scalars,
  path of the written JSON)."""
  trained = run_config.load_config(workdir)
  config = config or trained
  config_base.validate(config, get_task_class(config.task).default_config())
  _, task, variables, step = runs.load_run(workdir, step, config)
  data = train.load_checked_data(task, config)
  eval_step = jax.jit(task.eval_step)
  results = []
  for batch in pipeline.eval_batches(task.eval_source(data),
                                     data.eval_transform,
                                     config.eval_batch_size,
                                     config.data_threads):
    inputs = {k: v for k, v in batch.items() if k != "batch_mask"}
    results.append((batch, jax.device_get(eval_step(variables, inputs))))
  evaluation = task.evaluate(results, data)
  scalars = {k: float(v) for k, v in evaluation.scalars.items()}
  changes = {k: {"from": old, "to": new} for k, (old, new) in
             config_changes.differences(_as_json(trained),
                                        _as_json(config)).items()}
  name = name or default_name(step, changes)
  folder = os.path.join(workdir, "evaluations")
  os.makedirs(folder, exist_ok=True)
  path = os.path.join(folder, name + ".json")
  with atomic_file.replaced(path) as f:
    json.dump({"step": step, "data": _as_json(config.data),
               "changes": changes, "scalars": scalars}, f, indent=1)
  for key, images in evaluation.pictures.items():
    key = key.replace("/", "_")  # e.g. input_map_truth/patchcore
    for i, image in enumerate(images):
      write_image(os.path.join(folder, f"{name}_{key}_{i}.png"), image)
  per_image.write_csv(os.path.join(folder, f"{name}_images.csv"),
                      evaluation.per_image)
  return scalars, path


def _as_json(config):
  return json.loads(config.to_json_best_effort(sort_keys=True))


def default_name(step, changes):
  """`step<N>`, then `_data<hash>` where data fields differ from the run's
  config and `_config<hash>` where others do (an evaluation at another
  threshold or scoring never replaces the plain one's files)."""
  name = f"step{step}"
  for label, part in (
      ("data", {k: v for k, v in changes.items() if k.startswith("data.")}),
      ("config", {k: v for k, v in changes.items()
                  if not k.startswith("data.")})):
    if part:
      text = json.dumps(part, sort_keys=True, default=str)
      name += f"_{label}" + hashlib.sha1(text.encode()).hexdigest()[:8]
  return name


def _run_config_from_argv(argv):
  """The run's config, read before flags are parsed so that
  --config.<field> overrides apply to it."""
  for i, arg in enumerate(argv):
    if arg.startswith("--workdir="):
      workdir = arg.split("=", 1)[1]
    elif arg == "--workdir" and i + 1 < len(argv):
      workdir = argv[i + 1]
    else:
      continue
    try:
      return run_config.load_config(workdir)
    except (FileNotFoundError, config_base.ConfigError) as e:
      sys.exit(str(e))
  return ml_collections.ConfigDict()


FLAGS = flags.FLAGS


@tool
def main():
  scalars, path = evaluate(FLAGS.workdir, FLAGS.config, FLAGS.step,
                           FLAGS.name)
  for k, v in sorted(scalars.items()):
    print(f"{k}: {v:.4f}")
  print(f"-> {path}")


if __name__ == "__main__":
  flags.DEFINE_string("workdir", None, "A vq training run.")
  flags.DEFINE_string("step", "best", "best, latest or a step number.")
  flags.DEFINE_string("name", "", "Name of the result file (default: from the "
                      "step and the data config).")
  config_flags.DEFINE_config_dict("config", _run_config_from_argv(sys.argv),
                                  "The run's config, with overrides.")
  flags.mark_flags_as_required(["workdir"])
  run(main)
