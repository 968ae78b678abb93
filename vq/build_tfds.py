r"""`tfds build` for vq's dataset builders, without TFDS's other commands.

  python -m vq.build_tfds vq_severstal --manual_dir=/data/severstal \
      [--data_dir=/data/tensorflow_datasets]
  python -m vq.build_tfds vq_mvtec_ad/carpet --manual_dir=/data/mvtec_ad

Takes every argument of `tfds build` (TFDS's own parser and build code run)
with the builders of `vq.tfds_builders` registered. The `tfds` command
itself (TFDS 4.9) imports apache-beam at start for its format converter,
which vq does not need; where apache-beam is installed,
`tfds build NAME --imports=vq.tfds_builders ...` is the same build.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from vq.data.tfds_records import scratch_tempdir  # noqa: E402


def main(argv=None):
  import simple_parsing  # pylint: disable=g-import-not-at-top
  from tensorflow_datasets.scripts.cli import build  # pylint: disable=g-import-not-at-top

  import vq.tfds_builders  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  args = simple_parsing.parse(build.Args, args=sys.argv[1:] if argv is None
                              else argv, prog="python -m vq.build_tfds")
  with scratch_tempdir():
    args.execute()


if __name__ == "__main__":
  main()
