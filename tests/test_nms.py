import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vq import ops


def iou_np(a, b):
  iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0)
  ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
  inter = iw * ih
  union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
  return inter / union if union > 0 else 0.0


def brute_force_nms(boxes, scores, iou_threshold, score_threshold, max_outputs):
  order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
  keep = []
  for i in order:
    if scores[i] <= score_threshold or len(keep) == max_outputs:
      break
    if all(iou_np(boxes[i], boxes[k]) <= iou_threshold for k in keep):
      keep.append(i)
  return keep


def random_boxes(rng, n, integer=True):
  xy = rng.integers(0, 20, (n, 2)) if integer else rng.uniform(0, 20, (n, 2))
  wh = rng.integers(1, 8, (n, 2)) if integer else rng.uniform(0.5, 8, (n, 2))
  boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
  # Few distinct scores: many exact ties.
  scores = rng.integers(0, 6, n).astype(np.float32) / 5
  return boxes, scores


@pytest.mark.parametrize("n", [1, 7, 60, 1500])  # both code paths (<=1024, >)
@pytest.mark.parametrize("seed", [0, 1])
def test_nms_matches_brute_force(n, seed):
  boxes, scores = random_boxes(np.random.default_rng(seed), n)
  for iou_t, score_t, max_out in [(0.5, 0.2, 10), (0.3, 0.0, 100), (0.7, 0.6, 5)]:
    idx, num = ops.nms(jnp.asarray(boxes), jnp.asarray(scores),
                       iou_threshold=iou_t, score_threshold=score_t,
                       max_outputs=max_out)
    expected = brute_force_nms(boxes, scores, iou_t, score_t, max_out)
    assert int(num) == len(expected)
    assert list(np.asarray(idx[:num])) == expected
    assert np.all(np.asarray(idx[num:]) == -1)
    assert idx.dtype == jnp.int32 and idx.shape == (max_out,)


def test_nms_thresholds_are_strict():
  # IoU of these two boxes is exactly 0.5: not > 0.5, so both survive.
  boxes = jnp.array([[0, 0, 2, 1], [0, 0, 1, 1]], jnp.float32)
  scores = jnp.array([0.9, 0.8])
  idx, num = ops.nms(boxes, scores, iou_threshold=0.5, score_threshold=0.0,
                     max_outputs=4)
  assert list(np.asarray(idx)) == [0, 1, -1, -1] and int(num) == 2
  idx, num = ops.nms(boxes, scores, iou_threshold=0.49, score_threshold=0.0,
                     max_outputs=4)
  assert list(np.asarray(idx)) == [0, -1, -1, -1] and int(num) == 1
  # A score equal to the threshold is dropped.
  idx, num = ops.nms(boxes, scores, iou_threshold=0.5, score_threshold=0.8,
                     max_outputs=4)
  assert list(np.asarray(idx)) == [0, -1, -1, -1]


def test_nms_ties_keep_input_order():
  boxes = jnp.array([[0, 0, 1, 1], [5, 5, 6, 6], [0, 0, 1, 1], [9, 9, 10, 10]],
                    jnp.float32)
  scores = jnp.array([0.5, 0.7, 0.5, 0.7])
  idx, num = ops.nms(boxes, scores, iou_threshold=0.5, score_threshold=0.0,
                     max_outputs=4)
  assert list(np.asarray(idx[:num])) == [1, 3, 0]


def test_nms_vmaps_over_images():
  rng = np.random.default_rng(3)
  batch = [random_boxes(rng, 40, integer=False) for _ in range(4)]
  boxes = jnp.asarray(np.stack([b for b, _ in batch]))
  scores = jnp.asarray(np.stack([s for _, s in batch]))
  f = lambda b, s: ops.nms(b, s, iou_threshold=0.4, score_threshold=0.1,
                           max_outputs=20)
  idx, num = jax.jit(jax.vmap(f))(boxes, scores)
  for i in range(4):
    one_idx, one_num = f(boxes[i], scores[i])
    assert int(num[i]) == int(one_num)
    np.testing.assert_array_equal(idx[i], one_idx)


def test_box_iou():
  a = jnp.array([[0, 0, 2, 2], [0, 0, 0, 0]], jnp.float32)
  b = jnp.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]], jnp.float32)
  np.testing.assert_allclose(ops.box_iou(a, b),
                             [[1 / 7, 1.0, 0.0], [0.0, 0.0, 0.0]], rtol=1e-6)


def test_nms_rejects_bad_shapes():
  with pytest.raises(ValueError, match="boxes \\[N, 4\\]"):
    ops.nms(jnp.zeros((3, 5)), jnp.zeros(3), iou_threshold=0.5,
            score_threshold=0.0, max_outputs=2)


def test_yolo_postprocess_per_class_and_decoding():
  # S=2, B=1, C=2: one confident box in cell (row 1, col 0).
  pred = np.zeros((1, 2, 2, 7), np.float32)
  pred[0, 1, 0] = [0.5, 0.5, 0.4, 0.2, 0.9, 0.25, 0.75]
  out = ops.yolo_postprocess(jnp.asarray(pred), num_boxes=1, num_classes=2,
                             score_threshold=0.1, max_detections=4)
  assert int(out["num_valid"][0]) == 2  # one box, both classes above 0.1
  np.testing.assert_array_equal(out["classes"][0], [1, 0, -1, -1])
  np.testing.assert_allclose(out["scores"][0, :2], [0.675, 0.225], rtol=1e-6)
  # centre (0.25, 0.75), size (0.4, 0.2)
  np.testing.assert_allclose(out["boxes"][0, 0], [0.05, 0.65, 0.45, 0.85],
                             atol=1e-6)
