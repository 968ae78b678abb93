import numpy as np

from vq.metrics.detection import (ImageDetections, coco_average_precision,
                                  detection_metrics, image_counts,
                                  voc_average_precision)

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


def test_one_images_counts_at_the_prediction_threshold():
  """Objects G1, G2 (class 0), FAR (class 1, difficult), G1 again (class
  1). Kept at 0.4: a hit on G1 (0.9), its duplicate (0.8: false), the
  wrong class on G2 (0.7: false), a hit on the difficult box (0.6:
  ignored); the 0.3 hit on G2 is below the threshold, so G2 is missed,
  and class 1's G1 has no detection."""
  one = image([G1, G1, G2, FAR, G2], [0.9, 0.8, 0.7, 0.6, 0.3],
              [0, 0, 1, 1, 0], [G1, G2, FAR, G1], [0, 0, 1, 1],
              difficult=[False, False, True, False])
  assert image_counts(one, 2, 0.4) == {
      "objects": 3, "found": 1, "missed": 2, "false_detections": 2}
  assert image_counts(one, 2, 0.2) == {
      "objects": 3, "found": 2, "missed": 1, "false_detections": 2}


def test_voc_and_coco_matching_rules_differ():
  a, b = [0, 0, 10, 10], [0, 2, 10, 12]  # IoU(a, b) = 80 / 120
  d2 = [0, 1, 10, 11]  # IoU with a = 90/110, with b = 90/110: ties -> a
  # VOC: d2's best box a is taken -> FP. COCO: d2 takes b -> TP.
  m = detection_metrics([image([a, d2], [0.9, 0.8], [0, 0], [a, b], [0, 0])], 1)
  np.testing.assert_allclose(m["voc_map"], 0.5)
  coco_at_05 = coco_average_precision(np.array([1.0, 1.0]), np.array([0.5, 1]))
  assert coco_at_05 == 1.0
  # COCO: d2 is a TP at IoU thresholds 0.50..0.80 (7 of 10, AP 1); at
  # 0.85..0.95 recall stops at 1/2 with precision 1: 51 of 101 points.
  np.testing.assert_allclose(m["coco_map"], (7 + 3 * 51 / 101) / 10)


def _random_images(rng, num_images, num_classes):
  images = []
  for _ in range(num_images):
    k = rng.integers(1, 5)
    gt = rng.uniform(0, 60, (k, 2))
    gt = np.concatenate([gt, gt + rng.uniform(8, 40, (k, 2))], 1)
    gt_classes = rng.integers(0, num_classes, k)
    # Detections: jittered copies of the ground truth and random boxes.
    jitter = gt + rng.normal(0, 4, gt.shape)
    extra = rng.uniform(0, 60, (3, 2))
    extra = np.concatenate([extra, extra + rng.uniform(8, 40, (3, 2))], 1)
    boxes = np.concatenate([jitter, extra])
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    classes = np.r_[gt_classes, rng.integers(0, num_classes, 3)]
    scores = rng.uniform(0.05, 1, len(boxes))
    images.append(image(boxes, scores, classes, gt, gt_classes))
  return images


def test_coco_map_equals_pycocotools():
  from pycocotools.coco import COCO
  from pycocotools.cocoeval import COCOeval
  rng = np.random.default_rng(0)
  num_classes = 3
  images = _random_images(rng, 30, num_classes)
  xywh = lambda b: [float(b[0]), float(b[1]), float(b[2] - b[0]),
                    float(b[3] - b[1])]
  gt = {"images": [{"id": i} for i in range(len(images))],
        "categories": [{"id": c} for c in range(num_classes)],
        "annotations": []}
  dets = []
  for i, im in enumerate(images):
    for b, c in zip(im.gt_boxes, im.gt_classes):
      gt["annotations"].append({
          "id": len(gt["annotations"]) + 1, "image_id": i,
          "category_id": int(c), "bbox": xywh(b), "iscrowd": 0,
          "area": float((b[2] - b[0]) * (b[3] - b[1]))})
    for b, c, s in zip(im.boxes, im.classes, im.scores):
      dets.append({"image_id": i, "category_id": int(c), "bbox": xywh(b),
                   "score": float(s)})
  coco = COCO()
  coco.dataset = gt
  coco.createIndex()
  evaluation = COCOeval(coco, coco.loadRes(dets), "bbox")
  evaluation.evaluate()
  evaluation.accumulate()
  evaluation.summarize()
  m = detection_metrics(images, num_classes)
  np.testing.assert_allclose(m["coco_map"], evaluation.stats[0], atol=1e-6)


def test_average_precision_curves():
  assert voc_average_precision(np.array([]), np.array([])) == 0.0
  np.testing.assert_allclose(
      voc_average_precision(np.array([1.0, 0.5, 2 / 3]),
                            np.array([0.5, 0.5, 1.0])), 5 / 6)
