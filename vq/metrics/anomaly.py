"""Anomaly-detection metrics on host arrays: AUROC, AP, AUPRO, thresholds
(F1-optimal, or for a recall).

Ties are handled as scikit-learn does: equal scores form one threshold, so
the ROC curve joins them with one straight segment and AP takes one step.
`pixel_metrics` reads all three pixel metrics of a map off one sort.
"""
from typing import NamedTuple

import cv2
import numpy as np


class _Ranking(NamedTuple):
  """Scores sorted descending: `order` (indices into the flat scores) and
  `ends`, the sorted position closing each run of equal scores, whose
  `thresholds` they are."""
  order: np.ndarray
  ends: np.ndarray
  thresholds: np.ndarray


def _rank(scores):
  """The ranking of `scores` (any shape, read flat).

  Only the cumulative counts at the end of each run of ties are read, and
  those do not depend on the order inside a run, so the sort need not be
  stable (a plain quicksort is about twice as fast on a million pixels).
  """
  scores = np.asarray(scores)
  if scores.dtype.kind != "f":
    scores = scores.astype(np.float64)
  scores = scores.ravel()
  order = np.argsort(-scores)
  ranked = scores[order]
  ends = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]
  return _Ranking(order, ends, ranked[ends])


def _curve(ranking, labels):
  """True and false positive counts at each threshold of `ranking`."""
  tps = np.cumsum(labels[ranking.order])[ranking.ends]
  return tps, (ranking.ends + 1) - tps


def _flat_labels(scores, labels):
  """`labels` as flat booleans, one per score."""
  scores, labels = np.asarray(scores), np.asarray(labels)
  if scores.size != labels.size:
    raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ")
  return labels.astype(bool).ravel()


def _auroc(tps, fps):
  if tps[-1] == 0 or fps[-1] == 0:
    raise ValueError("AUROC needs both positive and negative labels")
  tpr = np.r_[0, tps] / tps[-1]
  fpr = np.r_[0, fps] / fps[-1]
  return float(np.trapezoid(tpr, fpr))


def _average_precision(tps, fps):
  if tps[-1] == 0:
    raise ValueError("average precision needs positive labels")
  precision = tps / (tps + fps)
  recall = np.r_[0, tps / tps[-1]]
  return float(np.sum(np.diff(recall) * precision))


def auroc(scores, labels):
  """Area under the ROC curve of scores against 0/1 labels."""
  labels = _flat_labels(scores, labels)
  return _auroc(*_curve(_rank(scores), labels))


def average_precision(scores, labels):
  """Average precision: sum over thresholds of (R_n - R_{n-1}) P_n."""
  labels = _flat_labels(scores, labels)
  return _average_precision(*_curve(_rank(scores), labels))


def f1_optimal_threshold(scores, labels):
  """(threshold, F1) maximising F1 when predicting score >= threshold."""
  labels = _flat_labels(scores, labels)
  ranking = _rank(scores)
  tps, fps = _curve(ranking, labels)
  f1 = 2 * tps / np.maximum(tps + fps + tps[-1], 1)
  best = int(np.argmax(f1))
  return float(ranking.thresholds[best]), float(f1[best])


def recall_threshold(scores, labels, recall):
  """The highest threshold at which predicting score >= threshold catches
  at least `recall` (a fraction) of the positives; with no positive, the
  highest score (as `f1_optimal_threshold`)."""
  labels = _flat_labels(scores, labels)
  scores = np.asarray(scores, np.float64).ravel()
  positives = np.sort(scores[labels])[::-1]
  if not len(positives):
    return float(scores.max())
  caught = int(np.ceil(round(recall * len(positives), 9)))
  return float(positives[max(caught, 1) - 1])


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
  return _aupro(_rank(_check_maps(anomaly_maps, masks)),
                np.asarray(masks).astype(bool), fpr_limit)


def pixel_metrics(anomaly_maps, masks, fpr_limit=0.3, valid=None):
  """{'pixel_auroc', 'pixel_ap', 'aupro'} of [N, H, W] maps against their
  masks, from one sort of the pixels; only the pixels where `valid`
  ([N, H, W], e.g. not a letterbox margin) is non-zero count."""
  maps = _check_maps(anomaly_maps, masks)
  keep = _kept_pixels(maps, valid)
  ranking = _rank(maps.ravel()[keep])
  masks = np.asarray(masks).astype(bool)
  tps, fps = _curve(ranking, masks.ravel()[keep])
  return {"pixel_auroc": _auroc(tps, fps),
          "pixel_ap": _average_precision(tps, fps),
          "aupro": _aupro(ranking, masks, fpr_limit, keep)}


def _kept_pixels(maps, valid):
  """Flat index of the pixels that count (all of them without `valid`)."""
  if valid is None:
    return slice(None)
  valid = np.asarray(valid)
  if valid.shape != maps.shape:
    raise ValueError(f"anomaly maps {maps.shape} and valid pixels "
                     f"{valid.shape} differ")
  return valid.astype(bool).ravel()


def _check_maps(anomaly_maps, masks):
  maps, masks = np.asarray(anomaly_maps), np.asarray(masks)
  if maps.shape != masks.shape:
    raise ValueError(f"anomaly maps {maps.shape} and masks {masks.shape} "
                     f"differ")
  return maps


def _aupro(ranking, masks, fpr_limit, keep=slice(None)):
  """AUPRO of `ranking` (of the flat pixels `keep` selects) against the
  [N, H, W] boolean `masks`."""
  region_weight = np.zeros(masks.shape, np.float64)
  num_regions = 0
  for i, gt in enumerate(masks):
    count, labels = cv2.connectedComponents(gt.astype(np.uint8), 8)
    sizes = np.bincount(labels.ravel(), minlength=count)
    region_weight[i] = np.where(labels > 0, 1.0 / sizes[labels], 0.0)
    num_regions += count - 1
  if not num_regions:
    raise ValueError("AUPRO needs anomalous ground-truth regions")
  normal = (~masks).ravel()[keep]
  num_normal = int(normal.sum())
  if not num_normal:
    raise ValueError("AUPRO needs normal pixels (every pixel is anomalous)")
  fpr = np.cumsum(normal[ranking.order])[ranking.ends] / num_normal
  pro = (np.cumsum(region_weight.ravel()[keep][ranking.order])[ranking.ends]
         / num_regions)
  fpr = np.clip(np.r_[0.0, fpr], 0, 1)
  pro = np.clip(np.r_[0.0, pro], 0, 1)
  keep = fpr <= fpr_limit
  x = np.r_[fpr[keep], fpr_limit]
  y = np.r_[pro[keep], np.interp(fpr_limit, fpr, pro)]
  return float(np.trapezoid(y, x) / fpr_limit)
