"""Classification data: embedded single machine parts, one class per image."""
import dataclasses

import numpy as np

from vq.data import synthetic_parts
from vq.data.box_augment import resize_and_augment
from vq.data.geometry import augment_kwargs
from vq.data.sources import Datasets, generated_pair, select


def single_part(seed, index, image_size, min_size, max_size):
  """A synthetic image of one machine part, labelled with its class."""
  r = synthetic_parts.generate(seed, index, image_size, max_objects=1,
                               min_size=min_size, max_size=max_size)
  return {"image": r["image"], "label": np.int32(r["classes"][0]),
          "boxes": r["boxes"], "classes": r["classes"]}


def _synthetic(d):
  return generated_pair(single_part, d, d.image_size,
                        min_size=d.part_min_size, max_size=d.part_max_size)


SOURCES = {"synthetic": _synthetic}


@dataclasses.dataclass(frozen=True)
class LabelledImageTransform:
  """Resized (augmented when called with an rng) image and its label."""
  image_size: int
  augment: dict = dataclasses.field(default_factory=dict)

  def __call__(self, record, rng=None):
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
