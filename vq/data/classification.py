"""Classification data: embedded machine parts or car panels (clean /
damaged), and the image-folder layout of real data."""
import dataclasses

import numpy as np

from vq.data import tfds_records
from vq.data.embedded import synthetic_car, synthetic_parts
from vq.data.augment.box_augment import resize_and_augment
from vq.data.augment.geometry import augment_kwargs
from vq.data.formats.image_folder import read_image_folder
from vq.data.sources import (AnnotatedImages, Datasets, generated_pair,
                             require, require_classes, select)

# The embedded car panels' classes: damage_level 0 and 1.
CAR_CLASS_NAMES = ("clean", "damaged")


def single_part(seed, index, image_size, min_size, max_size):
  """A synthetic image of one machine part, labelled with its class."""
  r = synthetic_parts.generate(seed, index, image_size, max_objects=1,
                               min_size=min_size, max_size=max_size)
  return {"image": r["image"], "label": np.int32(r["classes"][0]),
          "boxes": r["boxes"], "classes": r["classes"]}


def car_panel(seed, index, image_size):
  """An embedded car panel labelled by its damage level (clean, damaged)."""
  r = synthetic_car.generate(seed, index, image_size)
  return {"image": r["image"], "label": r["label"]}


def _synthetic(d):
  require_classes(d, synthetic_parts.CLASS_NAMES)
  return generated_pair(single_part, d, d.image_size,
                        min_size=d.part_min_size, max_size=d.part_max_size)


def _synthetic_car(d):
  require_classes(d, CAR_CLASS_NAMES)
  return generated_pair(car_panel, d, d.image_size)


def _image_folder(d):
  require(d, "path")
  train, eval_ = read_image_folder(d.path, tuple(d.class_names), d.eval_split,
                                   d.validation_fraction, d.split_seed)
  return AnnotatedImages(train), AnnotatedImages(eval_)


SOURCES = {"synthetic": _synthetic, "synthetic_car": _synthetic_car,
           "image_folder": _image_folder, "tfds": tfds_records.pair}


@dataclasses.dataclass(frozen=True)
class LabelledImageTransform:
  """Resized (augmented when called with an rng) image and its label."""
  image_size: int
  augment: dict = dataclasses.field(default_factory=dict)

  def __call__(self, record, rng=None):
    record = {"boxes": np.zeros((0, 4), np.float32),
              "classes": np.zeros(0, np.int32), **record}
    r = resize_and_augment(record, self.image_size, rng, min_visible=0.0,
                           **(self.augment if rng is not None else {}))
    return {"image": r["image"], "label": np.int32(record["label"])}


def datasets(data_config):
  d = data_config
  train, eval_ = select(SOURCES, d, "classification")
  return Datasets(train, eval_,
                  LabelledImageTransform(d.image_size,
                                         augment_kwargs(d.augment)),
                  LabelledImageTransform(d.image_size))
