"""Geometric and photometric augmentation of an image with its masks.

One affine warp resizes, scales, shifts and mirrors the image; the masks go
through the same matrix with nearest-neighbour sampling, so they follow the
pixels exactly.
"""
import cv2
import numpy as np

from vq.data.geometry import brightness_contrast, random_warp, warp_image


def resize_and_augment(record, out_size, rng=None, *, scale_range=0.0,
                       shift_range=0.0, flip=False, flip_vertical=False,
                       brightness=0.0, contrast=0.0):
  """Resizes image and mask to `out_size` (int or (height, width)); augments
  when `rng` (a numpy Generator) is given.

  Args:
    record: dict with image uint8 [H, W, 3] and mask uint8 [H, W, C] of the
      same height and width; other keys pass through.
  """
  image, mask = record["image"], record["mask"]
  if mask.shape[:2] != image.shape[:2]:
    raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]} but its image "
                     f"is {image.shape[1]}x{image.shape[0]}")
  out, m, _ = random_warp(image, out_size, rng, scale_range=scale_range,
                          shift_range=shift_range, flip=flip)
  warped = np.stack([warp_image(mask[..., k], m, out_size, cv2.INTER_NEAREST)
                     for k in range(mask.shape[-1])], -1)
  if rng is not None:
    if flip_vertical and rng.random() < 0.5:
      out, warped = out[::-1], warped[::-1]
    if brightness or contrast:
      out = brightness_contrast(out, rng.uniform(-brightness, brightness),
                                rng.uniform(1 - contrast, 1 + contrast))
  result = dict(record)
  result["image"] = np.ascontiguousarray(out)
  result["mask"] = np.ascontiguousarray(warped)
  return result
