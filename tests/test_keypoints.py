import csv
import os
import types

import flax.traverse_util
import jax
import numpy as np
import pytest

from conftest import load_params
from vq import run_config, train
from vq.data.images import write_image
from vq.data.sources import RecordSource
from vq.data.augment.keypoint_augment import resize_and_augment
from vq.data.embedded.synthetic_bead import FLIP_PERMUTATION, generate
from vq.metrics.keypoints import keypoint_metrics
from vq.models import keras_import
from vq.tasks.keypoints import KeypointsTask


def dot_record():
  """A 50x80 image with three bright single-pixel dots as keypoints."""
  image = np.zeros((50, 80, 3), np.uint8)
  points = np.array([[10, 30], [60, 30], [35, 8]])  # pixel (column, row)
  for k, (x, y) in enumerate(points):
    image[y - 1:y + 2, x - 1:x + 2, k] = 255
  centres = (points + 0.5) / np.array([80, 50])
  return {"image": image, "keypoints": centres.astype(np.float32)}


@pytest.mark.parametrize("seed", range(5))
def test_keypoints_follow_the_image(seed):
  out = resize_and_augment(dot_record(), 64, np.random.default_rng(seed),
                           scale_range=0.2, shift_range=0.05, rotation=20,
                           flip=True, flip_permutation=(0, 1, 2))
  for k in range(3):
    channel = out["image"][..., k].astype(float)
    ys, xs = np.mgrid[0:64, 0:64]
    centre = [(channel * (xs + 0.5)).sum() / channel.sum(),
              (channel * (ys + 0.5)).sum() / channel.sum()]
    np.testing.assert_allclose(out["keypoints"][k] * 64, centre, atol=0.5)


def test_flip_swaps_left_and_right():
  class Flip:  # a stand-in Generator: no zoom, shift or rotation; flip
    def uniform(self, low, high, size=None):
      return np.full(size, (low + high) / 2) if size else (low + high) / 2

    def random(self):
      return 0.0

  r = dot_record()
  out = resize_and_augment(r, 80, Flip(), flip=True,
                           flip_permutation=FLIP_PERMUTATION)
  # The left dot (x=10.5 of 80) is now on the right, and labelled right.
  np.testing.assert_allclose(out["keypoints"][1, 0], 1 - r["keypoints"][0, 0],
                             atol=1e-6)
  np.testing.assert_allclose(out["keypoints"][0, 0], 1 - r["keypoints"][1, 0],
                             atol=1e-6)


def test_keypoint_metrics_hand_worked():
  true = np.zeros((2, 2, 2))
  pred = np.array([[[3, 4], [0, 1]], [[0, 0], [6, 8]]], float)  # 5, 1, 0, 10
  m = keypoint_metrics(pred, true, (100, 100), names=["a", "b"])
  assert m["mean_error_px"] == 4.0
  assert m["error_px/a"] == 2.5 and m["error_px/b"] == 5.5
  assert m["pck@2px"] == 0.5 and m["pck@5px"] == 0.75 and m["pck@10px"] == 1.0
  assert m["pck@0.05diag"] == 0.75  # radius 7.07


def test_evaluation_lists_each_images_errors(keypoints_test_config):
  """A row per image: its file and its keypoints' pixel errors at the
  input size (the hand-worked distances above: 5 and 1, then 0 and 10)."""
  task = KeypointsTask(keypoints_test_config)
  s, k = task.image_size, len(task.class_names)
  true = np.full((2, k, 2), 0.5)
  pred = true.copy()
  pred[0, 0] += np.array([3, 4]) / s
  pred[0, 1] += np.array([0, 1]) / s
  pred[1, 1] += np.array([6, 8]) / s
  batch = {"batch_mask": np.ones(2, bool), "keypoints": true,
           "image": np.zeros((2, s, s, 3), np.uint8)}
  files = types.SimpleNamespace(eval=RecordSource(
      [{"image_path": "a.png"}, {"image_path": "b.png"}]))
  scalars, _, rows = task.evaluate([(batch, {"keypoints": pred})], files)
  first, second = task.class_names[:2]
  assert [r["file"] for r in rows] == ["a.png", "b.png"]
  assert [(r[f"error_px/{first}"], r[f"error_px/{second}"]) for r in rows] \
      == [pytest.approx((5, 1)), pytest.approx((0, 10))]
  assert np.mean([r["mean_error_px"] for r in rows]) == pytest.approx(
      scalars["mean_error_px"])


def test_synthetic_beads_are_reproducible():
  a, b = generate(3, 2, 48), generate(3, 2, 48)
  np.testing.assert_array_equal(a["image"], b["image"])
  assert a["keypoints"].shape == (3, 2)
  assert np.all((a["keypoints"] > 0) & (a["keypoints"] < 1))
  # The top point lies above both bottom points (y grows downwards).
  assert a["keypoints"][2, 1] < a["keypoints"][:2, 1].min()


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
  """A Keras MobileNetV2 (alpha 0.35, no top) with random weights in the
  layout of the published ImageNet files: the study's starting point."""
  from test_pretrained import random_keras, save_legacy_h5
  path = str(tmp_path_factory.mktemp("keras") /
             "mobilenet_v2_weights_0.35_no_top.h5")
  save_legacy_h5(random_keras("mobilenet_v2", 0.35, include_top=False), path)
  return path


def _imported(path):
  variables = keras_import.load_keras(path, "mobilenet_v2", 0.35)
  return {k: flax.traverse_util.flatten_dict(v, sep="/")
          for k, v in variables.items()}


def test_frozen_backbone_stays_bitwise_identical(keypoints_test_config,
                                                 keras_file, tmp_path):
  """The study's frozen arm from a Keras weights file."""
  config = keypoints_test_config
  config.model.backbone_weights = keras_file
  config.freeze = ("^backbone/",)
  train.train_and_evaluate(config, str(tmp_path))
  assert run_config.load_config(str(tmp_path)).model.input_scaling == "keras"
  imported = _imported(keras_file)
  params = load_params(tmp_path, 4)
  stats = load_params(tmp_path, 4, "batch_stats")
  for k, v in imported["params"].items():
    np.testing.assert_array_equal(params[f"backbone/{k}"], v, err_msg=k)
  for k, v in imported["batch_stats"].items():
    np.testing.assert_array_equal(stats[f"backbone/{k}"], v, err_msg=k)
  task = KeypointsTask(config)
  init = flax.traverse_util.flatten_dict(jax.device_get(
      task.init_variables(jax.random.PRNGKey(0)))["params"], sep="/")
  for k, v in init.items():
    if k.startswith("head/"):
      assert not np.array_equal(params[k], v), f"{k} was not trained"


def test_fine_tuned_backbone_changes(keypoints_test_config, keras_file,
                                     tmp_path):
  """The study's fine-tuned arm from the same file."""
  config = keypoints_test_config
  config.model.backbone_weights = keras_file
  train.train_and_evaluate(config, str(tmp_path))
  imported = _imported(keras_file)["params"]
  params = load_params(tmp_path, 4)
  kernels = [k for k in imported if k.endswith("kernel")]
  assert len(kernels) > 30
  unchanged = [k for k in kernels
               if np.array_equal(params[f"backbone/{k}"], imported[k])]
  assert not unchanged, f"backbone kernels not trained: {unchanged}"


@pytest.mark.slow  # a pre-training run, then a keypoint run: 40 s
def test_backbone_starts_from_a_pretraining_workdir(keypoints_test_config,
                                                   tmp_path):
  from configs import pretrain_mobilenet
  pre = pretrain_mobilenet.get_config("variant=test")
  summary = train.train_and_evaluate(pre, str(tmp_path / "pre"))
  assert 0.0 <= summary["eval"]["accuracy"] <= 1.0
  config = keypoints_test_config
  config.model.backbone_weights = str(tmp_path / "pre")
  task = KeypointsTask(config)
  init = jax.device_get(task.init_variables(jax.random.PRNGKey(1)))
  pretrained = load_params(tmp_path / "pre", 2)
  for k, v in pretrained.items():
    if not k.startswith("predictions/"):
      np.testing.assert_array_equal(
          init["params"]["backbone"][k.split("/")[0]][k.split("/")[1]], v,
          err_msg=k)
  config.model.alpha = 0.5
  with pytest.raises(ValueError, match="that run's model has mobilenet_v2 "
                     "alpha 0.35; this one needs mobilenet_v2 alpha 0.5"):
    KeypointsTask(config).init_variables(jax.random.PRNGKey(1))


@pytest.mark.slow  # 25 s; the CSV reader itself: test_keypoint_readers.py
def test_trains_from_a_keypoint_csv(keypoints_test_config, tmp_path):
  rows = ["image,x1,y1,x2,y2,x3,y3"]
  for i in range(8):
    r = generate(5, i, 40)
    name = f"bead{i}.png"
    write_image(tmp_path / name, r["image"])
    rows.append(name + "," + ",".join(f"{v:.2f}" for v in
                                      (r["keypoints"] * 40).ravel()))
  (tmp_path / "beads.csv").write_text("\n".join(rows) + "\n")
  config = keypoints_test_config
  config.data.source = "csv"
  config.data.train_path = config.data.eval_path = str(tmp_path / "beads.csv")
  summary = train.train_and_evaluate(config, str(tmp_path / "run"))
  assert summary["step"] == 4 and summary["eval"]["mean_error_px"] > 0
  with open(tmp_path / "run" / "eval_images.csv") as f:
    rows = list(csv.DictReader(f))
  assert [os.path.basename(r["file"]) for r in rows] == [
      f"bead{i}.png" for i in range(8)]
  assert np.mean([float(r["mean_error_px"]) for r in rows]) == \
      pytest.approx(summary["eval"]["mean_error_px"], rel=1e-5)
  config.data.train_path = str(tmp_path / "missing.csv")
  with pytest.raises(FileNotFoundError, match="missing.csv"):
    train.train_and_evaluate(config, str(tmp_path / "run2"))


def test_heatmaps_decode_to_the_best_cell_plus_offset():
  from vq.models.keypoint_net import decode_heatmaps
  heat = np.zeros((1, 4, 8, 2), np.float32)
  off = np.zeros((1, 4, 8, 2, 2), np.float32)
  heat[0, 1, 5, 0] = 3.0  # keypoint 0 in row 1, column 5
  off[0, 1, 5, 0] = (0.25, -0.5)
  heat[0, 3, 0, 1] = 1.0  # keypoint 1 in row 3, column 0, no offset
  kp = np.asarray(decode_heatmaps(heat, off))
  np.testing.assert_allclose(kp[0, 0], [(5 + 0.5 + 0.25) / 8, (1 + 0.5 - 0.5) / 4])
  np.testing.assert_allclose(kp[0, 1], [0.5 / 8, 3.5 / 4])


def test_heatmap_targets_are_discs_with_offsets():
  from vq.losses import keypoint_heatmap_loss_terms as heatmap_loss_terms
  kp = np.array([[[0.3, 0.55]]], np.float32)  # x = 1.2 cells, y = 2.2 cells
  logits = np.full((1, 4, 4, 1), -20.0, np.float32)
  offsets = np.zeros((1, 4, 4, 1, 2), np.float32)
  # Radius 0.5 cells: only the cell (row 2, column 1), centre (1.5, 2.5).
  logits[0, 2, 1, 0] = 20.0
  offsets[0, 2, 1, 0] = (1.2 - 1.5, 2.2 - 2.5)
  terms = heatmap_loss_terms(logits, offsets, kp, radius=0.5, offset_weight=1.0)
  assert float(terms["scores"]) < 1e-6 and float(terms["offsets"]) < 1e-6
  offsets[0, 2, 1, 0] = (0.0, 0.0)
  terms = heatmap_loss_terms(logits, offsets, kp, radius=0.5, offset_weight=2.0)
  np.testing.assert_allclose(terms["offsets"], 0.6, rtol=1e-5)
  np.testing.assert_allclose(terms["loss"], terms["scores"] + 1.2, rtol=1e-5)


def test_upconv_matches_flax_conv_transpose():
  import flax.linen as nn
  from vq.models.layers import UpConv2x2
  x = jax.random.normal(jax.random.key(0), (2, 3, 4, 5))
  up = UpConv2x2(6)
  v = up.init(jax.random.key(1), x)
  ref = nn.ConvTranspose(6, (2, 2), strides=(2, 2))
  np.testing.assert_allclose(up.apply(v, x), ref.apply(v, x), atol=1e-5)
