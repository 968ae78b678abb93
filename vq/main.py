"""Trains and evaluates a vq config.

  python -m vq.main --config=configs/yolo.py --workdir=/tmp/yolo
  python -m vq.main --config=configs/yolo.py:variant=full --workdir=DIR \
      --config.batch_size=64

Started as several processes, each calls jax.distributed.initialize (see
vq/distributed.py and docs/scaling.md).
"""
from absl import app, flags
from ml_collections import config_flags

from vq import distributed, train

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", None, "Path to a config file, with an optional ':arg'.",
    lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints and logs.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  distributed.initialize_if_launched()
  train.train_and_evaluate(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
  app.run(main)
