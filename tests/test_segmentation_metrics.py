"""Segmentation losses, metrics and the inference mask policy."""
import cv2
import jax.numpy as jnp
import numpy as np
import pytest

from vq import losses
from vq.metrics import segmentation as m
from vq.ops import apply_mask_policy, box_mean, guided_filter, vote_classes


def test_dice_loss_hand_worked():
  probs = jnp.array([[0.5, 1.0], [0.0, 0.5]]).reshape(1, 2, 2, 1)
  target = jnp.array([[1.0, 1.0], [0.0, 0.0]]).reshape(1, 2, 2, 1)
  # intersection 1.5, sums 2 + 2: (2 * 1.5 + 1) / (4 + 1) = 0.8
  assert float(losses.dice_loss(probs, target)) == pytest.approx(0.2)
  assert float(losses.dice_loss(probs, target, smooth=0.0)) == pytest.approx(0.25)
  empty = jnp.zeros((1, 2, 2, 1))
  assert float(losses.dice_loss(empty, empty)) == pytest.approx(0.0)
  with pytest.raises(ValueError, match="same shape"):
    losses.dice_loss(probs, target[..., :1, :])


def test_batch_dice_leaves_out_classes_absent_from_the_batch():
  # Two images, two classes; class 1 has no target pixel anywhere.
  probs = np.zeros((2, 2, 2, 2), np.float32)
  target = np.zeros((2, 2, 2, 2), np.float32)
  target[0, 0, 0, 0] = target[1, 1, 1, 0] = 1
  probs[0, 0, 0, 0], probs[1, 0, 1, 0] = 0.5, 1.0   # class 0
  probs[0, 1, 1, 1] = 0.9                            # class 1: absent
  # Class 0 over the batch: intersection 0.5, sums 1.5 + 2 -> Dice
  # (1 + 1) / (3.5 + 1); class 1 is left out.
  got = losses.dice_loss(jnp.asarray(probs), jnp.asarray(target),
                         over="batch")
  assert float(got) == pytest.approx(1 - 2 / 4.5)
  # Per image, the empty class-1 target with a prediction costs nearly 1.
  per_image = losses.dice_loss(jnp.asarray(probs), jnp.asarray(target))
  expected = np.mean([1 - 2 / 2.5, 1 - 1 / 3, 1 - 1 / 1.9, 0.0])
  assert float(per_image) == pytest.approx(expected)
  with pytest.raises(ValueError, match="over must be 'image' or 'batch'"):
    losses.dice_loss(jnp.asarray(probs), jnp.asarray(target), over="pixel")


def test_focal_loss_hand_worked():
  logits = jnp.array([[0.0, np.log(3.0)], [0.0, np.log(3.0)]])  # p = .25, .75
  labels = jnp.array([1, 0])
  expected = (-(0.25 ** 2) * np.log(0.75) - (0.75 ** 2) * np.log(0.25)) / 2
  assert float(losses.focal_loss(logits, labels)) == pytest.approx(expected,
                                                                    rel=1e-5)
  ce = (-np.log(0.75) - np.log(0.25)) / 2
  assert float(losses.focal_loss(logits, labels, gamma=0.0)) == pytest.approx(
      ce, rel=1e-5)
  assert float(losses.softmax_cross_entropy(logits, labels)) == pytest.approx(
      ce, rel=1e-5)
  weighted = float(losses.focal_loss(logits, labels, gamma=0.0,
                                     alpha=[0.2, 0.8]))
  assert weighted == pytest.approx((-0.8 * np.log(0.75) - 0.2 * np.log(0.25))
                                   / 2, rel=1e-5)


def test_binary_cross_entropy_hand_worked():
  assert float(losses.binary_cross_entropy(jnp.array([0.0, np.log(3.0)]),
                                           jnp.array([1.0, 0.0]))) == \
      pytest.approx((np.log(2) + np.log(4)) / 2, rel=1e-5)


def test_iou_and_dice_edge_cases():
  pred = np.zeros((2, 4, 4, 3), bool)
  true = np.zeros((2, 4, 4, 3), bool)
  pred[0, :2, :2, 0] = True          # class 0: 4 predicted,
  true[0, :2, :, 0] = True           # 8 true, 4 shared -> IoU 0.5
  pred[1, 0, 0, 1] = True            # class 1: predicted, never true -> 0
  inter, union = m.iou_totals(pred, true)
  iou = m.iou_from_totals(inter, union)
  assert iou[0] == pytest.approx(0.5) and iou[1] == 0.0
  assert np.isnan(iou[2])            # class 2 absent everywhere
  dice = m.dice_per_image(pred, true)
  assert dice[0, 0] == pytest.approx(2 * 4 / 12)
  assert dice[1, 1] == 0.0           # predicted on an empty truth
  assert dice[0, 2] == 1.0 and dice[1, 2] == 1.0  # both empty
  assert dice[1, 0] == 1.0


def test_class_overlap_matches_scikit_learn_confusion_matrix():
  from sklearn.metrics import confusion_matrix
  rng = np.random.default_rng(0)
  # One class (or background, 0) per pixel, so the masks are one-hot.
  true_labels = rng.integers(0, 4, (3, 6, 7))
  pred_labels = np.where(rng.random((3, 6, 7)) < 0.6, true_labels,
                         rng.integers(0, 4, (3, 6, 7)))
  true = np.eye(4, dtype=bool)[true_labels][..., 1:]
  pred = np.eye(4, dtype=bool)[pred_labels][..., 1:]
  # scikit-learn: rows are the truth, columns the prediction.
  expected = confusion_matrix(true_labels.ravel(), pred_labels.ravel(),
                              labels=[0, 1, 2, 3])[1:, 1:].T
  np.testing.assert_array_equal(m.class_overlap(pred, true), expected)
  # Multi-label masks: a pixel predicted as two classes counts for both.
  pred[0, 0, 0] = True
  assert m.class_overlap(pred, true).sum() == expected.sum() + 2


def test_image_presence_per_class():
  pred = np.zeros((2, 4, 4, 2), bool)
  true = np.zeros((2, 4, 4, 2), bool)
  pred[0, :2, :2, 0] = True        # 4 pixels of class 0 on image 0
  pred[1, 0, 0, 1] = True          # 1 pixel of class 1 on image 1
  true[1, 3, 3, 1] = True
  found, present = m.image_presence(pred, true, min_area=2)
  np.testing.assert_array_equal(found, [[True, False], [False, False]])
  np.testing.assert_array_equal(present, [[False, False], [False, True]])
  found, _ = m.image_presence(pred, true)
  np.testing.assert_array_equal(found, [[True, False], [False, True]])


def test_binary_classification():
  r = m.binary_classification([1, 1, 0, 0, 1], [1, 0, 0, 1, 1])
  assert r["accuracy"] == pytest.approx(0.6)
  assert r["precision"] == pytest.approx(2 / 3)
  assert r["recall"] == pytest.approx(2 / 3)
  assert r["f1"] == pytest.approx(2 / 3)
  none = m.binary_classification([0, 0], [0, 0])
  assert none["accuracy"] == 1.0 and none["precision"] == 0.0


def test_box_mean_and_constant_guide():
  x = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)
  out = np.asarray(box_mean(jnp.asarray(x), 1))
  assert out[0, 2, 2, 0] == pytest.approx(x[0, 1:4, 1:4].mean())
  assert out[0, 0, 0, 0] == pytest.approx(x[0, :2, :2].mean())  # clipped
  flat = guided_filter(jnp.full_like(x, 0.5), jnp.asarray(x), 1, 1e-2)
  np.testing.assert_allclose(flat, box_mean(box_mean(jnp.asarray(x), 1), 1),
                             rtol=1e-5)


def test_box_mean_equals_clipped_window_means():
  x = np.random.default_rng(0).random((2, 9, 13, 3)).astype(np.float32)
  r = 3
  expected = np.zeros_like(x)
  for i in range(9):
    for j in range(13):
      expected[:, i, j] = x[:, max(i - r, 0):i + r + 1,
                            max(j - r, 0):j + r + 1].mean((1, 2))
  np.testing.assert_allclose(box_mean(jnp.asarray(x), r), expected,
                             rtol=1e-5)


def test_vote_classes_makes_a_defect_agree():
  probs = np.zeros((1, 9, 9, 2), np.float32)
  class_map = np.zeros((1, 9, 9), np.int32)
  class_map[0, 2:7, 2:7] = 1               # a defect, mostly class 1,
  probs[0, 2:7, 2:7] = (0.7, 0.2)
  class_map[0, 4, 4] = 2                   # one pixel that says class 2
  probs[0, 4, 4] = (0.3, 0.6)
  voted = np.asarray(vote_classes(jnp.asarray(probs), jnp.asarray(class_map),
                                  2))
  np.testing.assert_array_equal(voted, np.where(class_map > 0, 1, 0))
  # Radius 0 keeps each pixel's own winner.
  np.testing.assert_array_equal(
      vote_classes(jnp.asarray(probs), jnp.asarray(class_map), 0), class_map)


def _stripe_case():
  """A 3-pixel-wide bright scratch and a blurred probability map of it."""
  image = np.full((32, 32), 0.3, np.float32)
  image[:, 14:17] = 0.9
  truth = image > 0.5
  probs = cv2.GaussianBlur(truth.astype(np.float32), (0, 0), 2.0)
  probs = probs / probs.max()
  as_batch = lambda a: jnp.asarray(a)[None, ..., None]
  return as_batch(image).repeat(3, -1), as_batch(probs), truth


def test_mask_policy_refinement_sharpens_thin_masks():
  images, probs, truth = _stripe_case()
  plain = apply_mask_policy(probs, images, [0.5], [0], [False])
  refined = apply_mask_policy(probs, images, [0.5], [0], [True],
                              radius=2, eps=1e-3)
  iou = lambda p: (p & truth).sum() / (p | truth).sum()
  plain_iou = iou(np.asarray(plain)[0, ..., 0])
  refined_iou = iou(np.asarray(refined)[0, ..., 0])
  assert plain_iou < 0.7 and refined_iou > 0.9


def test_mask_policy_threshold_and_min_area():
  probs = np.zeros((2, 8, 8, 2), np.float32)
  probs[0, :2, :2, 0] = 0.9          # 4 pixels of class 0
  probs[0, :, :, 1] = 0.6            # 64 pixels of class 1
  probs[1, :3, :3, 0] = 0.4          # under the threshold
  images = jnp.zeros((2, 8, 8, 3))
  masks = np.asarray(apply_mask_policy(jnp.asarray(probs), images,
                                       [0.5, 0.7], [5, 0], [False, False]))
  assert not masks[0, ..., 0].any()  # 4 < min area 5
  assert not masks[0, ..., 1].any()  # 0.6 < threshold 0.7
  masks = np.asarray(apply_mask_policy(jnp.asarray(probs), images,
                                       [0.5, 0.5], [4, 0], [False, False]))
  assert masks[0, ..., 0].sum() == 4 and masks[0, ..., 1].all()
  assert not masks[1].any()
