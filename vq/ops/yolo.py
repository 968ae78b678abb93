"""YOLOv1 grid decoding and post-processing, jit-compiled and batched."""
import functools

import jax
import jax.numpy as jnp

from vq.ops.boxes import batched_nms, center_to_corners, nms


def decode_grid(pred, num_boxes, num_classes):
  """One image's [S, S, B*5 + C] grid -> candidate boxes.

  Returns:
    boxes [S*S*B, 4] normalised (x1, y1, x2, y2), confidence [S*S*B], class
    probabilities [S*S*B, C] (each box shares its cell's).
  """
  s = pred.shape[0]
  boxes = pred[..., :num_boxes * 5].reshape(s, s, num_boxes, 5)
  probs = pred[..., num_boxes * 5:]
  col = jnp.arange(s, dtype=pred.dtype)[None, :, None]
  row = jnp.arange(s, dtype=pred.dtype)[:, None, None]
  cxcywh = jnp.stack([(col + boxes[..., 0]) / s, (row + boxes[..., 1]) / s,
                      boxes[..., 2], boxes[..., 3]], axis=-1)
  corners = center_to_corners(cxcywh).reshape(-1, 4)
  probs = jnp.broadcast_to(probs[:, :, None, :], (s, s, num_boxes, num_classes))
  return corners, boxes[..., 4].reshape(-1), probs.reshape(-1, num_classes)


def decode_scores(pred, num_boxes, num_classes):
  """Batched grids [N, S, S, B*5 + C] -> boxes [N, S*S*B, 4] and scores
  [N, S*S*B, C] (confidence x class probability)."""
  boxes, conf, probs = jax.vmap(functools.partial(
      decode_grid, num_boxes=num_boxes, num_classes=num_classes))(pred)
  return boxes, conf[..., None] * probs


@functools.partial(jax.jit, static_argnames=(
    "score_threshold", "iou_threshold", "max_detections", "class_agnostic"))
def select_detections(boxes, scores, *, score_threshold=0.4,
                      iou_threshold=0.5, max_detections=100,
                      class_agnostic=False):
  """NMS over decoded boxes [N, K, 4] and per-class scores [N, K, C].

  With class_agnostic=False every (box, class) pair is a candidate and NMS
  runs per class; otherwise each box keeps its best class and NMS runs
  across classes.

  Returns:
    dict of boxes [N, max_detections, 4] (normalised x1, y1, x2, y2),
    scores [N, max_detections], classes int32 [N, max_detections] (-1 on
    padding), num_valid int32 [N].
  """
  num_classes = scores.shape[-1]

  def one(boxes, class_scores):
    if class_agnostic:
      classes = jnp.argmax(class_scores, axis=-1)
      scores = jnp.max(class_scores, axis=-1)
      keep, n = nms(boxes, scores, iou_threshold=iou_threshold,
                    score_threshold=score_threshold, max_outputs=max_detections)
    else:
      classes = jnp.tile(jnp.arange(num_classes), boxes.shape[0])
      scores = class_scores.reshape(-1)
      boxes = jnp.repeat(boxes, num_classes, axis=0)
      keep, n = batched_nms(boxes, scores, classes,
                            iou_threshold=iou_threshold,
                            score_threshold=score_threshold,
                            max_outputs=max_detections)
    valid = keep >= 0
    idx = jnp.maximum(keep, 0)
    return {
        "boxes": jnp.where(valid[:, None], boxes[idx], 0.0),
        "scores": jnp.where(valid, scores[idx], 0.0),
        "classes": jnp.where(valid, classes[idx], -1).astype(jnp.int32),
        "num_valid": n,
    }
  return jax.vmap(one)(boxes, scores)


@functools.partial(jax.jit, static_argnames=(
    "num_boxes", "num_classes", "score_threshold", "iou_threshold",
    "max_detections", "class_agnostic"))
def postprocess(pred, *, num_boxes, num_classes, **selection):
  """Batched detections from YOLO grids [batch, S, S, B*5 + C]: decoding
  (`decode_scores`) then NMS (`select_detections`, same keywords)."""
  return select_detections(*decode_scores(pred, num_boxes, num_classes),
                           **selection)
