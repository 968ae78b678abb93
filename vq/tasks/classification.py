"""Image classification with MobileNetV2: pre-training on embedded data.

The default data are single machine parts (vq/data/synthetic_parts.py), one
class per image, so a backbone can be pre-trained with no download and then
named by another config's `model.backbone_weights`.
"""
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from vq.data import synthetic_parts
from vq.data.box_augment import resize_and_augment
from vq.data.sources import GeneratedSource
from vq.models.mobilenet_v2 import MobileNetV2
from vq.tasks.common import apply_train, float_images


def default_config():
  c = ml_collections.ConfigDict()
  c.model = ml_collections.ConfigDict()
  c.model.alpha = 0.35
  c.model.padding = "keras"
  c.data = ml_collections.ConfigDict()
  c.data.source = "synthetic"
  c.data.class_names = synthetic_parts.CLASS_NAMES
  c.data.image_size = 96
  c.data.synthetic_train_size = 20000
  c.data.synthetic_eval_size = 512
  c.data.synthetic_seed = 10
  c.data.part_min_size = 0.45     # part size, fraction of the image side
  c.data.part_max_size = 0.8
  c.data.augment = ml_collections.ConfigDict()
  c.data.augment.scale = 0.15
  c.data.augment.flip = True
  c.data.augment.brightness = 20.0
  c.data.augment.contrast = 0.2
  return c


def single_part(seed, index, image_size, min_size, max_size):
  """A synthetic image of one machine part, labelled with its class."""
  r = synthetic_parts.generate(seed, index, image_size, max_objects=1,
                               min_size=min_size, max_size=max_size)
  return {"image": r["image"], "label": np.int32(r["classes"][0]),
          "boxes": r["boxes"], "classes": r["classes"]}


class ClassificationTask:
  """Classification: MobileNetV2 with its classifier, accuracy."""

  name = "classification"
  default_config = staticmethod(default_config)

  def __init__(self, config):
    self.config = config
    d = config.data
    if d.source != "synthetic":
      raise ValueError(f"data.source must be 'synthetic', got {d.source!r}")
    self.image_size = d.image_size
    self.num_classes = len(d.class_names)
    self.model = MobileNetV2(alpha=config.model.alpha, include_top=True,
                             num_classes=self.num_classes,
                             padding=config.model.padding)

  def init_variables(self, rng):
    return self.model.init(
        rng, jnp.zeros((1, self.image_size, self.image_size, 3), jnp.float32))

  def train_source(self):
    d = self.config.data
    return GeneratedSource(single_part, d.synthetic_train_size,
                           d.synthetic_seed, self.image_size,
                           min_size=d.part_min_size, max_size=d.part_max_size)

  def eval_source(self):
    d = self.config.data
    return GeneratedSource(single_part, d.synthetic_eval_size,
                           d.synthetic_seed + 1, self.image_size,
                           min_size=d.part_min_size, max_size=d.part_max_size)

  def train_transform(self, record, rng):
    a = self.config.data.augment
    r = resize_and_augment(record, self.image_size, rng, scale_range=a.scale,
                           flip=a.flip, brightness=a.brightness,
                           contrast=a.contrast, min_visible=0.0)
    return {"image": r["image"], "label": record["label"]}

  def eval_transform(self, record):
    return {"image": record["image"], "label": record["label"]}

  def loss(self, params, batch_stats, batch, rng):
    del rng
    logits, batch_stats = apply_train(self.model, params, batch_stats,
                                      float_images(batch))
    loss = optax.softmax_cross_entropy_with_integer_labels(
        logits, batch["label"]).mean()
    accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["label"])
    return loss, ({"loss": loss, "accuracy": accuracy},
                  batch_stats)

  def eval_step(self, variables, batch):
    images = float_images(batch)
    return {"predicted": jnp.argmax(
        self.model.apply(variables, images, train=False), -1)}

  def evaluate(self, results):
    correct = [out["predicted"][b["mask"]] == b["label"][b["mask"]]
               for b, out in results]
    return {"accuracy": float(np.mean(np.concatenate(correct)))}, {}
