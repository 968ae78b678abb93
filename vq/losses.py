"""Loss functions: pure functions of arrays, jit-able."""
import jax
import jax.numpy as jnp
import optax

from vq.ops import filters
from vq.ops.boxes import paired_iou


def _cell_boxes_to_corners(xywh, grid_size):
  """(x, y in-cell offsets, w, h of the image) -> corners in image units.

  Both the prediction and the target of a cell share that cell's origin, so
  the origin is left out: IoUs computed here equal the image-frame IoUs.
  """
  centre = xywh[..., :2] / grid_size
  half = xywh[..., 2:4] / 2
  return jnp.concatenate([centre - half, centre + half], axis=-1)


def yolo_v1_loss_terms(pred, target, *, num_boxes, num_classes,
                       lambda_coord=5.0, lambda_noobj=0.5):
  """The YOLOv1 sum-squared grid loss, term by term (each averaged over batch).

  Args:
    pred: [batch, S, S, B*5 + C] after activation: per cell B boxes as
      (x, y, w, h, confidence), then C class probabilities. x, y are offsets
      inside the cell, w, h relative to the image, all in [0, 1].
    target: [batch, S, S, 5 + C] as (x, y, w, h, object, one-hot class).
    num_boxes: B.
    num_classes: C.
    lambda_coord: weight of the coordinate terms.
    lambda_noobj: weight of the no-object confidence term.

  Returns:
    dict of scalars: coord, size, object, noobject, class (weights applied) and
    loss, their sum.
  """
  batch, s, s2, channels = pred.shape
  if s != s2 or channels != num_boxes * 5 + num_classes:
    raise ValueError(
        f"pred must be [batch, S, S, {num_boxes * 5 + num_classes}] for "
        f"num_boxes={num_boxes}, num_classes={num_classes}; got {pred.shape}")
  if target.shape != (batch, s, s, 5 + num_classes):
    raise ValueError(f"target must be {(batch, s, s, 5 + num_classes)}, got "
                     f"{target.shape}")
  boxes = pred[..., :num_boxes * 5].reshape(batch, s, s, num_boxes, 5)
  probs = pred[..., num_boxes * 5:]
  t_box = target[..., :4]
  obj = target[..., 4]
  t_probs = target[..., 5:]

  pred_corners = _cell_boxes_to_corners(boxes[..., :4], s)
  target_corners = _cell_boxes_to_corners(t_box, s)
  ious = paired_iou(pred_corners, target_corners[..., None, :])  # [b,S,S,B]
  # argmax takes the lowest j among ties, all-zero IoUs included.
  responsible = jnp.argmax(ious, axis=-1)[..., None] == jnp.arange(num_boxes)
  obj_ij = obj[..., None] * responsible
  noobj_ij = 1.0 - obj_ij

  sq = lambda a, b: jnp.square(a - b)
  # The floor keeps sqrt's gradient finite at 0 without changing its value.
  root = lambda v: jnp.sqrt(jnp.maximum(v, 1e-12))
  t = t_box[..., None, :]
  coord = jnp.sum(obj_ij * (sq(boxes[..., 0], t[..., 0]) +
                            sq(boxes[..., 1], t[..., 1])))
  size = jnp.sum(obj_ij * (sq(root(boxes[..., 2]), root(t[..., 2])) +
                           sq(root(boxes[..., 3]), root(t[..., 3]))))
  conf = boxes[..., 4]
  obj_term = jnp.sum(obj_ij * sq(1.0, conf))
  noobj_term = jnp.sum(noobj_ij * jnp.square(conf))
  class_term = jnp.sum(obj * jnp.sum(sq(probs, t_probs), axis=-1))
  terms = {
      "coord": lambda_coord * coord / batch,
      "size": lambda_coord * size / batch,
      "object": obj_term / batch,
      "noobject": lambda_noobj * noobj_term / batch,
      "class": class_term / batch,
  }
  terms["loss"] = sum(terms.values())
  return terms


def yolo_v1_loss(pred, target, *, num_boxes, num_classes, lambda_coord=5.0,
                 lambda_noobj=0.5):
  """The YOLOv1 loss as a scalar; see `yolo_v1_loss_terms`."""
  return yolo_v1_loss_terms(
      pred, target, num_boxes=num_boxes, num_classes=num_classes,
      lambda_coord=lambda_coord, lambda_noobj=lambda_noobj)["loss"]


def keypoint_heatmap_loss_terms(heatmaps, offsets, keypoints, radius,
                                offset_weight):
  """DeepLabCut-style targets built on the fly from normalised keypoints.

  Cells whose centre lies within `radius` cells of a keypoint are positive
  for its score map (sigmoid cross-entropy over all cells); at positive cells
  the offset to the keypoint, in cells, is regressed with an L1 loss.
  """
  _, h, w, _ = heatmaps.shape
  cy, cx = jnp.meshgrid(jnp.arange(h) + 0.5, jnp.arange(w) + 0.5,
                        indexing="ij")
  dx = keypoints[:, None, None, :, 0] * w - cx[None, :, :, None]  # [B,h,w,K]
  dy = keypoints[:, None, None, :, 1] * h - cy[None, :, :, None]
  positive = (jnp.square(dx) + jnp.square(dy) <= radius ** 2).astype(
      jnp.float32)
  scores = jnp.mean(optax.sigmoid_binary_cross_entropy(heatmaps, positive))
  l1 = jnp.abs(offsets - jnp.stack([dx, dy], -1)).sum(-1)
  offset = jnp.sum(l1 * positive) / jnp.maximum(jnp.sum(positive), 1.0)
  return {"scores": scores, "offsets": offset,
          "loss": scores + offset_weight * offset}


def dice_loss(probs, targets, *, smooth=1.0, over="image"):
  """1 - soft Dice per channel, averaged.

  Args:
    probs: [batch, H, W, C] probabilities (sigmoid or softmax outputs).
    targets: [batch, H, W, C] in {0, 1}.
    smooth: added to numerator and denominator; an empty target with an
      empty prediction scores Dice 1 (loss 0).
    over: 'image': Dice per image and channel (a rare class is empty in most
      images, where any prediction of it costs nearly 1);
      'batch': per channel over the whole batch, channels without a target
      pixel in the batch left out (segmentation_models_pytorch's multilabel
      Dice).
  """
  if probs.shape != targets.shape:
    raise ValueError(f"probs {probs.shape} and targets {targets.shape} must "
                     f"have the same shape")
  if over not in ("image", "batch"):
    raise ValueError(f"over must be 'image' or 'batch', got {over!r}")
  axes = (1, 2) if over == "image" else (0, 1, 2)
  inter = jnp.sum(probs * targets, axis=axes)
  total = jnp.sum(probs, axis=axes) + jnp.sum(targets, axis=axes)
  loss = 1.0 - (2.0 * inter + smooth) / (total + smooth)
  if over == "image":
    return jnp.mean(loss)
  present = jnp.sum(targets, axis=axes) > 0
  return jnp.sum(jnp.where(present, loss, 0.0)) / jnp.maximum(
      jnp.sum(present), 1)


def focal_loss(logits, labels, *, gamma=2.0, alpha=None):
  """Softmax focal loss (Lin et al., 2017), mean over all positions.

  -alpha_t (1 - p_t)^gamma log p_t, with p_t the probability of the true
  class. gamma=0 without alpha is the softmax cross-entropy.

  Args:
    logits: [..., C].
    labels: [...] integer classes in 0..C-1.
    gamma: focusing exponent.
    alpha: optional [C] class weights.
  """
  log_p = jax.nn.log_softmax(logits, axis=-1)
  log_pt = jnp.take_along_axis(log_p, labels[..., None].astype(jnp.int32),
                               axis=-1)[..., 0]
  one_minus_pt = -jnp.expm1(log_pt)
  # (1 - p)^gamma has an infinite slope at p = 1 for gamma < 1; where p
  # rounds to 1 the weight is constant (0, or 1 for gamma = 0), so no
  # 0 * inf reaches the gradient.
  saturated = one_minus_pt <= 0
  weight = jnp.where(saturated, 0.0 if gamma > 0 else 1.0,
                     jnp.power(jnp.where(saturated, 1.0, one_minus_pt), gamma))
  loss = -weight * log_pt
  if alpha is not None:
    loss = loss * jnp.asarray(alpha)[labels]
  return jnp.mean(loss)


def binary_cross_entropy(logits, targets):
  """Mean per-element sigmoid cross-entropy."""
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, targets))


def multilabel_cross_entropy(logits, targets):
  """Sigmoid cross-entropy summed over the labels (last axis), mean over the
  rest: each label weighs as much as a single binary one."""
  return jnp.mean(jnp.sum(
      optax.sigmoid_binary_cross_entropy(logits, targets), axis=-1))


def softmax_cross_entropy(logits, labels, class_weights=None):
  """Mean softmax cross-entropy against integer labels [...]; with
  `class_weights` [C], each element's term weighted by its label's."""
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  if class_weights is not None:
    loss = loss * jnp.asarray(class_weights, loss.dtype)[labels]
  return jnp.mean(loss)


def ssim(x, y, *, window_size=11, sigma=1.5, max_val=1.0, padding="same"):
  """Mean structural similarity of NHWC batches (Gaussian window).

  padding='same' zero-pads every local statistic to the image size and
  averages over all pixels (as DRAEM's loss does); 'valid' averages only
  windows that lie fully inside the image (as scikit-image does).
  """
  if x.shape != y.shape:
    raise ValueError(f"x {x.shape} and y {y.shape} must have the same shape")
  if padding not in ("same", "valid"):
    raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
  window = filters.gaussian_window(window_size, sigma)
  filt = lambda a: filters.separable_filter(a, window)
  mu_x, mu_y = filt(x), filt(y)
  var_x = filt(x * x) - mu_x ** 2
  var_y = filt(y * y) - mu_y ** 2
  cov = filt(x * y) - mu_x * mu_y
  c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
  ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2) /
              ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2)))
  if padding == "valid":
    r = window_size // 2
    ssim_map = ssim_map[:, r:x.shape[1] - r, r:x.shape[2] - r]
  return jnp.mean(ssim_map)


def soft_histogram(x, bins=32, bandwidth=None):
  """Differentiable per-channel histograms of NHWC values in [0, 1].

  Each value spreads over the bins with a Gaussian kernel; returns
  [N, C, bins], each histogram summing to 1.
  """
  centres = (jnp.arange(bins) + 0.5) / bins
  bandwidth = bandwidth or 1.0 / bins
  d = x[..., None] - centres
  weights = jnp.exp(-0.5 * (d / bandwidth) ** 2)
  weights = weights / jnp.sum(weights, -1, keepdims=True)
  hist = jnp.sum(weights, axis=(1, 2))
  return hist / jnp.sum(hist, -1, keepdims=True)


def histogram_loss(x, y, bins=32):
  """L1 distance between the per-channel soft histograms of x and y,
  averaged over images and channels."""
  return jnp.mean(jnp.sum(jnp.abs(soft_histogram(x, bins) -
                                  soft_histogram(y, bins)), -1))


def psnr(x, y, max_val=1.0):
  """Peak signal-to-noise ratio (dB) per image: [N]."""
  mse = jnp.mean(jnp.square(x - y), axis=(1, 2, 3))
  return 10 * jnp.log10(max_val ** 2 / jnp.maximum(mse, 1e-10))


def inverse_psnr_loss(x, y, max_val=1.0):
  """Mean 1 / PSNR: large while the reconstruction is poor, fading as it
  improves."""
  return jnp.mean(1.0 / jnp.maximum(psnr(x, y, max_val), 1.0))
