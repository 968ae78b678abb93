"""Scaling images by their short side, the aspect ratio kept.

Letterboxing fits a photograph's long side into a fixed shape, so a tile
2.5 times as long as wide is read at a smaller scale than a square one.
Scaled to one short side instead, every photograph shows its surface at
about one scale (the patch memory's eval.memory.short_side); long sides are
rounded to a multiple of 32, so photographs of similar shapes share one
and jit compiles once per shape.
"""
import cv2
import numpy as np

MULTIPLE = 32  # of the long side: the encoders' coarsest stride


def scaled_shape(hw, side):
  """(height, width) of an `hw` image scaled to short side `side`, its long
  side rounded to a multiple of MULTIPLE (at least `side`)."""
  h, w = hw
  long_side = max(side, int(round(side * max(h, w) / min(h, w) / MULTIPLE))
                  * MULTIPLE)
  return (side, long_side) if h <= w else (long_side, side)


def from_box(canvas, box, side):
  """The `box` (top, left, height, width) of `canvas` ([H, W] or [H, W, C])
  scaled bilinearly to `scaled_shape`."""
  top, left, h, w = box
  hs, ws = scaled_shape((h, w), side)
  inner = np.ascontiguousarray(canvas[top:top + h, left:left + w])
  return cv2.resize(inner, (ws, hs), interpolation=cv2.INTER_LINEAR
                    ).reshape(hs, ws, *canvas.shape[2:])


def into_box(array, box, canvas_hw):
  """float [h, w] -> float32 [*canvas_hw]: `array` scaled bilinearly into
  `box`, 0 outside it."""
  top, left, h, w = box
  out = np.zeros(canvas_hw, np.float32)
  out[top:top + h, left:left + w] = cv2.resize(
      np.asarray(array, np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
  return out


def box_of(valid):
  """(top, left, height, width) of the nonzero pixels of `valid` [H, W]."""
  ys, xs = np.nonzero(valid)
  if not len(ys):
    raise ValueError("an image with no valid pixel has no box to score")
  return (int(ys.min()), int(xs.min()), int(ys.max() - ys.min() + 1),
          int(xs.max() - xs.min() + 1))


def by_shape(images):
  """{shape: indices of the `images` of that shape}, in order (one
  jit-compiled call per shape)."""
  groups = {}
  for i, image in enumerate(images):
    groups.setdefault(np.shape(image), []).append(i)
  return groups
