"""SSIM loss on CPU: the separable Gaussian filter against a 2-D depthwise
convolution.

  python -m vq.benchmarks.ssim_loss

Value and gradient of `vq.losses.ssim` (window 11, sigma 1.5) for a batch of
8 RGB images at 64x64 (the DRAEM default) and 256x256 (its published size),
median of 5 runs after compilation; the 2-D variant computes the same SSIM
with `vq.ops.depthwise_filter` and the 11x11 kernel.
"""
from unittest import mock

import jax
import jax.numpy as jnp

from vq import losses
from vq.benchmarks.timing import median_time
from vq.ops import filters


def ssim_grad_time(size):
  x = jax.random.uniform(jax.random.key(0), (8, size, size, 3))
  y = jax.random.uniform(jax.random.key(1), (8, size, size, 3))
  grad = jax.jit(jax.value_and_grad(lambda a: 1 - losses.ssim(a, y)))
  return median_time(grad, x)


def depthwise_2d(x, taps):
  return filters.depthwise_filter(x, jnp.outer(taps, taps))


def main():
  print("| images | separable (s) | 2-D depthwise (s) |")
  print("|---|---|---|")
  for size in (64, 256):
    separable = ssim_grad_time(size)
    with mock.patch.object(filters, "separable_filter", depthwise_2d):
      two_d = ssim_grad_time(size)
    print(f"| 8x{size}x{size}x3 | {separable:.4f} | {two_d:.4f} |")


if __name__ == "__main__":
  main()
