"""Box geometry and non-maximum suppression as jit-compiled JAX ops.

Boxes are (x1, y1, x2, y2) with x2 >= x1 and y2 >= y1, in any consistent unit.
"""
import functools

import jax
import jax.numpy as jnp

_FIXED_POINT_MAX_BOXES = 1024


def box_area(boxes):
  """Areas of [..., 4] boxes; degenerate boxes have area 0."""
  w = jnp.maximum(boxes[..., 2] - boxes[..., 0], 0.0)
  h = jnp.maximum(boxes[..., 3] - boxes[..., 1], 0.0)
  return w * h


def paired_iou(a, b):
  """IoU of boxes paired by broadcasting: [..., 4] x [..., 4] -> [...].

  Two boxes whose union is empty have IoU 0.
  """
  lt = jnp.maximum(a[..., :2], b[..., :2])
  rb = jnp.minimum(a[..., 2:4], b[..., 2:4])
  wh = jnp.maximum(rb - lt, 0.0)
  inter = wh[..., 0] * wh[..., 1]
  union = box_area(a) + box_area(b) - inter
  return jnp.where(union > 0, inter / jnp.where(union > 0, union, 1.0), 0.0)


def box_iou(a, b):
  """Pairwise intersection over union: [N, 4] x [M, 4] -> [N, M]."""
  a = jnp.asarray(a, jnp.float32)
  b = jnp.asarray(b, jnp.float32)
  return paired_iou(a[:, None, :], b[None, :, :])


def center_to_corners(boxes):
  """(cx, cy, w, h) -> (x1, y1, x2, y2)."""
  c, wh = boxes[..., :2], boxes[..., 2:4]
  return jnp.concatenate([c - wh / 2, c + wh / 2], axis=-1)


@functools.partial(
    jax.jit, static_argnames=("iou_threshold", "score_threshold", "max_outputs"))
def nms(boxes, scores, *, iou_threshold, score_threshold, max_outputs):
  """Greedy non-maximum suppression.

  Keeps boxes with score > score_threshold; repeatedly takes the best remaining
  box and suppresses the others whose IoU with it is > iou_threshold (strict, as
  torchvision and OpenCV do). Equal scores are taken in input order.

  Args:
    boxes: [N, 4] (x1, y1, x2, y2).
    scores: [N].
    iou_threshold: suppress when IoU > this.
    score_threshold: keep only scores > this.
    max_outputs: size of the output.

  Returns:
    (indices, num_valid): int32 [max_outputs] kept indices ordered by score and
    padded with -1, and the int32 number of kept boxes.
  """
  boxes = jnp.asarray(boxes, jnp.float32)
  scores = jnp.asarray(scores, jnp.float32)
  if boxes.ndim != 2 or boxes.shape[-1] != 4 or scores.shape != boxes.shape[:1]:
    raise ValueError(
        f"nms expects boxes [N, 4] and scores [N], got {boxes.shape} and "
        f"{scores.shape}")
  if boxes.shape[0] <= _FIXED_POINT_MAX_BOXES:
    return _nms_fixed_point(boxes, scores, iou_threshold, score_threshold,
                            max_outputs)
  return _nms_greedy_loop(boxes, scores, iou_threshold, score_threshold,
                          max_outputs)


def _nms_fixed_point(boxes, scores, iou_threshold, score_threshold,
                     max_outputs):
  """Greedy NMS as a fixed point over the score-sorted IoU matrix.

  With boxes sorted by score, box i is kept iff no kept box before it overlaps
  it by more than the threshold. Iterating that rule from "all kept" fixes one
  more box of the longest suppression chain per pass, so it reaches exactly the
  greedy answer, in a few vectorised passes instead of one pass per kept box.
  """
  order = jnp.argsort(-scores, stable=True)  # equal scores in input order
  valid = scores[order] > score_threshold
  iou = box_iou(boxes[order], boxes[order])
  n = boxes.shape[0]
  earlier = jnp.arange(n)[:, None] < jnp.arange(n)[None, :]
  suppresses = (iou > iou_threshold) & earlier & valid[:, None]

  def body(carry):
    keep, _ = carry
    new_keep = valid & ~jnp.any(suppresses & keep[:, None], axis=0)
    return new_keep, jnp.any(new_keep != keep)

  keep, _ = jax.lax.while_loop(lambda c: c[1], body, (valid, jnp.bool_(True)))
  num_kept = jnp.minimum(jnp.sum(keep), max_outputs).astype(jnp.int32)
  # Kept positions first (in score order), dropped ones after as n.
  positions = jnp.sort(jnp.where(keep, jnp.arange(n), n))
  positions = jnp.pad(positions, (0, max(max_outputs - n, 0)),
                      constant_values=n)[:max_outputs]
  indices = jnp.where(positions < n, order[jnp.minimum(positions, n - 1)], -1)
  return indices.astype(jnp.int32), num_kept


def _nms_greedy_loop(boxes, scores, iou_threshold, score_threshold,
                     max_outputs):
  """Greedy NMS taking one box per step: O(N) work per kept box."""
  # Dropped and suppressed boxes get score -inf; a box is taken only while its
  # masked score is finite, so genuine -inf scores cannot be taken either.
  masked = jnp.where(scores > score_threshold, scores, -jnp.inf)

  def cond(carry):
    k, masked, best, _ = carry
    return (k < max_outputs) & (masked[best] > -jnp.inf)

  def body(carry):
    k, masked, best, out = carry
    out = out.at[k].set(best.astype(jnp.int32))
    masked = jnp.where(paired_iou(boxes[best], boxes) > iou_threshold, -jnp.inf, masked)
    masked = masked.at[best].set(-jnp.inf)
    return k + 1, masked, jnp.argmax(masked), out  # argmax: first of ties

  out = jnp.full((max_outputs,), -1, jnp.int32)
  k, _, _, out = jax.lax.while_loop(
      cond, body, (jnp.int32(0), masked, jnp.argmax(masked), out))
  return out, k


def batched_nms(boxes, scores, classes, *, iou_threshold, score_threshold,
                max_outputs):
  """Per-class NMS: boxes of different classes never suppress each other.

  Shifts each class's boxes into a disjoint region (the torchvision trick), so
  one `nms` call serves every class. Same arguments as `nms` plus int [N]
  classes.
  """
  span = jnp.max(jnp.abs(boxes)) * 2 + 1
  shifted = boxes + (classes.astype(boxes.dtype) * span)[:, None]
  return nms(shifted, scores, iou_threshold=iou_threshold,
             score_threshold=score_threshold, max_outputs=max_outputs)
