"""Segmentation: the U-Net family on defect masks.

Three set-ups share this task: multi-class (softmax over background + C
classes, steel), multi-label (a sigmoid per class, car damage, with an
optional image-level head) and binary (scratches). The loss picks the set-up:
'softmax_ce' (optionally + Dice on the defect classes, 'softmax_ce_dice') is
multi-class; 'bce', 'dice' and 'bce_dice' are per class.
"""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vq import losses, visualize
from vq.data import (preprocess, rle, segmentation_readers, synthetic_car,
                     synthetic_scratch, synthetic_steel)
from vq.data.mask_augment import resize_and_augment
from vq.data.sources import GeneratedSource
from vq.metrics import segmentation as seg_metrics
from vq.models.deeplabv3 import DeepLabV3
from vq.models.unet import EncoderUNet, UNet
from vq.models.unet3plus import UNet3Plus
from vq.ops.mask_policy import apply_mask_policy
from vq.tasks.common import apply_train

SYNTHETIC = {
    "synthetic_steel": (synthetic_steel.generate, synthetic_steel.CLASS_NAMES),
    "synthetic_car": (synthetic_car.generate, synthetic_car.CLASS_NAMES),
    "synthetic_scratch": (synthetic_scratch.generate, ("scratch",)),
}
LOSSES = ("softmax_ce", "softmax_ce_dice", "bce", "dice", "bce_dice")


def default_config():
  c = ml_collections.ConfigDict()
  c.model = ml_collections.ConfigDict()
  c.model.architecture = "unet"   # unet | encoder_unet | unet3plus | deeplabv3
  c.model.widths = (16, 32, 64, 128, 256)  # unet, unet3plus, plain deeplabv3
  c.model.skip_connections = True  # unet: False is the plain CNN baseline
  c.model.encoder = "mobilenet_v2"  # encoder_unet, deeplabv3: | efficientnet_b0
  c.model.alpha = 1.0             # MobileNetV2 width multiplier
  c.model.decoder_widths = (256, 128, 64, 32, 16)  # encoder_unet
  c.model.cat_width = 64          # unet3plus
  c.model.aspp_width = 256        # deeplabv3
  c.model.aspp_rates = (6, 12, 18)
  c.model.image_head = False      # image-level logit (e.g. damage_level)
  c.model.classification_guided = False  # unet3plus: gate masks at inference

  c.data = ml_collections.ConfigDict()
  # synthetic_steel | synthetic_car | synthetic_scratch | severstal |
  # polygon_json | mask_folder
  c.data.source = "synthetic_steel"
  c.data.class_names = synthetic_steel.CLASS_NAMES
  c.data.image_size = (64, 400)   # (height, width) of the model input
  c.data.binary = False           # merge all classes into one (defect / not)
  c.data.grayscale = False
  c.data.remove_highlights = False
  c.data.train_path = ""          # severstal: train.csv; polygon_json: JSON
  c.data.image_dir = ""           # severstal, polygon_json, mask_folder
  c.data.mask_dir = ""            # mask_folder
  c.data.eval_image_dir = ""      # mask_folder: held-out images
  c.data.eval_mask_dir = ""
  c.data.split_seed = 0           # severstal / polygon_json: 8:1:1 split
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
  c.loss.mask_weight = 1.0        # 0 trains the image head on its own
  c.loss.image_weight = 0.2
  c.loss.deep_supervision = True  # unet3plus: a loss on every level

  c.eval = ml_collections.ConfigDict()
  c.eval.thresholds = (0.5,)      # per class, or one for all
  c.eval.min_areas = (0,)         # pixels, per class or one for all
  c.eval.refine = ()              # class names refined by the guided filter
  c.eval.guided_radius = 2
  c.eval.guided_eps = 1e-2
  c.eval.defect_min_area = 20     # pixels of defect that make an image defective
  c.eval.num_images = 6
  return c


def _per_class(values, n, name):
  values = tuple(values)
  if len(values) == 1:
    return values * n
  if len(values) != n:
    raise ValueError(f"{name} needs 1 or {n} values, got {values}")
  return values


class SegmentationTask:
  """U-Net, U-Net on an encoder, U-Net 3+ or DeepLabV3 on defect masks."""

  name = "segmentation"
  default_config = staticmethod(default_config)

  def __init__(self, config):
    self.config = config
    d, m = config.data, config.model
    if config.loss.name not in LOSSES:
      raise ValueError(f"loss.name must be one of {LOSSES}, got "
                       f"{config.loss.name!r}")
    self.class_names = ("defect",) if d.binary else tuple(d.class_names)
    self.num_classes = len(self.class_names)
    self.softmax = config.loss.name.startswith("softmax_ce")
    self.image_hw = tuple(int(v) for v in d.image_size)
    self.thresholds = _per_class(config.eval.thresholds, self.num_classes,
                                 "eval.thresholds")
    self.min_areas = _per_class(config.eval.min_areas, self.num_classes,
                                "eval.min_areas")
    unknown = set(config.eval.refine) - set(self.class_names)
    if unknown:
      raise ValueError(f"eval.refine names unknown classes {sorted(unknown)}; "
                       f"classes are {self.class_names}")
    self.refine = tuple(n in config.eval.refine for n in self.class_names)
    self.model = self._build_model(m, self.num_classes + self.softmax)
    self._records = self._read_records()

  def _build_model(self, m, outputs):
    if m.architecture == "unet":
      return UNet(outputs, tuple(m.widths), m.skip_connections,
                  image_classes=int(m.image_head))
    if m.architecture == "encoder_unet":
      return EncoderUNet(outputs, m.encoder, m.alpha, tuple(m.decoder_widths),
                         image_classes=int(m.image_head))
    if m.architecture == "unet3plus":
      return UNet3Plus(outputs, tuple(m.widths), m.cat_width)
    if m.architecture == "deeplabv3":
      return DeepLabV3(outputs, m.encoder, tuple(m.widths), m.alpha,
                       m.aspp_width, tuple(m.aspp_rates))
    raise ValueError(f"model.architecture must be unet, encoder_unet, "
                     f"unet3plus or deeplabv3; got {m.architecture!r}")

  def dummy_input(self):
    channels = 1 if self.config.data.grayscale else 3
    return jnp.zeros((1, *self.image_hw, channels), jnp.float32)

  def init_variables(self, rng):
    return self.model.init({"params": rng, "dropout": rng}, self.dummy_input())

  # Data ---------------------------------------------------------------------

  def _read_records(self):
    """(train records, eval records), or None for a synthetic source."""
    d = self.config.data
    if d.source in SYNTHETIC:
      return None
    if d.source == "mask_folder":
      if not (d.image_dir and d.mask_dir and d.eval_image_dir and
              d.eval_mask_dir):
        raise ValueError("data.source=mask_folder needs data.image_dir, "
                         "mask_dir, eval_image_dir and eval_mask_dir")
      return (segmentation_readers.read_mask_folder(d.image_dir, d.mask_dir),
              segmentation_readers.read_mask_folder(d.eval_image_dir,
                                                    d.eval_mask_dir))
    if d.source not in ("severstal", "polygon_json"):
      raise ValueError(f"data.source must be one of {sorted(SYNTHETIC)}, "
                       f"severstal, polygon_json or mask_folder; got "
                       f"{d.source!r}")
    if not d.train_path or not d.image_dir:
      raise ValueError(f"data.source={d.source!r} needs data.train_path and "
                       f"data.image_dir")
    n = len(d.class_names)
    if d.source == "severstal":
      records = segmentation_readers.read_severstal_csv(d.train_path,
                                                        d.image_dir, n)
      for r in records:
        r["label"] = int(bool(r["rles"]))
      area = [sum(map(rle.area, r["rles"].values())) for r in records]
    else:
      records = segmentation_readers.read_polygon_json(d.train_path,
                                                       d.image_dir, n)
      source = segmentation_readers.SegmentationImages(records)
      area = [float(source[i]["mask"].any(-1).mean())
              for i in range(len(records))]
    train, val, _ = segmentation_readers.stratified_split(
        records, area, seed=d.split_seed)
    return [records[i] for i in train], [records[i] for i in val]

  def _source(self, train):
    d = self.config.data
    if self._records is None:
      generate = SYNTHETIC[d.source][0]
      n = d.synthetic_train_size if train else d.synthetic_eval_size
      return GeneratedSource(generate, n, d.synthetic_seed + (not train),
                             self.image_hw)
    return segmentation_readers.SegmentationImages(
        self._records[0 if train else 1])

  def train_source(self):
    return self._source(train=True)

  def eval_source(self):
    return self._source(train=False)

  def _prepare(self, record, rng):
    d, a = self.config.data, self.config.data.augment
    if d.remove_highlights:
      record = dict(record, image=preprocess.remove_highlights(record["image"]))
    kwargs = {}
    if rng is not None:
      kwargs = dict(scale_range=a.scale, shift_range=a.shift, flip=a.flip,
                    flip_vertical=a.flip_vertical, brightness=a.brightness,
                    contrast=a.contrast)
    r = resize_and_augment(record, self.image_hw, rng, **kwargs)
    image, mask = r["image"], r["mask"]
    if d.binary:
      mask = mask.max(-1, keepdims=True)
    if mask.shape[-1] != self.num_classes:
      raise ValueError(f"record has {mask.shape[-1]} mask channels, the config "
                       f"names {self.num_classes} classes {self.class_names}")
    if d.grayscale:
      image = preprocess.to_grayscale(image)
    # "masks": the batch key "mask" marks evaluation padding.
    return {"image": image, "masks": mask, "label": np.int32(r["label"])}

  def train_transform(self, record, rng):
    return self._prepare(record, rng)

  def eval_transform(self, record):
    return self._prepare(record, None)

  # Model, loss, evaluation --------------------------------------------------

  def _mask_loss(self, logits, mask):
    name = self.config.loss.name
    mask = mask.astype(jnp.float32)
    if self.softmax:
      # Background is class 0; a pixel in several classes takes the last.
      labels = jnp.max(mask * jnp.arange(1, self.num_classes + 1), axis=-1)
      total = losses.softmax_cross_entropy(logits, labels.astype(jnp.int32))
      if name == "softmax_ce_dice":
        # Dice weighs every class alike, however few its pixels.
        total += losses.dice_loss(jax.nn.softmax(logits)[..., 1:], mask)
      return total
    total = 0.0
    if name in ("bce", "bce_dice"):
      total += losses.binary_cross_entropy(logits, mask)
    if name in ("dice", "bce_dice"):
      total += losses.dice_loss(jax.nn.sigmoid(logits), mask)
    return total

  def loss(self, params, batch_stats, batch, rng):
    images = batch["image"].astype(jnp.float32) / 255.0
    out, batch_stats = apply_train(self.model, params, batch_stats, images,
                                   {"dropout": rng})
    c = self.config.loss
    deep = out.get("deep_logits") if c.deep_supervision else None
    levels = deep or [out["logits"]]
    terms = {"mask": sum(self._mask_loss(l, batch["masks"]) for l in levels) /
                     len(levels)}
    total = c.mask_weight * terms["mask"]
    if "image_logits" in out:
      terms["image"] = losses.binary_cross_entropy(
          out["image_logits"][:, 0], batch["label"].astype(jnp.float32))
      total += c.image_weight * terms["image"]
    terms["loss"] = total
    return total, (terms, batch_stats)

  def predict(self, variables, images):
    """uint8 or [0, 1] images -> {probs [N, H, W, C], masks (the policy's),
    image_probs [N] where the model has an image head}."""
    if images.dtype == jnp.uint8:
      images = images.astype(jnp.float32) / 255.0
    out = self.model.apply(variables, images, train=False)
    logits = out["logits"]
    if self.softmax:
      winner = jnp.argmax(logits, axis=-1)
      probs = jax.nn.softmax(logits)[..., 1:]
      hard = jax.nn.one_hot(winner, self.num_classes + 1)[..., 1:]
    else:
      probs = hard = jax.nn.sigmoid(logits)
    result = {"probs": probs}
    if "image_logits" in out:
      result["image_probs"] = jax.nn.sigmoid(out["image_logits"][:, 0])
      if self.config.model.classification_guided:
        gate = result["image_probs"] > 0.5
        hard = hard * gate[:, None, None, None]
    e = self.config.eval
    guide = images if images.shape[-1] == 3 else jnp.repeat(images, 3, -1)
    result["masks"] = apply_mask_policy(
        hard, guide, jnp.asarray(self.thresholds),
        jnp.asarray(self.min_areas), jnp.asarray(self.refine),
        e.guided_radius, e.guided_eps)
    return result

  def eval_step(self, variables, batch):
    out = self.predict(variables, batch["image"])
    del out["probs"]
    return out

  def evaluate(self, results):
    """IoU per class and its mean, Kaggle Dice, image-level rates, pictures."""
    inter = union = 0
    dice, found, truth, head, drawn = [], [], [], [], []
    min_area = self.config.eval.defect_min_area
    for batch, out in results:
      keep = batch["mask"]
      pred, true = out["masks"][keep], batch["masks"][keep].astype(bool)
      i, u = seg_metrics.iou_totals(pred, true)
      inter, union = inter + i, union + u
      dice.append(seg_metrics.dice_per_image(pred, true))
      found.append(pred.any(-1).sum((1, 2)) >= min_area)
      truth.append(batch["label"][keep] > 0)
      if "image_probs" in out:
        head.append(out["image_probs"][keep] > 0.5)
      for img, p, t in zip(batch["image"][keep], pred, true):
        if len(drawn) < self.config.eval.num_images:
          drawn.append(np.concatenate([visualize.overlay_masks(img, t),
                                       visualize.overlay_masks(img, p)], 1))
    iou = seg_metrics.iou_from_totals(inter, union)
    scalars = {f"iou/{n}": v for n, v in zip(self.class_names, iou)}
    scalars["miou"] = float(np.nanmean(iou)) if np.isfinite(iou).any() else 0.0
    scalars["dice"] = float(np.mean(np.concatenate(dice)))
    truth = np.concatenate(truth)
    for k, v in seg_metrics.binary_classification(np.concatenate(found),
                                                  truth).items():
      scalars[f"image_{k}"] = v
    if head:
      for k, v in seg_metrics.binary_classification(np.concatenate(head),
                                                    truth).items():
        scalars[f"image_head_{k}"] = v
    return scalars, ({"truth_vs_prediction": np.stack(drawn)} if drawn else {})
