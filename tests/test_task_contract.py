"""Every task implements the written contract (vq/tasks/base.py), builds
without touching the disk, and converts outputs to records in the original
image's coordinates."""
import builtins
import os
import sys

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vq.data.formats import rle
from vq.tasks import TASKS, base

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from configs import (draem, keypoints, pretrain_mobilenet,  # noqa: E402
                     unet_steel, yolo)

CONFIGS = {
    "detection": yolo, "segmentation": unet_steel, "keypoints": keypoints,
    "anomaly": draem, "classification": pretrain_mobilenet,
}


def _no_disk(real):
  """`real` refused any path but the suite's XLA compilation cache's
  (conftest.py), which JAX reads and writes whatever the task does."""
  def refuse(*args, **kwargs):
    if args and str(args[0]).startswith(os.environ["VQ_TEST_XLA_CACHE"]):
      return real(*args, **kwargs)
    raise AssertionError(f"disk access during task construction: {args[:1]}")
  return refuse


@pytest.fixture
def no_disk(monkeypatch):
  jax.devices()  # the backend's own start-up reads /sys
  for module, name in [(builtins, "open"), (os, "listdir"), (os, "scandir"),
                       (os, "makedirs"), (os, "walk"), (cv2, "imread"),
                       (cv2, "imwrite")]:
    monkeypatch.setattr(module, name, _no_disk(getattr(module, name)))


def _train_batch(task, n=2):
  images = task.dummy_batch(n)
  h, w, _ = task.input_shape
  if task.name == "detection":
    return {"image": images, "target": jnp.zeros(
        (n, task.grid_size, task.grid_size, 5 + task.num_classes))}
  if task.name == "segmentation":
    return {"image": images, "mask": jnp.zeros((n, h, w, task.num_classes),
                                               jnp.uint8),
            "label": jnp.zeros(n, jnp.int32)}
  if task.name == "keypoints":
    return {"image": images,
            "keypoints": jnp.full((n, len(task.class_names), 2), 0.5)}
  if task.name == "anomaly":
    return {"image": images, "clean": images,
            "mask": jnp.zeros((n, h, w), jnp.uint8)}
  return {"image": images, "label": jnp.zeros(n, jnp.int32)}


def test_every_task_is_listed():
  assert set(TASKS) == set(CONFIGS)
  assert all(issubclass(t, base.Task) for t in TASKS.values())


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_builds_and_runs_without_disk(name, no_disk):
  # The anomaly default (auto) reads memories of the training images:
  # the networks' own scoring runs without them.
  config = CONFIGS[name].get_config(
      "variant=test" + (",scoring=baseline" if name == "anomaly" else ""))
  task = TASKS[name](config)
  variables = task.init_variables(jax.random.key(0))
  loss, (terms, _) = jax.jit(task.loss)(variables["params"],
                                        variables.get("batch_stats", {}),
                                        _train_batch(task), jax.random.key(1))
  assert np.isfinite(float(loss)) and "loss" in terms
  outputs = jax.jit(task.predict)(variables, task.dummy_batch(2))
  one = jax.tree.map(lambda x: np.asarray(x)[0], outputs)
  record = task.to_record(one, (50, 70))
  assert isinstance(record, dict)
  picture = task.draw(np.zeros((50, 70, 3), np.uint8), record)
  assert picture.shape == (50, 70, 3) and picture.dtype == np.uint8


def _task(name, variant="variant=test"):
  return TASKS[name](CONFIGS[name].get_config(variant))


def test_detection_record_in_original_pixels():
  task = _task("detection")
  outputs = {"boxes": np.array([[0.25, 0.5, 0.5, 1.0], [0, 0, 1, 1]]),
             "scores": np.array([0.9, 0.2]), "classes": np.array([1, 0]),
             "num_valid": np.int32(2)}
  record = task.to_record(outputs, (200, 400))
  assert record == {"detections": [{"class": task.class_names[1],
                                    "score": 0.9,
                                    "box": [100.0, 100.0, 200.0, 200.0]}]}
  drawn = task.draw(np.zeros((200, 400, 3), np.uint8), record)
  assert drawn[100, 100:201].any() and not drawn[150, 150].any()


def test_segmentation_record_masks_at_original_size():
  task = _task("segmentation")  # 4 classes, input 32x64
  masks = np.zeros((32, 64, 4), bool)
  masks[4:8, 10:20, 2] = True
  record = task.to_record({"masks": masks, "probs": masks.astype(float)},
                          (64, 128))
  assert list(record["masks"]) == [task.class_names[2]]
  expected = np.zeros((64, 128), np.uint8)
  expected[8:16, 20:40] = 1
  # Severstal RLE: 1-based, column-major (top to bottom, then left to right).
  starts = [c * 64 + 8 + 1 for c in range(20, 40)]
  assert record["masks"][task.class_names[2]] == " ".join(
      f"{s} 8" for s in starts)
  assert record["defect_area"] == {task.class_names[2]: 160}
  drawn = task.draw(np.zeros((64, 128, 3), np.uint8), record)
  assert drawn[10, 30].any() and not drawn[30, 30].any()
  np.testing.assert_array_equal(rle.decode(
      record["masks"][task.class_names[2]], (64, 128)), expected)
  # A per-class image head's calls travel with the record.
  record = task.to_record({"masks": masks, "image_probs": np.float32(0.8),
                           "class_probs": np.float32([0.1, 0.2, 0.8, 0.3])},
                          (64, 128))
  assert record["defect_probability"] == 0.8
  assert record["class_probability"] == dict(zip(task.class_names,
                                                 [0.1, 0.2, 0.8, 0.3]))


def test_keypoints_record_in_original_pixels():
  task = _task("keypoints")
  record = task.to_record({"keypoints": np.array([[0.5, 0.25], [0, 1],
                                                  [1, 0]])}, (100, 200))
  names = task.class_names
  assert record == {"keypoints": {names[0]: [100.0, 25.0],
                                  names[1]: [0.0, 100.0],
                                  names[2]: [200.0, 0.0]}}


def test_anomaly_record_region_at_original_size():
  task = _task("anomaly", "variant=test,scoring=baseline")  # region: p >= 0.5
  anomaly_map = np.zeros((32, 32), np.float32)
  anomaly_map[0:4, 8:16] = 0.9
  record = task.to_record({"map": anomaly_map, "score": np.float32(0.9)},
                          (64, 64))
  assert record["score"] == pytest.approx(0.9)
  assert record["region_area"] == 8 * 16
  assert record["region"] == " ".join(f"{c * 64 + 1} 8" for c in range(16, 32))
  np.testing.assert_array_equal(record["map"], anomaly_map)


def test_classification_record():
  task = _task("classification")
  probs = np.zeros(len(task.class_names))
  probs[2] = 1.0
  record = task.to_record({"probs": probs, "label": np.int32(2),
                           "logits": probs}, (10, 10))
  assert record["class"] == task.class_names[2] and record["score"] == 1.0
  assert sum(record["probabilities"].values()) == pytest.approx(1.0)
