"""Run-length encoding of binary masks, in the Severstal (Kaggle) convention.

Pixels are numbered from 1, column-major: down the first column, then the
next. An encoding is space-separated `start length` pairs; '' is an empty
mask.
"""
import numpy as np


def encode(mask):
  """Binary mask [H, W] -> run-length string ('' for an empty mask)."""
  mask = np.asarray(mask)
  if mask.ndim != 2:
    raise ValueError(f"mask must be [H, W], got shape {mask.shape}")
  pixels = np.concatenate([[0], mask.astype(bool).T.ravel().astype(np.int8),
                           [0]])
  edges = np.flatnonzero(pixels[1:] != pixels[:-1]) + 1
  starts, ends = edges[::2], edges[1::2]
  return " ".join(f"{s} {e - s}" for s, e in zip(starts, ends))


def decode(rle, shape):
  """Run-length string -> bool mask of `shape` (H, W).

  Raises ValueError on an odd number of values, a start below 1, a
  non-positive length, runs past the image or runs that overlap.
  """
  h, w = shape
  values = str(rle).split() if rle == rle else []  # NaN (empty CSV cell)
  if len(values) % 2:
    raise ValueError(f"run-length encoding has an odd number of values "
                     f"({len(values)})")
  try:
    runs = np.asarray(values, np.int64).reshape(-1, 2)
  except ValueError:
    raise ValueError(f"run-length encoding must hold integers, got "
                     f"{' '.join(values[:6])}...") from None
  flat = np.zeros(h * w, bool)
  if not len(runs):
    return flat.reshape(w, h).T
  starts, lengths = runs[:, 0], runs[:, 1]
  if starts.min() < 1 or lengths.min() < 1:
    raise ValueError("run-length starts must be >= 1 and lengths >= 1")
  ends = starts - 1 + lengths
  if ends.max() > h * w:
    i = int(np.argmax(ends))
    raise ValueError(f"run {i} ({starts[i]} {lengths[i]}) runs past the "
                     f"{h}x{w} image ({h * w} pixels)")
  order = np.argsort(starts)
  if np.any(starts[order][1:] - 1 < ends[order][:-1]):
    raise ValueError("run-length encoding has overlapping runs")
  # Mark +1 at each run start and -1 after its end; the running sum is the mask.
  delta = np.zeros(h * w + 1, np.int32)
  np.add.at(delta, starts - 1, 1)
  np.add.at(delta, ends, -1)
  flat = np.cumsum(delta[:-1]) > 0
  return flat.reshape(w, h).T


def area(rle):
  """Pixels covered by a run-length string (the sum of its lengths)."""
  values = str(rle).split() if rle == rle else []
  return sum(int(v) for v in values[1::2])
