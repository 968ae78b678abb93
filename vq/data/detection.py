"""Detection data: the embedded machine parts, Pascal VOC or YOLO txt
folders, COCO detection JSON, an Ultralytics data.yaml, and the transforms
to YOLO training targets and eval boxes."""
import dataclasses

import numpy as np

from vq.data import tfds_records
from vq.data.augment import box_augment
from vq.data.embedded import synthetic_parts
from vq.data.augment.geometry import augment_kwargs
from vq.data.sources import (AnnotatedImages, Datasets, generated_pair,
                             require, require_classes, select)
from vq.data.formats.coco import read_coco_detection
from vq.data.formats.ultralytics_yaml import check_class_names, read_ultralytics
from vq.data.formats.voc import read_voc
from vq.data.formats.yolo_txt import read_yolo_txt


def _synthetic(d):
  require_classes(d, synthetic_parts.CLASS_NAMES)
  return generated_pair(synthetic_parts.generate, d, d.image_size)


def _voc(d):
  require(d, "train_path")
  names = tuple(d.class_names)
  outside = d.allow_outside_paths
  return (AnnotatedImages(read_voc(d.train_path, names, d.train_split,
                                   outside)),
          AnnotatedImages(read_voc(d.eval_path or d.train_path, names,
                                   d.eval_split, outside)))


def _yolo_txt(d):
  require(d, "train_path")
  n = len(d.class_names)
  return (AnnotatedImages(read_yolo_txt(d.train_path, n)),
          AnnotatedImages(read_yolo_txt(d.eval_path or d.train_path, n)))


def _coco(d):
  require(d, "train_path", "eval_path", "image_dir")
  names = tuple(d.class_names)
  outside = d.allow_outside_paths
  return (AnnotatedImages(read_coco_detection(d.train_path, d.image_dir,
                                              names, outside)),
          AnnotatedImages(read_coco_detection(
              d.eval_path, d.eval_image_dir or d.image_dir, names, outside)))


def _ultralytics(d):
  require(d, "train_path")
  check_class_names(d.train_path, d.class_names)
  return (AnnotatedImages(read_ultralytics(d.train_path, "train")),
          AnnotatedImages(read_ultralytics(d.train_path, "val")))


SOURCES = {"synthetic": _synthetic, "voc": _voc, "yolo_txt": _yolo_txt,
           "coco": _coco, "ultralytics": _ultralytics, "tfds": tfds_records.pair}


def encode_targets(boxes, classes, grid_size, num_classes):
  """Ground-truth boxes -> [S, S, 5 + C] YOLO target grid.

  The cell holding a box's centre is responsible for it; when two centres
  share a cell the larger box is kept.
  """
  s = grid_size
  target = np.zeros((s, s, 5 + num_classes), np.float32)
  kept_area = np.zeros((s, s), np.float32)
  for (x1, y1, x2, y2), c in zip(boxes, classes):
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    j, i = min(int(cx * s), s - 1), min(int(cy * s), s - 1)
    if target[i, j, 4] and w * h <= kept_area[i, j]:
      continue
    kept_area[i, j] = w * h
    target[i, j, :5] = (cx * s - j, cy * s - i, w, h, 1.0)
    target[i, j, 5:] = 0.0
    target[i, j, 5 + c] = 1.0
  return target


@dataclasses.dataclass(frozen=True)
class TrainTransform:
  """Augmented image and its YOLO target grid."""
  image_size: int
  grid_size: int
  num_classes: int
  augment: dict

  def __call__(self, record, rng):
    r = box_augment.resize_and_augment(record, self.image_size, rng,
                                       **self.augment)
    return {"image": r["image"],
            "target": encode_targets(r["boxes"], r["classes"], self.grid_size,
                                     self.num_classes)}


@dataclasses.dataclass(frozen=True)
class EvalTransform:
  """Resized image and its boxes padded to `max_boxes` (class -1)."""
  image_size: int
  max_boxes: int

  def __call__(self, record):
    r = box_augment.resize_and_augment(record, self.image_size)
    n = self.max_boxes
    k = min(len(r["boxes"]), n)
    boxes = np.zeros((n, 4), np.float32)
    classes = np.full(n, -1, np.int32)
    difficult = np.zeros(n, bool)
    boxes[:k], classes[:k] = r["boxes"][:k], r["classes"][:k]
    if "difficult" in r:
      difficult[:k] = r["difficult"][:k]
    return {"image": r["image"], "gt_boxes": boxes, "gt_classes": classes,
            "gt_difficult": difficult}


def datasets(data_config, grid_size):
  """Sources and transforms for a YOLO grid of `grid_size` cells."""
  d = data_config
  train, eval_ = select(SOURCES, d, "detection")
  return Datasets(
      train, eval_,
      TrainTransform(d.image_size, grid_size, len(d.class_names),
                     augment_kwargs(d.augment)),
      EvalTransform(d.image_size, d.max_boxes))
