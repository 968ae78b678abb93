"""jit-able image filters on NHWC float arrays."""
import jax
import jax.numpy as jnp


def box_mean(x, radius):
  """Mean over the (2r+1) x (2r+1) window, windows clipped at the border.

  x: [N, H, W, C].
  """
  k = 2 * radius + 1
  window = (1, k, k, 1)
  pad = ((0, 0), (radius, radius), (radius, radius), (0, 0))
  total = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, (1, 1, 1, 1), pad)
  count = jax.lax.reduce_window(jnp.ones_like(x[:1, ..., :1]), 0.0,
                                jax.lax.add, window, (1, 1, 1, 1), pad)
  return total / count


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
