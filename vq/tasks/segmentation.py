"""Segmentation: the U-Net family on defect masks.

Three set-ups share this task: multi-class (softmax over background + C
classes, steel), multi-label (a sigmoid per class, car damage, with an
optional image-level head) and binary (scratches). The loss picks the set-up:
'softmax_ce' (optionally + Dice on the defect classes, 'softmax_ce_dice') is
multi-class; 'bce', 'dice' and 'bce_dice' are per class.
"""
import cv2
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vq import config_base, losses, visualize
from vq.data import tfds_records
from vq.data.augment import letterbox, preprocess
from vq.data.check import item_names
from vq.data.formats import rle
from vq.data import segmentation as segmentation_data
from vq.data.embedded import synthetic_steel
from vq.ops.mask_policy import apply_mask_policy, vote_classes
from vq.tasks import (encoder_weights, segmentation_evaluation,
                      segmentation_model)
from vq.tasks.base import Evaluation, Task

LOSSES = ("softmax_ce", "softmax_ce_dice", "bce", "dice", "bce_dice")


def default_config():
  c = ml_collections.ConfigDict()
  c.model = ml_collections.ConfigDict()
  c.model.architecture = "unet"   # unet | encoder_unet | unet3plus | deeplabv3
  c.model.widths = (16, 32, 64, 128, 256)  # unet, unet3plus, plain deeplabv3
  c.model.skip_connections = True  # unet: False is the plain CNN baseline
  c.model.space_to_depth = 1      # unet: run on b x b pixel blocks (b > 1)
  c.model.encoder = "mobilenet_v2"  # encoder_unet, deeplabv3: | efficientnet_b0
                                    # | efficientnet_lite0
  c.model.alpha = 1.0             # MobileNetV2 width multiplier
  c.model.decoder_widths = (256, 128, 64, 32, 16)  # encoder_unet
  c.model.cat_width = 64          # unet3plus
  c.model.aspp_width = 256        # deeplabv3
  c.model.aspp_rates = (6, 12, 18)
  c.model.image_head = False      # image-level logit (e.g. damage_level)
  c.model.image_head_per_class = False  # a presence logit per class
  c.model.image_pool = "mean"     # image head: mean | max over the deepest map
  c.model.classification_guided = False  # image head gates masks at inference
  encoder_weights.add_config_fields(c.model)  # encoder_unet, deeplabv3

  c.data = ml_collections.ConfigDict()
  tfds_records.add_config_fields(c.data)  # data.source=tfds
  # synthetic_steel | synthetic_car | synthetic_scratch | severstal |
  # polygon_json | labelme | cvat | mask_folder
  c.data.source = "synthetic_steel"
  c.data.class_names = synthetic_steel.CLASS_NAMES
  c.data.image_size = (64, 400)   # (height, width): evaluation, prediction
  c.data.crop_size = ()           # (height, width): train on native crops
  c.data.keep_aspect = False      # letterbox images to image_size (aspect
                                  # ratio kept, margins reflected; masks 0)
                                  # instead of stretching them
  c.data.defect_crop_share = 0.5  # crops centred on a defect (a random class)
  c.data.label_classes = ()       # classes that keep a crop's image label
                                  # (empty: any); e.g. damage, not gaps
  c.data.binary = False           # merge all classes into one (defect / not)
  c.data.grayscale = False
  c.data.remove_highlights = False
  c.data.train_path = ""          # severstal: train.csv; polygon_json: JSON;
                                  # labelme: the folder; cvat: annotations.xml
  c.data.image_dir = ""           # severstal, polygon_json, cvat, mask_folder
  c.data.mask_dir = ""            # mask_folder
  c.data.eval_image_dir = ""      # mask_folder: held-out images
  # An image an annotation names outside its dataset folder (`..`, an
  # absolute path, a symbolic link out) is refused unless this is True.
  c.data.allow_outside_paths = False
  c.data.eval_mask_dir = ""
  c.data.split_seed = 0           # severstal / polygon_json: 8:1:1 split
  c.data.eval_split = "val"       # severstal / polygon_json: val | test
  c.data.synthetic_train_size = 20000
  c.data.synthetic_eval_size = 256
  c.data.synthetic_seed = 0
  c.data.augment = ml_collections.ConfigDict()
  c.data.augment.scale = 0.1
  c.data.augment.shift = 0.05
  c.data.augment.flip = True
  c.data.augment.flip_vertical = True
  c.data.augment.brightness = 30.0
  c.data.augment.contrast = 0.3

  c.loss = ml_collections.ConfigDict()
  c.loss.name = "softmax_ce"      # softmax_ce | softmax_ce_dice | bce | dice |
                                  # bce_dice
  c.loss.dice_over = "image"      # image | batch (Dice per class over it)
  c.loss.class_weights = ()       # softmax: cross-entropy weight of the
                                  # background, then of each class
  c.loss.mask_weight = 1.0        # 0 trains the image head on its own
  c.loss.image_weight = 0.2
  c.loss.deep_supervision = True  # unet3plus: a loss on every level

  c.eval = ml_collections.ConfigDict()
  # Per-class values: one for all, one per class, or by class name
  # ('pits=120', '*=30': '*' for the classes not named).
  c.eval.thresholds = (0.5,)
  c.eval.min_areas = (0,)         # pixels
  c.eval.refine = ()              # class names refined by the guided filter
  c.eval.guided_radius = 2
  c.eval.guided_eps = 1e-2
  c.eval.tta_flips = ()           # test-time flips averaged with the image:
                                  # 'horizontal', 'vertical'
  c.eval.class_vote_radius = 0    # softmax: defect pixels take the class
                                  # most probable around them (pixels)
  c.eval.defect_min_area = 20     # pixels of defect that make an image defective
  c.eval.num_images = 6
  return c


# eval.tta_flips: the image axis each flip reverses (NHWC).
FLIP_AXES = {"horizontal": 2, "vertical": 1}


def _class_weights(loss, softmax, num_classes):
  """loss.class_weights as a tuple (background first), or None."""
  weights = tuple(float(w) for w in loss.class_weights)
  if not weights:
    return None
  if not softmax:
    raise config_base.ConfigError(
        "loss.class_weights weighs the classes of a softmax loss (softmax_ce, "
        f"softmax_ce_dice); loss.name is {loss.name!r}")
  if len(weights) != num_classes + 1 or min(weights) <= 0:
    raise config_base.ConfigError(
        f"loss.class_weights needs {num_classes + 1} positive weights (the "
        f"background, then each class), got {weights}")
  return weights


class SegmentationTask(Task):
  """U-Net, U-Net on an encoder, U-Net 3+ or DeepLabV3 on defect masks."""

  name = "segmentation"
  default_config = staticmethod(default_config)

  def __init__(self, config):
    super().__init__(config)
    d, m = config.data, config.model
    config_base.refuse_inapplicable(m, default_config().model, "architecture",
                                    segmentation_model.ARCHITECTURE_FIELDS)
    if (m.classification_guided and m.architecture != "unet3plus" and
        not m.image_head):
      raise config_base.ConfigError(
          "model.classification_guided needs the image head that gates the "
          f"masks: set model.image_head=True for {m.architecture!r}")
    if m.image_head_per_class and not m.image_head:
      raise config_base.ConfigError(
          "model.image_head_per_class shapes the image head: set "
          "model.image_head=True as well")
    config_base.check_choice("model.image_pool", m.image_pool,
                             ("mean", "max"))
    config_base.check_space_to_depth(m.space_to_depth)
    config_base.check_probability("data.defect_crop_share",
                                  d.defect_crop_share)
    config_base.check_choice("loss.name", config.loss.name, LOSSES)
    config_base.check_choice("loss.dice_over", config.loss.dice_over,
                             ("image", "batch"))
    self.class_names = ("defect",) if d.binary else tuple(d.class_names)
    self.num_classes = len(self.class_names)
    self.softmax = config.loss.name.startswith("softmax_ce")
    self.class_weights = _class_weights(config.loss, self.softmax,
                                        self.num_classes)
    if config.eval.class_vote_radius < 0:
      raise config_base.ConfigError(
          f"eval.class_vote_radius must be 0 (off) or a radius in pixels, "
          f"got {config.eval.class_vote_radius}")
    if config.eval.class_vote_radius and not self.softmax:
      raise config_base.ConfigError(
          "eval.class_vote_radius votes among the classes of a softmax loss "
          f"(softmax_ce, softmax_ce_dice); loss.name is {config.loss.name!r}")
    self.image_hw = tuple(int(v) for v in d.image_size)
    segmentation_model.check_size(self.image_hw, m)
    if d.crop_size:
      segmentation_model.check_size(tuple(d.crop_size), m)
    self.thresholds = config_base.per_class(
        config.eval.thresholds, self.class_names, "eval.thresholds")
    self.min_areas = config_base.per_class(
        config.eval.min_areas, self.class_names, "eval.min_areas")
    unknown = set(config.eval.refine) - set(self.class_names)
    if unknown:
      raise ValueError(f"eval.refine names unknown classes {sorted(unknown)}; "
                       f"classes are {self.class_names}")
    self.refine = tuple(n in config.eval.refine for n in self.class_names)
    for flip in config.eval.tta_flips:
      config_base.check_choice("eval.tta_flips", flip, tuple(FLIP_AXES))
    image_classes = (self.num_classes if m.image_head_per_class
                     else int(m.image_head))
    self.model = segmentation_model.build_model(
        m, self.num_classes + self.softmax, image_classes, self.padding,
        self.frozen_bn_layers(), self.depthwise)

  def encoder(self):
    m = self.config.model
    if m.architecture == "encoder_unet" or (
        m.architecture == "deeplabv3" and m.encoder != "plain"):
      return encoder_weights.Encoder(
          m.encoder, m.alpha if m.encoder == "mobilenet_v2" else 1.0,
          "encoder")
    return None

  @property
  def input_shape(self):
    return (*self.image_hw, 1 if self.config.data.grayscale else 3)

  def datasets(self):
    return segmentation_data.datasets(
        self.config.data, segmentation_model.size_multiple(self.config.model))

  def resize_input(self, image):
    if self.config.data.remove_highlights:
      image = preprocess.remove_highlights(image)
    return super().resize_input(image)

  def fit_image(self, image, hw):
    if self.config.data.keep_aspect:
      return letterbox.letterbox(image, hw)
    return super().fit_image(image, hw)

  def init_variables(self, rng):
    return self.with_encoder_weights(jax.jit(self.model.init)(
        {"params": rng, "dropout": rng}, self.dummy_input()))

  # Model, loss, evaluation --------------------------------------------------

  def _mask_loss(self, logits, mask):
    name = self.config.loss.name
    mask = mask.astype(jnp.float32)
    if self.softmax:
      # Background is class 0; a pixel in several classes takes the last.
      labels = jnp.max(mask * jnp.arange(1, self.num_classes + 1), axis=-1)
      total = losses.softmax_cross_entropy(logits, labels.astype(jnp.int32),
                                           self.class_weights)
      if name == "softmax_ce_dice":
        # Dice weighs every class alike, however few its pixels.
        total += losses.dice_loss(jax.nn.softmax(logits)[..., 1:], mask,
                                  over=self.config.loss.dice_over)
      return total
    total = 0.0
    if name in ("bce", "bce_dice"):
      total += losses.binary_cross_entropy(logits, mask)
    if name in ("dice", "bce_dice"):
      total += losses.dice_loss(jax.nn.sigmoid(logits), mask,
                                over=self.config.loss.dice_over)
    return total

  def loss(self, params, batch_stats, batch, rng):
    out, batch_stats = self.apply_train(params, batch_stats,
                                        self.model_input(batch["image"]),
                                        {"dropout": rng})
    c = self.config.loss
    deep = out.get("deep_logits") if c.deep_supervision else None
    levels = deep or [out["logits"]]
    terms = {"mask": sum(self._mask_loss(l, batch["mask"]) for l in levels) /
                     len(levels)}
    total = c.mask_weight * terms["mask"]
    if "image_logits" in out:
      if self.config.model.image_head_per_class:
        target = jnp.any(batch["mask"] > 0, axis=(1, 2))
      else:
        target = batch["label"][:, None] > 0
      terms["image"] = losses.multilabel_cross_entropy(
          out["image_logits"], target.astype(jnp.float32))
      total += c.image_weight * terms["image"]
    terms["loss"] = total
    return total, (terms, batch_stats)

  def forward(self, variables, images):
    """uint8 images -> {probs [N, H, W, C] of the defect classes,
    class_map [N, H, W] (softmax losses: the winning class, 0 background;
    with eval.class_vote_radius, voted over each pixel's neighbourhood),
    image_probs [N] where the model has an image head (with
    model.image_head_per_class: the largest of class_probs [N, C])}. With
    eval.tta_flips, the probabilities are averaged over the image and its
    flips. A classification-guided per-class head clears the probabilities
    of the classes it finds absent (before the winning class is chosen)."""
    x = self.model_input(images)
    pixel = jax.nn.softmax if self.softmax else jax.nn.sigmoid
    probs, head_probs = [], []
    for flip in (None, *self.config.eval.tta_flips):
      axis = FLIP_AXES.get(flip)
      view = x if axis is None else jnp.flip(x, axis)
      out = self.apply_model(variables, view, train=False)
      p = pixel(out["logits"])
      probs.append(p if axis is None else jnp.flip(p, axis))
      if "image_logits" in out:
        head_probs.append(jax.nn.sigmoid(out["image_logits"]))
    probs = sum(probs) / len(probs)
    result = {}
    m = self.config.model
    if head_probs:
      head_probs = sum(head_probs) / len(head_probs)
      result["image_probs"] = jnp.max(head_probs, axis=-1)
      if m.image_head_per_class:
        result["class_probs"] = head_probs
        if m.classification_guided:
          present = (head_probs > 0.5)[:, None, None, :]
          if self.softmax:
            present = jnp.pad(present, ((0, 0),) * 3 + ((1, 0),),
                              constant_values=True)
          probs = probs * present
    if self.softmax:
      class_map = jnp.argmax(probs, axis=-1).astype(jnp.int32)
      if self.config.eval.class_vote_radius:
        class_map = vote_classes(probs[..., 1:], class_map,
                                 self.config.eval.class_vote_radius)
      result.update(probs=probs[..., 1:], class_map=class_map)
    else:
      result["probs"] = probs
    return result

  def postprocess(self, outputs, images):
    """Adds masks [N, H, W, C]: the mask policy (thresholds, minimum areas,
    guided-filter refinement) on the winning classes or probabilities."""
    if self.softmax:
      hard = jax.nn.one_hot(outputs["class_map"],
                            self.num_classes + 1)[..., 1:]
    else:
      hard = outputs["probs"]
    m = self.config.model
    if ("image_probs" in outputs and m.classification_guided and
        not m.image_head_per_class):  # a per-class head cleared in forward
      hard = hard * (outputs["image_probs"] > 0.5)[:, None, None, None]
    e = self.config.eval
    guide = self.model_input(images)
    if guide.shape[-1] == 1:
      guide = jnp.repeat(guide, 3, -1)
    masks = apply_mask_policy(
        hard, guide, jnp.asarray(self.thresholds),
        jnp.asarray(self.min_areas), jnp.asarray(self.refine),
        e.guided_radius, e.guided_eps)
    return dict(outputs, masks=masks)

  def eval_step(self, variables, batch):
    out = self.predict(variables, batch["image"])
    return {k: v for k, v in out.items()
            if k in ("masks", "image_probs", "class_probs")}

  def evaluate(self, results, datasets):
    """IoU per class and its mean, Kaggle Dice, image-level rates, pictures;
    with several classes, which classes are confused (per pixel and per
    image); a row per image: `segmentation_evaluation.evaluate`."""
    return Evaluation(*segmentation_evaluation.evaluate(
        results, self.class_names, self.config.eval.defect_min_area,
        self.config.eval.num_images,
        item_names(self.eval_source(datasets))))

  def to_record(self, outputs, image_hw):
    """{'masks': {class: Severstal RLE at the original size}, 'defect_area':
    {class: pixels}, 'defect_probability' where the model has an image
    head, 'class_probability' {class: p} where it has one per class}."""
    h, w = image_hw
    masks = letterbox.to_original(
        outputs["masks"].astype(np.uint8), image_hw,
        self.config.data.keep_aspect, cv2.INTER_NEAREST).reshape(h, w, -1)
    record = {"masks": {}, "defect_area": {}}
    for k, name in enumerate(self.class_names):
      if masks[..., k].any():
        record["masks"][name] = rle.encode(masks[..., k])
        record["defect_area"][name] = int(masks[..., k].sum())
    if "image_probs" in outputs:
      record["defect_probability"] = round(float(outputs["image_probs"]), 4)
    if "class_probs" in outputs:
      record["class_probability"] = {
          name: round(float(p), 4)
          for name, p in zip(self.class_names, outputs["class_probs"])}
    return record

  def draw(self, image, record):
    h, w = image.shape[:2]
    masks = np.zeros((h, w, self.num_classes), np.uint8)
    for name, encoded in record["masks"].items():
      masks[..., self.class_names.index(name)] = rle.decode(encoded, (h, w))
    return visualize.overlay_masks(image, masks)
