"""Affine warps of an image with its annotations, in continuous coordinates.

Pixel i spans [i, i + 1): a point, box corner or keypoint maps through the
same 2x3 matrix as the image content, so annotations follow pixels exactly.
"""
import cv2
import numpy as np


def size_hw(out_size):
  """An int (square) or (height, width)."""
  if np.ndim(out_size) == 0:
    return int(out_size), int(out_size)
  return int(out_size[0]), int(out_size[1])


def affine_matrix(in_hw, out_size, scale=1.0, shift=(0.0, 0.0), flip=False,
                  angle=0.0):
  """2x3 matrix from input pixels to an output of `out_size` (an int for a
  square, or (height, width)).

  The image is resized to the output, rotated by `angle` degrees
  (counter-clockwise) and scaled by `scale` about the centre, shifted by
  `shift` (fractions of the output size), then optionally mirrored
  left-right.
  """
  h, w = in_hw
  oh, ow = size_hw(out_size)
  resize = np.array([[ow / w, 0, 0], [0, oh / h, 0], [0, 0, 1]])
  rot = cv2.getRotationMatrix2D((ow / 2, oh / 2), angle, scale)
  rot[:, 2] += np.asarray(shift) * [ow, oh]
  m = np.vstack([rot, [0, 0, 1]]) @ resize
  if flip:
    m = np.array([[-1, 0, ow], [0, 1, 0], [0, 0, 1]]) @ m
  return m[:2]


def warp_image(image, matrix, out_size, interpolation=cv2.INTER_LINEAR,
               average_shrink=False):
  """Warps with a continuous-coordinate matrix (see module docstring).

  With `average_shrink`, a linear warp that shrinks the image first
  averages it down by area (cv2.INTER_AREA) to the size the matrix implies,
  so that fine detail (thin scratches, noise) is averaged instead of
  aliased; a plain resize is then exactly cv2.resize with INTER_AREA.
  Deterministic resizes (evaluation, prediction) use it; training
  augmentation keeps the single bilinear warp.
  """
  scale_x, scale_y = np.hypot(*matrix[:, 0]), np.hypot(*matrix[:, 1])
  if (average_shrink and interpolation == cv2.INTER_LINEAR and
      min(scale_x, scale_y) < 1):
    h, w = image.shape[:2]
    nw = max(1, int(round(w * min(scale_x, 1.0))))
    nh = max(1, int(round(h * min(scale_y, 1.0))))
    if (nw, nh) != (w, h):
      image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
      matrix = np.concatenate(
          [matrix[:, :2] * [w / nw, h / nh], matrix[:, 2:]], 1)
  # OpenCV puts pixel centres at integers: shift by half a pixel on each side.
  m_cv = matrix.copy()
  m_cv[:, 2] += 0.5 * (m_cv[:, 0] + m_cv[:, 1] - 1)
  oh, ow = size_hw(out_size)
  return cv2.warpAffine(image, m_cv, (ow, oh), flags=interpolation,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def transform_points(points, matrix):
  """[..., 2] points through a 2x3 matrix."""
  return points @ matrix[:, :2].T + matrix[:, 2]


def brightness_contrast(image, brightness, contrast):
  """image * contrast + brightness around the mean grey, in uint8."""
  img = image.astype(np.float32)
  mean = img.mean()
  return np.clip((img - mean) * contrast + mean + brightness, 0,
                 255).astype(np.uint8)


def random_warp(image, out_size, rng=None, *, scale_range=0.0, shift_range=0.0,
                rotation=0.0, flip=False, brightness=0.0, contrast=0.0):
  """Resizes an image to `out_size`, with random zoom, shift, rotation, flip
  and photometric jitter when `rng` (a numpy Generator) is given.

  Returns:
    (warped uint8 image, the 2x3 continuous-coordinate matrix used, whether
    it was mirrored): annotations go through the same matrix.
  """
  h, w = image.shape[:2]
  scale, shift, angle, mirror = 1.0, (0.0, 0.0), 0.0, False
  if rng is not None:
    scale = rng.uniform(1 - scale_range, 1 + scale_range)
    shift = tuple(rng.uniform(-shift_range, shift_range, 2))
    angle = rng.uniform(-rotation, rotation) if rotation else 0.0
    mirror = flip and rng.random() < 0.5
  m = affine_matrix((h, w), out_size, scale, shift, mirror, angle)
  out = warp_image(image, m, out_size, average_shrink=rng is None)
  if rng is not None and (brightness or contrast):
    out = brightness_contrast(out, rng.uniform(-brightness, brightness),
                              rng.uniform(1 - contrast, 1 + contrast))
  return out, m, mirror


def augment_kwargs(augment):
  """A config's `data.augment` fields as `resize_and_augment` keywords
  (scale -> scale_range, shift -> shift_range, the rest as named)."""
  renamed = {"scale": "scale_range", "shift": "shift_range"}
  return {renamed.get(k, k): v for k, v in augment.items()}
