"""jit-able image filters on NHWC float arrays."""
import jax
import jax.numpy as jnp
import numpy as np


def box_mean(x, radius):
  """Mean over the (2r+1) x (2r+1) window, windows clipped at the border;
  summed along rows, then columns (2(2r+1) additions a pixel, not (2r+1)^2).

  x: [N, H, W, C].
  """
  k = 2 * radius + 1

  def box_sum(a):
    for axis in (1, 2):
      window, pad = [1] * 4, [(0, 0)] * 4
      window[axis], pad[axis] = k, (radius, radius)
      a = jax.lax.reduce_window(a, 0.0, jax.lax.add, window, (1,) * 4, pad)
    return a

  return box_sum(x) / box_sum(jnp.ones_like(x[:1, ..., :1]))


def guided_filter(guide, src, radius=2, eps=1e-2):
  """Edge-preserving smoothing of `src` steered by `guide` (He et al., 2010).

  Args:
    guide: [N, H, W, 1] grey image in [0, 1].
    src: [N, H, W, C], e.g. class probabilities.
    radius: window radius in pixels.
    eps: regularisation; smaller keeps more of the guide's edges.

  Returns:
    [N, H, W, C]: locally a linear function of the guide, so probability
    maps snap to the image's edges (thin scratches keep their width).
  """
  mean_i = box_mean(guide, radius)
  mean_p = box_mean(src, radius)
  cov_ip = box_mean(guide * src, radius) - mean_i * mean_p
  var_i = box_mean(guide * guide, radius) - mean_i * mean_i
  a = cov_ip / (var_i + eps)
  b = mean_p - a * mean_i
  return box_mean(a, radius) * guide + box_mean(b, radius)


def depthwise_filter(x, kernel):
  """Convolves every channel of NHWC `x` with the 2-D `kernel`, zero padding
  to the same size."""
  c = x.shape[-1]
  k = jnp.broadcast_to(kernel[:, :, None, None], (*kernel.shape, 1, c))
  return jax.lax.conv_general_dilated(
      x, k.astype(x.dtype), (1, 1), "SAME",
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=c)


def gaussian_window(size, sigma):
  """Normalised 1-D Gaussian taps [size] (numpy)."""
  t = np.arange(size, dtype=np.float64) - (size - 1) / 2
  g = np.exp(-t ** 2 / (2 * sigma ** 2))
  return (g / g.sum()).astype(np.float32)


def gaussian_kernel(size, sigma):
  """Normalised 2-D Gaussian window [size, size] (numpy)."""
  g = gaussian_window(size, sigma)
  return np.outer(g, g)


def _band_matrix(taps, n):
  """[n, n] matrix M with (M @ v)[i] = sum_t taps[t] * v[i + t - r], zero
  outside v (r = len(taps) // 2)."""
  r = len(taps) // 2
  d = np.arange(n)[None, :] - np.arange(n)[:, None] + r
  inside = (d >= 0) & (d < len(taps))
  return np.where(inside, taps[np.clip(d, 0, len(taps) - 1)], 0).astype(
      np.float32)


def separable_filter(x, taps):
  """Filters every channel of NHWC `x` with outer(taps, taps), zero padding
  to the same size (as `depthwise_filter` with that kernel).

  Two banded matrix products, one per axis: on CPU tens of times faster
  than a grouped convolution, forward and backward.
  """
  taps = np.asarray(taps, np.float32)
  if taps.ndim != 1 or len(taps) % 2 == 0:
    raise ValueError(f"taps must be 1-D of odd length, got shape {taps.shape}")
  x = jnp.einsum("ij,njwc->niwc", _band_matrix(taps, x.shape[1]), x)
  return jnp.einsum("ij,nhjc->nhic", _band_matrix(taps, x.shape[2]), x)


# numpy, not jnp: nothing may touch the XLA backend at import time (multi-
# process runs initialise jax.distributed first).
LAPLACIAN_KERNELS = {
    3: np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32),
    5: np.array([[0, 0, 1, 0, 0], [0, 1, 2, 1, 0], [1, 2, -16, 2, 1],
                 [0, 1, 2, 1, 0], [0, 0, 1, 0, 0]], np.float32),
}


def laplacian_sharpen(x, kernel_size=3, amount=1.0, noise_std=0.0, key=None):
  """x - amount * Laplacian(x): Laplacian-type sharpening of NHWC `x`.

  kernel_size: 3 (4-neighbour Laplacian) or 5 (a Laplacian of Gaussian).
  noise_std: with `key`, Gaussian noise of this std is added to the kernel.
  """
  if kernel_size not in LAPLACIAN_KERNELS:
    raise ValueError(f"kernel_size must be 3 or 5, got {kernel_size}")
  lap = jnp.asarray(LAPLACIAN_KERNELS[kernel_size])
  if noise_std and key is not None:
    lap = lap + noise_std * jax.random.normal(key, lap.shape)
  return x - amount * depthwise_filter(x, lap)


def unsharp_mask(x, sigma=1.0, amount=1.0, kernel_size=None):
  """x + amount * (x - GaussianBlur(x)) on NHWC `x`; a negative amount
  smooths instead."""
  size = kernel_size or 2 * int(3 * sigma + 0.5) + 1
  blurred = depthwise_filter(x, gaussian_kernel(size, sigma))
  return x + amount * (x - blurred)
