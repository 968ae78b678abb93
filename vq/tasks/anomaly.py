"""Anomaly detection: DRAEM trained on normal images only.

Training images get synthetic Perlin-noise anomalies; the reconstructive
network learns to restore the clean image (L2 + SSIM, optionally the
colour-distribution loss), the discriminative network to segment the
anomaly (focal loss). Evaluation reports image and pixel AUROC, pixel AP,
AUPRO and F1 at a threshold chosen on a validation split, per category and
averaged, for the baseline and the filtered scoring.
"""
import cv2
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from vq import losses, visualize
from vq.data import draem_augment, embedded_textures, mvtec
from vq.data.sources import RecordSource
from vq.metrics import anomaly as anomaly_metrics
from vq.models.draem import DRAEM
from vq.ops import anomaly_scoring
from vq.tasks.common import apply_train

SCORINGS = ("baseline", "filtered", "filtered_ratio")


def default_config():
  c = ml_collections.ConfigDict()
  c.model = ml_collections.ConfigDict()
  c.model.reconstructive_width = 128
  c.model.discriminative_width = 64

  c.data = ml_collections.ConfigDict()
  c.data.source = "embedded"      # embedded | mvtec
  c.data.path = ""                # mvtec: dataset root
  c.data.layout = "mvtec_ad"      # mvtec_ad | mvtec_ad2
  c.data.categories = embedded_textures.CATEGORIES
  c.data.cache_dir = ""           # embedded: where the tree is written
  c.data.image_size = 64
  c.data.anomaly_source = ""      # a folder of images (DTD); "" procedural
  c.data.perlin_max_scale = 5     # lattice cells 2^k per axis, k in 0..this
  c.data.rotate_probability = 0.3  # rotate the normal image (-90..90 deg)
  c.data.validation_fraction = 0.5  # of the test split, for the threshold
  c.data.split_seed = 0

  c.loss = ml_collections.ConfigDict()
  c.loss.colour = False           # the colour-distribution loss
  c.loss.colour_weights = (0.1, 0.2, 0.1)  # histogram, 1/PSNR, mean colour
  c.loss.histogram_bins = 32
  c.loss.focal_gamma = 2.0

  c.eval = ml_collections.ConfigDict()
  c.eval.scoring = "baseline"     # baseline | filtered | filtered_ratio
  c.eval.baseline_window = 21
  c.eval.filter_weights = (0.2, 0.05)  # Laplacian 3x3, 5x5 detail weights
  c.eval.filter_noise = 0.01
  c.eval.filter_pool = 5
  c.eval.filter_mix = 0.5
  c.eval.score_window = 8
  c.eval.score_stride = 4
  c.eval.num_images = 8
  return c


class AnomalyTask:
  """DRAEM on MVTec-layout data (the embedded textures by default)."""

  name = "anomaly"
  default_config = staticmethod(default_config)

  def __init__(self, config):
    self.config = config
    d = config.data
    if config.eval.scoring not in SCORINGS:
      raise ValueError(f"eval.scoring must be one of {SCORINGS}, got "
                       f"{config.eval.scoring!r}")
    self.size = int(d.image_size)
    self.model = DRAEM(config.model.reconstructive_width,
                       config.model.discriminative_width)
    if d.source == "embedded":
      unknown = set(d.categories) - set(embedded_textures.CATEGORIES)
      if unknown:
        raise ValueError(f"data.categories {sorted(unknown)} are not embedded; "
                         f"choose from {embedded_textures.CATEGORIES}")
      root = embedded_textures.ensure_written(
          d.cache_dir or embedded_textures.default_cache_dir(),
          image_size=self.size)
      layout = "mvtec_ad"
    elif d.source == "mvtec":
      if not d.path:
        raise ValueError("data.source=mvtec needs data.path (the dataset root)")
      root, layout = d.path, d.layout
    else:
      raise ValueError(f"data.source must be 'embedded' or 'mvtec', got "
                       f"{d.source!r}")
    self.categories = tuple(d.categories)
    self.train_records, self.test_records = [], []
    for category in self.categories:
      train, test = mvtec.read_mvtec(root, category, layout)
      self.train_records += train
      self.test_records += test
    self.defect_types = sorted({r["defect_type"] for r in self.test_records
                                if r["label"]})
    self.anomaly_source = draem_augment.AnomalySource(d.anomaly_source)

  def dummy_input(self):
    return jnp.zeros((1, self.size, self.size, 3), jnp.float32)

  def init_variables(self, rng):
    return self.model.init(rng, self.dummy_input())

  # Data ---------------------------------------------------------------------

  def train_source(self):
    return _Records(self.train_records)

  def eval_source(self):
    return _Records(self.test_records)

  def _resize(self, image, interpolation=cv2.INTER_AREA):
    if image.shape[:2] == (self.size, self.size):
      return image
    return cv2.resize(image, (self.size, self.size), interpolation=interpolation)

  def train_transform(self, record, rng):
    d = self.config.data
    image = self._resize(record["image"])
    if rng.random() < d.rotate_probability:
      image = draem_augment.rotate(image, rng.uniform(-90, 90))
    source = self.anomaly_source.sample(rng, self.size)
    if _is_grey(image):
      # Grey surfaces get grey anomalies: colour alone would give them away.
      source = np.repeat(cv2.cvtColor(source, cv2.COLOR_RGB2GRAY)[..., None],
                         3, -1)
    augmented, mask = draem_augment.synthesize_anomaly(
        image, source, rng, max_scale=d.perlin_max_scale)
    return {"image": augmented, "clean": image, "anomaly_mask": mask}

  def eval_transform(self, record):
    mask = self._resize(record["mask"], cv2.INTER_NEAREST)
    return {"image": self._resize(record["image"]), "anomaly_mask": mask,
            "label": record["label"],
            "category": np.int32(self.categories.index(record["category"])),
            "defect": np.int32(self.defect_types.index(record["defect_type"])
                               if record["label"] else -1)}

  # Model, loss, evaluation --------------------------------------------------

  def loss(self, params, batch_stats, batch, rng):
    del rng
    image = batch["image"].astype(jnp.float32) / 255.0
    clean = batch["clean"].astype(jnp.float32) / 255.0
    out, batch_stats = apply_train(self.model, params, batch_stats, image)
    recon = out["reconstruction"]
    c = self.config.loss
    terms = {
        "l2": jnp.mean(jnp.square(recon - clean)),
        "ssim": 1.0 - losses.ssim(recon, clean),
        "focal": losses.focal_loss(out["logits"],
                                   batch["anomaly_mask"].astype(jnp.int32),
                                   gamma=c.focal_gamma),
    }
    if c.colour:
      w_hist, w_psnr, w_mean = c.colour_weights
      terms["histogram"] = w_hist * losses.histogram_loss(
          jnp.clip(recon, 0, 1), clean, c.histogram_bins)
      terms["inverse_psnr"] = w_psnr * losses.inverse_psnr_loss(recon, clean)
      terms["mean_colour"] = w_mean * jnp.mean(jnp.abs(
          jnp.mean(recon, (1, 2)) - jnp.mean(clean, (1, 2))))
    terms["loss"] = sum(terms.values())
    return terms["loss"], (terms, batch_stats)

  def eval_step(self, variables, batch):
    e = self.config.eval
    image = batch["image"].astype(jnp.float32) / 255.0
    out = self.model.apply(variables, image, train=False)
    maps = jax.nn.softmax(out["logits"])[..., 1:]
    filtered = anomaly_scoring.filtered_map(
        maps, weights=tuple(e.filter_weights), noise_std=e.filter_noise,
        pool=e.filter_pool, mix=e.filter_mix)
    strided = dict(window=e.score_window, stride=e.score_stride)
    return {
        "map": maps[..., 0], "filtered_map": filtered[..., 0],
        "reconstruction": jnp.clip(out["reconstruction"], 0, 1),
        "score/baseline": anomaly_scoring.baseline_image_score(
            maps, e.baseline_window),
        "score/filtered": anomaly_scoring.strided_score(filtered, **strided),
        "score/filtered_ratio": anomaly_scoring.strided_score(
            filtered, ratio=True, **strided),
    }

  def evaluate(self, results):
    """Per category and mean: image AUROC/AP for each scoring, pixel AUROC,
    AP and AUPRO for the original and the filtered map, F1 at a threshold
    chosen on the validation half."""
    keys = ["anomaly_mask", "label", "category", "defect", "image"]
    host = {k: np.concatenate([b[k][b["mask"]] for b, _ in results])
            for k in keys}
    outs = {k: np.concatenate([o[k][b["mask"]] for b, o in results])
            for k in results[0][1]}
    scalars = {}
    per_category = []
    for c, name in enumerate(self.categories):
      sel = host["category"] == c
      m = self._category_metrics(
          {k: v[sel] for k, v in host.items()},
          {k: v[sel] for k, v in outs.items()})
      per_category.append(m)
      scalars.update({f"{name}/{k}": v for k, v in m.items()})
      scalars.update(self._defect_metrics(
          name, {k: v[sel] for k, v in host.items()},
          {k: v[sel] for k, v in outs.items()}))
    for k in per_category[0]:
      scalars[k] = float(np.mean([m[k] for m in per_category]))
    return scalars, {"input_reconstruction_map_truth": self._pictures(
        host, outs)}

  def _category_metrics(self, host, outs):
    scoring = self.config.eval.scoring
    labels, truth = host["label"], host["anomaly_mask"]
    m = {}
    for s in SCORINGS:
      m[f"image_auroc/{s}"] = anomaly_metrics.auroc(outs[f"score/{s}"], labels)
    m["image_auroc"] = m[f"image_auroc/{scoring}"]
    m["image_ap"] = anomaly_metrics.average_precision(
        outs[f"score/{scoring}"], labels)
    for map_name in ("map", "filtered_map"):
      suffix = "" if map_name == "map" else "/filtered"
      m["pixel_auroc" + suffix] = anomaly_metrics.auroc(outs[map_name], truth)
      m["pixel_ap" + suffix] = anomaly_metrics.average_precision(
          outs[map_name], truth)
      m["aupro" + suffix] = anomaly_metrics.aupro(outs[map_name], truth)
    # F1-optimal threshold on the validation part, F1 on the rest.
    rng = np.random.default_rng(self.config.data.split_seed)
    order = rng.permutation(len(labels))
    n_val = int(round(self.config.data.validation_fraction * len(labels)))
    val, test = order[:n_val], order[n_val:]
    scores = outs[f"score/{scoring}"]
    threshold, m["val_f1"] = anomaly_metrics.f1_optimal_threshold(
        scores[val], labels[val])
    m["threshold"] = threshold
    decided = scores[test] >= threshold
    tp = np.sum(decided & (labels[test] == 1))
    m["test_f1"] = float(2 * tp / max(decided.sum() + labels[test].sum(), 1))
    return m

  def _defect_metrics(self, category, host, outs):
    """Image and pixel AUROC of each defect type against the good images."""
    scoring = self.config.eval.scoring
    good = host["label"] == 0
    m = {}
    for d, defect in enumerate(self.defect_types):
      defective = host["defect"] == d
      if not defective.any() or not good.any():
        continue
      sel = good | defective
      m[f"{category}/{defect}/image_auroc"] = anomaly_metrics.auroc(
          outs[f"score/{scoring}"][sel], host["label"][sel])
      m[f"{category}/{defect}/pixel_auroc"] = anomaly_metrics.auroc(
          outs["map"][sel], host["anomaly_mask"][sel])
    return m

  def _pictures(self, host, outs):
    """Input | reconstruction | heatmap | truth with the predicted contour."""
    rows = []
    defective = np.flatnonzero(host["label"] == 1)
    for i in defective[:self.config.eval.num_images]:
      image = host["image"][i]
      recon = (outs["reconstruction"][i] * 255).astype(np.uint8)
      heat = cv2.applyColorMap((outs["map"][i] * 255).astype(np.uint8),
                               cv2.COLORMAP_JET)[..., ::-1]
      truth = visualize.overlay_masks(image, host["anomaly_mask"][i][..., None])
      contours, _ = cv2.findContours(
          (outs["map"][i] > 0.5).astype(np.uint8), cv2.RETR_EXTERNAL,
          cv2.CHAIN_APPROX_NONE)
      truth = cv2.drawContours(np.ascontiguousarray(truth), contours, -1,
                               (255, 255, 0), 1)
      rows.append(np.concatenate([image, recon, heat, truth], 1))
    return np.stack(rows)


def _is_grey(image):
  return bool(np.all(image[..., 0] == image[..., 1]) and
              np.all(image[..., 1] == image[..., 2]))


class _Records(RecordSource):
  """Random access over MVTec records (grain source)."""

  def __getitem__(self, index):
    r = self.records[index]
    return dict(mvtec.load_record(r), category=r["category"],
                defect_type=r["defect_type"])
