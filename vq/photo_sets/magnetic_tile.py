r"""The Magnetic-tile defect dataset (Huang et al., 2018) in the MVTec AD
layout, for measuring the anomaly defaults on real industrial photographs.

  python -m vq.photo_sets.magnetic_tile --source=/data/Magnetic-tile-defect-datasets. \
      --output=/tmp/vq/magnetic_tile

The dataset as its authors publish it: MT_Free (defect-free tiles) and
MT_Blowhole, MT_Break, MT_Crack, MT_Fray, MT_Uneven, each an `Imgs/` folder
of grey JPEG photographs of many sizes and aspect ratios beside a PNG mask
of the same stem (grey levels; >= 128 is defective). `--train` defect-free
tiles (chosen by a seeded shuffle) become the training images, the other
defect-free tiles and every defective one the test split:

  OUTPUT/magnetic_tile/train/good/*.jpg
  OUTPUT/magnetic_tile/test/{good,blowhole,break,crack,fray,uneven}/*.jpg
  OUTPUT/magnetic_tile/ground_truth/<kind>/<stem>_mask.png

The photographs are copied byte for byte; read with `data.source=mvtec,
data.path=OUTPUT, data.categories=('magnetic_tile',)`.
"""
import os

import cv2
import numpy as np

from vq.photo_sets.mvtec_tree import MVTecTree, run_converter
from vq.data.errors import AnnotationError

KINDS = ("blowhole", "break", "crack", "fray", "uneven")
CATEGORY = "magnetic_tile"


def _pairs(source, folder):
  """(photo, mask) paths of one MT_* folder, in name order."""
  imgs = os.path.join(source, folder, "Imgs")
  if not os.path.isdir(imgs):
    raise FileNotFoundError(f"{imgs}: not found (is --source the dataset's "
                            f"top folder, holding MT_Free, MT_Crack, ...?)")
  photos = sorted(f for f in os.listdir(imgs) if f.lower().endswith(".jpg"))
  pairs = []
  for name in photos:
    mask = os.path.join(imgs, os.path.splitext(name)[0] + ".png")
    if not os.path.isfile(mask):
      raise AnnotationError(f"{os.path.join(imgs, name)}: no mask {mask}")
    pairs.append((os.path.join(imgs, name), mask))
  return pairs


def convert(source, output, train=400, seed=0):
  """Writes the MVTec-layout tree; returns {split/kind: image count}."""
  free = _pairs(source, "MT_Free")
  if len(free) <= train:
    raise ValueError(f"MT_Free has {len(free)} photographs; --train={train} "
                     f"leaves none for the test split")
  tree = MVTecTree(output, CATEGORY)
  order = np.random.default_rng(seed).permutation(len(free))
  for i, index in enumerate(order):
    tree.put(free[index][0], "train/good" if i < train else "test/good")
  for kind in KINDS:
    for photo, mask_path in _pairs(source, f"MT_{kind.capitalize()}"):
      mask = cv2.imread(mask_path, cv2.IMREAD_GRAYSCALE)
      image = cv2.imread(photo, cv2.IMREAD_GRAYSCALE)
      if mask is None or image is None or mask.shape != image.shape:
        raise AnnotationError(f"{mask_path}: not a mask of its photograph "
                              f"{photo}'s size")
      tree.put_mask(kind, photo, mask >= 128)
      tree.put(photo, f"test/{kind}")
  return tree.counts


if __name__ == "__main__":
  run_converter(convert, "the dataset's top folder (MT_Free, MT_Blowhole, "
                "...)", "defect-free photographs to train on")
