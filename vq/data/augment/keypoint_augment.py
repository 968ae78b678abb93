"""Augmentation of an image with its keypoints: keypoints move exactly."""
import numpy as np

from vq.data.augment.geometry import random_warp, transform_points


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
  h, w = record["image"].shape[:2]
  out, m, mirrored = random_warp(
      record["image"], out_size, rng, scale_range=scale_range,
      shift_range=shift_range, rotation=rotation, flip=flip,
      brightness=brightness, contrast=contrast)
  points = transform_points(record["keypoints"] * np.array([w, h]), m)
  if mirrored and flip_permutation is not None:
    points = points[list(flip_permutation)]
  result = dict(record)
  result["image"] = out
  result["keypoints"] = (points / out_size).astype(np.float32)
  return result
