"""Anomaly map post-processing and image scores (jit-able).

Baseline (DRAEM): the image score is the maximum of the anomaly map averaged
over a 21x21 window. Filtered scoring (the follow-up study): the map is
smoothed by subtracting a weighted Laplacian-sharpening detail (kernels of
size 3 and 5 with a little Gaussian noise), i.e. an unsharp-masking step run
backwards that keeps low frequencies and drops noise, then mixed with an
average-pooled copy of the original; image scores are read from it with a
stride-4 pooling, as its maximum or as max / min.

Fused scoring: the texture memory's map in units of its scale on normal
images (a high quantile of their pixels), plus the network's map where it
rises above its own scale, in units of it.
"""
import jax
import jax.numpy as jnp

from vq.ops.filters import laplacian_sharpen


def average_pool_same(maps, window):
  """[N, H, W, C] mean over window x window, zero-padded to the same size
  and divided by the full window area (PyTorch's count_include_pad)."""
  pad = window // 2
  total = jax.lax.reduce_window(
      maps, 0.0, jax.lax.add, (1, window, window, 1), (1, 1, 1, 1),
      ((0, 0), (pad, window - 1 - pad), (pad, window - 1 - pad), (0, 0)))
  return total / (window * window)


def baseline_image_score(maps, window=21):
  """[N, H, W, 1] -> [N]: max of the window-averaged map."""
  return jnp.max(average_pool_same(maps, window), axis=(1, 2, 3))


def filtered_map(maps, *, weights=(0.2, 0.05), noise_std=0.01, pool=5,
                 mix=0.5, seed=0):
  """[N, H, W, 1] anomaly map -> the filtered map (same shape)."""
  k3, k5 = jax.random.split(jax.random.key(seed))
  detail3 = laplacian_sharpen(maps, 3, noise_std=noise_std, key=k3) - maps
  detail5 = laplacian_sharpen(maps, 5, noise_std=noise_std, key=k5) - maps
  smoothed = maps - (weights[0] * detail3 + weights[1] * detail5) / 2
  return mix * smoothed + (1 - mix) * average_pool_same(maps, pool)


def strided_score(maps, *, window=8, stride=4, ratio=False, eps=1e-2):
  """[N, H, W, 1] -> [N]: max over a window-mean pooling with `stride`, or
  (ratio=True) its max divided by (its min + eps)."""
  pooled = jax.lax.reduce_window(
      maps, 0.0, jax.lax.add, (1, window, window, 1), (1, stride, stride, 1),
      "VALID") / (window * window)
  top = jnp.max(pooled, axis=(1, 2, 3))
  if not ratio:
    return top
  return top / (jnp.min(pooled, axis=(1, 2, 3)) + eps)


def map_scale(maps, quantile=0.99, floor=1e-3):
  """The `quantile` of normal images' map values (at least `floor`): the
  unit a map is divided by before it is fused with another."""
  return jnp.maximum(jnp.quantile(jnp.ravel(maps), quantile), floor)


def fused_map(draem_map, memory_map, draem_scale, memory_scale):
  """The memory's map in units of its normal scale plus DRAEM's excess over
  its own: on surfaces unlike its training anomalies DRAEM's map is noisy
  at the level of normal pixels, and only what it finds above that level
  is added."""
  return memory_map / memory_scale + jnp.maximum(
      draem_map / draem_scale - 1.0, 0.0)
