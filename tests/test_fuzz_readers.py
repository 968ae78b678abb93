"""Every reader fed randomly corrupted files in its published format
(truncations, byte flips, absurd numbers, Latin-1 text, empty files): each
outcome is a sane record or an error naming the corrupted file — never
another exception type, a crash or a record with impossible values."""
import json
import os
import re

import numpy as np
import pytest

from test_readers import voc_xml
from vq.data import mvtec, rle, segmentation_readers, synthetic_car
from vq.data.image_folder import read_image_folder
from vq.data.images import write_image
from vq.data.keypoint_readers import (KeypointImages, read_coco_keypoints,
                                      read_keypoints_csv)
from vq.data.sources import AnnotatedImages
from vq.data.voc import read_voc
from vq.data.yolo_txt import read_yolo_txt

CASES_PER_FORMAT = 40             # 8 formats: 320 corrupted files
CLEAN_ERRORS = (ValueError, OSError)  # AnnotationError is a ValueError


def _photo(path, h=24, w=32):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  ys, xs = np.mgrid[0:h, 0:w]
  write_image(path, np.stack([xs * 7, ys * 9, xs + ys], -1).astype(np.uint8))


def _corrupt(data, rng):
  """One random corruption of a file's bytes."""
  kind = rng.integers(6)
  if kind == 0:                                        # truncated
    return data[:rng.integers(len(data))]
  if kind == 1:                                        # byte flips
    out = bytearray(data)
    for i in rng.integers(len(out), size=rng.integers(1, 6)):
      out[i] = int(rng.integers(256))
    return bytes(out)
  if kind == 2:                                        # absurd numbers
    text = data.decode("utf-8", "replace")
    numbers = list(re.finditer(r"-?\d+(\.\d+)?", text))
    if not numbers:
      return data[::-1]
    m = numbers[rng.integers(len(numbers))]
    absurd = ["1e30", "-7", "nan", "abc", "99999999999", "0", "-0.5",
              ""][rng.integers(8)]
    return (text[:m.start()] + absurd + text[m.end():]).encode()
  if kind == 3:                                        # Latin-1 text
    text = data.decode("utf-8", "replace")
    i = int(rng.integers(len(text) + 1))
    return (text[:i] + "é" + text[i:]).encode("latin-1", "replace")
  if kind == 4:                                        # empty
    return b""
  return data + data[:rng.integers(1, 64)]             # trailing garbage


def _voc(root):
  for d in ("Annotations", "JPEGImages"):
    os.makedirs(root / d)
  (root / "Annotations" / "a.xml").write_text(voc_xml(
      "a.jpg", [("nut", (2, 3, 20, 15), False)], width=32, height=24))
  _photo(root / "JPEGImages" / "a.jpg")
  files = [root / "Annotations" / "a.xml", root / "JPEGImages" / "a.jpg"]
  return files, lambda: list(AnnotatedImages(read_voc(str(root), ["nut"])))


def _yolo(root):
  os.makedirs(root / "images")
  os.makedirs(root / "labels")
  _photo(root / "images" / "a.png")
  (root / "labels" / "a.txt").write_text("0 0.5 0.5 0.25 0.5\n1 0.2 0.3 0.1 "
                                         "0.1\n")
  files = [root / "labels" / "a.txt", root / "images" / "a.png"]
  return files, lambda: list(AnnotatedImages(read_yolo_txt(str(root), 2)))


def _severstal(root):
  os.makedirs(root / "img")
  _photo(root / "img" / "a.jpg")
  mask = np.zeros((24, 32), bool)
  mask[3:9, 4:20] = True
  (root / "train.csv").write_text("ImageId,ClassId,EncodedPixels\n"
                                  f"a.jpg,2,{rle.encode(mask)}\n")
  files = [root / "train.csv", root / "img" / "a.jpg"]
  return files, lambda: list(segmentation_readers.SegmentationImages(
      segmentation_readers.read_severstal_csv(str(root / "train.csv"),
                                              str(root / "img"))))


def _polygon_json(root):
  path = synthetic_car.write_dataset(str(root), 1, seed=1, image_size=32)
  files = [path, root / "images" / "panel_00000.png"]
  return files, lambda: list(segmentation_readers.SegmentationImages(
      segmentation_readers.read_polygon_json(path, str(root / "images"))))


def _keypoint_csv(root):
  _photo(root / "a.png")
  (root / "kp.csv").write_text("image,x1,y1,x2,y2\na.png,4,2,30,20\n")
  files = [root / "kp.csv", root / "a.png"]
  return files, lambda: list(KeypointImages(
      read_keypoints_csv(str(root / "kp.csv"), 2)))


def _coco_keypoints(root):
  _photo(root / "a.png")
  (root / "kp.json").write_text(json.dumps({
      "images": [{"id": 1, "file_name": "a.png", "width": 32, "height": 24}],
      "annotations": [{"image_id": 1, "keypoints": [4, 2, 2, 30, 20, 2]}]}))
  files = [root / "kp.json", root / "a.png"]
  return files, lambda: list(KeypointImages(
      read_coco_keypoints(str(root / "kp.json"), str(root), 2)))


def _mvtec(root):
  cat = root / "cat"
  for d in ("train/good", "test/good", "test/cut", "ground_truth/cut"):
    os.makedirs(cat / d)
  for d in ("train/good", "test/good", "test/cut"):
    _photo(cat / d / "000.png")
  mask = np.zeros((24, 32, 3), np.uint8)
  mask[5:9, 5:15] = 255
  write_image(cat / "ground_truth" / "cut" / "000_mask.png", mask)
  files = [cat / "ground_truth" / "cut" / "000_mask.png",
           cat / "test" / "cut" / "000.png"]

  def load():
    train, test = mvtec.read_mvtec(str(root), "cat")
    return [mvtec.load_record(r) for r in train + test]
  return files, load


def _image_folder(root):
  for name in ("clean", "damaged"):
    for i in range(2):
      _photo(root / name / f"{i}.jpg")
  files = [root / "clean" / "0.jpg", root / "damaged" / "1.jpg"]

  def load():
    train, eval_ = read_image_folder(str(root), ("clean", "damaged"))
    return list(AnnotatedImages(train + eval_))
  return files, load


FORMATS = {"voc": _voc, "yolo_txt": _yolo, "severstal": _severstal,
           "polygon_json": _polygon_json, "keypoint_csv": _keypoint_csv,
           "coco_keypoints": _coco_keypoints, "mvtec": _mvtec,
           "image_folder": _image_folder}


def _check_sane(record):
  """A loaded record holds only possible values."""
  image = record["image"]
  assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
  if "boxes" in record:
    boxes = record["boxes"]
    assert np.all(np.isfinite(boxes)) and np.all((boxes >= 0) & (boxes <= 1))
    assert np.all(boxes[:, 2] >= boxes[:, 0]) and np.all(
        boxes[:, 3] >= boxes[:, 1])
  if "mask" in record:
    mask = record["mask"]
    assert mask.shape[:2] == image.shape[:2]
    assert set(np.unique(mask)) <= {0, 1}
  if "keypoints" in record:
    kp = record["keypoints"]
    assert np.all(np.isfinite(kp)) and np.all((kp >= 0) & (kp <= 1))


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_corrupted_files_give_sane_records_or_named_errors(tmp_path, name):
  rng = np.random.default_rng(sorted(FORMATS).index(name))
  outcomes = {"records": 0, "errors": 0}
  for case in range(CASES_PER_FORMAT):
    root = tmp_path / str(case)
    files, load = FORMATS[name](root)
    target = files[case % len(files)]
    with open(target, "rb") as f:
      original = f.read()
    corrupted = _corrupt(original, rng)
    with open(target, "wb") as f:
      f.write(corrupted)
    try:
      records = load()
    except CLEAN_ERRORS as e:
      assert os.path.basename(target) in str(e), (case, target, e)
      outcomes["errors"] += 1
      continue
    for record in records:
      _check_sane(record)
    outcomes["records"] += 1
  # Both outcomes occur: the corruptions are neither all harmless nor all
  # fatal.
  assert outcomes["errors"] > 0 and outcomes["records"] > 0, outcomes
