"""Geometric and photometric augmentation of an image with its boxes.

One affine warp does resize, scale, translation and flip together, so boxes
follow the image exactly: their corners go through the same matrix. Without
rotation the warped boxes stay axis-aligned and tight.
"""
import numpy as np

from vq.data.augment.geometry import random_warp, transform_points


def warp_boxes(boxes_px, matrix, out_size, min_visible=0.4):
  """Maps pixel boxes through an axis-aligned affine matrix, clips them.

  Returns:
    (boxes [K', 4] in output pixels, keep [K] bool): a box is kept when at
    least `min_visible` of its warped area lies inside the output and it is
    at least one pixel wide and high there.
  """
  corners = transform_points(boxes_px.reshape(-1, 2, 2), matrix)
  warped = np.concatenate([corners.min(1), corners.max(1)], 1)
  clipped = np.clip(warped, 0, out_size)
  area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
  visible = area(clipped) / np.maximum(area(warped), 1e-9)
  keep = ((visible >= min_visible) & (clipped[:, 2] - clipped[:, 0] >= 1) &
          (clipped[:, 3] - clipped[:, 1] >= 1))
  return clipped[keep], keep


def resize_and_augment(record, out_size, rng=None, *, scale_range=0.0,
                       shift_range=0.0, flip=False, brightness=0.0,
                       contrast=0.0, min_visible=0.4):
  """Resizes a detection record to a square; augments when `rng` is given.

  Args:
    record: dict with image uint8 [H, W, 3], boxes [K, 4] normalised
      (x1, y1, x2, y2), classes [K]; other keys pass through.
    out_size: output side in pixels.
    rng: numpy Generator, or None for a deterministic resize.
    scale_range: scale drawn from [1 - r, 1 + r].
    shift_range: shift drawn from [-r, r] of the image size per axis.
    flip: mirror left-right with probability 1/2.
    brightness: offset drawn from [-b, b] grey levels.
    contrast: factor drawn from [1 - c, 1 + c].
    min_visible: see `warp_boxes`.

  Returns:
    the record with image uint8 [out_size, out_size, 3] and boxes still
    normalised to the new image.
  """
  h, w = record["image"].shape[:2]
  out, m, _ = random_warp(record["image"], out_size, rng,
                          scale_range=scale_range, shift_range=shift_range,
                          flip=flip, brightness=brightness, contrast=contrast)
  boxes_px = record["boxes"] * np.array([w, h, w, h], np.float32)
  boxes, keep = warp_boxes(boxes_px, m, out_size, min_visible)
  result = dict(record)
  result["image"] = out
  result["boxes"] = (boxes / out_size).astype(np.float32)
  result["classes"] = record["classes"][keep]
  if "difficult" in record:
    result["difficult"] = record["difficult"][keep]
  return result
