import numpy as np
import pytest

from vq.data.augment.box_augment import resize_and_augment
from vq.data.sources import GeneratedSource
from vq.data.embedded.synthetic_parts import generate
from vq.data.detection import encode_targets
from vq.ops.yolo import decode_grid


def painted_record():
  """A 60x90 image with one white rectangle and its exact box."""
  image = np.zeros((60, 90, 3), np.uint8)
  image[12:36, 30:72] = 255  # rows 12..35, columns 30..71
  return {"image": image,
          "boxes": np.array([[30 / 90, 12 / 60, 72 / 90, 36 / 60]], np.float32),
          "classes": np.array([2], np.int32)}


@pytest.mark.parametrize("seed", range(6))
def test_boxes_follow_the_image_exactly(seed):
  out = resize_and_augment(painted_record(), 64, np.random.default_rng(seed),
                           scale_range=0.3, shift_range=0.1, flip=True,
                           brightness=0, contrast=0, min_visible=0.0)
  ys, xs = np.nonzero(out["image"][..., 0] > 127)
  box = out["boxes"][0] * 64
  # The warped rectangle covers the box to within the half-pixel of
  # interpolation at each edge.
  np.testing.assert_allclose([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1],
                             box, atol=1.0)
  assert out["classes"].tolist() == [2]


def test_boxes_pushed_out_of_the_image_are_dropped():
  record = painted_record()
  record["boxes"] = np.array([[0.0, 0.0, 0.1, 0.1], [0.2, 0.2, 0.8, 0.8]],
                             np.float32)
  record["classes"] = np.array([0, 1], np.int32)

  class ShiftUpLeft:  # a stand-in Generator: shift by -0.3 on both axes
    def uniform(self, low, high, size=None):
      return np.full(size, low) if size else 1.0

    def random(self):
      return 1.0  # no flip

  out = resize_and_augment(record, 64, ShiftUpLeft(), scale_range=0.0,
                           shift_range=0.3)
  # The small box leaves the image; the big one keeps (0.5 / 0.6)^2 of its
  # area, above min_visible, and is clipped at the border.
  assert out["classes"].tolist() == [1]
  np.testing.assert_allclose(out["boxes"], [[0.0, 0.0, 0.5, 0.5]], atol=1e-6)
  out = resize_and_augment(record, 64, ShiftUpLeft(), scale_range=0.0,
                           shift_range=0.3, min_visible=0.8)
  assert out["classes"].tolist() == []


def test_deterministic_resize_keeps_normalised_boxes():
  out = resize_and_augment(painted_record(), 32)
  np.testing.assert_allclose(out["boxes"], painted_record()["boxes"], atol=1e-6)
  assert out["image"].shape == (32, 32, 3)


def test_encode_then_decode_recovers_boxes():
  boxes = np.array([[0.1, 0.2, 0.3, 0.6], [0.55, 0.5, 0.95, 0.7]], np.float32)
  target = encode_targets(boxes, np.array([1, 0]), grid_size=4, num_classes=2)
  assert target[..., 4].sum() == 2
  # A B=1 "prediction" equal to the target decodes to the same boxes.
  decoded, conf, probs = decode_grid(target, num_boxes=1, num_classes=2)
  kept = np.asarray(conf) > 0
  np.testing.assert_allclose(np.asarray(decoded)[kept], boxes, atol=1e-6)
  assert np.asarray(probs)[kept].argmax(1).tolist() == [1, 0]


def test_encode_keeps_the_larger_box_of_a_shared_cell():
  boxes = np.array([[0.0, 0.0, 0.2, 0.2], [0.0, 0.0, 0.4, 0.4]], np.float32)
  target = encode_targets(boxes, np.array([0, 1]), grid_size=2, num_classes=2)
  np.testing.assert_allclose(target[0, 0, 2:4], [0.4, 0.4])
  assert target[0, 0, 6] == 1 and target[0, 0, 5] == 0


def test_synthetic_parts_are_reproducible_and_valid():
  a, b = generate(7, 3, 64), generate(7, 3, 64)
  np.testing.assert_array_equal(a["image"], b["image"])
  np.testing.assert_array_equal(a["boxes"], b["boxes"])
  source = GeneratedSource(generate, 20, seed=1, image_size=48)
  for i in range(len(source)):
    r = source[i]
    assert r["image"].shape == (48, 48, 3) and r["image"].dtype == np.uint8
    assert len(r["boxes"]) >= 1 and len(r["boxes"]) == len(r["classes"])
    assert np.all((r["boxes"] >= 0) & (r["boxes"] <= 1))
    assert np.all(r["boxes"][:, 2:] > r["boxes"][:, :2])


def test_shrinking_averages_by_area_instead_of_aliasing():
  import cv2
  from vq.data.augment.geometry import affine_matrix, warp_image
  rng = np.random.default_rng(0)
  photo = rng.integers(0, 256, (512, 640, 3), np.uint8)
  shrunk = warp_image(photo, affine_matrix((512, 640), (96, 120)), (96, 120),
                      average_shrink=True)
  np.testing.assert_array_equal(
      shrunk, cv2.resize(photo, (120, 96), interpolation=cv2.INTER_AREA))
  # One-pixel stripes 5.3x smaller: grey, not a moire of black and white.
  stripes = np.zeros((512, 512), np.uint8)
  stripes[:, ::2] = 255
  grey = warp_image(stripes, affine_matrix((512, 512), (96, 96)), (96, 96),
                    average_shrink=True)
  assert np.abs(grey.astype(int) - 128).max() <= 16
  # Training augmentation keeps its single bilinear warp.
  sampled = warp_image(stripes, affine_matrix((512, 512), (96, 96)), (96, 96))
  assert np.abs(sampled.astype(int) - 128).max() > 16
