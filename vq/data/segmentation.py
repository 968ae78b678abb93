"""Segmentation data: embedded steel / car / scratch generators, Severstal
CSV, polygon JSON and mask folders, and the mask transforms."""
import dataclasses

import cv2
import numpy as np
from absl import logging

from vq.data import tfds_records
from vq.data.augment import letterbox, preprocess
from vq.data.embedded import synthetic_car, synthetic_scratch, synthetic_steel
from vq.data.formats import polygon_exports, rle, segmentation_readers
from vq.data.augment.geometry import augment_kwargs
from vq.data.augment.mask_augment import random_crop, resize_and_augment
from vq.data.formats.segmentation_readers import SegmentationImages
from vq.data.sources import (Datasets, GeneratedSource, generated_pair,
                             report_resize, require, require_classes, select)


def _generated(generate, class_names=None):
  def source(d):
    if class_names and not d.binary:
      require_classes(d, class_names)
    return generated_pair(generate, d, tuple(d.image_size))
  return source


def _mask_folder(d):
  require(d, "image_dir", "mask_dir", "eval_image_dir", "eval_mask_dir")
  return (SegmentationImages(segmentation_readers.read_mask_folder(
              d.image_dir, d.mask_dir)),
          SegmentationImages(segmentation_readers.read_mask_folder(
              d.eval_image_dir, d.eval_mask_dir)))


EVAL_SPLITS = ("val", "test")


def _split(d, records, area):
  """Train part and the `data.eval_split` part of the stratified 8:1:1
  split."""
  if d.eval_split not in EVAL_SPLITS:
    raise ValueError(f"data.eval_split must be one of {EVAL_SPLITS}, got "
                     f"{d.eval_split!r}")
  train, val, test = segmentation_readers.stratified_split(
      records, area, seed=d.split_seed)
  held_out = val if d.eval_split == "val" else test
  return (SegmentationImages([records[i] for i in train]),
          SegmentationImages([records[i] for i in held_out]))


def _severstal(d):
  require(d, "train_path", "image_dir")
  records = segmentation_readers.read_severstal_csv(
      d.train_path, d.image_dir, len(d.class_names),
      allow_outside=d.allow_outside_paths)
  for r in records:
    r["label"] = int(bool(r["rles"]))
  return _split(d, records, [sum(map(rle.area, r["rles"].values()))
                             for r in records])


def _polygon_json(d):
  require(d, "train_path", "image_dir")
  return _split_polygons(d, segmentation_readers.read_polygon_json(
      d.train_path, d.image_dir, len(d.class_names), d.allow_outside_paths))


def _labelme(d):
  require(d, "train_path")
  return _split_polygons(d, polygon_exports.read_labelme(
      d.train_path, d.class_names, allow_outside=d.allow_outside_paths))


def _cvat(d):
  require(d, "train_path", "image_dir")
  return _split_polygons(d, polygon_exports.read_cvat(
      d.train_path, d.image_dir, d.class_names,
      allow_outside=d.allow_outside_paths))


def _split_polygons(d, records):
  """The stratified split of polygon records (by label and damaged area)."""
  images = SegmentationImages(records)
  return _split(d, records, [float(images[i]["mask"].any(-1).mean())
                             for i in range(len(records))])


SOURCES = {
    "synthetic_steel": _generated(synthetic_steel.generate,
                                  synthetic_steel.CLASS_NAMES),
    "synthetic_car": _generated(synthetic_car.generate,
                                synthetic_car.CLASS_NAMES),
    "synthetic_scratch": _generated(synthetic_scratch.generate),
    "severstal": _severstal,
    "polygon_json": _polygon_json,
    "labelme": _labelme,
    "cvat": _cvat,
    "mask_folder": _mask_folder,
    "tfds": tfds_records.pair,
}


@dataclasses.dataclass(frozen=True)
class MaskTransform:
  """Resized (augmented when called with an rng) image, mask and label."""
  image_hw: tuple
  class_names: tuple
  binary: bool = False
  grayscale: bool = False
  remove_highlights: bool = False
  augment: dict = dataclasses.field(default_factory=dict)
  crop_hw: tuple = ()             # training: native-resolution crops
  defect_crop_share: float = 0.0
  label_channels: tuple = None    # classes whose pixels keep a crop's label
  keep_aspect: bool = False       # letterbox to image_hw, not stretch

  def __call__(self, record, rng=None):
    if self.remove_highlights:
      record = dict(record,
                    image=preprocess.remove_highlights(record["image"]))
    out_hw = self.image_hw
    if self.crop_hw and rng is not None:
      record = random_crop(record, self.crop_hw, rng, self.defect_crop_share,
                           self.label_channels)
      out_hw = self.crop_hw
    elif self.keep_aspect:
      record = dict(record,
                    image=letterbox.letterbox(record["image"], out_hw),
                    mask=letterbox.letterbox(record["mask"], out_hw,
                                             cv2.INTER_NEAREST, fill=0))
    r = resize_and_augment(record, out_hw, rng,
                           **(self.augment if rng is not None else {}))
    image, mask = r["image"], r["mask"]
    if self.binary:
      mask = mask.max(-1, keepdims=True)
    expected = 1 if self.binary else len(self.class_names)
    if mask.shape[-1] != expected:
      raise ValueError(f"record has {mask.shape[-1]} mask channels, the config "
                       f"names {expected} classes {self.class_names}")
    if self.grayscale:
      image = preprocess.to_grayscale(image)
    return {"image": image, "mask": mask, "label": np.int32(r["label"])}


def _label_channels(d):
  """Indices of `data.label_classes` (None: every class labels a crop)."""
  if not d.label_classes:
    return None
  unknown = [n for n in d.label_classes if n not in d.class_names]
  if unknown:
    raise ValueError(f"data.label_classes names {unknown}, not among "
                     f"data.class_names {tuple(d.class_names)}")
  return tuple(list(d.class_names).index(n) for n in d.label_classes)


def datasets(data_config, size_multiple=1):
  """Train and eval sources and transforms; `size_multiple`: what the
  model needs image sides to be a multiple of (for the resize report)."""
  d = data_config
  train, eval_ = select(SOURCES, d, "segmentation")
  image_hw, crop_hw = tuple(d.image_size), tuple(d.crop_size)
  if crop_hw and any(c > i for c, i in zip(crop_hw, image_hw)):
    clipped = tuple(min(c, i) for c, i in zip(crop_hw, image_hw))
    logging.warning("data.crop_size %s is larger than data.image_size %s: "
                    "training on %s crops", crop_hw, image_hw, clipped)
    crop_hw = clipped
  if not isinstance(eval_, GeneratedSource):
    report_resize(eval_, image_hw, crop_hw, size_multiple)
  transform = MaskTransform(image_hw, tuple(d.class_names),
                            d.binary, d.grayscale, d.remove_highlights,
                            keep_aspect=d.keep_aspect)
  return Datasets(train, eval_,
                  dataclasses.replace(transform,
                                      augment=augment_kwargs(d.augment),
                                      crop_hw=crop_hw,
                                      defect_crop_share=d.defect_crop_share,
                                      label_channels=_label_channels(d)),
                  transform)
