r"""The DeepPCB dataset (Tang et al., 2019) in the MVTec AD layout, for
measuring the anomaly scorings on a second set of real industrial images.

  python -m vq.benchmarks.deep_pcb --source=/data/DeepPCB/PCBData \
      --output=/tmp/vq/deep_pcb

The dataset as its authors publish it: pairs of 640x640 binarised line-scan
images of printed circuit boards, a defect-free template
(`groupG/G/NNN_temp.jpg`) and the same board region tested
(`NNN_test.jpg`, with real and hand-added opens, shorts, mousebites, spurs,
spurious copper and pin holes), the tested image's defects as boxes in
`groupG/G_not/NNN.txt` (`x1 y1 x2 y2 type` per line), and the split in
`trainval.txt` / `test.txt` (`groupG/G/NNN.jpg groupG/G_not/NNN.txt`).
`--train` templates of the trainval pairs (a seeded shuffle) become the
training images; the test pairs give both test images, the template as
good and the tested image as defective, its boxes filled as its mask:

  OUTPUT/deep_pcb/train/good/NNN_temp.jpg
  OUTPUT/deep_pcb/test/good/NNN_temp.jpg
  OUTPUT/deep_pcb/test/defective/NNN_test.jpg
  OUTPUT/deep_pcb/ground_truth/defective/NNN_test_mask.png

Images are copied byte for byte; read with `data.source=mvtec,
data.path=OUTPUT, data.categories=('deep_pcb',)`.
"""
import os
import re
import shutil

import cv2
import numpy as np
from absl import app, flags

from vq.data.errors import AnnotationError
from vq.data.images import declared_size

CATEGORY = "deep_pcb"
KIND = "defective"


def _pairs(source, split):
  """[(template, tested image, box file)] of `split` ('trainval', 'test')."""
  listing = os.path.join(source, f"{split}.txt")
  if not os.path.isfile(listing):
    raise FileNotFoundError(f"{listing}: not found (is --source the "
                            "dataset's PCBData folder?)")
  pairs = []
  with open(listing) as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      fields = line.split()
      if len(fields) != 2 or not fields[0].endswith(".jpg"):
        raise AnnotationError(f"{listing}:{number}: expected 'IMAGE.jpg "
                              f"BOXES.txt', got {line.strip()!r}")
      stem = os.path.join(source, fields[0][:-len(".jpg")])
      pairs.append((stem + "_temp.jpg", stem + "_test.jpg",
                    os.path.join(source, fields[1])))
  return pairs


def box_mask(path, height, width):
  """uint8 [height, width]: 255 inside the file's boxes."""
  mask = np.zeros((height, width), np.uint8)
  with open(path) as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      values = re.split(r"[,\s]+", line.strip())
      try:
        x1, y1, x2, y2, _ = (int(v) for v in values)
      except ValueError:
        raise AnnotationError(f"{path}:{number}: expected 'x1 y1 x2 y2 "
                              f"type' (whole numbers), got "
                              f"{line.strip()!r}") from None
      if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
        raise AnnotationError(f"{path}:{number}: box {x1, y1, x2, y2} is "
                              f"not inside the {width}x{height} image")
      mask[y1:y2, x1:x2] = 255
  return mask


def convert(source, output, train=400, seed=0):
  """Writes the MVTec-layout tree; returns {split/kind: image count}."""
  root = os.path.join(output, CATEGORY)
  if os.path.exists(root):
    shutil.rmtree(root)
  trainval = _pairs(source, "trainval")
  if len(trainval) < train:
    raise ValueError(f"trainval.txt lists {len(trainval)} pairs; --train="
                     f"{train} needs as many")
  order = np.random.default_rng(seed).permutation(len(trainval))[:train]
  counts = {}

  def put(image, split_kind):
    if not os.path.isfile(image):
      raise FileNotFoundError(f"{image}: listed but not found")
    folder = os.path.join(root, split_kind)
    os.makedirs(folder, exist_ok=True)
    shutil.copyfile(image, os.path.join(folder, os.path.basename(image)))
    counts[split_kind] = counts.get(split_kind, 0) + 1

  for index in sorted(order):
    put(trainval[index][0], "train/good")
  truth = os.path.join(root, "ground_truth", KIND)
  os.makedirs(truth, exist_ok=True)
  for template, tested, boxes in _pairs(source, "test"):
    put(template, "test/good")
    put(tested, f"test/{KIND}")
    size = declared_size(np.fromfile(tested, np.uint8))
    if size is None:
      raise AnnotationError(f"{tested}: not a JPEG image")
    stem = os.path.splitext(os.path.basename(tested))[0]
    with open(os.path.join(truth, stem + "_mask.png"), "wb") as f:
      f.write(cv2.imencode(".png", box_mask(boxes, *size))[1].tobytes())
  return counts


def main(argv):
  del argv
  counts = convert(FLAGS.source, FLAGS.output, FLAGS.train, FLAGS.seed)
  for key, n in sorted(counts.items()):
    print(f"{key}: {n}")


if __name__ == "__main__":
  flags.DEFINE_string("source", None, "the dataset's PCBData folder "
                      "(trainval.txt, test.txt, group*/)", required=True)
  flags.DEFINE_string("output", None, "where the MVTec-layout tree goes",
                      required=True)
  flags.DEFINE_integer("train", 400, "templates of trainval pairs to train "
                       "on")
  flags.DEFINE_integer("seed", 0, "which templates train")
  FLAGS = flags.FLAGS
  app.run(main)
