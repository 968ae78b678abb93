"""Keypoints: MobileNetV2 features and a regression head (adhesive beads).

The study behind it compares a backbone fine-tuned with the head against one
frozen at its pre-trained weights (`config.freeze = ('^backbone/',)`).
"""
import os
import re

import flax.traverse_util
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vq import checkpoint, losses, visualize
from vq.data import keypoint_readers, synthetic_bead
from vq.data.keypoint_augment import resize_and_augment
from vq.data.sources import GeneratedSource
from vq.metrics.keypoints import keypoint_metrics
from vq.models import convert
from vq.models.keypoint_net import KeypointNet
from vq.tasks.common import apply_train, float_images


def default_config():
  c = ml_collections.ConfigDict()
  c.model = ml_collections.ConfigDict()
  c.model.alpha = 0.35
  c.model.padding = "keras"       # keras | torch (match the weights' origin)
  c.model.head = "regression"     # regression | heatmap
  c.model.head_hidden = 128
  c.model.heatmap_radius = 1.5    # heatmap: positive cells within (cells)
  c.model.offset_weight = 1.0     # heatmap: weight of the offset loss
  c.model.backbone_weights = ""   # Keras .h5 / torchvision .pth, .safetensors

  c.data = ml_collections.ConfigDict()
  c.data.source = "synthetic"     # synthetic | csv | coco
  c.data.train_path = ""          # csv: the table; coco: the JSON file
  c.data.eval_path = ""
  c.data.image_dir = ""           # coco: folder of the images
  c.data.keypoint_names = synthetic_bead.KEYPOINT_NAMES
  c.data.flip_permutation = synthetic_bead.FLIP_PERMUTATION
  c.data.image_size = 96
  c.data.synthetic_train_size = 20000
  c.data.synthetic_eval_size = 256
  c.data.synthetic_seed = 0
  c.data.augment = ml_collections.ConfigDict()
  c.data.augment.scale = 0.15
  c.data.augment.shift = 0.08
  c.data.augment.rotation = 10.0  # degrees
  c.data.augment.flip = True
  c.data.augment.brightness = 20.0
  c.data.augment.contrast = 0.2

  c.eval = ml_collections.ConfigDict()
  c.eval.num_images = 8
  return c


def load_backbone_weights(path):
  """MobileNetV2 variables from a Keras or torchvision ImageNet file, or from
  a vq workdir (e.g. configs/pretrain_mobilenet.py's)."""
  if os.path.isdir(path):
    variables = checkpoint.load_variables(path)
  elif path.endswith(".h5"):
    variables = convert.load_keras_mobilenet_v2(path)
  elif path.endswith((".pth", ".pt", ".safetensors")):
    variables = convert.load_torchvision_mobilenet_v2(path)
  else:
    raise ValueError(f"model.backbone_weights={path!r}: expected a vq workdir, "
                     f"a Keras .h5 or a torchvision .pth/.safetensors file")
  for collection in variables.values():
    collection.pop("predictions", None)
  return variables


class KeypointsTask:
  """Keypoints: MobileNetV2 backbone, regression or heatmap head, PCK metrics."""

  name = "keypoints"
  default_config = staticmethod(default_config)

  def __init__(self, config):
    self.config = config
    d = config.data
    self.names = tuple(d.keypoint_names)
    self.image_size = d.image_size
    self._records = self._read_annotations()
    self.pretrained = (load_backbone_weights(config.model.backbone_weights)
                       if config.model.backbone_weights else None)
    probe = self._model(frozenset())
    params = jax.eval_shape(probe.init, jax.random.key(0), self.dummy_input())
    self.model = self._model(self._frozen_bn_layers(params["params"]))

  def _model(self, frozen_bn_layers):
    m = self.config.model
    return KeypointNet(
        num_keypoints=len(self.names), alpha=m.alpha, padding=m.padding,
        head=m.head, head_hidden=m.head_hidden,
        frozen_bn_layers=frozen_bn_layers)

  def _frozen_bn_layers(self, params):
    """Backbone BatchNorm layers whose scale a freeze pattern matches."""
    patterns = [re.compile(p) for p in self.config.freeze]
    flat = flax.traverse_util.flatten_dict(params, sep="/")
    return frozenset(
        k.split("/")[1] for k in flat
        if k.startswith("backbone/") and k.endswith("/scale") and
        any(p.search(k) for p in patterns))

  def dummy_input(self):
    return jnp.zeros((1, self.image_size, self.image_size, 3), jnp.float32)

  def init_variables(self, rng):
    variables = self.model.init({"params": rng}, self.dummy_input())
    if self.pretrained is None:
      return variables
    variables = jax.tree.map(lambda x: x, variables)  # a mutable copy
    for collection, tree in self.pretrained.items():
      flat = flax.traverse_util.flatten_dict(tree, sep="/")
      target = flax.traverse_util.flatten_dict(
          variables[collection]["backbone"], sep="/")
      for k, v in flat.items():
        if k not in target or target[k].shape != v.shape:
          raise ValueError(
              f"model.backbone_weights: {collection}/{k} {v.shape} does not "
              f"fit the backbone (same alpha needed; ImageNet files are 1.0)")
        target[k] = jnp.asarray(v)
      variables[collection]["backbone"] = flax.traverse_util.unflatten_dict(
          target, sep="/")
    return variables

  # Data ---------------------------------------------------------------------

  def _read_annotations(self):
    d = self.config.data
    if d.source == "synthetic":
      return None
    if d.source not in ("csv", "coco"):
      raise ValueError(f"data.source must be synthetic, csv or coco; got "
                       f"{d.source!r}")
    if not d.train_path or not d.eval_path:
      raise ValueError(f"data.train_path and data.eval_path are required for "
                       f"data.source={d.source!r}")
    k = len(self.names)
    if d.source == "csv":
      read = lambda p: keypoint_readers.read_keypoints_csv(p, k)
    else:
      read = lambda p: keypoint_readers.read_coco_keypoints(p, d.image_dir, k)
    return read(d.train_path), read(d.eval_path)

  def train_source(self):
    d = self.config.data
    if self._records:
      return keypoint_readers.KeypointImages(self._records[0])
    return GeneratedSource(synthetic_bead.generate, d.synthetic_train_size,
                           d.synthetic_seed, self.image_size)

  def eval_source(self):
    d = self.config.data
    if self._records:
      return keypoint_readers.KeypointImages(self._records[1])
    return GeneratedSource(synthetic_bead.generate, d.synthetic_eval_size,
                           d.synthetic_seed + 1, self.image_size)

  def train_transform(self, record, rng):
    a = self.config.data.augment
    r = resize_and_augment(
        record, self.image_size, rng, scale_range=a.scale, shift_range=a.shift,
        rotation=a.rotation, flip=a.flip,
        flip_permutation=self.config.data.flip_permutation,
        brightness=a.brightness, contrast=a.contrast)
    return {"image": r["image"], "keypoints": r["keypoints"]}

  def eval_transform(self, record):
    r = resize_and_augment(record, self.image_size)
    return {"image": r["image"], "keypoints": r["keypoints"]}

  # Model, loss, evaluation --------------------------------------------------

  def loss(self, params, batch_stats, batch, rng):
    del rng
    out, batch_stats = apply_train(self.model, params, batch_stats,
                                   float_images(batch))
    true = batch["keypoints"]
    dist = jnp.sqrt(jnp.sum(jnp.square(out["keypoints"] - true), -1) + 1e-12)
    terms = {"error_px": jnp.mean(dist) * self.image_size}
    if self.config.model.head == "heatmap":
      terms.update(losses.keypoint_heatmap_loss_terms(
          out["heatmaps"], out["offsets"], true,
          self.config.model.heatmap_radius, self.config.model.offset_weight))
    else:
      # Mean Euclidean distance (in image widths): unlike a squared error its
      # gradient does not fade as predictions near the target.
      terms["loss"] = jnp.mean(dist)
    return terms["loss"], (terms, batch_stats)

  def eval_step(self, variables, batch):
    images = float_images(batch)
    return {"keypoints": self.model.apply(variables, images,
                                          train=False)["keypoints"]}

  def evaluate(self, results):
    preds, trues, drawn = [], [], []
    for batch, out in results:
      m = batch["mask"]
      preds.append(out["keypoints"][m])
      trues.append(batch["keypoints"][m])
      for img, p, t in zip(batch["image"][m], out["keypoints"][m],
                           batch["keypoints"][m]):
        if len(drawn) < self.config.eval.num_images:
          drawn.append(visualize.draw_keypoints(img, p, t, scale=2))
    s = self.image_size
    scalars = keypoint_metrics(np.concatenate(preds) * s,
                               np.concatenate(trues) * s, (s, s),
                               names=list(self.names))
    return scalars, ({"keypoints": np.stack(drawn)} if drawn else {})
