"""The anomaly task's texture-memory scorings (eval.scoring=memory, fused).

A memory of each category's training images, described by Gabor energies
(`vq.ops.texture_memory`, no network) or by an ImageNet encoder's patch
features (`vq.ops.patch_features`, eval.memory.features=efficientnet_lite0
or lite1 / lite2 with their eval.memory.weights, thinned by a greedy
coreset), calibrated at the image border on reference training images
read after the memory's; the memory maps of evaluated
images (kept between a run's evaluations); and under eval.scoring=fused
the scales of DRAEM's map and the memory's, measured on the same reference
images.
"""
import hashlib
import json
import os
import time
import zipfile
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from vq import atomic_file, config_base
from vq.data import anomaly as anomaly_data
from vq.data.augment import short_side
from vq.models import layers, pretrained
from vq.models.efficientnet import LITE_BLOCKS
from vq.ops import anomaly_scoring, patch_features, texture_memory
from vq.tasks.anomaly_scorings import (FUSED, MEMORY, MEMORY_SCORINGS,
                                       memory_scores)

SCALE_KEYS = ("draem_scale", "memory_scale")  # eval.scoring=fused only
FEATURES = ("gabor", *LITE_BLOCKS)  # eval.memory.features


class CategoryMemory(NamedTuple):
  """A category's texture memory (`texture_memory.build_memory`) and the
  edge rings' levels its maps are divided by (`texture_memory.
  border_rings`)."""
  rows: np.ndarray
  mean: np.ndarray
  std: np.ndarray
  border_rings: np.ndarray

  def border_level(self, hw):
    """float32 [H, W]: what an `hw` map is divided by."""
    return texture_memory.border_level(self.border_rings, hw)


class TextureScoring:
  """Per-category texture memories at the scoring's shape (`score_shape`),
  built on demand from training images."""

  def __init__(self, config, class_names, network_size):
    e = config.eval
    if e.scoring in MEMORY_SCORINGS:
      _check_memory_config(e.memory)
      _check_reference_config(e)
      if e.scoring == FUSED and e.memory.short_side:
        raise config_base.ConfigError(
            f"eval.memory.short_side scores each photograph at its own "
            f"shape, and eval.scoring={FUSED} adds DRAEM's map of the "
            f"scored shape: use eval.scoring={MEMORY} or short_side=0")
    self.config = config
    self.class_names = tuple(class_names)
    self.network_size = network_size
    self.score_size = score_size(config)
    self.score_shape = score_shape(config)
    # Each image's own box of the scored shape scaled to this short side
    # (`short_side`); 0: the scored shape as it is.
    self.short_side = (int(config.eval.memory.short_side)
                       if config.eval.scoring in MEMORY_SCORINGS else 0)
    # Images smaller than the scored side: blocks of pixels for the Gabor
    # memory (the networks' exact view), bilinear for an encoder's.
    self.enlarge = ("repeat" if config.eval.memory.features == "gabor"
                    else "linear")
    self.note_prefix = ""  # what its progress notes begin with
    self.cache_dir = ""  # where built memories are kept ("": nowhere)
    self.memories = {}  # category -> CategoryMemory
    self.evaluated_maps = {}  # category -> (images' digest, memory maps)
    self._patches = None  # PatchFeatures, loaded when first needed

  @property
  def window(self):
    """The image-score window: eval.memory.window, or (0) eval.
    baseline_window scaled to the scoring's side (odd)."""
    window = self.config.eval.memory.window or (
        self.config.eval.baseline_window * self.score_size
        // self.network_size)
    return window - 1 + window % 2

  def split(self, datasets, category):
    """(memory images, reference images) of `category`."""
    return anomaly_data.reference_split(
        category, anomaly_data.train_categories(datasets).count(category),
        self.config.eval.memory.images, self.config.eval.reference_images)

  def reference_indices(self, datasets):
    return anomaly_data.reference_indices(
        anomaly_data.train_categories(datasets), self.class_names,
        self.config.eval.memory.images, self.config.eval.reference_images)

  def memory_for(self, category, datasets):
    """`category`'s CategoryMemory, read from `datasets` once: the memory of
    its first eval.memory.images training images (fewer when the references
    need them), the border level measured on the reference images; with a
    `cache_dir`, written there once built and read back by later calls
    (a run's prediction and export read what its evaluation built)."""
    if category in self.memories:
      return self.memories[category]
    path = self._cache_path(category, datasets)
    kept = read_memory(path) if path and os.path.isfile(path) else None
    if kept is not None:
      self.memories[category] = kept
      logging.info("%s%s: memory read from %s", self.note_prefix, category,
                   path)
    else:
      start = time.perf_counter()
      m, r = self.split(datasets, category)
      images, boxes = anomaly_data.normal_canvases(
          datasets, category, m + r, self.network_size, self.score_shape,
          self.enlarge, self.config.data.keep_aspect)
      if self.short_side:
        images = self.views(images, boxes)
      memory = texture_memory.build_memory(
          per_shape(self.features, images[:m], 8),
          self.config.eval.memory.stride,
          standardise=self.config.eval.memory.features == "gabor")
      patches = len(memory[0])
      memory = (self._thinned(memory[0]),) + memory[1:]
      built = time.perf_counter()
      references = [maps for maps, _ in per_shape(
          lambda x: self._distances(x, memory), images[m:], 4)]
      self.memories[category] = CategoryMemory(
          *memory, texture_memory.border_rings(references, self.reach))
      logging.info("%s%s: memory of %d training images, %d of their %d "
                   "patches (%.0f s); border level on %d more (%.0f s)",
                   self.note_prefix, category, m, len(memory[0]), patches,
                   built - start, r, time.perf_counter() - built)
      if path:
        write_memory(path, self.memories[category])
    return self.memories[category]

  def _cache_path(self, category, datasets):
    """The file `category`'s memory is kept in under `cache_dir` (""
    without one), named by a digest of what it is built from: the memory,
    data and reference settings, the seed, the training files and an
    encoder's weights file."""
    if not self.cache_dir:
      return ""
    m = self.config.eval.memory
    weights = None
    if m.features != "gabor":
      path = pretrained.resolve(m.weights)
      weights = (os.path.abspath(path), os.path.getsize(path),
                 os.stat(path).st_mtime_ns)
    key = {"format": MEMORY_FORMAT, "category": category,
           "memory": m.to_dict(), "weights": weights,
           "data": self.config.data.to_dict(), "seed": self.config.seed,
           "references": self.config.eval.reference_images,
           "training": anomaly_data.training_identity(datasets, category)}
    digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str)
                          .encode()).hexdigest()
    return os.path.join(self.cache_dir, digest[:20] + ".npz")

  def _thinned(self, rows):
    """The memory's rows, thinned to eval.memory.coreset of them by the
    greedy coreset (all of them at 0), its projection drawn with the
    config's seed."""
    fraction = self.config.eval.memory.coreset
    count = int(round(fraction * len(rows)))
    if not fraction or count >= len(rows):
      return rows
    return rows[np.asarray(patch_features.greedy_coreset(
        jnp.asarray(rows), max(count, 1), seed=self.config.seed))]

  @property
  def bank(self):
    m = self.config.eval.memory
    return texture_memory.gabor_bank(tuple(m.wavelengths), m.orientations)

  @property
  def reach(self):
    """How far from a pixel its descriptor reads (pixels): the border
    level's margin (for patch features: two patches and the map's blur)."""
    m = self.config.eval.memory
    if m.features == "gabor":
      return texture_memory.feature_reach(self.bank, m.sigma)
    return 2 * patch_features.STRIDE + int(np.ceil(2 * m.blur))

  def features(self, images):
    """[N, H, W, F] Gabor energies, or [N, H / 8, W / 8, F] patch
    features (eval.memory.features)."""
    m = self.config.eval.memory
    if m.features == "gabor":
      return texture_memory.texture_features(jnp.asarray(images), self.bank,
                                             m.sigma, m.colour)
    if self._patches is None:
      self._patches = patch_features.PatchFeatures(m.weights)
    return self._patches(images)

  def _distances(self, images, memory):
    """([N, H, W]: each pixel's distance to `memory`, patch features' map
    enlarged to the images' side and blurred (eval.memory.blur); [N]: the
    image scores' weights, PatchCore's with eval.memory.neighbours, else
    1)."""
    m = self.config.eval.memory
    features = self.features(images)
    maps = texture_memory.anomaly_maps(features, *memory, m.map_stride)
    weights = jnp.ones_like(maps[:, 0, 0])
    if m.neighbours:  # map_stride is 1: `maps` are the queries' distances
      weights = texture_memory.patchcore_weights(
          texture_memory.queries_of(features, *memory[1:]), maps, memory[0],
          m.neighbours)
    if maps.shape[1:] == images.shape[1:3]:
      return maps, weights
    maps = layers.resize_bilinear(maps[..., None], images.shape[1:3])
    return texture_memory.gaussian_blur(maps, m.blur)[..., 0], weights

  def _raw_maps(self, images, memory):
    """(Distances to `memory` = (rows, mean, std), not border-calibrated;
    image-score weights)."""
    if not isinstance(images.shape[0], int):  # an export's symbolic batch
      return self._distances(images, memory)
    return in_chunks(lambda x: self._distances(x, memory), images, 4)

  def maps(self, images, category):
    """`scored`'s maps."""
    return self.scored(images, category)[0]

  def scored(self, images, category):
    """uint8 [N, H, W, 3] -> ([N, H, W] distances to the category's texture
    memory over its border level, [N] weights of the images' scores); the
    memory must have been built (`memory_for`)."""
    if category not in self.memories:
      raise ValueError(
          f"eval.scoring={self.config.eval.scoring} compares with a memory "
          f"of a category's training images; none is built for "
          f"{category!r} (vq.predict reads it for --category from the "
          "run's memories/ or builds it from its data.path; vq.export "
          "--category compiles one into a StableHLO file)")
    memory = self.memories[category]
    maps, weights = self._raw_maps(images,
                                   (memory.rows, memory.mean, memory.std))
    return maps / memory.border_level(maps.shape[1:]), weights

  def views(self, images, boxes):
    """Each image's `box` of the scored shape scaled to eval.memory.
    short_side (`short_side.from_box`): a list, shapes may differ."""
    return [short_side.from_box(image, box, self.short_side)
            for image, box in zip(images, boxes)]

  def evaluated_outputs(self, host, datasets):
    """{'memory_map', 'score/memory'} of the evaluated images, each
    against its category's texture memory."""
    maps = np.zeros(host["image"].shape[:3], np.float32)
    scores = np.zeros(len(maps), np.float32)
    for c, name in enumerate(self.class_names):
      sel = host["category"] == c
      if sel.any():
        maps[sel], scores[sel] = self._kept_maps(
            host["image"][sel], host["valid"][sel], name, datasets)
    return {"memory_map": maps, f"score/{MEMORY}": scores}

  def _scored_views(self, images, valid, category):
    """([N, H, W] maps, [N] scores) of images of the scored shape: with a
    short side, each image's box (its `valid` pixels) scored at it, the
    score taken there, the map scaled back into the box (0 outside)."""
    if not self.short_side:
      return self._with_scores(images, category)
    boxes = [short_side.box_of(v) for v in valid]
    scored = per_shape(lambda x: self._with_scores(x, category),
                       self.views(images, boxes), 4)
    return (np.stack([short_side.into_box(m, box, images.shape[1:3])
                      for (m, _), box in zip(scored, boxes)]),
            np.array([score for _, score in scored], np.float32))

  def _with_scores(self, images, category):
    """`scored`'s maps and their image scores."""
    maps, weights = self.scored(images, category)
    return maps, memory_scores(maps, weights, self.window)

  def _kept_maps(self, images, valid, category, datasets):
    """`_scored_views` of evaluated images, kept for the next evaluation
    (the memory and the test images do not change during training)."""
    digest = hashlib.sha1(images.tobytes() + valid.tobytes()).hexdigest()
    if self.evaluated_maps.get(category, ("",))[0] != digest:
      self.memory_for(category, datasets)
      start = time.perf_counter()
      self.evaluated_maps[category] = (digest, tuple(
          np.asarray(x) for x in self._scored_views(images, valid,
                                                    category)))
      logging.info("%s%s: %d test images scored against the memory (%.0f s)",
                   self.note_prefix, category, len(images),
                   time.perf_counter() - start)
    return self.evaluated_maps[category][1]

  def fused_outputs(self, host, outs):
    """(host, outs) of the test images with 'fused_map' and 'score/fused'
    added, {category: its maps' scales} measured on the reference images
    (label -1, dropped from host and outs)."""
    reference = host["label"] < 0
    quantile = self.config.eval.reference_quantile
    scales = {name: {
        "draem_scale": float(anomaly_scoring.map_scale(
            outs["map"][sel], quantile)),
        "memory_scale": float(anomaly_scoring.map_scale(
            outs["memory_map"][sel], quantile))}
              for c, name in enumerate(self.class_names)
              for sel in [reference & (host["category"] == c)]}
    host = {k: v[~reference] for k, v in host.items()}
    outs = {k: v[~reference] for k, v in outs.items()}
    maps = np.zeros_like(outs["map"])
    for c, name in enumerate(self.class_names):
      sel = host["category"] == c
      maps[sel] = anomaly_scoring.fused_map(outs["map"][sel],
                                            outs["memory_map"][sel],
                                            **scales[name])
    outs["fused_map"] = maps
    outs[f"score/{FUSED}"] = np.asarray(anomaly_scoring.baseline_image_score(
        jnp.asarray(maps)[..., None], self.window))
    return host, outs, scales


# Of the files `write_memory` writes: raise it when what a memory holds or
# how it is built changes, so that kept memories are built again.
MEMORY_FORMAT = 2  # 2: the edge rings' levels, not a map's


def write_memory(path, memory):
  """A CategoryMemory to an .npz file (written whole, then renamed); a
  folder that cannot be written (a read-only run) is noted, not fatal."""
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_file.replaced(path, "wb") as f:
      np.savez(f, **{k: np.asarray(v) for k, v in memory._asdict().items()})
  except OSError as e:
    logging.warning("the memory is not kept (%s): later runs of the tools "
                    "build it again", e)


def read_memory(path):
  """The CategoryMemory `write_memory` wrote, or None (noted) when the
  file is damaged or of another layout: it is then built again."""
  try:
    with np.load(path, allow_pickle=False) as arrays:
      return CategoryMemory(*(arrays[k] for k in CategoryMemory._fields))
  except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
    logging.warning("%s: not a kept memory (%s); building it again", path,
                    e)
    return None


def per_shape(fn, images, size):
  """`in_chunks` of fn over images (a list, shapes may differ) of each
  shape in turn (jit compiles once per shape) -> each image's outputs, in
  `images`' order."""
  outputs = [None] * len(images)
  for indices in short_side.by_shape(images).values():
    batch = jax.device_get(in_chunks(
        fn, np.stack([images[i] for i in indices]), size))
    for j, i in enumerate(indices):
      outputs[i] = jax.tree.map(lambda x, j=j: x[j], batch)
  return outputs


def in_chunks(fn, images, size):
  """fn over `images` `size` at a time, the last chunk padded to `size`
  (so each jit-compiled step sees one shape), the padding dropped."""
  pad = -len(images) % size
  padded = jnp.concatenate([jnp.asarray(images),
                           jnp.repeat(images[:1], pad, 0)])
  outs = [fn(padded[i:i + size]) for i in range(0, len(padded), size)]
  return jax.tree.map(lambda *parts: jnp.concatenate(parts)[:len(images)],
                      *outs)


def score_size(config):
  """The side images are scored at: data.image_size, or under the memory
  scorings eval.memory.image_size (0: data.image_size)."""
  size = int(config.data.image_size)
  if config.eval.scoring not in MEMORY_SCORINGS:
    return size
  m = config.eval.memory
  side = m.image_size or size
  if side != int(side) or int(side) % size:
    raise config_base.ConfigError(
        f"eval.memory.image_size {m.image_size} must be a whole multiple of "
        f"data.image_size {size} (the network reads the images shrunk to it "
        f"by a whole factor), e.g. {2 * size}; 0 scores at data.image_size")
  if int(side) % m.map_stride:
    raise config_base.ConfigError(
        f"eval.memory.map_stride {m.map_stride} must divide the memory's "
        f"side {int(side)}")
  return int(side)


def score_shape(config):
  """(height, width) images are scored at: `score_size`'s square, or under
  eval.scoring=memory about as many pixels at eval.memory.aspect_ratio
  (`anomaly_data.aspect_shape`)."""
  side = score_size(config)
  ratio = config.eval.memory.aspect_ratio
  if config.eval.scoring not in MEMORY_SCORINGS or ratio == 1:
    return side, side
  if config.eval.scoring != MEMORY:
    raise config_base.ConfigError(
        f"eval.memory.aspect_ratio={ratio} scores a non-square shape, and "
        f"eval.scoring={config.eval.scoring} adds DRAEM's square map: use "
        f"eval.scoring={MEMORY} (no network) or aspect_ratio=1")
  shape = anomaly_data.aspect_shape(side, ratio)
  if any(s % config.eval.memory.map_stride for s in shape):
    raise config_base.ConfigError(
        f"eval.memory.map_stride {config.eval.memory.map_stride} must divide "
        f"the memory's shape {shape[1]}x{shape[0]} (eval.memory."
        f"aspect_ratio={ratio})")
  return shape


def _check_memory_config(m):
  """Clear errors for settings the texture memory cannot use."""
  config_base.check_choice("eval.memory.features", m.features, FEATURES)
  problems = []
  if m.features != "gabor" and (
      pretrained.named_architecture(m.weights) != m.features):
    problems.append(f"eval.memory.features={m.features} reads the weights "
                    f"{m.features}_imagenet, got eval.memory.weights="
                    f"{m.weights}")
  if not 0 <= m.coreset <= 1:
    problems.append(f"eval.memory.coreset must be a fraction in [0, 1] (0: "
                    f"keep every row), got {m.coreset}")
  problems += short_side_problems(m)
  if m.blur <= 0:
    problems.append(f"eval.memory.blur must be positive, got {m.blur}")
  if not m.aspect_ratio > 0:
    problems.append(f"eval.memory.aspect_ratio is a width / height ratio "
                    f"(1: square, e.g. 2.5 for photographs 2.5 times as wide "
                    f"as high; 0: the training photographs'), got "
                    f"{m.aspect_ratio}")
  if not m.wavelengths or min(m.wavelengths) <= 0:
    problems.append(f"eval.memory.wavelengths {tuple(m.wavelengths)} must "
                    "be positive lengths in pixels (e.g. (3.0, 6.0))")
  if m.sigma <= 0:
    problems.append(f"eval.memory.sigma must be positive, got {m.sigma}")
  for field in ("orientations", "images", "stride", "map_stride"):
    if int(m[field]) < 1 or int(m[field]) != m[field]:
      problems.append(f"eval.memory.{field} must be a whole number >= 1, "
                      f"got {m[field]}")
  if int(m.neighbours) < 0 or int(m.neighbours) != m.neighbours:
    problems.append(f"eval.memory.neighbours must be a whole number >= 0 "
                    f"(0: no reweighting), got {m.neighbours}")
  elif m.neighbours and m.map_stride != 1:
    problems.append("eval.memory.neighbours reweights the score of the "
                    "patch farthest from the memory: it needs "
                    f"eval.memory.map_stride=1, got {m.map_stride}")
  if int(m.window) < 0 or int(m.window) != m.window:
    problems.append(f"eval.memory.window must be a whole number of pixels "
                    f"(0: eval.baseline_window scaled), got {m.window}")
  if problems:
    raise config_base.ConfigError("; ".join(problems))


def short_side_problems(m):
  """[] or what is wrong with eval.memory.short_side (`m`: the eval.memory
  fields, or a candidate's)."""
  side, features = m.get("short_side", 0), m.get("features", "gabor")
  if not side or (features != "gabor" and side % 32 == 0
                  and int(side) == side):
    return []
  return [f"eval.memory.short_side scales each photograph to this short "
          f"side for an ImageNet encoder's patch features: a multiple of "
          f"32 with eval.memory.features=efficientnet_lite0 (or another "
          f"encoder; 0: off), got {side} with features={features}"]


def _check_reference_config(e):
  """Clear errors for reference settings the fused scoring cannot use."""
  if int(e.reference_images) < 1 or int(e.reference_images) != \
      e.reference_images:
    raise config_base.ConfigError(
        f"eval.reference_images must be a whole number >= 1, got "
        f"{e.reference_images}")
  if not 0 < e.reference_quantile <= 1:
    raise config_base.ConfigError(
        f"eval.reference_quantile must be in (0, 1], got "
        f"{e.reference_quantile}")
