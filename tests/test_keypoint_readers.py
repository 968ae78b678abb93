import json

import numpy as np
import pytest

from vq.data.errors import AnnotationError
from vq.data.images import write_image
from vq.data.formats.keypoint_readers import (KeypointImages,
                                              read_coco_keypoints,
                                              read_keypoints_csv)


@pytest.fixture
def images(tmp_path):
  (tmp_path / "img").mkdir()
  for name in ("a.png", "b.png"):
    write_image(tmp_path / "img" / name, np.zeros((20, 40, 3), np.uint8))
  return tmp_path


def test_csv_reads_pixels_and_normalises(images):
  path = images / "train.csv"
  path.write_text("image,x1,y1,x2,y2,x3,y3\nimg/a.png,4,2,36,2,20,18\n\n"
                  "img/b.png,0,0,40,20,10,10\n")
  records = read_keypoints_csv(str(path), 3)
  assert [r["id"] for r in records] == ["img/a.png", "img/b.png"]
  loaded = KeypointImages(records)[0]
  np.testing.assert_allclose(loaded["keypoints"],
                             [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]])


@pytest.mark.parametrize("text, message", [
    ("image,x1,y1\n", "header of 7 columns"),
    ("image,x1,y1,x2,y2,x3,y3\nimg/a.png,1,2,3\n", ":2: expected 7 columns"),
    ("image,x1,y1,x2,y2,x3,y3\nimg/a.png,1,2,3,4,5,six\n", ":2: keypoint coordinates must be numbers"),
    ("image,x1,y1,x2,y2,x3,y3\n", "no rows"),
])
def test_csv_errors_name_file_and_line(images, text, message):
  path = images / "bad.csv"
  path.write_text(text)
  with pytest.raises(AnnotationError, match=message) as e:
    read_keypoints_csv(str(path), 3)
  assert str(path) in str(e.value)


def coco(annotations):
  return {"images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 20},
                     {"id": 2, "file_name": "b.png", "width": 40, "height": 20}],
          "annotations": annotations,
          "categories": [{"id": 1, "keypoints": ["l", "r", "t"]}]}


def test_coco_keypoints(images):
  path = images / "kp.json"
  path.write_text(json.dumps(coco([
      {"image_id": 2, "keypoints": [0, 0, 2, 40, 20, 2, 20, 10, 1]},
      {"image_id": 1, "keypoints": [4, 2, 2, 36, 2, 2, 20, 18, 2]}])))
  records = read_coco_keypoints(str(path), str(images / "img"), 3)
  assert [r["id"] for r in records] == ["1", "2"]
  np.testing.assert_allclose(KeypointImages(records)[1]["keypoints"],
                             [[0, 0], [1, 1], [0.5, 0.5]])


@pytest.mark.parametrize("annotations, message", [
    ([{"image_id": 9, "keypoints": [0] * 9}], "no such image"),
    ([{"image_id": 1, "keypoints": [1, 1, 2] * 2}], "expected 9 keypoint values"),
    ([{"image_id": 1, "keypoints": [1, 1, 2, 1, 1, 0, 1, 1, 2]}], r"keypoints \[1\] are not labelled"),
    ([{"image_id": 1, "keypoints": [1, 1, 2] * 3}] * 2, "one object per image"),
])
def test_coco_errors_name_the_record(images, annotations, message):
  path = images / "kp.json"
  path.write_text(json.dumps(coco(annotations)))
  with pytest.raises(AnnotationError, match=message) as e:
    read_coco_keypoints(str(path), str(images / "img"), 3)
  assert str(path) in str(e.value)
