"""Keypoints: MobileNetV2 features and a regression head (adhesive beads).

The study behind it compares a backbone fine-tuned with the head against one
frozen at its pre-trained weights (`config.freeze = ('^backbone/',)`).
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vq import config_base, losses, visualize
from vq.data import keypoints as keypoint_data
from vq.data import tfds_records
from vq.data.check import item_names
from vq.data.embedded import synthetic_bead
from vq.metrics.keypoints import keypoint_errors, keypoint_metrics
from vq.models.encoders import ENCODERS
from vq.models.keypoint_net import KeypointNet
from vq.tasks import encoder_weights
from vq.tasks.base import Evaluation, Task


def default_config():
  c = ml_collections.ConfigDict()
  c.model = ml_collections.ConfigDict()
  c.model.backbone = "mobilenet_v2"  # or efficientnet_lite0, efficientnet_b0
  c.model.alpha = 0.35            # mobilenet_v2's width multiplier
  encoder_weights.add_config_fields(c.model)
  c.model.head = "regression"     # regression | heatmap
  c.model.head_hidden = 128
  c.model.heatmap_radius = 1.5    # heatmap: positive cells within (cells)
  c.model.offset_weight = 1.0     # heatmap: weight of the offset loss

  c.data = ml_collections.ConfigDict()
  tfds_records.add_config_fields(c.data)  # data.source=tfds
  c.data.source = "synthetic"     # synthetic | csv | coco
  c.data.train_path = ""          # csv: the table; coco: the JSON file
  # An image an annotation names outside its dataset folder (`..`, an
  # absolute path, a symbolic link out) is refused unless this is True.
  c.data.allow_outside_paths = False
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


# Fields of config.model only the heatmap head uses.
HEAD_FIELDS = {"regression": (), "heatmap": ("heatmap_radius", "offset_weight")}


class KeypointsTask(Task):
  """Keypoints: MobileNetV2 (or EfficientNet) backbone, regression or
  heatmap head, PCK metrics."""

  name = "keypoints"
  default_config = staticmethod(default_config)

  def __init__(self, config):
    super().__init__(config)
    config_base.refuse_inapplicable(config.model, default_config().model,
                                    "head", HEAD_FIELDS)
    self.class_names = tuple(config.data.keypoint_names)
    self.image_size = config.data.image_size
    m = config.model
    config_base.check_choice("model.backbone", m.backbone, ENCODERS)
    self.model = KeypointNet(
        num_keypoints=len(self.class_names), backbone=m.backbone,
        alpha=m.alpha, padding=self.padding, head=m.head,
        head_hidden=m.head_hidden, frozen_bn_layers=self.frozen_bn_layers(),
        depthwise=self.depthwise)

  def encoder(self):
    m = self.config.model
    return encoder_weights.Encoder(
        m.backbone, m.alpha if m.backbone == "mobilenet_v2" else 1.0,
        "backbone")

  @property
  def input_shape(self):
    return (self.image_size, self.image_size, 3)

  def datasets(self):
    return keypoint_data.datasets(self.config.data)

  def init_variables(self, rng):
    return self.with_encoder_weights(
        jax.jit(self.model.init)({"params": rng}, self.dummy_input()))

  def loss(self, params, batch_stats, batch, rng):
    # The rng drives an EfficientNet backbone's stochastic depth.
    out, batch_stats = self.apply_train(params, batch_stats,
                                        self.model_input(batch["image"]),
                                        {"dropout": rng})
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

  def forward(self, variables, images):
    """uint8 images -> {'keypoints': [N, K, 2] normalised (x, y)}."""
    out = self.apply_model(variables, self.model_input(images), train=False)
    return {"keypoints": out["keypoints"]}

  def evaluate(self, results, datasets):
    """Pixel errors (per keypoint) and PCK at the input size, pictures; a
    row per image with its errors."""
    preds, trues, drawn = [], [], []
    for batch, out in results:
      m = batch["batch_mask"]
      preds.append(out["keypoints"][m])
      trues.append(batch["keypoints"][m])
      for img, p, t in zip(batch["image"][m], out["keypoints"][m],
                           batch["keypoints"][m]):
        if len(drawn) < self.config.eval.num_images:
          drawn.append(visualize.draw_keypoints(img, p, t, scale=2))
    s = self.image_size
    preds, trues = np.concatenate(preds) * s, np.concatenate(trues) * s
    scalars = keypoint_metrics(preds, trues, (s, s),
                               names=list(self.class_names))
    rows = tuple(
        {"file": name, "mean_error_px": float(errors.mean()),
         **{f"error_px/{k}": float(e)
            for k, e in zip(self.class_names, errors)}}
        for name, errors in zip(item_names(self.eval_source(datasets)),
                                keypoint_errors(preds, trues), strict=True))
    return Evaluation(scalars,
                      {"keypoints": np.stack(drawn)} if drawn else {}, rows)

  def to_record(self, outputs, image_hw):
    """{'keypoints': {name: [x, y] in pixels of the original image}}."""
    h, w = image_hw
    points = outputs["keypoints"] * np.array([w, h])
    return {"keypoints": {n: [round(float(x), 2), round(float(y), 2)]
                          for n, (x, y) in zip(self.class_names, points)}}

  def draw(self, image, record):
    h, w = image.shape[:2]
    points = np.array([record["keypoints"][n] for n in self.class_names],
                      np.float64) / np.array([w, h])
    return visualize.draw_keypoints(image, points, None)
