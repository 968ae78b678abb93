"""Trains and evaluates a vq config.

  python -m vq.main --config=configs/yolo.py --workdir=/tmp/yolo
  python -m vq.main --config=configs/yolo.py:variant=full --workdir=DIR \
      --config.batch_size=64

Started as several processes, each calls jax.distributed.initialize (see
vq/distributed.py and docs/scaling.md).
"""
import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorBoard writer's TF

from absl import app, flags  # noqa: E402
from absl import logging as absl_logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from vq import distributed, train  # noqa: E402
from vq.cli import reports_user_errors, run  # noqa: E402

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", None, "Path to a config file, with an optional ':arg'.",
    lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints and logs.")
flags.mark_flags_as_required(["config", "workdir"])


class _OnlyWarningsFrom(logging.Filter):
  """Drops INFO records of chatty libraries (orbax logs every file it writes)."""

  def __init__(self, *names):
    super().__init__()
    self.names = names

  def filter(self, record):
    return record.levelno >= logging.WARNING or not any(
        f"/{n}/" in record.pathname for n in self.names)


@reports_user_errors
def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  absl_logging.get_absl_handler().addFilter(_OnlyWarningsFrom("orbax"))
  distributed.initialize_if_launched()
  train.train_and_evaluate(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
  run(main)
