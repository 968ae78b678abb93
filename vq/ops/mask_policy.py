"""The inference-time mask policy: per-class refinement, threshold, area;
the neighbourhood class vote of multi-class maps."""
import functools

import jax
import jax.numpy as jnp

from vq.ops.filters import box_mean, guided_filter


@functools.partial(jax.jit, static_argnames="radius")
def vote_classes(class_probs, class_map, radius):
  """Each defect pixel of `class_map` (0: background, k: class k) takes the
  class with the most probability over its (2r+1) x (2r+1) neighbourhood,
  so the pixels of one defect agree; background stays background.

  Args:
    class_probs: [N, H, W, C] probabilities of the C defect classes.
    class_map: [N, H, W] ints in 0..C.
  """
  votes = box_mean(class_probs, radius)
  return jnp.where(class_map > 0, jnp.argmax(votes, axis=-1) + 1,
                   0).astype(class_map.dtype)


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
