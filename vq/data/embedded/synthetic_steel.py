"""Embedded multi-class dataset: steel strip surface with 4 defect kinds.

Severstal-like: a grey rolled-steel texture at the 256:1600 aspect ratio;
class 1 pits (clusters of small dark dots), 2 lines (straight, thin,
bright, slanted across the strip), 3 patches (broad dark blobs),
4 cracks (jagged dark polylines). About `defect_probability` of the images
carry one to three defects; every image is generated from (seed, index).
"""
import numpy as np

from vq.data.formats import polygons
from vq.data.augment.geometry import size_hw
from vq.data.embedded.surface_drawing import (blob_polygon, ellipse_polygon,
                                              paint, random_walk, rasterise,
                                              smooth_noise, stroke_polygon,
                                              to_uint8)

CLASS_NAMES = ("pits", "lines", "patches", "cracks")


def _pits(rng, h, w, image):
  centre = rng.uniform([0.1 * w, 0.2 * h], [0.9 * w, 0.8 * h])
  axes = (rng.uniform(0.05, 0.1) * w, rng.uniform(0.15, 0.3) * h)
  region = ellipse_polygon(centre, axes, rng.uniform(0, np.pi))
  area = rasterise(region, h, w)
  ys, xs = np.nonzero(area)
  dots = np.zeros((h, w), np.uint8)
  for i in rng.choice(len(ys), size=max(3, len(ys) // 12)):
    dots[ys[i], xs[i]] = 1
  paint(image, dots, rng.uniform(20, 60))
  paint(image, area, image.mean() - 25, opacity=0.5)
  return region


def _line(rng, h, w, image):
  x = rng.uniform(0.05, 0.95) * w
  slant = rng.choice([-1, 1]) * rng.uniform(0.3, 0.8) * h
  polyline = np.array([[x - slant / 2, -1.0], [x + slant / 2, h + 1.0]])
  region = stroke_polygon(polyline, rng.uniform(0.06, 0.09) * h)
  mask = rasterise(region, h, w)
  paint(image, mask, rng.uniform(200, 235), opacity=0.9)
  return region


def _patch(rng, h, w, image):
  centre = rng.uniform([0.1 * w, 0.25 * h], [0.9 * w, 0.75 * h])
  region = blob_polygon(rng, centre, rng.uniform(0.2, 0.35) * h,
                        aspect=rng.uniform(1.5, 3.0), roughness=0.3)
  mask = rasterise(region, h, w)
  shade = smooth_noise(rng, (h, w), 4, 12) + rng.uniform(40, 80)
  paint(image, mask, shade, opacity=0.9, soften=1.0)
  return region


def _crack(rng, h, w, image):
  start = rng.uniform([0.1 * w, 0.1 * h], [0.9 * w, 0.9 * h])
  polyline = random_walk(rng, start, 12, 0.06 * h, 0.7,
                         rng.uniform(0, 2 * np.pi))
  region = stroke_polygon(polyline, rng.uniform(0.05, 0.08) * h)
  mask = rasterise(region, h, w)
  paint(image, mask, rng.uniform(10, 40), opacity=0.9)
  return region


DRAW = (_pits, _line, _patch, _crack)


def generate(seed, index, image_size, defect_probability=0.6):
  """One strip image with its masks.

  Args:
    image_size: (height, width), or an int for a square.

  Returns:
    dict: image uint8 [H, W, 3], mask uint8 [H, W, 4] (one channel per
    class), label int32 (1 if any defect).
  """
  rng = np.random.default_rng([seed, index])
  h, w = size_hw(image_size)
  base = rng.uniform(90, 150)
  rolling = smooth_noise(rng, (1, w), 2, 5)  # streaks across the strip
  image = (base + rolling + smooth_noise(rng, (h, w), 8, 6) +
           rng.normal(0, 4, (h, w))).astype(np.float32)
  regions = []
  if rng.random() < defect_probability:
    for k in rng.choice(4, size=rng.integers(1, 4)):
      regions.append({"points": DRAW[k](rng, h, w, image),
                      "class_name": int(k) + 1})
  mask = polygons.to_mask(regions, h, w, len(CLASS_NAMES), warn=False)
  grey = to_uint8(image)
  return {"image": np.repeat(grey[..., None], 3, -1), "mask": mask,
          "label": np.int32(mask.any())}
