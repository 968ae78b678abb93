"""Geometric and photometric augmentation of an image with its masks.

One affine warp resizes, scales, shifts and mirrors the image; the masks go
through the same matrix with nearest-neighbour sampling, so they follow the
pixels exactly.
"""
import cv2
import numpy as np

from vq.data.augment.geometry import (brightness_contrast, random_warp,
                                      warp_image)


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


def random_crop(record, crop_hw, rng, defect_share=0.0, label_channels=None):
  """A native-resolution crop of image and mask, of `crop_hw` (smaller
  images are padded with zeros).

  With probability `defect_share`, and when the mask has any defect, the
  crop is centred (with jitter) on a random pixel of a class drawn
  uniformly from the classes present, so rare classes are seen as often as
  common ones; otherwise its position is uniform. A crop without any mask
  pixel is labelled 0 (the image's defect is outside it); with
  `label_channels`, one without a pixel of those channels (e.g. the damage
  classes, not panel gaps).
  """
  image, mask = record["image"], record["mask"]
  ch, cw = crop_hw
  pad_h, pad_w = max(ch - image.shape[0], 0), max(cw - image.shape[1], 0)
  if pad_h or pad_w:
    pad = ((0, pad_h), (0, pad_w), (0, 0))
    image, mask = np.pad(image, pad), np.pad(mask, pad)
  h, w = image.shape[:2]
  present = np.flatnonzero(mask.reshape(-1, mask.shape[-1]).any(0))
  if present.size and rng.random() < defect_share:
    ys, xs = np.nonzero(mask[..., rng.choice(present)])
    i = rng.integers(ys.size)
    y = int(ys[i] - ch // 2 + rng.integers(-ch // 4, ch // 4 + 1))
    x = int(xs[i] - cw // 2 + rng.integers(-cw // 4, cw // 4 + 1))
    y, x = min(max(y, 0), h - ch), min(max(x, 0), w - cw)
  else:
    y, x = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
  result = dict(record)
  result["image"] = image[y:y + ch, x:x + cw]
  result["mask"] = mask[y:y + ch, x:x + cw]
  labelling = result["mask"] if label_channels is None else result["mask"][
      ..., list(label_channels)]
  if "label" in record and not labelling.any():
    result["label"] = np.zeros_like(record["label"])
  return result
