r"""Prepares a config's data once as a TFDS dataset (ArrayRecord files).

  python -m vq.prepare_tfds --config=configs/unet_steel.py:data=severstal \
    --config.data.train_path=severstal/train.csv \
    --config.data.image_dir=severstal/train_images \
    --name=severstal --data_dir=/data/tensorflow_datasets

Reads what the config's reader gives (its train and evaluation sources,
after the split the reader computes), leaves out records the data check
finds bad (listed), and writes them as the splits 'train' and 'eval' of the
TFDS dataset NAME. Then any run reads it with

  --config.data.source=tfds --config.data.tfds_name=NAME \
  --config.data.tfds_data_dir=/data/tensorflow_datasets

through `tfds.data_source` and grain: the same records, random access, each
process its own share. The augmentation stays in the training config; the
prepared records are the reader's, before any resize.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from vq import config_base  # noqa: E402
from vq.cli import run, tool  # noqa: E402
from vq.data import check, tfds_records  # noqa: E402
from vq.tasks import get_task_class  # noqa: E402

FLAGS = flags.FLAGS


def prepare(config, name, data_dir="", threads=2):
  """Writes the config's data as the TFDS dataset `name`; returns its
  directory and the data check's report."""
  task_class = get_task_class(config.task)
  if config.data.get("source") == "tfds":
    raise ValueError("data.source is already tfds: name the reader to "
                     "prepare from (severstal, voc, ...)")
  if "tfds_name" not in config.data:
    raise ValueError(f"the {config.task} task does not read TFDS datasets")
  data = task_class(config).datasets()
  data, report = check.check_datasets(data, threads)
  path = tfds_records.write(
      name, {"train": data.train, "eval": data.eval}, data_dir,
      description=f"vq {config.task} data prepared from "
                  f"data.source={config.data.source}")
  return path, report


@tool
def main():
  config = FLAGS.config
  config_base.validate(config, get_task_class(config.task).default_config())
  path, report = prepare(config, FLAGS.name, FLAGS.data_dir)
  print(check.summary_table(report))
  for line in (report["train"]["reasons"] + report["eval"]["reasons"])[:50]:
    print("left out:", line)
  print(f"prepared {path}\nread it with --config.data.source=tfds "
        f"--config.data.tfds_name={FLAGS.name}" +
        (f" --config.data.tfds_data_dir={FLAGS.data_dir}"
         if FLAGS.data_dir else ""))


if __name__ == "__main__":
  config_flags.DEFINE_config_file("config", None, "A training config.")
  flags.DEFINE_string("name", None, "Name of the TFDS dataset to write.")
  flags.DEFINE_string("data_dir", "", "TFDS data_dir (TFDS's default if "
                      "empty).")
  flags.mark_flags_as_required(["config", "name"])
  run(main)
