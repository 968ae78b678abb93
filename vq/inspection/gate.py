"""The gate: an image-level damage score, and its threshold for a target
recall on a validation split."""
import math
import os

import jax
import numpy as np

from vq.data import pipeline
from vq.data.images import find_images, read_image


def threshold_for_recall(scores, positives, target_recall):
  """The highest threshold that passes (score >= threshold) at least
  `target_recall` of the positive images.

  Raises ValueError when there is no positive image or the target is not
  in (0, 1].
  """
  if not 0.0 < target_recall <= 1.0:
    raise ValueError(f"gate.target_recall must be in (0, 1], got "
                     f"{target_recall}")
  positive_scores = np.sort(np.asarray(scores, np.float64)[
      np.asarray(positives, bool)])[::-1]
  if not positive_scores.size:
    raise ValueError("the gate's validation split has no defective image: "
                     "no recall to aim for")
  needed = math.ceil(target_recall * positive_scores.size - 1e-9)
  return float(positive_scores[needed - 1])


def gate_scores(task, outputs, normal_class):
  """Per-image defect scores of a gate model's `predict` outputs: 1 -
  P(normal class) of a classifier, or a segmentation run's image head."""
  if task.name == "classification":
    if normal_class not in task.class_names:
      raise ValueError(f"gate.normal_class {normal_class!r} is not a class "
                       f"of the gate run {task.class_names}")
    return 1.0 - np.asarray(outputs["probs"])[
        ..., task.class_names.index(normal_class)]
  if task.name == "segmentation" and "image_probs" in outputs:
    return np.asarray(outputs["image_probs"])
  raise ValueError(f"a gate is a classification run or a segmentation run "
                   f"with an image head (model.image_head), not a "
                   f"{task.name} run without one")


def _calibration(scores, positives, target_recall, source):
  threshold = threshold_for_recall(scores, positives, target_recall)
  passed = scores >= threshold
  return {"threshold": threshold, "target_recall": target_recall,
          "validation": source,
          "validation_images": int(scores.size),
          "validation_defective": int(positives.sum()),
          "validation_recall": float(passed[positives].mean()),
          "validation_pass_rate": float(passed.mean())}


def calibrate_on_photos(stage, folder, normal_class, target_recall):
  """The threshold for `target_recall` on photos as the pipeline receives
  them: FOLDER/<normal_class>/ holds good photos, every other subfolder
  defective ones."""
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"gate.validation_path not found: {folder}")
  classes = sorted(n for n in os.listdir(folder)
                   if os.path.isdir(os.path.join(folder, n)))
  if normal_class not in classes or len(classes) < 2:
    raise ValueError(f"{folder}: expected a {normal_class}/ folder and at "
                     f"least one folder of defective photos; found {classes}")
  scores, positives = [], []
  for name in classes:
    paths = find_images(os.path.join(folder, name))
    for i in range(0, len(paths), stage.batch_size):
      outputs = stage([read_image(p) for p in paths[i:i + stage.batch_size]])
      scores.append(gate_scores(stage.task, {
          k: np.stack([o[k] for o in outputs]) for k in outputs[0]},
          normal_class))
      positives += [name != normal_class] * len(outputs)
  return _calibration(np.concatenate(scores), np.array(positives),
                      target_recall, folder)


def calibrate(task, predict_fn, normal_class, target_recall, batch_size=32):
  """Runs the gate over its run's eval split -> the threshold for
  `target_recall` and what it does there (recall, pass rate)."""
  data = task.datasets()
  scores, labels = [], []
  for batch in pipeline.eval_batches(data.eval, data.eval_transform,
                                     batch_size, 2):
    keep = batch["batch_mask"]
    out = jax.device_get(predict_fn(batch["image"]))
    scores.append(gate_scores(task, out, normal_class)[keep])
    label = batch["label"][keep]
    if task.name == "classification":
      label = label != task.class_names.index(normal_class)
    labels.append(label > 0)
  return _calibration(np.concatenate(scores), np.concatenate(labels),
                      target_recall, "the gate run's eval split")
