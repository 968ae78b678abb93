r"""BSData, the ball screw drive surface defect dataset (Schlagenhauf and
Landwehr, 2021), in the MVTec AD layout: real colour photographs of ball
screw spindles, some with pitting, for measuring the anomaly defaults on a
second set of real industrial photographs.

  python -m vq.photo_sets.ball_screw --source=/data/BSData \
      --output=/tmp/vq/ball_screw

The dataset as its authors publish it: `data/*.jpg`, `label/<stem>.json`
(Labelme polygons labelled "Pitting", one file for each photograph with
pitting) and `image_data.json`, {"images": [{"filename", "type",
"annotations", ...}]}. Only spindle type 2 has defect-free photographs
(1130x460 and 1540x645 pixels), so type 1 is left out: every photograph of
it would be anomalous for its type alone. `--train` defect-free
photographs (a seeded shuffle) become the training images; the others and
every photograph with pitting, the test split:

  OUTPUT/ball_screw/train/good/*.jpg
  OUTPUT/ball_screw/test/{good,pitting}/*.jpg
  OUTPUT/ball_screw/ground_truth/pitting/<stem>_mask.png

The photographs are copied byte for byte; read with `data.source=mvtec,
data.path=OUTPUT, data.categories=('ball_screw',)`.
"""
import os

import numpy as np

from vq.data.errors import AnnotationError, read_json
from vq.data.formats import polygon_exports, polygons
from vq.data.images import declared_size, max_pixels
from vq.data.paths import dataset_path
from vq.photo_sets.mvtec_tree import MVTecTree, run_converter

CATEGORY = "ball_screw"
KIND = "pitting"
SPINDLE_TYPE = 2


def _listing(source):
  """The type-2 entries of image_data.json: [(photo's path under data/,
  annotation file name or None)]."""
  path = os.path.join(source, "image_data.json")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: not found (is --source the dataset's "
                            f"top folder, holding data/, label/ and "
                            f"image_data.json?)")
  entries = read_json(path)
  if not isinstance(entries, dict) or not isinstance(
      entries.get("images"), list):
    raise AnnotationError(f"{path}: expected {{\"images\": [...]}}")
  listing = []
  for i, entry in enumerate(entries["images"]):
    if not isinstance(entry, dict) or not isinstance(entry.get("filename"),
                                                     str):
      raise AnnotationError(f"{path} image {i}: expected an object with "
                            f"filename, type and annotations")
    if entry.get("type") == SPINDLE_TYPE:
      listing.append((dataset_path(os.path.join(source, "data"),
                                   entry["filename"], f"{path} image {i}"),
                      entry.get("annotations")))
  return listing


def _pitting_masks(source, annotated):
  """{photo's path: bool mask} of the annotated photographs."""
  records = polygon_exports.read_labelme(
      os.path.join(source, "label"), ("Pitting",),
      image_dir=os.path.join(source, "data"))
  by_name = {os.path.basename(r["where"]): r for r in records}
  masks = {}
  for photo, annotation in annotated:
    record = by_name.get(annotation)
    if record is None:
      raise AnnotationError(f"image_data.json lists {annotation} for "
                            f"{photo}; it is not in label/")
    if os.path.realpath(record["image_path"]) != os.path.realpath(photo):
      raise AnnotationError(f"{record['where']}: labels "
                            f"{record['image_path']}; image_data.json gives "
                            f"it to {photo}")
    size = declared_size(np.fromfile(photo, np.uint8))
    if size and size[0] * size[1] > max_pixels():
      raise AnnotationError(f"{photo}: declares {size[1]}x{size[0]} pixels, "
                            f"above the budget of {max_pixels():,} (the "
                            f"environment variable VQ_MAX_PIXELS sets "
                            f"another)")
    if size is None or size != tuple(record["expected_hw"]):
      raise AnnotationError(f"{record['where']}: declares a "
                            f"{record['expected_hw']} (height, width) image; "
                            f"{record['image_path']} is {size}")
    if not record["regions"]:
      raise AnnotationError(f"{record['where']}: no Pitting polygon")
    masks[photo] = polygons.to_mask(record["regions"], *size, 1,
                                    record=record["where"])[..., 0] > 0
  return masks


def convert(source, output, train=400, seed=0):
  """Writes the MVTec-layout tree; returns {split/kind: image count}."""
  listing = _listing(source)
  free = sorted(photo for photo, annotation in listing if not annotation)
  if len(free) <= train:
    raise ValueError(f"image_data.json lists {len(free)} defect-free type-"
                     f"{SPINDLE_TYPE} photographs; --train={train} leaves "
                     f"none for the test split")
  masks = _pitting_masks(source, [(p, a) for p, a in listing if a])
  tree = MVTecTree(output, CATEGORY)
  order = np.random.default_rng(seed).permutation(len(free))
  for i, index in enumerate(order):
    tree.put(free[index], "train/good" if i < train else "test/good")
  for photo, mask in sorted(masks.items()):
    tree.put_mask(KIND, photo, mask)
    tree.put(photo, f"test/{KIND}")
  return tree.counts


if __name__ == "__main__":
  run_converter(convert, "the dataset's top folder (data/, label/, "
                "image_data.json)", "defect-free photographs to train on")
