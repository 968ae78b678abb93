"""Perlin noise (as DRAEM's anomaly masks use it), on the host in NumPy."""
import math

import numpy as np


def _fade(t):
  return 6 * t ** 5 - 15 * t ** 4 + 10 * t ** 3


def perlin_noise(rng, shape, res):
  """2-D gradient noise with `res` lattice cells per axis.

  Args:
    rng: numpy Generator (the random gradient angles).
    shape: (height, width) of the output.
    res: (cells along y, cells along x); larger is finer noise.

  Returns:
    float32 [height, width], zero on the lattice points, about in
    [-1, 1] (scaled by sqrt(2) as in DRAEM).
  """
  h, w = shape
  ry, rx = res
  angles = 2 * math.pi * rng.random((ry + 1, rx + 1))
  grads = np.stack([np.cos(angles), np.sin(angles)], -1)
  py = np.arange(h) * (ry / h)
  px = np.arange(w) * (rx / w)
  iy, ix = np.floor(py).astype(np.int64), np.floor(px).astype(np.int64)
  fy, fx = (py - iy)[:, None], (px - ix)[None, :]

  def corner(dy, dx):
    g = grads[iy[:, None] + dy, ix[None, :] + dx]
    return g[..., 0] * (fy - dy) + g[..., 1] * (fx - dx)

  ty, tx = _fade(fy), _fade(fx)
  top = corner(0, 0) * (1 - tx) + corner(0, 1) * tx
  bottom = corner(1, 0) * (1 - tx) + corner(1, 1) * tx
  return (math.sqrt(2) * (top * (1 - ty) + bottom * ty)).astype(np.float32)
