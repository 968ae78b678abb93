"""Embedded binary dataset: scratches on brushed metal, with highlights.

Brushed-metal texture under uneven light; most images carry one to three
thin scratches (lighter or darker than the metal); some carry a specular
highlight from the light source, which is not a defect.
"""
import cv2
import numpy as np

from vq.data.formats import polygons
from vq.data.augment.geometry import size_hw
from vq.data.embedded.surface_drawing import (paint, random_walk, rasterise,
                                              smooth_noise, stroke_polygon,
                                              to_uint8)


def generate(seed, index, image_size, scratch_probability=0.8):
  """Returns dict: image uint8 [H, W, 3], mask uint8 [H, W, 1], label."""
  rng = np.random.default_rng([seed, index])
  h, w = size_hw(image_size)
  brushed = cv2.resize(rng.normal(0, 1, (h, 4)).astype(np.float32), (w, h),
                       interpolation=cv2.INTER_LINEAR)
  if rng.random() < 0.5:
    brushed = brushed.T if h == w else brushed
  ys, xs = np.mgrid[0:h, 0:w] / h
  light = rng.uniform(-40, 40) * (xs - 0.5) + rng.uniform(-40, 40) * (ys - 0.5)
  image = (rng.uniform(90, 160) + 10 * brushed + light +
           smooth_noise(rng, (h, w), 6, 4)).astype(np.float32)
  regions = []
  if rng.random() < scratch_probability:
    for _ in range(rng.integers(1, 4)):
      start = rng.uniform(0.1, 0.9, 2) * [w, h]
      polyline = random_walk(rng, start, 10, 0.06 * h, 0.12,
                             rng.uniform(0, 2 * np.pi))
      region = stroke_polygon(polyline, rng.uniform(0.025, 0.045) * h)
      mask = rasterise(region, h, w)
      paint(image, mask, rng.choice([rng.uniform(200, 240),
                                     rng.uniform(20, 50)]), opacity=0.85)
      regions.append({"points": region, "class_name": 1})
  if rng.random() < 0.4:
    cy, cx = rng.uniform(0.1, 0.9, 2)
    spot = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / rng.uniform(0.002, 0.01))
    image += 200 * spot
  image += rng.normal(0, 3, image.shape)
  mask = polygons.to_mask(regions, h, w, 1, warn=False)
  grey = to_uint8(image)
  return {"image": np.repeat(grey[..., None], 3, -1), "mask": mask,
          "label": np.int32(mask.any())}
