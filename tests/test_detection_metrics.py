import numpy as np

from vq.metrics.detection import (ImageDetections, coco_average_precision,
                                  detection_metrics, voc_average_precision)

G1, G2 = [0, 0, 10, 10], [20, 20, 30, 30]
FAR = [50, 50, 60, 60]


def image(boxes, scores, classes, gt_boxes, gt_classes, difficult=None):
  return ImageDetections(
      boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
      scores=np.asarray(scores, np.float32),
      classes=np.asarray(classes, np.int32),
      gt_boxes=np.asarray(gt_boxes, np.float32).reshape(-1, 4),
      gt_classes=np.asarray(gt_classes, np.int32),
      gt_difficult=None if difficult is None else np.asarray(difficult, bool))


def test_tp_fp_tp_hand_worked():
  # Ranked: TP (0.9), FP (0.8), TP (0.7) over 2 ground truth boxes.
  # precision 1, 1/2, 2/3; recall 1/2, 1/2, 1.
  # VOC all-point: 0.5 * 1 + 0.5 * 2/3.
  # COCO 101-point: recall 0..0.50 (51 points) at 1, 0.51..1 (50) at 2/3.
  m = detection_metrics(
      [image([G1, FAR, G2], [0.9, 0.8, 0.7], [0, 0, 0], [G1, G2], [0, 0])], 1)
  np.testing.assert_allclose(m["voc_map"], 0.5 + 0.5 * 2 / 3)
  np.testing.assert_allclose(m["coco_map"], (51 + 50 * 2 / 3) / 101)


def test_duplicate_detection_is_a_false_positive():
  m = detection_metrics(
      [image([G1, G1], [0.9, 0.8], [0, 0], [G1], [0])], 1)
  # precision 1 then 1/2 at recall 1: AP = 1.
  np.testing.assert_allclose(m["voc_map"], 1.0)
  m = detection_metrics(
      [image([G1, G1], [0.8, 0.9], [0, 0], [G1, G2], [0, 0])], 1)
  # TP then FP, recall stops at 1/2: AP = 0.5.
  np.testing.assert_allclose(m["voc_map"], 0.5)


def test_iou_threshold_and_classes():
  # IoU([0,0,10,10],[0,0,10,5]) = 0.5: a match at 0.5 (>=), not at 0.55.
  half = [0, 0, 10, 5]
  m = detection_metrics([image([half], [0.9], [0], [G1], [0])], 2)
  np.testing.assert_allclose(m["voc_ap"][0], 1.0)
  assert np.isnan(m["voc_ap"][1])  # no ground truth: left out of the mean
  np.testing.assert_allclose(m["voc_map"], 1.0)
  # COCO thresholds 0.5..0.95: only 0.5 matches -> AP 1/10.
  np.testing.assert_allclose(m["coco_map"], 0.1)
  # The right box with the wrong class does not count.
  m = detection_metrics([image([G1], [0.9], [1], [G1], [0])], 2)
  np.testing.assert_allclose(m["voc_ap"][0], 0.0)


def test_difficult_ground_truth_is_ignored():
  m = detection_metrics([image([G2, G1], [0.9, 0.8], [0, 0], [G1, G2], [0, 0],
                               difficult=[False, True])], 1)
  # The 0.9 detection matches the difficult box: ignored, not a FP.
  np.testing.assert_allclose(m["voc_map"], 1.0)


def test_voc_and_coco_matching_rules_differ():
  a, b = [0, 0, 10, 10], [0, 2, 10, 12]  # IoU(a, b) = 80 / 120
  d2 = [0, 1, 10, 11]  # IoU with a = 90/110, with b = 90/110: ties -> a
  # VOC: d2's best box a is taken -> FP. COCO: d2 takes b -> TP.
  m = detection_metrics([image([a, d2], [0.9, 0.8], [0, 0], [a, b], [0, 0])], 1)
  np.testing.assert_allclose(m["voc_map"], 0.5)
  coco_at_05 = coco_average_precision(np.array([1.0, 1.0]), np.array([0.5, 1]))
  assert coco_at_05 == 1.0
  assert m["coco_map"] > 0.5


def test_average_precision_curves():
  assert voc_average_precision(np.array([]), np.array([])) == 0.0
  np.testing.assert_allclose(
      voc_average_precision(np.array([1.0, 0.5, 2 / 3]),
                            np.array([0.5, 0.5, 1.0])), 5 / 6)
