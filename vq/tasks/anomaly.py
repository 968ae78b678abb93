"""Anomaly detection: DRAEM trained on normal images only.

Training images get synthetic Perlin-noise anomalies; the reconstructive
network learns to restore the clean image (L2 + SSIM, optionally the
colour-distribution loss), the discriminative network to segment the
anomaly (focal loss). Evaluation reports image and pixel AUROC, pixel AP,
AUPRO and F1 at a threshold chosen on a validation split, per category and
averaged, for the baseline and the filtered scoring; eval.scoring=memory
scores with a texture memory of the training images instead
(`vq.tasks.anomaly_memory`, no network), eval.scoring=fused with the
memory's map plus the network's where it rises above its normal level,
each in units of its scale on normal training images that the evaluation
reads beside the test split (`vq.tasks.anomaly_scorings`); eval.scoring=auto
with the memory recipe (eval.candidates) each category's validation half
chooses (`vq.tasks.anomaly_selection`). The metrics are
`vq.tasks.anomaly_evaluation`'s, the prediction records
`vq.tasks.anomaly_records`'.
"""
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from vq import config_base, losses
from vq.data import anomaly as anomaly_data
from vq.data import tfds_records
from vq.data.augment import short_side
from vq.data.check import Subset, item_names
from vq.data.embedded import embedded_textures
from vq.models import layers
from vq.models.draem import DRAEM
from vq.tasks import anomaly_evaluation as evaluation
from vq.tasks import anomaly_records
from vq.tasks import anomaly_selection as selection
from vq.tasks import anomaly_scorings as scorings
from vq.tasks.anomaly_evaluation import CALIBRATION_KEYS
from vq.tasks.anomaly_memory import (SCALE_KEYS, TextureScoring,
                                     short_side_problems)
from vq.tasks.anomaly_scorings import (FUSED, MEMORY, MEMORY_SCORINGS,
                                       SCORINGS)
from vq.tasks.base import Evaluation, Task



def default_config():
  c = ml_collections.ConfigDict()
  c.model = ml_collections.ConfigDict()
  c.model.reconstructive_width = 128
  c.model.discriminative_width = 64
  c.model.space_to_depth = 1      # run on b x b pixel blocks (b > 1)

  c.data = ml_collections.ConfigDict()
  tfds_records.add_config_fields(c.data)  # data.source=tfds
  c.data.source = "embedded"      # embedded | mvtec | tfds
  c.data.path = ""                # mvtec: dataset root
  c.data.layout = "mvtec_ad"      # mvtec_ad | mvtec_ad2
  c.data.categories = embedded_textures.CATEGORIES
  c.data.cache_dir = ""           # embedded: where the tree is written
  c.data.image_size = 64          # images are read (and scored) at this size
  c.data.crop_size = 0            # train on random crops of it; 0: whole
  c.data.keep_aspect = False      # letterbox images (aspect ratio kept,
                                  # margins reflected) instead of stretching
  # photographs (scikit-image's) | procedural | a folder of images (DTD)
  c.data.anomaly_source = "photographs"
  c.data.perlin_max_scale = 5     # lattice cells 2^k per axis, k in 0..this
  # Share of anomalies whose source is the image itself, distorted.
  c.data.self_source_probability = 0.0
  # Share of anomaly masks that are thin strokes instead of Perlin regions.
  c.data.stroke_probability = 0.0
  c.data.rotate_probability = 0.3  # rotate the normal image (-90..90 deg)
  c.data.validation_fraction = 0.5  # of the test split, for the threshold
  c.data.split_seed = 0

  c.loss = ml_collections.ConfigDict()
  c.loss.colour = False           # the colour-distribution loss
  c.loss.colour_weights = (0.1, 0.2, 0.1)  # histogram, 1/PSNR, mean colour
  c.loss.histogram_bins = 32
  c.loss.focal_gamma = 2.0

  c.eval = ml_collections.ConfigDict()
  # baseline | filtered | filtered_ratio | memory | fused | auto
  c.eval.scoring = "baseline"
  # eval.scoring=auto: {name: the config fields of a memory scoring that
  # differ from this config's}; per category the one whose map has the
  # higher pixel AUROC on the validation half is chosen.
  c.eval.candidates = ml_collections.ConfigDict()
  c.eval.baseline_window = 21
  c.eval.filter_weights = (0.2, 0.05)  # Laplacian 3x3, 5x5 detail weights
  c.eval.filter_noise = 0.01
  c.eval.filter_pool = 5
  c.eval.filter_mix = 0.5
  c.eval.score_window = 8
  c.eval.score_stride = 4
  c.eval.num_images = 8
  # Each category's threshold, chosen on the validation half of its test
  # split: 0, the F1-optimal one; else the highest that catches this
  # fraction of the half's defective images (0.99: at most 1 in 100 missed).
  c.eval.threshold_recall = 0.0
  # eval.scoring=memory: Gabor energy (wavelengths and sigma in pixels of
  # the memory's image_size) of up to `images` training images per
  # category, sampled every `stride` pixels.
  c.eval.memory = ml_collections.ConfigDict()
  # The side the memory scorings read images at, a whole multiple of
  # data.image_size (the network sees them shrunk to it; its map is
  # enlarged back); 0: data.image_size.
  c.eval.memory.image_size = 0
  # eval.scoring=memory: the scored shape's width / height, about
  # image_size^2 pixels (sides multiples of 32); 1: square. With
  # data.keep_aspect, photographs this much wider than high fill it. 0: the
  # training photographs' (`resolve_photographs_shape`; 1 when they
  # differ, and a short_side applies only then).
  c.eval.memory.aspect_ratio = 1.0
  c.eval.memory.wavelengths = (3.0, 6.0)
  c.eval.memory.orientations = 8
  c.eval.memory.sigma = 1.5
  c.eval.memory.images = 40
  c.eval.memory.stride = 2
  # Test pixels searched every map_stride pixels (their features averaged
  # over the block), the map enlarged back: a whole divisor of the side.
  c.eval.memory.map_stride = 1
  c.eval.memory.colour = True     # + local brightness and colour
  # gabor (the above) | efficientnet_lite0 (or _lite1, _lite2):
  # PatchCore's patch features of that ImageNet encoder, `weights` its named
  # weights (a map at 1/8 of the side, enlarged and blurred by a Gaussian
  # of sigma `blur` pixels).
  c.eval.memory.features = "gabor"
  c.eval.memory.weights = "efficientnet_lite0_imagenet"
  c.eval.memory.blur = 4.0
  # Patch features: each photograph's own pixels (its letterbox box)
  # scaled to this short side, the long side to a multiple of 32, and
  # scored there (one scale of the surface whatever the photograph's
  # shape; the map comes back into the box). 0: the scored shape as it is.
  c.eval.memory.short_side = 0
  # Keep this fraction of the memory's rows, chosen by the greedy coreset
  # (0: all of them).
  c.eval.memory.coreset = 0.0
  # The image score: max of the map averaged over this window (pixels of
  # the memory's side); 0: eval.baseline_window scaled to that side.
  c.eval.memory.window = 0
  # PatchCore's reweighted image score (Roth et al. 2022, eq. 7): the score
  # times a weight from the memory's this many rows nearest the match of
  # the image's worst patch (0: no weight).
  c.eval.memory.neighbours = 0
  # `reference_images` training images per category (those after the
  # memory's) calibrate the memory's map at the image border and, under
  # eval.scoring=fused, give each map its unit: this quantile of its pixels
  # on them (they are evaluated beside the test split).
  c.eval.reference_images = 16
  c.eval.reference_quantile = 0.99
  return c


def resolve_photographs_shape(config):
  """eval.memory.aspect_ratio=0 resolved in the config (a run's
  config.json records what prediction and export read): the training
  photographs' common width / height (two decimals) under the scorings
  that may score a non-square shape (memory, and auto for its
  candidates), else 1. Photographs of many shapes are scored square, each
  at eval.memory.short_side where that is set; photographs that share one
  shape are letterboxed at one scale already, so their short_side (and
  the candidates') is set to 0."""
  memory = config.eval.memory
  if config.eval.scoring not in (MEMORY, selection.AUTO):
    memory.aspect_ratio = 1.0
    return
  ratio = anomaly_data.training_aspect(config.data)
  memory.aspect_ratio = round(ratio, 2) if ratio else 1.0
  logging.info("eval.memory.aspect_ratio=0: %s", (
      f"{ratio:.2f}, the training photographs' width / height" if ratio
      else "1, the training photographs differ in shape"))
  if not ratio:
    return
  for fields in [config, *config.eval.get("candidates", {}).values()]:
    m = fields.get("eval", {}).get("memory", {})
    if m.get("short_side"):
      problems = short_side_problems(m)  # checked before it is set aside
      if problems:
        raise config_base.ConfigError(problems[0])
      m.short_side = 0
      logging.info("eval.memory.short_side=0: the training photographs "
                   "share one shape, letterboxed at one scale")


class AnomalyTask(Task):
  """DRAEM on MVTec-layout data (the embedded textures by default)."""

  name = "anomaly"
  default_config = staticmethod(default_config)
  # Which test images form the validation half, and the recall aimed at.
  calibration_fields = ("eval.threshold_recall", "data.validation_fraction",
                        "data.split_seed")

  def __init__(self, config):
    super().__init__(config)
    config_base.check_choice("eval.scoring", config.eval.scoring,
                             SCORINGS + (selection.AUTO,))
    config_base.check_space_to_depth(config.model.space_to_depth)
    for field in ("rotate_probability", "self_source_probability",
                  "stroke_probability"):
      config_base.check_probability(f"data.{field}", config.data[field])
    config_base.check_probability("eval.threshold_recall",
                                  config.eval.threshold_recall)
    self.size = int(config.data.image_size)
    # The discriminative U-Net joins levels 1/32 the size (of the blocks).
    multiple = 32 * config.model.space_to_depth
    for field in ("image_size", "crop_size"):
      side = int(config.data[field])
      if side % multiple:
        raise config_base.ConfigError(
            f"data.{field} {side} must be a multiple of {multiple} (32 x "
            f"model.space_to_depth {config.model.space_to_depth}); e.g. "
            f"{config_base.nearest_multiple((side,), multiple)[0]}")
    if config.eval.memory.aspect_ratio == 0:
      resolve_photographs_shape(config)
    self.texture = TextureScoring(config, config.data.categories, self.size)
    self.score_size = self.texture.score_size
    self.score_shape = self.texture.score_shape
    # eval.scoring=memory reads no network's output (nor auto, which
    # adopts a memory candidate): none is run.
    self.runs_network = config.eval.scoring not in (MEMORY, selection.AUTO)
    self.class_names = tuple(config.data.categories)
    self.model = DRAEM(config.model.reconstructive_width,
                       config.model.discriminative_width,
                       config.model.space_to_depth)
    self.category = (self.class_names[0] if len(self.class_names) == 1
                     else None)
    self.note_prefix = ""  # what the start-up notes begin with
    self.candidates = {}  # eval.scoring=auto: name -> its AnomalyTask
    if config.eval.scoring == selection.AUTO:
      self.candidates = {
          name: AnomalyTask(c) for name, c in
          selection.candidate_configs(config, default_config()).items()}
      for name, candidate in self.candidates.items():
        candidate.note_prefix = candidate.texture.note_prefix = (
            f"eval.candidates.{name}: ")
    self.needs_training_images = (config.eval.scoring in MEMORY_SCORINGS
                                  or bool(self.candidates))
    self.compiled_category = None  # a StableHLO file's, memory compiled in
    self.scores_own_shape = bool(self.texture.short_side)

  def select_category(self, category):
    """The category whose threshold `to_record` decides with ('' keeps the
    only one, or none: scores without decisions)."""
    if category:
      if category not in self.class_names:
        raise ValueError(f"unknown category {category!r}; this run has "
                         f"{self.class_names}")
      if self.compiled_category not in (None, category):
        raise ValueError(
            f"this StableHLO file holds the texture memory of "
            f"{self.compiled_category!r}, not {category!r}: export the run "
            f"with --category={category}")
      self.category = category
    if self.candidates:
      self._adopt_chosen_candidate()
    if self.needs_training_images and self.category is not None:
      self.memory_for(self.category)
    if self.category is None:
      logging.warning("this run has categories %s: name one with --category "
                      "for good/defective decisions", self.class_names)
    elif self.category not in self.calibration:
      logging.warning("no calibrated threshold for %r at this step (it was "
                      "not evaluated): scores only", self.category)

  def _adopt_chosen_candidate(self):
    """eval.scoring=auto: becomes the task of the candidate the selected
    category's evaluation chose (its settings, memory and input shape),
    keeping the run's calibration."""
    if self.category is None:
      raise ValueError(
          f"eval.scoring={selection.AUTO} scores each category with the "
          f"recipe its evaluation chose: name one with --category (one of "
          f"{', '.join(self.class_names)})")
    name = self.calibration.get(self.category, {}).get(selection.CANDIDATE)
    if name is None:
      raise ValueError(
          f"eval.scoring={selection.AUTO}: {self.category!r} was not "
          "evaluated at this step, so no recipe is chosen for it")
    kept = {"calibration": self.calibration, "category": self.category,
            "needs_training_images": self.needs_training_images,
            "candidates": self.candidates}  # another category may follow
    vars(self).update(vars(self.candidates[name]))
    vars(self).update(kept)

  def use_compiled_memory(self, category):
    """A StableHLO export's task: its post-processing, `category`'s memory
    included, is compiled into the file."""
    self.category = self.compiled_category = category
    self.needs_training_images = False

  def use_workdir(self, workdir):
    """The memories built from the training images are kept in
    WORKDIR/memories (`TextureScoring.cache_dir`): prediction and export
    read the ones the run's evaluation built."""
    self.texture.cache_dir = os.path.join(workdir, "memories")
    for candidate in self.candidates.values():
      candidate.use_workdir(workdir)

  def memory_for(self, category):
    """`category`'s texture memory, built from the config's data once."""
    if category not in self.texture.memories:
      self.texture.memory_for(category, self.datasets())

  def calibrate(self, scalars):
    """{category: {threshold, score_min, score_max}} of the validation
    half (as in anomalib, the normalised score is 0.5 at the threshold),
    with the maps' scales under eval.scoring=fused."""
    calibration = {
        c: {k: scalars[f"{c}/{k}"] for k in CALIBRATION_KEYS + SCALE_KEYS
            if f"{c}/{k}" in scalars}
        for c in self.class_names
        if all(f"{c}/{k}" in scalars for k in CALIBRATION_KEYS)}
    if self.candidates:
      chosen = selection.chosen_candidates(scalars, self.class_names,
                                           tuple(self.candidates))
      for c, name in chosen.items():
        if c in calibration:
          calibration[c][selection.CANDIDATE] = name
    return calibration

  @property
  def input_shape(self):
    """The scoring's shape: data.image_size, or under the memory scorings
    eval.memory.image_size at eval.memory.aspect_ratio (the network's input
    is shrunk from it); with a `photo_shape`, that of its photographs
    scaled to eval.memory.short_side."""
    if self.photo_shape is None:
      return (*self.score_shape, 3)
    box = anomaly_data.photograph_box(self.photo_shape, self.score_shape,
                                      self.config.data.keep_aspect)
    return (*short_side.scaled_shape(box[2:], self.texture.short_side), 3)

  def datasets(self):
    """The sources at the scoring's shape; notes on how the images are
    scaled (under eval.scoring=auto each candidate's, `self.note_prefix`
    naming it)."""
    data = anomaly_data.datasets(
        self.config.data, self.score_shape, self.texture.enlarge,
        note_prefix=None if self.candidates else self.note_prefix,
        memory_side=0 if self.runs_network else self.score_size)
    if self.runs_network and self.score_size != self.size:
      logging.info("%sthe networks read images at %dx%d; the texture memory "
                   "scores them at %dx%d (eval.memory.image_size)",
                   self.note_prefix, self.size, self.size, self.score_size,
                   self.score_size)
    if self.config.eval.scoring in MEMORY_SCORINGS:
      for category in self.class_names:
        m, r = self.texture.split(data, category)
        # Fewer references than asked: a warning; a memory of every image
        # there is (eval.memory.images above their count): a note.
        log = (logging.warning if r < self.config.eval.reference_images
               else logging.info if m < self.config.eval.memory.images
               else None)
        if log:
          log("%s%s: %d training images; the memory holds %d, %d calibrate "
              "its maps", self.note_prefix, category,
              anomaly_data.train_categories(data).count(category), m, r)
    return data

  def eval_source(self, datasets):
    """The test split; under eval.scoring=fused followed by the reference
    training images (label -1) that scale the maps; under eval.scoring=auto
    its first image only (each candidate reads the split at its own side)."""
    if self.candidates:
      return Subset(datasets.eval, [0])
    if self.config.eval.scoring != FUSED:
      return datasets.eval
    return anomaly_data.WithReferences(
        datasets.eval, datasets.train, self.texture.reference_indices(datasets))

  def resize_input(self, image):
    """`image` at the scored shape; with eval.memory.short_side its own
    pixels of it scaled to that short side (as the evaluation scores)."""
    keep_aspect = self.config.data.keep_aspect
    scored = anomaly_data.scored_image(image, self.size, self.score_shape,
                                       self.texture.enlarge, keep_aspect)
    if not self.texture.short_side:
      return scored
    box = anomaly_data.photograph_box(image.shape[:2], self.score_shape,
                                      keep_aspect)
    return self.texture.views([scored], [box])[0]

  def init_variables(self, rng):
    return self.model.init(rng, jnp.zeros((1, self.size, self.size, 3)))

  def network_input(self, images):
    """uint8 images of the input shape -> the networks' float input at
    data.image_size."""
    return layers.block_mean(self.model_input(images),
                             self.score_size // self.size)

  def to_score_size(self, maps):
    """[N, h, w] or [N, h, w, C] network outputs -> bilinearly enlarged to
    the scoring's shape (unchanged when it is data.image_size's)."""
    hw = self.score_shape
    if maps.shape[1:3] == hw:
      return maps
    if maps.ndim == 3:
      return layers.resize_bilinear(maps[..., None], hw)[..., 0]
    return layers.resize_bilinear(maps, hw)

  def loss(self, params, batch_stats, batch, rng):
    del rng
    image = self.model_input(batch["image"])
    clean = self.model_input(batch["clean"])
    out, batch_stats = self.apply_train(params, batch_stats, image)
    recon = out["reconstruction"]
    c = self.config.loss
    terms = {
        "l2": jnp.mean(jnp.square(recon - clean)),
        "ssim": 1.0 - losses.ssim(recon, clean),
        "focal": losses.focal_loss(out["logits"],
                                   batch["mask"].astype(jnp.int32),
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

  def forward(self, variables, images):
    """uint8 images of the input shape -> {'map' [N, h, w]}: the
    discriminative network's anomaly probability at data.image_size (the
    scorings run on it); nothing under eval.scoring=memory."""
    if not self.runs_network:
      return {}
    out = self.apply_model(variables, self.network_input(images),
                           train=False)
    return {"map": jax.nn.softmax(out["logits"])[..., 1]}

  def postprocess(self, outputs, images):
    """-> {'score' [N] (eval.scoring's), 'map' [N, H, W] (the filtered map
    for the filtered scorings)}."""
    scoring = self.config.eval.scoring
    if scoring not in MEMORY_SCORINGS:
      return scorings.predict(scoring, self.config.eval, outputs["map"])
    fused = scoring == FUSED
    return scorings.predict(
        scoring, self.config.eval,
        self.to_score_size(outputs["map"]) if fused else None,
        memory=self.texture.scored(images, self.category),
        window=self.texture.window,
        scales=self._scales(self.category) if fused else None)

  def eval_step(self, variables, batch):
    """The network's map, reconstruction and scores; the maps and the
    reconstruction at the scoring's shape (scores at the network's);
    nothing under eval.scoring=memory (the memory scores the images)."""
    if not self.runs_network:
      return {}
    out = self.apply_model(variables, self.network_input(batch["image"]),
                           train=False)
    maps = jax.nn.softmax(out["logits"])[..., 1:]
    scores = scorings.network_scores(maps, self.config.eval)
    scores["filtered_map"] = self.to_score_size(scores["filtered_map"])
    return {"map": self.to_score_size(maps[..., 0]),
            "reconstruction": self.to_score_size(
                jnp.clip(out["reconstruction"], 0, 1)),
            **scores}

  def evaluate(self, results, datasets):
    """Per category and mean: image AUROC/AP for each scoring, pixel AUROC,
    AP and AUPRO for the original and the filtered map, F1 at a threshold
    chosen on the validation half."""
    if self.candidates:
      return selection.evaluate(self.candidates, self.class_names, datasets,
                                self.config.eval_batch_size,
                                self.config.data_threads)
    keys = ["mask", "valid", "label", "category", "defect", "image"]
    host = {k: np.concatenate([b[k][b["batch_mask"]] for b, _ in results])
            for k in keys}
    outs = {k: np.concatenate([o[k][b["batch_mask"]] for b, o in results])
            for k in results[0][1]}
    return self.metrics(*self.scored_outputs(host, outs, datasets),
                        datasets)

  def scored_outputs(self, host, outs, datasets):
    """(host, outs, scalars) of the evaluated images: the memory scorings'
    maps and scores added to `outs`; under eval.scoring=fused its reference
    images dropped, the maps' scales in `scalars`."""
    scalars = {}
    if self.config.eval.scoring in MEMORY_SCORINGS:
      outs = dict(outs, **self.texture.evaluated_outputs(host, datasets))
    if self.config.eval.scoring == FUSED:
      host, outs, scales = self.texture.fused_outputs(host, outs)
      scalars.update({f"{c}/{k}": v for c, s in scales.items()
                      for k, v in s.items()})
    return host, outs, scalars

  def metrics(self, host, outs, scalars, datasets):
    """`Evaluation` of `scored_outputs`: scalars per category and mean,
    pictures, a row per test image."""
    scalars = dict(scalars)
    per_category = []
    scoring, d = self.config.eval.scoring, self.config.data
    for c, name in enumerate(self.class_names):
      sel = host["category"] == c
      own_host = {k: v[sel] for k, v in host.items()}
      own_outs = {k: v[sel] for k, v in outs.items()}
      m = evaluation.category_metrics(own_host, own_outs, scoring,
                                      d.validation_fraction, d.split_seed,
                                      self.config.eval.threshold_recall)
      per_category.append(m)
      scalars.update({f"{name}/{k}": v for k, v in m.items()})
      scalars.update(evaluation.defect_metrics(
          name, datasets.info["defect_types"], own_host, own_outs, scoring))
    for k in per_category[0]:
      # A mean threshold decides nothing; a rate a category lacks (its test
      # half holds no good or no defective image) has no mean.
      if k not in CALIBRATION_KEYS and all(k in m for m in per_category):
        scalars[k] = float(np.mean([m[k] for m in per_category]))
    levels = [scalars[f"{name}/threshold"]
              if evaluation.map_key(scoring) != "map" else 0.5
              for name in self.class_names]
    key = ("input_reconstruction_map_truth" if "reconstruction" in outs
           else "input_map_truth")
    rows = evaluation.image_rows(
        item_names(datasets.eval), host, outs[f"score/{scoring}"],
        self.class_names, datasets.info["defect_types"],
        {name: scalars[f"{name}/threshold"] for name in self.class_names},
        d.validation_fraction, d.split_seed)
    return Evaluation(scalars, {key: evaluation.pictures(
        host, outs, levels, scoring, self.config.eval.num_images)}, rows)

  def _scales(self, category):
    """The calibrated scales of `category`'s maps (eval.scoring=fused)."""
    calibration = self.calibration.get(category, {})
    if not all(k in calibration for k in SCALE_KEYS):
      raise ValueError(
          f"eval.scoring={FUSED} divides each map by its scale on normal "
          f"images, measured when the run is evaluated with it; "
          f"{category!r} has none at this step (evaluate it with "
          f"--config.eval.scoring={FUSED} first)")
    return {k: calibration[k] for k in SCALE_KEYS}

  def region_level(self):
    """The map value from which a pixel is anomalous: DRAEM's probability
    0.5; the memory's or the fused map's value at the category's calibrated
    image threshold (none without a calibration)."""
    if self.config.eval.scoring not in MEMORY_SCORINGS:
      return 0.5
    calibration = self.calibration.get(self.category)
    return calibration["threshold"] if calibration else np.inf

  def to_record(self, outputs, image_hw):
    """`anomaly_records.to_record` at `region_level()`, decided with the
    selected category's calibration."""
    # With a short side the map covers the photograph alone.
    return anomaly_records.to_record(
        outputs, image_hw, self.region_level(),
        self.config.data.keep_aspect and not self.texture.short_side,
        self.category, self.calibration.get(self.category))

  def draw(self, image, record):
    return anomaly_records.draw(image, record, self.region_level())
