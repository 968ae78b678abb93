"""Anomaly-detection metrics on host arrays: AUROC, AP, AUPRO, F1 threshold.

Ties are handled as scikit-learn does: equal scores form one threshold, so
the ROC curve joins them with one straight segment and AP takes one step.
"""
import cv2
import numpy as np


def _curve(scores, labels):
  """True and false positive counts at each distinct threshold, descending."""
  scores = np.asarray(scores, np.float64).ravel()
  labels = np.asarray(labels).ravel().astype(bool)
  if scores.shape != labels.shape:
    raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ")
  order = np.argsort(-scores, kind="mergesort")
  scores, labels = scores[order], labels[order]
  last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
  tps = np.cumsum(labels)[last]
  fps = (last + 1) - tps
  return tps, fps, scores[last]


def auroc(scores, labels):
  """Area under the ROC curve of 1-D scores against 0/1 labels."""
  tps, fps, _ = _curve(scores, labels)
  if tps[-1] == 0 or fps[-1] == 0:
    raise ValueError("AUROC needs both positive and negative labels")
  tpr = np.r_[0, tps] / tps[-1]
  fpr = np.r_[0, fps] / fps[-1]
  return float(np.trapezoid(tpr, fpr))


def average_precision(scores, labels):
  """Average precision: sum over thresholds of (R_n - R_{n-1}) P_n."""
  tps, fps, _ = _curve(scores, labels)
  if tps[-1] == 0:
    raise ValueError("average precision needs positive labels")
  precision = tps / (tps + fps)
  recall = np.r_[0, tps / tps[-1]]
  return float(np.sum(np.diff(recall) * precision))


def f1_optimal_threshold(scores, labels):
  """(threshold, F1) maximising F1 when predicting score >= threshold."""
  tps, fps, thresholds = _curve(scores, labels)
  positives = tps[-1]
  f1 = 2 * tps / np.maximum(tps + fps + positives, 1)
  best = int(np.argmax(f1))
  return float(thresholds[best]), float(f1[best])


def aupro(anomaly_maps, masks, fpr_limit=0.3):
  """Area under the per-region-overlap curve up to `fpr_limit`, normalised
  to [0, 1] (Bergmann et al., MVTec AD), at every distinct score.

  Every connected ground-truth region counts once: PRO is the mean, over
  regions, of the fraction of the region at or above the threshold; the x
  axis is the false positive rate over normal pixels. As in the official
  evaluation, one sort gives both curves: each normal pixel adds
  1 / #normal to the FPR, each anomalous pixel 1 / (#regions * its region's
  size) to the PRO.

  Args:
    anomaly_maps: [N, H, W] scores.
    masks: [N, H, W] ground truth, non-zero is anomalous.
  """
  maps = np.asarray(anomaly_maps, np.float64)
  masks = np.asarray(masks).astype(bool)
  if maps.shape != masks.shape:
    raise ValueError(f"anomaly maps {maps.shape} and masks {masks.shape} "
                     f"differ")
  region_weight = np.zeros(maps.shape, np.float64)
  num_regions = 0
  for i, gt in enumerate(masks):
    count, labels = cv2.connectedComponents(gt.astype(np.uint8), 8)
    sizes = np.bincount(labels.ravel(), minlength=count)
    region_weight[i] = np.where(labels > 0, 1.0 / sizes[labels], 0.0)
    num_regions += count - 1
  if not num_regions:
    raise ValueError("AUPRO needs anomalous ground-truth regions")
  num_normal = int((~masks).sum())
  if not num_normal:
    raise ValueError("AUPRO needs normal pixels (every pixel is anomalous)")
  scores = maps.ravel()
  order = np.argsort(-scores, kind="mergesort")
  fpr = np.cumsum((~masks).ravel()[order]) / num_normal
  pro = np.cumsum(region_weight.ravel()[order]) / num_regions
  last = np.r_[np.flatnonzero(np.diff(scores[order])), len(scores) - 1]
  fpr = np.clip(np.r_[0.0, fpr[last]], 0, 1)
  pro = np.clip(np.r_[0.0, pro[last]], 0, 1)
  keep = fpr <= fpr_limit
  x = np.r_[fpr[keep], fpr_limit]
  y = np.r_[pro[keep], np.interp(fpr_limit, fpr, pro)]
  return float(np.trapezoid(y, x) / fpr_limit)
