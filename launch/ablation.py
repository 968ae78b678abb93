r"""Runs variants of one config into sibling run directories, then compares.

  python launch/ablation.py --config=configs/keypoints.py --workdir=/tmp/vq/ablation

Each variant trains into WORKDIR/<name>, so `tensorboard --logdir WORKDIR`
overlays their curves. At the end WORKDIR holds loss_curves.png (training loss
of every variant) and results.md (final evaluation metrics, one row each).

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

from vq import train, visualize  # noqa: E402
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


def results_table(summaries):
  keys = sorted({k for s in summaries.values() for k in s["eval"]})
  lines = ["| run | " + " | ".join(keys) + " |",
           "|---|" + "---|" * len(keys)]
  for name, s in summaries.items():
    lines.append(f"| {name} | " + " | ".join(
        f"{s['eval'].get(k, float('nan')):.4f}" for k in keys) + " |")
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  runs = (dict(parse_run(r) for r in FLAGS.run) if FLAGS.run else
          config_ablation(flags.FLAGS["config"].config_filename))
  summaries = {}
  for name, overrides in runs.items():
    config = FLAGS.config.copy_and_resolve_references()
    config.unlock()
    config.update_from_flattened_dict(overrides)
    summaries[name] = train.train_and_evaluate(
        config, os.path.join(FLAGS.workdir, name))
  curves = {n: ([s for s, _ in v["losses"]], [l for _, l in v["losses"]])
            for n, v in summaries.items() if v["losses"]}
  if curves:
    write_image(os.path.join(FLAGS.workdir, "loss_curves.png"),
                visualize.line_chart(curves, "training loss", log_y=True))
  with open(os.path.join(FLAGS.workdir, "results.md"), "w") as f:
    f.write(results_table(summaries))
  print(results_table(summaries))


if __name__ == "__main__":
  app.run(main)
