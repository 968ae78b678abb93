"""Writing a public defect dataset as an MVTec AD tree (the converters of
vq.photo_sets.magnetic_tile, .deep_pcb and .ball_screw)."""
import os
import shutil

import cv2
import numpy as np
from absl import app, flags


class MVTecTree:
  """OUTPUT/<category>/{train,test}/<kind>/ and ground_truth/<kind>/,
  emptied first; `counts` {split/kind: images}."""

  def __init__(self, output, category):
    self.root = os.path.join(output, category)
    if os.path.exists(self.root):
      shutil.rmtree(self.root)
    self.counts = {}

  def put(self, image, split_kind):
    """Copies `image` byte for byte into split/kind (e.g. 'test/crack')."""
    if not os.path.isfile(image):
      raise FileNotFoundError(f"{image}: listed but not found")
    folder = os.path.join(self.root, split_kind)
    os.makedirs(folder, exist_ok=True)
    shutil.copyfile(image, os.path.join(folder, os.path.basename(image)))
    self.counts[split_kind] = self.counts.get(split_kind, 0) + 1

  def put_mask(self, kind, image, mask):
    """ground_truth/<kind>/<image's stem>_mask.png: 255 where `mask`."""
    folder = os.path.join(self.root, "ground_truth", kind)
    os.makedirs(folder, exist_ok=True)
    stem = os.path.splitext(os.path.basename(image))[0]
    data = cv2.imencode(".png", (np.asarray(mask) > 0).astype(np.uint8) * 255)
    with open(os.path.join(folder, stem + "_mask.png"), "wb") as f:
      f.write(data[1].tobytes())


def run_converter(convert, source_help, train_help):
  """The command line of a converter `convert(source, output, train,
  seed) -> counts`."""
  flags.DEFINE_string("source", None, source_help, required=True)
  flags.DEFINE_string("output", None, "where the MVTec-layout tree goes",
                      required=True)
  flags.DEFINE_integer("train", 400, train_help)
  flags.DEFINE_integer("seed", 0, "which of them train")

  def main(argv):
    del argv
    f = flags.FLAGS
    for key, n in sorted(convert(f.source, f.output, f.train,
                                 f.seed).items()):
      print(f"{key}: {n}")
  app.run(main)
