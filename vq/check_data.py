r"""The data check alone: loads every record of a config's data once.

  python -m vq.check_data --config=configs/unet_steel.py \
    --config.data.source=severstal --config.data.train_path=train.csv ...

Prints, per split, the records read and those that fail with the reason
(the first 50; all of them with --output=report.json). The exit status is 1
when any record is bad. Training runs the same check at start
(`data_check`: skip leaves bad records out, fatal stops the run).
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from vq import config_base  # noqa: E402
from vq.cli import run, tool  # noqa: E402
from vq.data import check  # noqa: E402
from vq.tasks import get_task_class  # noqa: E402

FLAGS = flags.FLAGS


@tool
def main():
  config = FLAGS.config
  task_class = get_task_class(config.task)
  config_base.validate(config, task_class.default_config())
  data = task_class(config).datasets()
  _, report = check.check_datasets(data, config.data_threads)
  print(check.summary_table(report))
  reasons = report["train"]["reasons"] + report["eval"]["reasons"]
  for line in reasons[:50]:
    print(line)
  if FLAGS.output:
    with open(FLAGS.output, "w") as f:
      json.dump(report, f, indent=1)
  sys.exit(1 if reasons else 0)


if __name__ == "__main__":
  config_flags.DEFINE_config_file("config", None, "A training config.")
  flags.DEFINE_string("output", "", "Write the whole report (JSON) here.")
  flags.mark_flags_as_required(["config"])
  run(main)
