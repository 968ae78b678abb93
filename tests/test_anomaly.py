"""DRAEM pieces: SSIM, Perlin noise, anomaly metrics, scoring ops, the MVTec
reader, parameter counts and a short training run."""
import json
import os
import sys

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage.metrics import structural_similarity
from sklearn.metrics import f1_score, roc_curve

from vq import checkpoint, losses, predict, train
from vq.data import anomaly as anomaly_data
from vq.data.augment import anomaly_synthesis
from vq.data.formats import mvtec
from vq.data.augment.perlin import perlin_noise
from vq.data.errors import AnnotationError
from vq.data.images import write_image
from vq.metrics import (aupro, auroc, average_precision, f1_optimal_threshold,
                        pixel_metrics, recall_threshold)
from vq.models import DiscriminativeSubNetwork, ReconstructiveSubNetwork
from vq.ops import (depthwise_filter, gaussian_kernel, gaussian_window,
                    laplacian_sharpen, separable_filter,
                    unsharp_mask)
from vq.ops import anomaly_scoring
from vq.tasks import anomaly_evaluation as evaluation
from vq.tasks.anomaly import AnomalyTask
from vq.tasks.anomaly_records import decide

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from configs import draem  # noqa: E402


@pytest.mark.parametrize("noise", [0.05, 0.3])
def test_ssim_matches_scikit_image(noise):
  rng = np.random.default_rng(0)
  x = rng.random((2, 40, 48, 3)).astype(np.float32)
  y = np.clip(x + noise * rng.normal(size=x.shape), 0, 1).astype(np.float32)
  reference = np.mean([structural_similarity(
      x[i], y[i], channel_axis=-1, gaussian_weights=True, sigma=1.5,
      use_sample_covariance=False, data_range=1.0) for i in range(2)])
  got = float(losses.ssim(jnp.asarray(x), jnp.asarray(y), padding="valid"))
  assert got == pytest.approx(reference, abs=1e-5)
  assert float(losses.ssim(jnp.asarray(x), jnp.asarray(x))) == pytest.approx(1.0)
  same = float(losses.ssim(jnp.asarray(x), jnp.asarray(y)))
  assert same != pytest.approx(got, abs=1e-4)  # zero padding counts borders


def test_separable_filter_equals_the_2d_kernel():
  x = jax.random.uniform(jax.random.key(0), (2, 13, 20, 3))
  taps = gaussian_window(7, 1.5)
  assert taps.sum() == pytest.approx(1.0)
  np.testing.assert_allclose(separable_filter(x, taps),
                             depthwise_filter(x, gaussian_kernel(7, 1.5)),
                             atol=1e-6)
  with pytest.raises(ValueError, match="odd length"):
    separable_filter(x, np.ones(4))


def test_colour_losses():
  x = jnp.full((1, 8, 8, 3), 0.2)
  y = jnp.full((1, 8, 8, 3), 0.8)
  assert float(losses.histogram_loss(x, x)) == pytest.approx(0.0, abs=1e-6)
  assert float(losses.histogram_loss(x, y)) == pytest.approx(2.0, abs=1e-3)
  # MSE 0.36 -> PSNR 10 log10(1 / 0.36) = 4.437 dB.
  assert float(losses.psnr(x, y)[0]) == pytest.approx(4.4370, abs=1e-3)
  assert float(losses.inverse_psnr_loss(x, y)) == pytest.approx(1 / 4.4370,
                                                                 abs=1e-4)


def test_perlin_noise_statistics_and_seed():
  rng = np.random.default_rng
  a = perlin_noise(rng(3), (64, 64), (4, 8))
  np.testing.assert_array_equal(a, perlin_noise(rng(3), (64, 64), (4, 8)))
  b = perlin_noise(rng(4), (64, 64), (4, 8))
  assert not np.allclose(a, b)
  assert np.abs(a[::16, ::8]).max() < 1e-6  # zero on the lattice points
  maps = np.stack([perlin_noise(rng(i), (64, 64), (8, 8)) for i in range(40)])
  assert abs(maps.mean()) < 0.02
  assert 0.2 < maps.std() < 0.45
  assert np.abs(maps).max() <= np.sqrt(2)
  assert 0.01 < (maps > 0.5).mean() < 0.2
  # Finer lattices vary faster: neighbour differences grow with res.
  coarse = perlin_noise(rng(3), (64, 64), (2, 2))
  assert np.abs(np.diff(coarse, axis=1)).mean() < np.abs(
      np.diff(maps[0], axis=1)).mean()


def test_stroke_anomalies_are_thin_curves_inside_the_image():
  rng = np.random.default_rng(4)
  image = np.full((64, 64, 3), 100, np.uint8)
  source = np.full((64, 64, 3), 250, np.uint8)
  thin = cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5))
  drawn = 0
  for _ in range(20):
    out, mask = anomaly_synthesis.synthesize_anomaly(
        image, source, rng, stroke_probability=1.0)
    np.testing.assert_array_equal(out[mask == 0], image[mask == 0])
    if mask.any():
      drawn += 1
      assert mask.shape == (64, 64) and set(np.unique(mask)) == {0, 1}
      # At most 3 pixels wide: a 5x5 erosion removes the strokes but where
      # they cross or turn sharply.
      assert cv2.erode(mask, thin).sum() < 0.2 * mask.sum()
      assert 4 <= mask.sum() < 0.25 * mask.size
  assert 3 <= drawn <= 17


def test_synthetic_anomaly_blends_inside_the_mask():
  rng = np.random.default_rng(1)
  image = np.full((32, 32, 3), 100, np.uint8)
  source = np.full((32, 32, 3), 250, np.uint8)
  found = 0
  for _ in range(20):
    out, mask = anomaly_synthesis.synthesize_anomaly(image, source, rng,
                                                 max_scale=2)
    np.testing.assert_array_equal(out[mask == 0], image[mask == 0])
    if mask.any():
      found += 1
      assert (out[mask == 1] > 100).all()
  assert 3 <= found <= 17
  augmented = anomaly_synthesis.augment_source(source, rng)
  assert augmented.shape == source.shape and augmented.dtype == np.uint8


def test_anomaly_sources():
  rng = np.random.default_rng(0)
  for kind in ("photographs", "procedural"):
    source = anomaly_synthesis.AnomalySource(kind)
    sample = source.sample(rng, 24)
    assert sample.shape == (24, 24, 3) and sample.dtype == np.uint8
  photographs = anomaly_synthesis.AnomalySource("photographs")
  assert len(photographs.photos) == len(anomaly_synthesis.PHOTOGRAPHS)
  # Crops differ from draw to draw (position, scale, photograph).
  a, b = photographs.sample(rng, 16), photographs.sample(rng, 16)
  assert np.abs(a.astype(int) - b).mean() > 5
  with pytest.raises(FileNotFoundError, match="neither a folder nor one of"):
    anomaly_synthesis.AnomalySource("/no/such/dtd")


def test_a_distorted_source_is_the_same_material_moved():
  rng = np.random.default_rng(0)
  # A horizontal ramp: a pixel's value says where it came from.
  ramp = np.repeat(np.arange(64, dtype=np.float32)[None] * 4, 64, 0)
  image = np.repeat(ramp[..., None], 3, -1).astype(np.uint8)
  for _ in range(5):
    moved = anomaly_synthesis.distorted(image, rng, max_shift=4.0)
    assert moved.shape == image.shape and moved.dtype == np.uint8
    shift = np.abs(moved.astype(int) - image)[8:-8, 8:-8] / 4.0
    # Moved, smoothly (neighbours move alike), by a few pixels.
    assert shift.max() > 0.5 and shift.mean() < 4 * 4.0
    assert np.abs(np.diff(moved[8:-8, 8:-8, 0].astype(int), axis=0)).max() <= 8
    np.testing.assert_array_equal(moved[..., 0], moved[..., 2])


def test_training_crops_at_native_resolution(tmp_path):
  from vq.data.anomaly import SyntheticAnomalyTransform
  transform = SyntheticAnomalyTransform(
      64, anomaly_synthesis.AnomalySource("procedural"),
      rotate_probability=0.0, perlin_max_scale=2, crop_size=24,
      self_source_probability=0.5)
  image = np.random.default_rng(1).integers(0, 255, (64, 64, 3), np.uint8)
  rng = np.random.default_rng(0)
  for _ in range(6):
    out = transform({"image": image}, rng)
    assert out["image"].shape == out["clean"].shape == (24, 24, 3)
    assert out["mask"].shape == (24, 24)
    # The clean crop is a native-resolution window of the image.
    found = [(y, x) for y in range(41) for x in range(41)
             if np.array_equal(image[y:y + 24, x:x + 24], out["clean"])]
    assert len(found) == 1


def test_a_config_that_shrinks_images_says_so(tmp_path, caplog):
  _tree(str(tmp_path), "mvtec_ad", size=64)
  config = draem.get_config("variant=test")
  config.data.update({"source": "mvtec", "path": str(tmp_path),
                      "categories": ("cat",), "image_size": 32})
  AnomalyTask(config).datasets()  # the default (auto) scores nothing
  assert "images are" not in caplog.text
  AnomalyTask(config).candidates["gabor"].datasets()  # each candidate does
  assert ("eval.candidates.gabor: images are 64x64, scored at 32x32 (2.0x "
          "smaller); a larger eval.memory.image_size") in caplog.text
  config.data.update({"image_size": 32, "crop_size": 64})
  with pytest.raises(ValueError, match="crop_size=64 must be at most "
                                       "data.image_size=32"):
    AnomalyTask(config).datasets()


def test_rotation_leaves_no_empty_corners():
  image = np.full((32, 32, 3), 100, np.uint8)
  image[:, 16:] = 200
  rotated = anomaly_synthesis.rotate(image, 45.0)
  assert rotated.shape == image.shape
  assert rotated.min() >= 100  # mirrored in, never a constant fill


def test_auroc_and_ap_equal_scikit_learn():
  from sklearn.metrics import average_precision_score, roc_auc_score
  rng = np.random.default_rng(0)
  for ties in (False, True):
    labels = rng.integers(0, 2, 500)
    scores = rng.normal(labels * 0.7, 1.0)
    if ties:
      scores = np.round(scores, 1)
    assert auroc(scores, labels) == pytest.approx(
        roc_auc_score(labels, scores), abs=1e-12)
    assert average_precision(scores, labels) == pytest.approx(
        average_precision_score(labels, scores), abs=1e-12)


def _brute_force_aupro(maps, masks, fpr_limit=0.3):
  """The MVTec AD definition, one threshold at a time (scipy's labelling)."""
  from scipy import ndimage
  regions = []
  for m, gt in zip(maps, masks):
    labels, count = ndimage.label(gt, structure=np.ones((3, 3)))
    regions += [m[labels == k] for k in range(1, count + 1)]
  normal = maps[masks == 0]
  points = [(0.0, 0.0)]
  for t in np.unique(maps)[::-1]:
    points.append((np.mean(normal >= t),
                   np.mean([np.mean(r >= t) for r in regions])))
  fpr, pro = np.array(points).T
  area = 0.0
  for i in range(1, len(fpr)):
    x0, x1, y0, y1 = fpr[i - 1], fpr[i], pro[i - 1], pro[i]
    if x0 >= fpr_limit:
      break
    if x1 > fpr_limit:
      y1 = y0 + (y1 - y0) * (fpr_limit - x0) / (x1 - x0)
      x1 = fpr_limit
    area += (x1 - x0) * (y0 + y1) / 2
  return area / fpr_limit


def test_pixel_metrics_equal_scikit_learn_and_the_definition():
  from sklearn.metrics import average_precision_score, roc_auc_score
  rng = np.random.default_rng(1)
  masks = np.zeros((3, 24, 24), np.uint8)
  masks[0, 2:6, 3:9] = 1
  masks[0, 15:20, 15:17] = 1
  masks[2, 10:14, 0:24] = 1
  # Many ties when quantised; uint8 maps cannot be negated as they are.
  for scale, dtype in ((None, np.float64), (8, np.float64),
                       (None, np.float32), (100, np.uint8)):
    maps = rng.random(masks.shape) + 0.6 * masks
    if scale:
      maps = np.round(maps * scale) / (1 if dtype == np.uint8 else scale)
    maps = maps.astype(dtype)
    expected_aupro = _brute_force_aupro(maps.astype(np.float64), masks)
    assert aupro(maps, masks) == pytest.approx(expected_aupro, abs=1e-12)
    m = pixel_metrics(maps, masks)
    assert m["aupro"] == pytest.approx(expected_aupro, abs=1e-12)
    assert m["pixel_auroc"] == pytest.approx(
        roc_auc_score(masks.ravel(), maps.ravel()), abs=1e-12)
    assert m["pixel_ap"] == pytest.approx(
        average_precision_score(masks.ravel(), maps.ravel()), abs=1e-12)


def test_aupro_errors_are_clear():
  with pytest.raises(ValueError, match="needs normal pixels"):
    aupro(np.ones((1, 4, 4)), np.ones((1, 4, 4)))
  with pytest.raises(ValueError, match="needs anomalous"):
    aupro(np.ones((1, 4, 4)), np.zeros((1, 4, 4)))


def test_auroc_and_ap_hand_worked():
  s, y = [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]
  assert auroc(s, y) == pytest.approx(0.75)
  assert average_precision(s, y) == pytest.approx(5 / 6)
  # Ties: one threshold for equal scores (a diagonal ROC segment).
  assert auroc([1, .5, .5, 0], [1, 1, 0, 0]) == pytest.approx(0.875)
  assert average_precision([1, .5, .5, 0], [1, 1, 0, 0]) == pytest.approx(5 / 6)
  assert auroc([.5] * 4, [0, 1, 0, 1]) == pytest.approx(0.5)
  assert average_precision([.5] * 4, [0, 1, 0, 1]) == pytest.approx(0.5)
  assert f1_optimal_threshold([1, .5, .5, 0], [1, 1, 0, 0]) == (0.5, 0.8)
  with pytest.raises(ValueError, match="both positive and negative"):
    auroc([0.1, 0.2], [1, 1])


def test_recall_threshold_matches_scikit_learn():
  """The highest threshold whose true positive rate (scikit-learn's ROC
  curve, every distinct score a threshold) reaches the recall."""
  rng = np.random.default_rng(0)
  scores = np.round(rng.random(300), 2)  # ties
  labels = rng.random(300) < 0.3
  fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
  del fpr
  for recall in (0.25, 0.5, 0.9, 0.99, 1.0):
    expected = max(t for t, r in zip(thresholds, tpr) if r >= recall)
    assert recall_threshold(scores, labels, recall) == expected, recall
  # Hand-worked: 3 of 4 positives at 0.75 are caught from 0.6 down.
  assert recall_threshold([0.9, 0.8, 0.6, 0.2, 0.7], [1, 1, 1, 1, 0],
                          0.75) == 0.6
  assert recall_threshold([0.3, 0.4], [0, 0], 0.9) == 0.4  # no positive


def test_threshold_for_a_recall_and_the_test_half_rates():
  """eval.threshold_recall: the validation half's threshold catches that
  share of its defective images; the rest report recall and false alarm
  rate at it (counted here from the halves)."""
  rng = np.random.default_rng(1)
  labels = (rng.random(40) < 0.5).astype(np.int32)
  scores = rng.random(40) + labels
  host = {"label": labels, "mask": np.zeros((40, 4, 4), np.uint8),
          "valid": np.ones((40, 4, 4), np.uint8)}
  outs = {"score/memory": scores,
          "memory_map": rng.random((40, 4, 4)).astype(np.float32)}
  host["mask"][labels == 1, 0, 0] = 1
  val, test = evaluation.halves(40, 0.5, 0)
  positives = np.sort(scores[val][labels[val] == 1])
  m = evaluation.category_metrics(host, outs, "memory", 0.5, 0,
                                  threshold_recall=1.0)
  assert m["threshold"] == positives[0]  # the lowest: none missed
  m = evaluation.category_metrics(host, outs, "memory", 0.5, 0,
                                  threshold_recall=0.8)
  caught = int(np.ceil(0.8 * len(positives)))
  assert m["threshold"] == positives[-caught]
  decided = scores[test] >= m["threshold"]
  assert m["test_recall"] == decided[labels[test] == 1].mean()
  assert m["test_false_alarm_rate"] == decided[labels[test] == 0].mean()
  assert m["test_f1"] == pytest.approx(f1_score(labels[test], decided))
  assert m["val_f1"] == pytest.approx(
      f1_score(labels[val], scores[val] >= m["threshold"]))
  f1_chosen = evaluation.category_metrics(host, outs, "memory", 0.5, 0)
  assert f1_chosen["val_f1"] >= m["val_f1"]
  config = draem.get_config("variant=test,scoring=baseline")
  config.eval.threshold_recall = 1.5
  with pytest.raises(ValueError, match="eval.threshold_recall is a "
                     "probability"):
    AnomalyTask(config)


def test_aupro():
  masks = np.zeros((2, 16, 16), np.uint8)
  masks[0, 2:6, 2:6] = 1
  masks[1, 10:12, 10:14] = 1
  assert aupro(masks.astype(np.float32), masks) == pytest.approx(1.0)
  # Only the first region scores above the normal pixels: PRO is 0.5 from
  # FPR 0 until every normal pixel is flagged.
  half = np.where(masks == 1, 1.0, 0.5)
  half[1][masks[1] == 1] = 0.0
  assert aupro(half, masks) == pytest.approx(0.5)
  rng = np.random.default_rng(0)
  assert aupro(rng.random(masks.shape), masks) < 0.3


def test_filters_and_scores():
  flat = jnp.full((1, 12, 12, 1), 0.3)
  inner = (slice(None), slice(3, -3), slice(3, -3))
  np.testing.assert_allclose(laplacian_sharpen(flat, 3)[inner], 0.3, atol=1e-6)
  np.testing.assert_allclose(laplacian_sharpen(flat, 5)[inner], 0.3, atol=1e-6)
  np.testing.assert_allclose(unsharp_mask(flat)[inner], 0.3, atol=1e-6)
  step = jnp.zeros((1, 12, 12, 1)).at[:, :, 6:].set(1.0)
  sharp = np.asarray(unsharp_mask(step, sigma=1.0, amount=1.0))
  assert sharp[0, 6, 6, 0] > 1.0 and sharp[0, 6, 5, 0] < 0.0  # overshoot
  np.testing.assert_allclose(
      anomaly_scoring.filtered_map(flat, noise_std=0.0)[inner], 0.3, atol=1e-6)
  spike = jnp.zeros((1, 16, 16, 1)).at[0, 8, 8, 0].set(1.0)
  assert float(anomaly_scoring.baseline_image_score(spike, 5)[0]) == \
      pytest.approx(1 / 25)
  assert float(anomaly_scoring.strided_score(spike, window=4)[0]) == \
      pytest.approx(1 / 16)
  assert float(anomaly_scoring.strided_score(spike, window=4, ratio=True,
                                             eps=0.01)[0]) == \
      pytest.approx((1 / 16) / 0.01)


def test_published_parameter_counts():
  def count(model, channels):
    v = jax.eval_shape(model.init, jax.random.key(0),
                       jnp.zeros((1, 64, 64, channels)))
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(v["params"]))
  assert count(ReconstructiveSubNetwork(), 3) == 69_048_579
  assert count(DiscriminativeSubNetwork(), 6) == 28_374_146


def test_folded_draem_keeps_full_resolution():
  from vq.models import DRAEM
  x = np.random.default_rng(0).random((2, 64, 64, 3)).astype(np.float32)
  model = DRAEM(4, 4, space_to_depth=2)
  # Shapes only: traced, not run.
  v = jax.eval_shape(model.init, jax.random.key(0), x[:1])
  out = jax.eval_shape(model.apply, v, x)
  assert out["reconstruction"].shape == (2, 64, 64, 3)
  assert out["logits"].shape == (2, 64, 64, 2)
  # The sub-networks see 2x2 blocks: 12 input channels, 12 reconstructed
  # (4 pixels x RGB), 8 logits (4 pixels x 2 classes).
  p = v["params"]
  assert p["reconstructive"]["enc0_0"]["conv"]["kernel"].shape[2] == 12
  assert p["reconstructive"]["out"]["kernel"].shape[3] == 12
  assert p["discriminative"]["enc0_0"]["conv"]["kernel"].shape[2] == 24
  assert p["discriminative"]["out"]["kernel"].shape[3] == 8
  config = draem.get_config("variant=test")
  config.model.space_to_depth = 0
  with pytest.raises(ValueError, match=r"model.space_to_depth must be 1 \(off"):
    AnomalyTask(config)
  # Folded into 2x2 blocks, the 5 pooling levels need sides of 64s.
  config.model.space_to_depth = 2
  with pytest.raises(ValueError, match=r"data.image_size 32 must be a "
                     r"multiple of 64 .* e.g. 64"):
    AnomalyTask(config)
  config.model.space_to_depth = 1
  config.data.crop_size = 40
  with pytest.raises(ValueError, match=r"data.crop_size 40 must be a "
                     r"multiple of 32"):
    AnomalyTask(config)
  config.data.crop_size = 0
  config.data.stroke_probability = 1.5
  with pytest.raises(ValueError, match=r"data.stroke_probability is a "
                     r"probability \(0 to 1\), got 1.5"):
    AnomalyTask(config)


def test_the_scored_side_says_when_it_stretches_or_shrinks(caplog):
  tile = [{"image": np.zeros((300, 200, 3), np.uint8)}]
  anomaly_data.report_scale(tile, 256, keep_aspect=False)
  assert ("images are 200x300, scored at 256x256 (1.2x smaller, stretched "
          "out of their aspect ratio); a larger eval.memory.image_size "
          "(the memory scorings) or data.image_size (the networks) keeps "
          "more of them; data.keep_aspect=True letterboxes them instead"
          ) in caplog.text
  caplog.clear()
  anomaly_data.report_scale(tile, 320, keep_aspect=True)  # fits: no word
  anomaly_data.report_scale([{"image": np.zeros((64, 64, 3), np.uint8)}], 128,
                            keep_aspect=False)
  assert not caplog.text
  # Photographs of one wide shape leave most of a letterboxed square to
  # margins: under the memory scoring (side 256) a shape of their ratio
  # (the geometric mean 2.45) with about as many pixels is proposed (the
  # shorter side 256 / sqrt(2.45) = 163.6 -> 160, the longer 160 x 2.45 =
  # 392 -> 384).
  wide = [{"image": np.zeros((100, w, 3), np.uint8)} for w in (246, 240, 250)]
  anomaly_data.report_scale(wide, 256, keep_aspect=True, side=256)
  assert ("images are 246x100, scored at 256x256 (letterboxed, they fill "
          "41% of it); eval.memory.aspect_ratio=2.45 scores them at 384x160, "
          "about as many pixels") in caplog.text
  caplog.clear()
  anomaly_data.report_scale(wide, 256, keep_aspect=True)  # no memory: no word
  anomaly_data.report_scale(wide, (160, 416), keep_aspect=True, side=256)
  # Photographs of many shapes (as the magnetic tiles): no one ratio fits.
  mixed = [{"image": np.zeros((100, w, 3), np.uint8)} for w in (246, 60, 150)]
  anomaly_data.report_scale(mixed, 256, keep_aspect=True, side=256)
  assert not caplog.text


def _tree(root, layout, size=16):
  good = np.full((size, size, 3), 120, np.uint8)
  test = "test" if layout == "mvtec_ad" else "test_public"
  defect = "crack" if layout == "mvtec_ad" else "bad"
  truth = (os.path.join(root, "cat", "ground_truth", defect)
           if layout == "mvtec_ad" else
           os.path.join(root, "cat", test, "ground_truth", defect))
  for folder in ("train/good", f"{test}/good", f"{test}/{defect}"):
    os.makedirs(os.path.join(root, "cat", folder))
  os.makedirs(truth)
  for i in range(3):
    write_image(os.path.join(root, "cat", "train", "good", f"{i}.png"), good)
  write_image(os.path.join(root, "cat", test, "good", "0.png"), good)
  write_image(os.path.join(root, "cat", test, defect, "0.png"), good)
  mask = np.zeros((size, size), np.uint8)
  mask[4:8, 4:8] = 255
  cv2.imwrite(os.path.join(truth, "0_mask.png"), mask)
  return truth, test, defect


@pytest.mark.parametrize("layout", ["mvtec_ad", "mvtec_ad2"])
def test_mvtec_reader(tmp_path, layout):
  truth, test, defect = _tree(str(tmp_path), layout)
  train_records, test_records = mvtec.read_mvtec(str(tmp_path), "cat", layout)
  assert len(train_records) == 3
  assert [(r["defect_type"], r["label"]) for r in test_records] == [
      (defect, 1), ("good", 0)]
  loaded = mvtec.load_record(test_records[0])
  assert loaded["mask"].sum() == 16 and loaded["label"] == 1
  assert mvtec.load_record(test_records[1])["mask"].sum() == 0

  cv2.imwrite(os.path.join(truth, "0_mask.png"), np.zeros((8, 16), np.uint8))
  with pytest.raises(AnnotationError, match=r"0_mask.png: mask is 16x8, its "
                                            r"image .*0.png is 16x16"):
    mvtec.load_record(test_records[0])
  os.remove(os.path.join(truth, "0_mask.png"))
  with pytest.raises(FileNotFoundError,
                     match=r"0.png: defective test image without its mask"):
    mvtec.read_mvtec(str(tmp_path), "cat", layout)


def test_mvtec_reader_empty_train(tmp_path):
  _tree(str(tmp_path), "mvtec_ad")
  for f in os.listdir(tmp_path / "cat" / "train" / "good"):
    os.remove(tmp_path / "cat" / "train" / "good" / f)
  with pytest.raises(FileNotFoundError, match="no training images in .*good"):
    mvtec.read_mvtec(str(tmp_path), "cat")
  with pytest.raises(FileNotFoundError, match="category folder not found"):
    mvtec.read_mvtec(str(tmp_path), "carpet")


@pytest.mark.parametrize("arg", [
    "", pytest.param("colour=1,scoring=filtered_ratio",
                     marks=pytest.mark.slow)])  # a second 30 s training
def test_draem_trains_and_evaluates(tmp_path, arg, monkeypatch):
  config = draem.get_config(",".join(filter(None, ["variant=test", arg])))
  config.data.cache_dir = str(tmp_path / "cache")
  # The default (auto) trains no network (num_train_steps=0): its initial
  # state is evaluated and saved as step 0, no train step compiled.
  steps = 4 if arg else 0
  if not arg:
    def no_train_step(*unused):
      raise AssertionError("a train step was compiled")
    monkeypatch.setattr(train, "compile_train_step", no_train_step)
  summary = train.train_and_evaluate(config, str(tmp_path / "run"))
  assert summary["step"] == steps
  assert checkpoint.saved_steps(str(tmp_path / "run")) == [steps]
  # The default (auto) reports its candidates, the networks' scorings
  # their maps.
  own = (("image_auroc/filtered", "pixel_auroc/filtered") if arg else
         ("brick/candidate/patchcore/val_pixel_auroc", "test_image_auroc"))
  for name in ("image_auroc", "pixel_auroc", "pixel_ap", "aupro",
               "brick/image_auroc", "gravel/pixel_auroc", "brick/threshold",
               "grass/hole/pixel_auroc", "brick/cut/image_auroc") + own:
    assert np.isfinite(summary["eval"][name]), name
    if name != "brick/threshold":
      assert 0.0 <= summary["eval"][name] <= 1.0, name
  # Thresholds are per category; their mean would decide nothing.
  assert "threshold" not in summary["eval"]
  with open(tmp_path / "run" / "eval_results.json") as f:
    stored = json.load(f)
  assert stored["step"] == steps
  assert stored["gravel/threshold"] == pytest.approx(
      summary["eval"]["gravel/threshold"])
  colour_terms = {"train/histogram", "train/inverse_psnr", "train/mean_colour"}
  assert (colour_terms <= set(summary["train"])) == bool(arg)
  if not arg:
    _check_predict_decides_with_the_stored_threshold(tmp_path, stored)
    # Rerun, the run finds its step 0 and neither evaluates nor saves.
    again = train.train_and_evaluate(config, str(tmp_path / "run"))
    assert again["step"] == 0 and again["eval"] == {}
    assert checkpoint.saved_steps(str(tmp_path / "run")) == [0]


def _check_predict_decides_with_the_stored_threshold(tmp_path, stored):
  test_dir = tmp_path / "cache" / "*" / "brick" / "test" / "*" / "*.png"
  # eval.scoring=auto scores each category with its own recipe.
  with pytest.raises(ValueError, match="name one with --category"):
    predict.predict(str(tmp_path / "run"), str(test_dir),
                    str(tmp_path / "no_category"),
                    progress=open(os.devnull, "w"))
  summary = predict.predict(str(tmp_path / "run"), str(test_dir),
                            str(tmp_path / "out"), category="brick",
                            progress=open(os.devnull, "w"))
  assert summary["images"] > 0 and not summary["failed"]
  with open(tmp_path / "out" / "predictions.jsonl") as f:
    records = [json.loads(line) for line in f]
  threshold = stored["brick/threshold"]
  # Scores are written to 5 decimals: those that close to the threshold
  # (the image that set it among them) may fall on either side.
  clear = [r for r in records if abs(r["score"] - threshold) > 1e-5]
  assert len(clear) >= len(records) - 2, (threshold, records)
  assert all(r["category"] == "brick" for r in records)
  for r in clear:
    assert r["decision"] == ("defective" if r["score"] >= threshold
                             else "good")
    assert (r["normalized_score"] >= 0.5) == (r["decision"] == "defective")


def test_decision_and_normalised_score_hand_worked():
  calibration = dict(threshold=0.4, score_min=0.2, score_max=1.0)
  # (score - threshold) / (max - min) + 0.5, clipped to [0, 1].
  assert decide(0.4, **calibration) == {"normalized_score": 0.5,
                                        "decision": "defective"}
  assert decide(0.6, **calibration) == {"normalized_score": 0.75,
                                        "decision": "defective"}
  assert decide(0.3, **calibration) == {"normalized_score": 0.375,
                                        "decision": "good"}
  assert decide(-1.0, **calibration)["normalized_score"] == 0.0
  assert decide(9.0, **calibration)["normalized_score"] == 1.0
  config = draem.get_config("variant=test")
  task = AnomalyTask(config)
  scalars = {f"{c}/{k}": 0.1 * i for i, c in enumerate(task.class_names)
             for k in ("threshold", "score_min", "score_max")}
  assert task.calibrate(scalars)["gravel"]["threshold"] == pytest.approx(
      0.1 * task.class_names.index("gravel"))
  assert task.calibrate({}) == {}
  with pytest.raises(ValueError, match="unknown category 'wood'"):
    task.select_category("wood")


def test_filtered_map_and_scores_equal_scipy_on_a_varied_map():
  from scipy import ndimage
  rng = np.random.default_rng(3)
  maps = rng.random((2, 20, 24)).astype(np.float32)
  maps[0, 5:9, 6:12] += 2.0  # a bright region, edges included
  lap3 = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float64)
  lap5 = np.array([[0, 0, 1, 0, 0], [0, 1, 2, 1, 0], [1, 2, -16, 2, 1],
                   [0, 1, 2, 1, 0], [0, 0, 1, 0, 0]], np.float64)
  got = np.asarray(anomaly_scoring.filtered_map(
      jnp.asarray(maps[..., None]), weights=(0.2, 0.05), noise_std=0.0,
      pool=5, mix=0.5))[..., 0]
  for m, g in zip(maps.astype(np.float64), got):
    corr = lambda k: ndimage.correlate(m, k, mode="constant")
    smoothed = m + (0.2 * corr(lap3) + 0.05 * corr(lap5)) / 2
    pooled = ndimage.uniform_filter(m, 5, mode="constant")
    np.testing.assert_allclose(g, 0.5 * smoothed + 0.5 * pooled, atol=1e-5)
  # Strided scores: window-8 means every 4 pixels (valid), max and max/min.
  score = np.asarray(anomaly_scoring.strided_score(
      jnp.asarray(maps[..., None]), window=8, stride=4))
  ratio = np.asarray(anomaly_scoring.strided_score(
      jnp.asarray(maps[..., None]), window=8, stride=4, ratio=True))
  for m, s, r in zip(maps, score, ratio):
    means = np.array([[m[y:y + 8, x:x + 8].mean() for x in range(0, 17, 4)]
                      for y in range(0, 13, 4)])
    assert s == pytest.approx(means.max(), abs=1e-5)
    assert r == pytest.approx(means.max() / (means.min() + 1e-2), rel=1e-5)
  baseline = np.asarray(anomaly_scoring.baseline_image_score(
      jnp.asarray(maps[..., None]), 5))
  for m, b in zip(maps, baseline):
    assert b == pytest.approx(
        ndimage.uniform_filter(m.astype(np.float64), 5, mode="constant").max(),
        abs=1e-5)


def test_the_embedded_textures_give_the_full_recipe_s_256_pixel_images(
    tmp_path):
  """draem.py:variant=full reads 256x256 images: its embedded set is cut
  from the photographs enlarged so that test crops fit their quarter."""
  from vq.data.embedded import embedded_textures
  root = embedded_textures.ensure_written(
      str(tmp_path), image_size=256, num_train=2, num_test_good=1,
      num_test_per_defect=1)
  train, test = mvtec.read_mvtec(root, "brick")
  assert len(train) == 2 and len(test) == 1 + len(
      embedded_textures.DEFECT_TYPES)
  for record in train + test:
    loaded = mvtec.load_record(record)
    assert loaded["image"].shape == (256, 256, 3)
    assert loaded["mask"].shape == (256, 256)
