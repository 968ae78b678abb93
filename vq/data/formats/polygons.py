"""Polygon annotations rasterised to per-class binary masks."""
import logging

import numpy as np
from skimage.draw import polygon


def to_mask(regions, height, width, num_classes, *, record="", clip=True,
            warn=True):
  """Regions -> uint8 [height, width, num_classes] masks (0 or 1).

  Args:
    regions: [{"points": [[x, y], ...], "class_name": k}] with class ids k in
      1..num_classes (0 is background and has no channel); points in pixels.
    height, width: the image size.
    num_classes: channels of the output.
    record: named in errors.
    clip: points outside the image are clipped to it (True) or an error.
    warn: log a warning naming the record when points are clipped.

  Raises:
    ValueError naming the record and region for a polygon with fewer than 3
    points, an unknown class id or (clip=False) a point outside the image.
  """
  masks = np.zeros((num_classes, height, width), np.uint8)
  where = f"{record}: " if record else ""
  for i, region in enumerate(regions):
    points = np.asarray(region.get("points", []), np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3:
      raise ValueError(f"{where}region {i} needs at least 3 [x, y] points, "
                       f"got {region.get('points')!r}")
    k = region.get("class_name")
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= num_classes:
      raise ValueError(f"{where}region {i} has class_name {k!r}, expected an "
                       f"integer in 1..{num_classes}")
    outside = ((points < 0) | (points > [width, height])).any(1)
    if outside.any() and not clip:
      raise ValueError(f"{where}region {i} has points outside the "
                       f"{width}x{height} image: {points[outside][:3].tolist()}")
    if outside.any() and warn:
      logging.warning("%sregion %d: %d points outside the %dx%d image "
                      "clipped to it", where, i, outside.sum(), width, height)
    points = np.clip(points, 0, [width, height])
    # A pixel is inside when its centre is (skimage puts centres at integers).
    rows, cols = polygon(points[:, 1] - 0.5, points[:, 0] - 0.5,
                         (height, width))
    masks[k - 1, rows, cols] = 1
  return masks.transpose(1, 2, 0).copy()
