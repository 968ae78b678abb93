"""Augmentation of an image with its keypoints: keypoints move exactly."""
import numpy as np

from vq.data.geometry import (affine_matrix, brightness_contrast,
                              transform_points, warp_image)


def resize_and_augment(record, out_size, rng=None, *, scale_range=0.0,
                       shift_range=0.0, rotation=0.0, flip=False,
                       flip_permutation=None, brightness=0.0, contrast=0.0):
  """Resizes a keypoint record to a square; augments when `rng` is given.

  Args:
    record: dict with image uint8 [H, W, 3] and keypoints [K, 2] normalised
      (x, y).
    out_size: output side in pixels.
    rng: numpy Generator, or None for a plain resize.
    scale_range, shift_range: zoom in [1 - r, 1 + r], shift in [-r, r].
    rotation: angle drawn from [-r, r] degrees.
    flip: mirror left-right with probability 1/2, reordering keypoints by
      `flip_permutation` (e.g. left and right swap names).
    brightness, contrast: photometric jitter.

  Returns:
    the record with image [out_size, out_size, 3] and keypoints normalised to
    it (they may fall outside [0, 1] after a shift).
  """
  image = record["image"]
  h, w = image.shape[:2]
  scale, shift, angle, mirror = 1.0, (0.0, 0.0), 0.0, False
  if rng is not None:
    scale = rng.uniform(1 - scale_range, 1 + scale_range)
    shift = tuple(rng.uniform(-shift_range, shift_range, 2))
    angle = rng.uniform(-rotation, rotation)
    mirror = flip and rng.random() < 0.5
  m = affine_matrix((h, w), out_size, scale, shift, mirror, angle)
  out = warp_image(image, m, out_size)
  points = transform_points(record["keypoints"] * np.array([w, h]), m)
  if mirror and flip_permutation is not None:
    points = points[list(flip_permutation)]
  if rng is not None and (brightness or contrast):
    out = brightness_contrast(out, rng.uniform(-brightness, brightness),
                              rng.uniform(1 - contrast, 1 + contrast))
  result = dict(record)
  result["image"] = out
  result["keypoints"] = (points / out_size).astype(np.float32)
  return result
