"""Geometric and photometric augmentation of an image with its boxes.

One affine warp does resize, scale, translation and flip together, so boxes
follow the image exactly: their corners go through the same matrix.
"""
import cv2
import numpy as np


def affine_matrix(in_hw, out_size, scale=1.0, shift=(0.0, 0.0), flip=False):
  """2x3 matrix mapping input to output in continuous coordinates (pixel i
  spans [i, i + 1)), for a square output of `out_size`.

  The image is first resized to the square, then scaled by `scale` about the
  centre, shifted by `shift` (fractions of the output size) and optionally
  mirrored left-right.
  """
  h, w = in_hw
  sx, sy = out_size / w * scale, out_size / h * scale
  c = out_size / 2
  tx = c - c * scale + shift[0] * out_size
  ty = c - c * scale + shift[1] * out_size
  m = np.array([[sx, 0, tx], [0, sy, ty]], np.float64)
  if flip:
    m[0] = [-m[0, 0], 0, out_size - m[0, 2]]
  return m


def warp_boxes(boxes_px, matrix, out_size, min_visible=0.4):
  """Maps pixel boxes through an axis-aligned affine matrix, clips them.

  Returns:
    (boxes [K', 4] in output pixels, keep [K] bool): a box is kept when at
    least `min_visible` of its warped area lies inside the output and it is
    at least one pixel wide and high there.
  """
  x = boxes_px[:, [0, 2]] * matrix[0, 0] + matrix[0, 2]
  y = boxes_px[:, [1, 3]] * matrix[1, 1] + matrix[1, 2]
  warped = np.stack([x.min(1), y.min(1), x.max(1), y.max(1)], 1)
  clipped = np.clip(warped, 0, out_size)
  area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
  visible = area(clipped) / np.maximum(area(warped), 1e-9)
  keep = ((visible >= min_visible) & (clipped[:, 2] - clipped[:, 0] >= 1) &
          (clipped[:, 3] - clipped[:, 1] >= 1))
  return clipped[keep], keep


def brightness_contrast(image, brightness, contrast):
  """image * contrast + brightness around the mean grey, in uint8."""
  img = image.astype(np.float32)
  mean = img.mean()
  return np.clip((img - mean) * contrast + mean + brightness, 0,
                 255).astype(np.uint8)


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
  image = record["image"]
  h, w = image.shape[:2]
  scale, shift, mirror = 1.0, (0.0, 0.0), False
  if rng is not None:
    scale = rng.uniform(1 - scale_range, 1 + scale_range)
    shift = tuple(rng.uniform(-shift_range, shift_range, 2))
    mirror = flip and rng.random() < 0.5
  m = affine_matrix((h, w), out_size, scale, shift, mirror)
  # OpenCV puts pixel centres at integers: shift by half a pixel on each side.
  m_cv = m.copy()
  m_cv[:, 2] += 0.5 * (np.diag(m) - 1)
  out = cv2.warpAffine(image, m_cv, (out_size, out_size), flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
  boxes_px = record["boxes"] * np.array([w, h, w, h], np.float32)
  boxes, keep = warp_boxes(boxes_px, m, out_size, min_visible)
  if rng is not None and (brightness or contrast):
    out = brightness_contrast(out, rng.uniform(-brightness, brightness),
                              rng.uniform(1 - contrast, 1 + contrast))
  result = dict(record)
  result["image"] = out
  result["boxes"] = (boxes / out_size).astype(np.float32)
  result["classes"] = record["classes"][keep]
  if "difficult" in record:
    result["difficult"] = record["difficult"][keep]
  return result
