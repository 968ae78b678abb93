"""Embedded multi-label dataset: painted car-body panels with damage.

Each image is a painted panel (colour gradient and a specular band) and
comes annotated as polygons in the car-damage JSON format: class 1 scratch
(thin light stroke through the paint), 2 dent (a shaded elliptical hollow),
3 spacing (the dark gap between two panels). `damage_level` is 1 when a
scratch or a dent is present (a panel gap alone is not damage).
"""
import json
import os

import numpy as np

from vq.data.formats import polygons
from vq.data.augment.geometry import size_hw
from vq.data.images import write_image
from vq.data.embedded.surface_drawing import (ellipse_polygon, paint,
                                              random_walk, rasterise,
                                              smooth_noise, stroke_polygon,
                                              to_uint8)

CLASS_NAMES = ("scratch", "dent", "spacing")


def _spacing(rng, h, w, image):
  vertical = rng.random() < 0.5
  a, b = rng.uniform(0.15, 0.85, 2) * (w if vertical else h)
  ends = ([[a, -1], [b, h + 1]] if vertical else [[-1, a], [w + 1, b]])
  region = stroke_polygon(np.array(ends, np.float64), rng.uniform(0.03, 0.05) * h)
  paint(image, rasterise(region, h, w), rng.uniform(5, 25))
  return region


def _dent(rng, h, w, image):
  centre = rng.uniform(0.2, 0.8, 2) * [w, h]
  axes = rng.uniform(0.08, 0.16, 2) * h
  angle = rng.uniform(0, np.pi)
  region = ellipse_polygon(centre, axes, angle)
  mask = rasterise(region, h, w)
  ys, xs = np.mgrid[0:h, 0:w]
  # Light from one side: the hollow is dark on that side, bright opposite,
  # and its rim catches a thin highlight.
  light = rng.uniform(0, 2 * np.pi)
  grad = ((xs - centre[0]) * np.cos(light) + (ys - centre[1]) * np.sin(light))
  grad = grad / max(axes) * 90
  shaded = image * 0.6 + grad[..., None]
  paint(image, mask, shaded, soften=0.7)
  rim = rasterise(region, h, w) - rasterise(
      ellipse_polygon(centre, axes - 1.5, angle), h, w)
  paint(image, rim, 235.0, opacity=0.5)
  return region


def _scratch(rng, h, w, image):
  start = rng.uniform(0.1, 0.9, 2) * [w, h]
  polyline = random_walk(rng, start, 8, 0.07 * h, 0.15,
                         rng.uniform(0, 2 * np.pi))
  region = stroke_polygon(polyline, rng.uniform(0.025, 0.04) * h)
  paint(image, rasterise(region, h, w), rng.uniform(200, 245), opacity=0.9)
  return region


def generate(seed, index, image_size, damage_probability=0.5):
  """One panel with its polygon annotation and masks.

  Returns:
    dict: image uint8 [H, W, 3], regions (the JSON format's), mask uint8
    [H, W, 3], label int32 (damage_level).
  """
  rng = np.random.default_rng([seed, index])
  h, w = size_hw(image_size)
  colour = rng.uniform(30, 200, 3)
  ys, xs = np.mgrid[0:h, 0:w] / h
  tilt = rng.uniform(-1, 1, 2)
  image = colour * (1 + 0.25 * (tilt[0] * xs + tilt[1] * ys))[..., None]
  band = np.exp(-((xs * tilt[1] - ys * tilt[0] - rng.uniform(-0.5, 0.5)) /
                  rng.uniform(0.05, 0.2)) ** 2)
  image = (image + rng.uniform(30, 90) * band[..., None] +
           smooth_noise(rng, (h, w), 8, 3)[..., None]).astype(np.float32)
  regions = []
  if rng.random() < 0.5:
    regions.append({"points": _spacing(rng, h, w, image), "class_name": 3})
  damaged = rng.random() < damage_probability
  if damaged:
    kinds = rng.choice([1, 2], size=rng.integers(1, 3))
    for k in kinds:
      draw = _scratch if k == 1 else _dent
      regions.append({"points": draw(rng, h, w, image), "class_name": int(k)})
  image = image + rng.normal(0, 3, image.shape)
  regions = [{"points": np.round(r["points"], 2).tolist(),
              "class_name": r["class_name"]} for r in regions]
  return {"image": to_uint8(image), "regions": regions,
          "mask": polygons.to_mask(regions, h, w, len(CLASS_NAMES),
                                   warn=False),
          "label": np.int32(damaged)}


def write_dataset(folder, num_images, seed=0, image_size=128, extension=".png"):
  """Writes generated panels as images/ and annotations.json (the polygon
  JSON format) under `folder`; returns the JSON path."""
  os.makedirs(os.path.join(folder, "images"), exist_ok=True)
  records = []
  for i in range(num_images):
    r = generate(seed, i, image_size)
    name = f"panel_{i:05d}{extension}"
    write_image(os.path.join(folder, "images", name), r["image"])
    records.append({"image_id": name, "damage_level": int(r["label"]),
                    "regions": r["regions"]})
  path = os.path.join(folder, "annotations.json")
  with open(path, "w") as f:
    json.dump(records, f)
  return path
