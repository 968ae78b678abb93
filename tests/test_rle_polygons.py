"""Run-length encoding (Severstal convention) and polygon rasterisation."""
import numpy as np
import pytest

from vq.data.formats import polygons, rle


def test_encode_hand_worked():
  # Pixels numbered down each column: column 0 is 1..4, column 1 is 5..8.
  mask = np.zeros((4, 3), bool)
  mask[1:3, 0] = True   # pixels 2, 3
  mask[0, 1] = True     # pixel 5
  mask[3, 2] = True     # pixel 12
  assert rle.encode(mask) == "2 2 5 1 12 1"


def test_run_crosses_columns():
  mask = np.zeros((3, 2), bool)
  mask[2, 0] = mask[0, 1] = True  # pixels 3 and 4 are consecutive
  assert rle.encode(mask) == "3 2"
  np.testing.assert_array_equal(rle.decode("3 2", (3, 2)), mask)


def test_empty_and_full():
  assert rle.encode(np.zeros((5, 7))) == ""
  assert not rle.decode("", (5, 7)).any()
  assert not rle.decode(float("nan"), (5, 7)).any()
  assert rle.encode(np.ones((5, 7))) == "1 35"
  assert rle.area("1 35") == 35 and rle.area("2 2 5 1") == 3 and rle.area("") == 0


@pytest.mark.parametrize("seed", range(5))
def test_round_trip(seed):
  rng = np.random.default_rng(seed)
  mask = rng.random((17, 23)) < rng.uniform(0.05, 0.9)
  np.testing.assert_array_equal(rle.decode(rle.encode(mask), mask.shape), mask)


@pytest.mark.parametrize("encoded,message", [
    ("11 3", "runs past"), ("1 2 2 2", "overlapping"), ("0 2", ">= 1"),
    ("3 0", ">= 1"), ("1 2 3", "odd"), ("a b", "integers")])
def test_decode_rejects(encoded, message):
  with pytest.raises(ValueError, match=message):
    rle.decode(encoded, (3, 4))


def test_polygon_pixel_centres():
  # The square [1, 5] x [1, 4] covers the pixels whose centres lie inside.
  m = polygons.to_mask([{"points": [[1, 1], [5, 1], [5, 4], [1, 4]],
                         "class_name": 2}], 6, 6, 3)
  assert m.shape == (6, 6, 3) and m.dtype == np.uint8
  expected = np.zeros((6, 6), np.uint8)
  expected[1:4, 1:5] = 1
  np.testing.assert_array_equal(m[..., 1], expected)
  assert not m[..., 0].any() and not m[..., 2].any()


def test_polygon_triangle_area():
  m = polygons.to_mask([{"points": [[0, 0], [100, 0], [0, 100]],
                         "class_name": 1}], 100, 100, 1)
  assert abs(m.sum() - 5000) < 100


def test_polygon_clipped_or_rejected_outside():
  region = [{"points": [[-5, -5], [3, -5], [3, 3], [-5, 3]], "class_name": 1}]
  m = polygons.to_mask(region, 4, 4, 1)
  assert m[..., 0].sum() == 9
  with pytest.raises(ValueError, match="rec7: region 0 has points outside"):
    polygons.to_mask(region, 4, 4, 1, record="rec7", clip=False)


@pytest.mark.parametrize("region,message", [
    ({"points": [[0, 0], [1, 1]], "class_name": 1}, "at least 3"),
    ({"points": [[0, 0], [1, 1], [0, 1]], "class_name": 4}, "class_name 4"),
    ({"points": [[0, 0], [1, 1], [0, 1]], "class_name": "dent"}, "integer"),
])
def test_polygon_rejects(region, message):
  with pytest.raises(ValueError, match=message):
    polygons.to_mask([region], 4, 4, 3, record="img.json")
