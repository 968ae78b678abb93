"""Detection metrics: Pascal VOC AP and COCO-style mAP@[.5:.95].

Computed on the host from per-image detections and ground truth, all as
(x1, y1, x2, y2) boxes in one unit. Detections are visited in descending score
order, equal scores in input order, and match ground truth of their class when
IoU >= threshold (the VOC devkit and pycocotools agree on ">="):

- 'voc' (the VOC devkit): a detection looks at its highest-IoU ground truth
  box; if that box is already taken the detection is a false positive.
- 'coco' (pycocotools): a detection takes the highest-IoU box not yet taken.

Ground truth marked difficult neither counts as a positive nor penalises the
detection that matches it.
"""
import dataclasses

import numpy as np

from vq.ops.boxes import box_iou

COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


@dataclasses.dataclass
class ImageDetections:
  """One image's detections and ground truth."""
  boxes: np.ndarray  # [N, 4]
  scores: np.ndarray  # [N]
  classes: np.ndarray  # [N] int
  gt_boxes: np.ndarray  # [M, 4]
  gt_classes: np.ndarray  # [M] int
  gt_difficult: np.ndarray | None = None  # [M] bool


def match_detections(images, class_id, iou_thresholds, rule):
  """Marks each detection of one class true or false positive.

  Returns:
    scores [D] in descending order, true_positive [T, D] bool for each of the T
    thresholds, ignored [T, D] bool (matched a difficult box), num_positives.
  """
  all_scores, all_tp, all_ignored = [], [], []
  num_positives = 0
  for image in images:
    det = np.flatnonzero(image.classes == class_id)
    gt = np.flatnonzero(image.gt_classes == class_id)
    difficult = (np.zeros(len(gt), bool) if image.gt_difficult is None else
                 np.asarray(image.gt_difficult, bool)[gt])
    num_positives += int(np.sum(~difficult))
    det = det[np.argsort(-image.scores[det], kind="stable")]
    tp = np.zeros((len(iou_thresholds), len(det)), bool)
    ignored = np.zeros_like(tp)
    if len(det) and len(gt):
      ious = np.asarray(box_iou(image.boxes[det], image.gt_boxes[gt]))
      for t, threshold in enumerate(iou_thresholds):
        taken = np.zeros(len(gt), bool)
        for d in range(len(det)):
          candidates = ious[d] if rule == "voc" else np.where(taken, -1.0, ious[d])
          g = int(np.argmax(candidates))
          if candidates[g] < threshold:
            continue
          if difficult[g]:
            ignored[t, d] = True
          elif not taken[g]:
            tp[t, d] = True
            taken[g] = True
    all_scores.append(image.scores[det])
    all_tp.append(tp)
    all_ignored.append(ignored)
  scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
  order = np.argsort(-scores, kind="stable")
  cat = lambda xs: (np.concatenate(xs, axis=1)[:, order] if xs else
                    np.zeros((len(iou_thresholds), 0), bool))
  return scores[order], cat(all_tp), cat(all_ignored), num_positives


def precision_recall(true_positive, ignored, num_positives):
  """Cumulative precision and recall along a score-sorted detection list."""
  keep = ~ignored
  tp = np.cumsum(true_positive[keep])
  fp = np.cumsum(~true_positive[keep])
  recall = tp / max(num_positives, 1)
  precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
  return precision, recall


def voc_average_precision(precision, recall):
  """All-point interpolated AP (VOC 2010 onwards): area under the PR curve
  after making precision monotonically decreasing."""
  mrec = np.concatenate([[0.0], recall, [1.0]])
  mpre = np.concatenate([[0.0], precision, [0.0]])
  mpre = np.maximum.accumulate(mpre[::-1])[::-1]
  changes = np.flatnonzero(mrec[1:] != mrec[:-1])
  return float(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1]))


def coco_average_precision(precision, recall):
  """101-point interpolated AP as pycocotools computes it."""
  if len(precision) == 0:
    return 0.0
  mpre = np.maximum.accumulate(precision[::-1])[::-1]
  points = np.linspace(0.0, 1.0, 101)
  idx = np.searchsorted(recall, points, side="left")
  return float(np.mean(np.where(idx < len(mpre),
                                mpre[np.minimum(idx, len(mpre) - 1)], 0.0)))


def image_counts(image, num_classes, min_score, iou_threshold=0.5):
  """One image's objects (ground truth boxes not marked difficult), those
  found and missed by its detections scoring >= `min_score` (the VOC rule
  at `iou_threshold`), and its false detections (matching no object of
  their class, nor a difficult box)."""
  kept = image.scores >= min_score
  image = dataclasses.replace(image, boxes=image.boxes[kept],
                              scores=image.scores[kept],
                              classes=image.classes[kept])
  objects = found = false = 0
  for c in range(num_classes):
    _, tp, ignored, positives = match_detections([image], c, [iou_threshold],
                                                 "voc")
    objects += positives
    found += int(tp[0].sum())
    false += int(np.sum(~tp[0] & ~ignored[0]))
  return {"objects": objects, "found": found, "missed": objects - found,
          "false_detections": false}


def detection_metrics(images, num_classes):
  """VOC AP@0.5 per class and mean, and COCO mAP@[.5:.95].

  Classes without ground truth get AP NaN and stay out of the means.

  Returns:
    dict with 'voc_ap' [C], 'voc_map', 'coco_ap' [C], 'coco_map', and
    'pr_curves': per class (precision, recall) at IoU 0.5.
  """
  voc_ap = np.full(num_classes, np.nan)
  coco_ap = np.full(num_classes, np.nan)
  pr_curves = []
  for c in range(num_classes):
    _, tp, ignored, num_pos = match_detections(images, c, [0.5], "voc")
    voc_curve = precision_recall(tp[0], ignored[0], num_pos)
    pr_curves.append(voc_curve)
    if num_pos == 0:
      continue
    voc_ap[c] = voc_average_precision(*voc_curve)
    _, tp, ignored, _ = match_detections(images, c, COCO_IOU_THRESHOLDS, "coco")
    coco_ap[c] = np.mean([
        coco_average_precision(*precision_recall(tp[t], ignored[t], num_pos))
        for t in range(len(COCO_IOU_THRESHOLDS))])
  mean = lambda x: float(np.nanmean(x)) if np.any(~np.isnan(x)) else float("nan")
  return {"voc_ap": voc_ap, "voc_map": mean(voc_ap), "coco_ap": coco_ap,
          "coco_map": mean(coco_ap), "pr_curves": pr_curves}
