import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vq import losses


def _grid(cells):
  """[1, 2, 2, 2*5 + 2] prediction from {(row, col): values}."""
  pred = np.zeros((1, 2, 2, 12), np.float32)
  for (i, j), values in cells.items():
    pred[0, i, j] = values
  return jnp.asarray(pred)


def _target(i, j, xywh, cls):
  t = np.zeros((1, 2, 2, 7), np.float32)
  t[0, i, j, :4] = xywh
  t[0, i, j, 4] = 1
  t[0, i, j, 5 + cls] = 1
  return jnp.asarray(t)


# Empty cells predict confidences 0.5 and 0.1: no-object 0.25 + 0.01 each.
_EMPTY = [0.5, 0.5, 0.2, 0.2, 0.5, 0.5, 0.5, 0.2, 0.2, 0.1, 0.5, 0.5]


def test_yolo_loss_hand_computed():
  target = _target(0, 0, (0.5, 0.5, 0.25, 0.36), cls=1)
  pred = _grid({
      # box 0 overlaps the target (responsible); box 1 lies outside it.
      (0, 0): [0.6, 0.4, 0.16, 0.25, 0.8, 0.9, 0.9, 0.01, 0.01, 0.3, 0.4, 0.6],
      (0, 1): _EMPTY, (1, 0): _EMPTY, (1, 1): _EMPTY,
  })
  terms = losses.yolo_v1_loss_terms(pred, target, num_boxes=2, num_classes=2)
  # coord: 5 * ((0.6-0.5)^2 + (0.4-0.5)^2)
  np.testing.assert_allclose(terms["coord"], 0.1, rtol=1e-5)
  # size: 5 * ((0.4-0.5)^2 + (0.5-0.6)^2) with sqrt(0.16)=0.4, sqrt(0.36)=0.6
  np.testing.assert_allclose(terms["size"], 0.1, rtol=1e-5)
  np.testing.assert_allclose(terms["object"], (1 - 0.8) ** 2, rtol=1e-5)
  # no-object: 0.5 * (0.3^2 + 3 * (0.5^2 + 0.1^2))
  np.testing.assert_allclose(terms["noobject"], 0.435, rtol=1e-5)
  # class: (0.4 - 0)^2 + (0.6 - 1)^2
  np.testing.assert_allclose(terms["class"], 0.32, rtol=1e-5)
  np.testing.assert_allclose(terms["loss"], 0.995, rtol=1e-5)
  np.testing.assert_allclose(
      losses.yolo_v1_loss(pred, target, num_boxes=2, num_classes=2), 0.995,
      rtol=1e-5)


def test_yolo_loss_is_a_batch_mean():
  target = _target(1, 0, (0.3, 0.7, 0.5, 0.5), cls=0)
  pred = _grid({(0, 0): _EMPTY, (0, 1): _EMPTY, (1, 1): _EMPTY,
                (1, 0): [0.2, 0.8, 0.4, 0.6, 0.7, 0.5, 0.5, 0.3, 0.3, 0.4,
                         0.7, 0.3]})
  one = losses.yolo_v1_loss(pred, target, num_boxes=2, num_classes=2)
  two = losses.yolo_v1_loss(jnp.concatenate([pred, pred]),
                            jnp.concatenate([target, target]), num_boxes=2,
                            num_classes=2)
  np.testing.assert_allclose(one, two, rtol=1e-6)


def test_yolo_loss_ties_go_to_the_lowest_predictor():
  # Neither box overlaps the target: IoUs tie at 0, box 0 is responsible.
  target = _target(0, 0, (0.5, 0.5, 0.2, 0.2), cls=0)
  pred = _grid({(0, 0): [0.0, 0.0, 0.01, 0.01, 0.2, 1.0, 1.0, 0.01, 0.01, 0.7,
                         1.0, 0.0]})
  terms = losses.yolo_v1_loss_terms(pred, target, num_boxes=2, num_classes=2)
  np.testing.assert_allclose(terms["object"], (1 - 0.2) ** 2, rtol=1e-5)
  np.testing.assert_allclose(terms["noobject"], 0.5 * 0.7 ** 2, rtol=1e-5)
  # coord and size use box 0 too: 5 * (0.5^2 * 2), 5 * 2 * (0.1 - sqrt(0.2))^2
  np.testing.assert_allclose(terms["coord"], 2.5, rtol=1e-5)
  np.testing.assert_allclose(terms["size"], 10 * (0.1 - np.sqrt(0.2)) ** 2,
                             rtol=1e-5)


def test_yolo_loss_gradient_is_finite_at_zero_size():
  import jax
  target = _target(0, 0, (0.5, 0.5, 0.2, 0.2), cls=0)
  pred = _grid({})  # w = h = 0 everywhere
  grad = jax.grad(lambda p: losses.yolo_v1_loss(p, target, num_boxes=2,
                                                num_classes=2))(pred)
  assert np.all(np.isfinite(grad))


def test_yolo_loss_rejects_wrong_channels():
  with pytest.raises(ValueError, match=r"pred must be \[batch, S, S, 12\]"):
    losses.yolo_v1_loss(jnp.zeros((1, 2, 2, 11)), jnp.zeros((1, 2, 2, 7)),
                        num_boxes=2, num_classes=2)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
def test_focal_loss_equals_kornia_with_finite_gradients(gamma):
  import torch
  from kornia.losses import focal_loss as kornia_focal_loss
  rng = np.random.default_rng(0)
  logits = rng.normal(0, 3, (2, 5, 6, 3)).astype(np.float32)
  labels = rng.integers(0, 3, (2, 5, 6))
  # Saturated pixels: the true class's probability rounds to 1 in float32.
  logits[0, 0, 0] = [40.0, 0.0, 0.0]
  labels[0, 0, 0] = 0
  logits[1, 2, 3] = [0.0, 0.0, 35.0]
  labels[1, 2, 3] = 2
  value, grad = jax.value_and_grad(
      lambda x: losses.focal_loss(x, jnp.asarray(labels), gamma=gamma))(
          jnp.asarray(logits))
  assert np.all(np.isfinite(np.asarray(grad)))
  x = torch.tensor(logits, dtype=torch.float64).permute(0, 3, 1, 2)
  x.requires_grad_(True)
  ref = kornia_focal_loss(x, torch.tensor(labels), alpha=None, gamma=gamma,
                          reduction="sum") / labels.size
  ref.backward()
  np.testing.assert_allclose(float(value), ref.item(), rtol=1e-5)
  np.testing.assert_allclose(np.asarray(grad),
                             x.grad.permute(0, 2, 3, 1).numpy(), atol=1e-6,
                             rtol=1e-4)



def test_weighted_softmax_cross_entropy_equals_sklearn_log_loss():
  from sklearn.metrics import log_loss
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(2, 5, 6, 3)).astype(np.float32)
  labels = rng.integers(0, 3, (2, 5, 6))
  weights = np.array([1.0, 4.0, 2.5])
  got = float(losses.softmax_cross_entropy(
      jnp.asarray(logits), jnp.asarray(labels), weights))
  z = logits.reshape(-1, 3).astype(np.float64)
  probs = np.exp(z - z.max(1, keepdims=True))
  probs /= probs.sum(1, keepdims=True)
  sample_weight = weights[labels.ravel()]
  # log_loss divides by the weights' sum; the loss by the element count.
  expected = log_loss(labels.ravel(), probs, sample_weight=sample_weight,
                      labels=range(3)) * sample_weight.mean()
  assert got == pytest.approx(expected, rel=1e-5)
  unweighted = log_loss(labels.ravel(), probs, labels=range(3))
  assert float(losses.softmax_cross_entropy(
      jnp.asarray(logits), jnp.asarray(labels))) == pytest.approx(unweighted,
                                                                   rel=1e-5)
