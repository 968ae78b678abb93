r"""The DeepPCB dataset (Tang et al., 2019) in the MVTec AD layout, for
measuring the anomaly scorings on a second set of real industrial images.

  python -m vq.photo_sets.deep_pcb --source=/data/DeepPCB/PCBData \
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

import numpy as np

from vq.photo_sets.mvtec_tree import MVTecTree, run_converter
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
  trainval = _pairs(source, "trainval")
  if len(trainval) < train:
    raise ValueError(f"trainval.txt lists {len(trainval)} pairs; --train="
                     f"{train} needs as many")
  tree = MVTecTree(output, CATEGORY)
  order = np.random.default_rng(seed).permutation(len(trainval))[:train]
  for index in sorted(order):
    tree.put(trainval[index][0], "train/good")
  for template, tested, boxes in _pairs(source, "test"):
    tree.put(template, "test/good")
    tree.put(tested, f"test/{KIND}")
    size = declared_size(np.fromfile(tested, np.uint8))
    if size is None:
      raise AnnotationError(f"{tested}: not a JPEG image")
    tree.put_mask(KIND, tested, box_mask(boxes, *size))
  return tree.counts


if __name__ == "__main__":
  run_converter(convert, "the dataset's PCBData folder (trainval.txt, "
                "test.txt, group*/)", "templates of trainval pairs to train on")
