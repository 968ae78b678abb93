"""The inference-time mask policy: per-class refinement, threshold, area."""
import functools

import jax
import jax.numpy as jnp

from vq.ops.filters import guided_filter


@functools.partial(jax.jit, static_argnames="radius")
def apply_mask_policy(probs, images, thresholds, min_areas, refine,
                      radius=2, eps=1e-2):
  """Probabilities -> bool masks.

  Per class k: optionally refine the probability map with a guided filter
  steered by the image (thin classes: scratch, spacing), threshold at
  thresholds[k], and clear the class in an image where its area is below
  min_areas[k] pixels.

  Args:
    probs: [N, H, W, C] class probabilities.
    images: [N, H, W, 3] float in [0, 1] (the guide is their grey level).
    thresholds: [C] floats.
    min_areas: [C] pixel counts.
    refine: [C] bools.
    radius, eps: guided filter settings.
  """
  guide = jnp.mean(images, axis=-1, keepdims=True)
  refined = guided_filter(guide, probs, radius, eps)
  probs = jnp.where(jnp.asarray(refine), refined, probs)
  masks = probs > jnp.asarray(thresholds)
  area = jnp.sum(masks, axis=(1, 2))
  return masks & (area >= jnp.asarray(min_areas))[:, None, None, :]
