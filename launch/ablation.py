r"""Runs variants of one config into sibling run directories, then compares.

  python launch/ablation.py --config=configs/keypoints.py --workdir=/tmp/vq/ablation

Each variant trains into WORKDIR/<name>, so `tensorboard --logdir WORKDIR`
overlays their curves. At the end WORKDIR holds loss_curves.png (training loss
of every variant, per logging interval) and results.md (each run's last
evaluation, one row each), both read from the runs' history files.

Variants come from `--run name:field=value,field=value` flags (values are
Python literals), or, without flags, from the config file's ABLATION dict
{name: {field: value}}. Runs that finished are not retrained: rerunning
resumes or skips them.
"""
import ast
import importlib.util
import os
import sys

from absl import app, flags
from ml_collections import config_flags

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from vq import history, train, visualize  # noqa: E402
from vq.data.images import write_image  # noqa: E402

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file (':arg' allowed).")
flags.DEFINE_string("workdir", None, "Parent directory of the runs.")
flags.DEFINE_multi_string("run", [], "name:field=value,field=value")
flags.mark_flags_as_required(["config", "workdir"])


def parse_run(spec):
  """'frozen:freeze=("^backbone/",)' -> ('frozen', {'freeze': (...)})."""
  name, _, assignments = spec.partition(":")
  overrides = {}
  for part in filter(None, _split_top_level(assignments)):
    field, _, value = part.partition("=")
    try:
      overrides[field.strip()] = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
      overrides[field.strip()] = value.strip()
  return name, overrides


def _split_top_level(text):
  """Splits on commas outside brackets and quotes."""
  parts, depth, quote, current = [], 0, None, ""
  for ch in text:
    if quote:
      quote = None if ch == quote else quote
    elif ch in "'\"":
      quote = ch
    elif ch in "([{":
      depth += 1
    elif ch in ")]}":
      depth -= 1
    elif ch == "," and depth == 0:
      parts.append(current)
      current = ""
      continue
    current += ch
  return parts + [current]


def config_ablation(config_path):
  spec = importlib.util.spec_from_file_location("ablation_config",
                                                config_path.split(":")[0])
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "ABLATION"):
    raise app.UsageError(f"{config_path} has no ABLATION dict; give --run")
  return module.ABLATION


def results_table(results):
  """{run: last eval scalars} -> a markdown table, one row per run."""
  keys = sorted({k for r in results.values() for k in r if k != "step"})
  lines = ["| run | step | " + " | ".join(keys) + " |",
           "|---|---|" + "---|" * len(keys)]
  for name, r in results.items():
    lines.append(f"| {name} | {r.get('step', '-')} | " + " | ".join(
        f"{r.get(k, float('nan')):.4f}" for k in keys) + " |")
  return "\n".join(lines) + "\n"


def run_ablation(base_config, runs, workdir):
  """Trains (or resumes, or skips when finished) every run, then writes
  loss_curves.png and results.md from the runs' histories, so a rerun
  reproduces them. Returns the table."""
  results, curves = {}, {}
  for name, overrides in runs.items():
    config = base_config.copy_and_resolve_references()
    config.unlock()
    config.update_from_flattened_dict(overrides)
    run_dir = os.path.join(workdir, name)
    train.train_and_evaluate(config, run_dir)
    evaluations = history.read(run_dir, history.EVAL)
    results[name] = evaluations[-1] if evaluations else {}
    logged = history.read(run_dir, history.TRAIN)
    if logged:
      curves[name] = ([r["step"] for r in logged],
                      [r["train/loss"] for r in logged])
  if curves:
    write_image(os.path.join(workdir, "loss_curves.png"),
                visualize.line_chart(curves, "training loss", log_y=True))
  table = results_table(results)
  with open(os.path.join(workdir, "results.md"), "w") as f:
    f.write(table)
  return table


def main(argv):
  del argv
  runs = (dict(parse_run(r) for r in FLAGS.run) if FLAGS.run else
          config_ablation(flags.FLAGS["config"].config_filename))
  print(run_ablation(FLAGS.config, runs, FLAGS.workdir))


if __name__ == "__main__":
  app.run(main)
