"""Locally aware patch features of an ImageNet encoder (PatchCore's recipe,
Roth et al. 2022), and the greedy coreset that thins a memory of them.

A patch is described by the encoder's maps at two middle stages (strides 8
and 16 of EfficientNet-Lite0 and -Lite1: 40 + 112 channels; -Lite2: 48 +
120), each averaged over its 3 x 3 neighbourhood, the coarser enlarged to
the finer's grid. The anomaly task's memory scorings
(`eval.memory.features=efficientnet_lite0`, ...) keep these of normal
images and score a test patch by its distance to the nearest one.
"""
import functools

import jax
import jax.numpy as jnp

from vq.models import layers, preprocessing, pretrained
from vq.models.encoders import build_encoder

STRIDE = 8          # the finer stage's; a map is (H / 8, W / 8)
LEVELS = (2, 3)     # of the encoder's maps at strides 2, 4, 8, 16, 32
POOL = 3            # the neighbourhood each feature is averaged over


class PatchFeatures:
  """uint8 RGB [N, H, W, 3] (sides multiples of 16) -> float32
  [N, H / 8, W / 8, F] from named or file weights (`pretrained.resolve`)."""

  def __init__(self, weights):
    architecture = pretrained.named_architecture(weights)
    if architecture is None:
      raise ValueError(f"eval.memory.weights={weights!r}: name one of "
                       f"{tuple(pretrained.NAMED_WEIGHTS)}")
    path = pretrained.resolve(weights)
    conventions = pretrained.file_conventions(path, architecture)
    self.variables = pretrained.load_file(path, architecture)
    self.model = build_encoder(architecture, padding=conventions["padding"])
    self.scaling = conventions["input_scaling"]

  def __call__(self, images):
    return _patch_features(self.model, self.scaling, self.variables,
                           jnp.asarray(images))


@functools.partial(jax.jit, static_argnames=("model", "scaling"))
def _patch_features(model, scaling, variables, images):
  maps = model.apply(variables, preprocessing.scale_images(images, scaling),
                     train=False)
  fine, coarse = (_local_mean(maps[i]) for i in LEVELS)
  coarse = layers.resize_bilinear(coarse, fine.shape[1:3])
  return jnp.concatenate([fine, coarse], -1)


def _local_mean(x):
  """Each feature averaged over its POOL x POOL neighbourhood (zeros
  beyond the edge count, as torch's AvgPool2d(3, 1, 1))."""
  return jax.lax.reduce_window(
      x, 0.0, jax.lax.add, (1, POOL, POOL, 1), (1, 1, 1, 1), "SAME") / (
          POOL * POOL)


@functools.partial(jax.jit, static_argnames=("count", "dims"))
def greedy_coreset(rows, count, dims=32, seed=0):
  """[M, F] -> int32 [count]: indices of rows chosen one at a time as the
  row farthest from every row chosen before (k-centre greedy), distances
  measured on a random projection to `dims` dimensions."""
  key = jax.random.key(seed)
  projection = jax.random.normal(key, (rows.shape[1], dims)) / jnp.sqrt(dims)
  z = rows @ projection
  z2 = jnp.sum(z * z, -1)

  def step(i, carry):
    nearest, chosen, last = carry
    d = z2 - 2 * z @ z[last] + z2[last]
    nearest = jnp.minimum(nearest, d)
    pick = jnp.argmax(nearest).astype(jnp.int32)
    return nearest, chosen.at[i].set(pick), pick

  first = jax.random.randint(key, (), 0, rows.shape[0], jnp.int32)
  chosen = jnp.zeros((count,), jnp.int32).at[0].set(first)
  _, chosen, _ = jax.lax.fori_loop(
      1, count, step, (jnp.full(z2.shape, jnp.inf), chosen, first))
  return chosen
