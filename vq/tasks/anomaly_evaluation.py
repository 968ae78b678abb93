"""The anomaly task's evaluation on host arrays: per category, image AUROC
and AP of every scoring, pixel AUROC, AP and AUPRO of every map, the
threshold and F1; per defect kind, image and pixel AUROC; the pictures."""
import cv2
import numpy as np

from vq import visualize
from vq.data.embedded.surface_drawing import to_uint8
from vq.metrics import anomaly as anomaly_metrics
from vq.metrics import binary_classification
from vq.tasks.anomaly_scorings import FUSED, MEMORY, MEMORY_SCORINGS, SCORINGS

# Per category, stored with every evaluation; prediction decides with them.
CALIBRATION_KEYS = ("threshold", "score_min", "score_max")


def map_key(scoring):
  """The pixel map of `scoring` (the filtered scorings report both)."""
  return {MEMORY: "memory_map", FUSED: "fused_map"}.get(scoring, "map")


def halves(count, validation_fraction, split_seed):
  """(validation, test) indices of a category's `count` test images: the
  threshold is chosen on the first, measured on the second."""
  order = np.random.default_rng(split_seed).permutation(count)
  n_val = int(round(validation_fraction * count))
  return order[:n_val], order[n_val:]


def category_metrics(host, outs, scoring, validation_fraction, split_seed,
                     threshold_recall=0.0):
  """One category's images: host {label, mask, valid}, outs {score/...,
  maps} -> its scalars; the threshold is chosen on a validation part
  (`validation_fraction`, drawn with `split_seed`): F1-optimal, or with
  `threshold_recall` the highest catching that fraction of its defective
  images; F1, recall and the false alarm rate measured on the rest."""
  labels, truth, valid = host["label"], host["mask"], host["valid"]
  m = {}
  for s in SCORINGS:
    if f"score/{s}" in outs:
      m[f"image_auroc/{s}"] = anomaly_metrics.auroc(outs[f"score/{s}"],
                                                    labels)
  m["image_auroc"] = m[f"image_auroc/{scoring}"]
  m["image_ap"] = anomaly_metrics.average_precision(
      outs[f"score/{scoring}"], labels)
  # The unsuffixed pixel metrics are the scoring's map's; under the
  # memory scorings DRAEM's own map's are suffixed /draem.
  draem = "/draem" if scoring in MEMORY_SCORINGS else ""
  for map_name, suffix in (("map", draem), ("filtered_map", "/filtered"),
                           ("memory_map", "/memory"),
                           ("fused_map", "/fused")):
    if map_name not in outs:
      continue
    pixel = anomaly_metrics.pixel_metrics(outs[map_name], truth,
                                          valid=valid)
    m.update({k + suffix: v for k, v in pixel.items()})
    if map_name == map_key(scoring) and suffix:
      m.update(pixel)
  val, test = halves(len(labels), validation_fraction, split_seed)
  scores = outs[f"score/{scoring}"]
  if threshold_recall:
    threshold = anomaly_metrics.recall_threshold(scores[val], labels[val],
                                                 threshold_recall)
    m["val_f1"] = binary_classification(scores[val] >= threshold,
                                        labels[val])["f1"]
  else:
    threshold, m["val_f1"] = anomaly_metrics.f1_optimal_threshold(
        scores[val], labels[val])
  m["threshold"] = threshold
  m["score_min"] = float(scores[val].min())
  m["score_max"] = float(scores[val].max())
  decided, test_labels = scores[test] >= threshold, labels[test]
  rates = binary_classification(decided, test_labels)
  m["test_f1"] = rates["f1"]
  if (test_labels == 1).any():
    m["test_recall"] = rates["recall"]
  if (test_labels == 0).any():
    m["test_false_alarm_rate"] = float(decided[test_labels == 0].mean())
  return m


def image_rows(names, host, scores, class_names, defect_types, thresholds,
               validation_fraction, split_seed):
  """One row per test image (`names`: its file): category, defect kind,
  label, score, the decision at its category's threshold (as prediction
  words it), and the half of `halves` it fell in (the threshold was chosen
  on 'validation')."""
  rows = [None] * len(scores)
  for c, category in enumerate(class_names):
    own = np.flatnonzero(host["category"] == c)
    in_validation = np.zeros(len(own), bool)
    in_validation[halves(len(own), validation_fraction, split_seed)[0]] = True
    for i, validation in zip(own, in_validation):
      label = int(host["label"][i])
      rows[i] = {"file": names[i], "category": category,
                 "defect_type": (defect_types[host["defect"][i]] if label
                                 else "good"),
                 "label": label, "score": float(scores[i]),
                 "decision": ("defective" if scores[i] >= thresholds[category]
                              else "good"),
                 "half": "validation" if validation else "test"}
  return tuple(rows)


def defect_metrics(category, defect_types, host, outs, scoring):
  """Image and pixel AUROC of each defect type against the good images."""
  good = host["label"] == 0
  m = {}
  for d, defect in enumerate(defect_types):
    defective = host["defect"] == d
    if not defective.any() or not good.any():
      continue
    sel = good | defective
    m[f"{category}/{defect}/image_auroc"] = anomaly_metrics.auroc(
        outs[f"score/{scoring}"][sel], host["label"][sel])
    pixels = host["valid"][sel].astype(bool)
    m[f"{category}/{defect}/pixel_auroc"] = anomaly_metrics.auroc(
        outs[map_key(scoring)][sel][pixels], host["mask"][sel][pixels])
  return m


def pictures(host, outs, levels, scoring, num_images):
  """Input | reconstruction (when the networks ran) | heatmap of the
  scoring's map | truth with the contour where the map reaches its
  category's level (`levels`, by category index; the heat map's middle),
  for up to `num_images` defective images."""
  rows = []
  defective = np.flatnonzero(host["label"] == 1)
  for i in defective[:num_images]:
    image = host["image"][i]
    recon = ([(outs["reconstruction"][i] * 255).astype(np.uint8)]
             if "reconstruction" in outs else [])
    anomaly_map = outs[map_key(scoring)][i]
    level = levels[host["category"][i]]
    heat = cv2.applyColorMap(to_uint8(anomaly_map * 127.5 / level),
                             cv2.COLORMAP_JET)[..., ::-1]
    truth = visualize.overlay_masks(image, host["mask"][i][..., None])
    contours, _ = cv2.findContours(
        (anomaly_map >= level).astype(np.uint8), cv2.RETR_EXTERNAL,
        cv2.CHAIN_APPROX_NONE)
    truth = cv2.drawContours(np.ascontiguousarray(truth), contours, -1,
                             (255, 255, 0), 1)
    rows.append(np.concatenate([image, *recon, heat, truth], 1))
  return np.stack(rows)
