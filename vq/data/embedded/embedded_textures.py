"""The embedded anomaly dataset: scikit-image's texture photographs in the
MVTec AD layout.

scikit-image ships brick, grass and gravel photographs (512x512 grey). Each
becomes a category: training patches come from the left three quarters of
the (half-size) photograph, test patches from the right quarter; half of the
test patches carry a drawn defect (scratch, hole, stain or cut) with its
mask. The defects are drawn by a different process from the Perlin-noise
anomalies used in training. The tree is written once per settings into a
cache folder and then read by the MVTec AD reader.
"""
import json
import os
import shutil
import tempfile

import cv2
import numpy as np
from skimage import data as skdata

from vq.data.images import write_image
from vq.data.embedded.surface_drawing import (blob_polygon, ellipse_polygon,
                                              paint, random_walk, rasterise,
                                              stroke_polygon, to_uint8)

CATEGORIES = ("brick", "grass", "gravel")
DEFECT_TYPES = ("scratch", "hole", "stain", "cut")
VERSION = 1


def texture(category, side=256):
  """The category's photograph (512x512) resized to uint8 [side, side]."""
  image = getattr(skdata, category)()
  interpolation = cv2.INTER_AREA if side <= image.shape[0] else cv2.INTER_CUBIC
  return cv2.resize(image, (side, side), interpolation=interpolation)


def _crop(rng, photo, size, x_range):
  h, w = photo.shape
  x = rng.integers(x_range[0], x_range[1] - size + 1)
  y = rng.integers(0, h - size + 1)
  patch = photo[y:y + size, x:x + size]
  patch = np.rot90(patch, rng.integers(4)) if rng.random() < 0.5 else patch
  return np.ascontiguousarray(patch)


def draw_defect(rng, patch, kind):
  """Draws one defect on a grey patch; returns (uint8 [S, S, 3], mask)."""
  s = patch.shape[0]
  image = patch.astype(np.float32)
  centre = rng.uniform(0.25, 0.75, 2) * s
  if kind == "scratch":
    line = random_walk(rng, centre, 6, 0.07 * s, 0.2, rng.uniform(0, 6.3))
    mask = rasterise(stroke_polygon(line, rng.uniform(0.03, 0.05) * s), s, s)
    paint(image, mask, rng.choice([rng.uniform(215, 250),
                                   rng.uniform(5, 30)]), opacity=0.9)
  elif kind == "hole":
    axes = rng.uniform(0.06, 0.12, 2) * s
    mask = rasterise(ellipse_polygon(centre, axes, rng.uniform(0, 3.2)), s, s)
    paint(image, mask, rng.uniform(0, 25), opacity=0.95, soften=0.8)
  elif kind == "stain":
    mask = rasterise(blob_polygon(rng, centre, rng.uniform(0.1, 0.18) * s,
                                  aspect=rng.uniform(1, 1.6)), s, s)
    tone = rng.choice([rng.uniform(20, 60), rng.uniform(190, 240)])
    paint(image, mask, tone, opacity=rng.uniform(0.6, 0.8), soften=1.5)
  elif kind == "cut":
    end = centre + rng.uniform(0.2, 0.35) * s * np.array(
        [np.cos(a := rng.uniform(0, 6.3)), np.sin(a)])
    line = np.stack([centre - (end - centre), end])
    mask = rasterise(stroke_polygon(line, rng.uniform(0.04, 0.06) * s), s, s)
    paint(image, mask, rng.uniform(0, 20), opacity=0.95)
  else:
    raise ValueError(f"defect kind must be one of {DEFECT_TYPES}, got {kind!r}")
  return np.repeat(to_uint8(image)[..., None], 3, -1), mask


def write_category(folder, category, image_size, num_train, num_test_good,
                   num_test_per_defect, seed):
  # Test crops come from the photo's right quarter: read at half size
  # (256) up to 64-pixel images, larger for larger ones (enlarged beyond
  # the photo's own 512 pixels for images over 128).
  photo = texture(category, max(256, 4 * image_size))
  split = 3 * photo.shape[1] // 4
  rng = np.random.default_rng([seed, CATEGORIES.index(category)])
  grey3 = lambda p: np.repeat(p[..., None], 3, -1)
  os.makedirs(os.path.join(folder, "train", "good"))
  for i in range(num_train):
    patch = _crop(rng, photo, image_size, (0, split))
    write_image(os.path.join(folder, "train", "good", f"{i:03d}.png"),
                grey3(patch))
  os.makedirs(os.path.join(folder, "test", "good"))
  for i in range(num_test_good):
    patch = _crop(rng, photo, image_size, (split, photo.shape[1]))
    write_image(os.path.join(folder, "test", "good", f"{i:03d}.png"),
                grey3(patch))
  for kind in DEFECT_TYPES:
    os.makedirs(os.path.join(folder, "test", kind))
    os.makedirs(os.path.join(folder, "ground_truth", kind))
    for i in range(num_test_per_defect):
      patch = _crop(rng, photo, image_size, (split, photo.shape[1]))
      image, mask = draw_defect(rng, patch, kind)
      write_image(os.path.join(folder, "test", kind, f"{i:03d}.png"), image)
      cv2.imwrite(os.path.join(folder, "ground_truth", kind,
                               f"{i:03d}_mask.png"), mask * 255)


def ensure_written(cache_dir, image_size=64, num_train=200, num_test_good=40,
                   num_test_per_defect=10, seed=0):
  """Writes the embedded tree (all categories) unless this exact one is
  there; returns its root. Safe when several processes call it at once."""
  settings = dict(version=VERSION, image_size=image_size, num_train=num_train,
                  num_test_good=num_test_good,
                  num_test_per_defect=num_test_per_defect, seed=seed)
  name = "textures_" + "_".join(str(v) for v in settings.values())
  root = os.path.join(cache_dir, name)
  if os.path.isfile(os.path.join(root, "settings.json")):
    return root
  os.makedirs(cache_dir, exist_ok=True)
  staging = tempfile.mkdtemp(dir=cache_dir, prefix=".writing_")
  try:
    for category in CATEGORIES:
      write_category(os.path.join(staging, category), category, image_size,
                     num_train, num_test_good, num_test_per_defect, seed)
    with open(os.path.join(staging, "settings.json"), "w") as f:
      json.dump(settings, f)
    os.rename(staging, root)
  except OSError:
    if not os.path.isfile(os.path.join(root, "settings.json")):
      raise
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return root


def default_cache_dir():
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
      os.path.expanduser("~"), ".cache")
  return os.path.join(base, "vq")
