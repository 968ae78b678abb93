"""MVTec AD and MVTec AD 2 folder readers.

MVTec AD:
  <root>/<category>/train/good/*.png
  <root>/<category>/test/<good or defect type>/*.png
  <root>/<category>/ground_truth/<defect type>/<name>_mask.png
MVTec AD 2:
  <root>/<category>/train/good/*.png
  <root>/<category>/test_public/good/*.png, test_public/bad/*.png
  <root>/<category>/test_public/ground_truth/bad/<name>_mask.png

Records: {image_path, mask_path (None for good images), label (0 good,
1 defective), defect_type, category}.
"""
import os

import numpy as np

from vq.data.errors import AnnotationError
from vq.data.images import find_images, read_image, read_mask, turned_note

LAYOUTS = ("mvtec_ad", "mvtec_ad2")


def _train_records(folder, category):
  good = os.path.join(folder, "train", "good")
  images = find_images(good)
  if not images:
    raise FileNotFoundError(f"no training images in {good}")
  return [{"image_path": p, "mask_path": None, "label": 0,
           "defect_type": "good", "category": category} for p in images]


def _test_records(test_dir, truth_dir, category):
  if not os.path.isdir(test_dir):
    raise FileNotFoundError(f"test folder not found: {test_dir}")
  records = []
  for defect in sorted(os.listdir(test_dir)):
    folder = os.path.join(test_dir, defect)
    if not os.path.isdir(folder) or folder == truth_dir:
      continue
    for path in find_images(folder):
      mask = None
      if defect != "good":
        stem = os.path.splitext(os.path.basename(path))[0]
        mask = os.path.join(truth_dir, defect, stem + "_mask.png")
        if not os.path.isfile(mask):
          raise FileNotFoundError(f"{path}: defective test image without its "
                                  f"mask {mask}")
      records.append({"image_path": path, "mask_path": mask,
                      "label": int(defect != "good"), "defect_type": defect,
                      "category": category})
  if not records:
    raise FileNotFoundError(f"no test images under {test_dir}")
  return records


def read_mvtec(root, category, layout="mvtec_ad"):
  """(train records, test records) of one category."""
  folder = os.path.join(root, category)
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"category folder not found: {folder}")
  if layout == "mvtec_ad":
    test = _test_records(os.path.join(folder, "test"),
                         os.path.join(folder, "ground_truth"), category)
  elif layout == "mvtec_ad2":
    test_dir = os.path.join(folder, "test_public")
    test = _test_records(test_dir, os.path.join(test_dir, "ground_truth"),
                         category)
  else:
    raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
  return _train_records(folder, category), test


def load_record(record):
  """Record -> {image uint8 [H, W, 3], mask uint8 [H, W] (0/1), label}."""
  image = read_image(record["image_path"])
  mask = np.zeros(image.shape[:2], np.uint8)
  if record["mask_path"]:
    m = read_mask(record["mask_path"])
    if m.shape != image.shape[:2]:
      raise AnnotationError(
          f"{record['mask_path']}: mask is {m.shape[1]}x{m.shape[0]}, its "
          f"image {record['image_path']} is {image.shape[1]}x{image.shape[0]}."
          + turned_note(record["image_path"], image.shape[:2], m.shape))
    mask = m
  return {"image": image, "mask": mask, "label": np.int32(record["label"])}
