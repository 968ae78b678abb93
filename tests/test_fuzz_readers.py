"""Every reader fed randomly corrupted files in its published format
(truncations, byte flips, absurd numbers, Latin-1 text, empty files, image
headers declaring absurd sizes, JPEGs and PNGs cut and given their end
marker back, annotations naming files outside the dataset): each outcome is
a sane record or an error naming the corrupted file — never another
exception type, a crash, a record with impossible values or gigabytes of
memory."""
import json
import os
import re
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest

from test_readers import voc_xml
from vq import predict
from vq.data import check
from vq.data.embedded import synthetic_car
from vq.data.formats import mvtec, rle, segmentation_readers
from vq.data.formats.image_folder import read_image_folder
from vq.data.images import write_image
from vq.data.formats.keypoint_readers import (KeypointImages,
                                              read_coco_keypoints,
                                              read_keypoints_csv)
from vq.data.sources import AnnotatedImages, Datasets
from vq.data.formats.voc import read_voc
from vq.data.formats.yolo_txt import read_yolo_txt

CASES_PER_FORMAT = 48             # 8 formats: 384 corrupted files
CLEAN_ERRORS = (ValueError, OSError)  # AnnotationError is a ValueError


def _photo(path, h=24, w=32):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  ys, xs = np.mgrid[0:h, 0:w]
  write_image(path, np.stack([xs * 7, ys * 9, xs + ys], -1).astype(np.uint8))


def _corrupt(data, rng):
  """One random corruption of a file's bytes."""
  if data[:2] == b"\xff\xd8" or data[:4] == b"\x89PNG":
    kind = rng.integers(8)
    if kind == 6:
      return _absurd_header(data, rng)
    if kind == 7:                                      # cut, end marker back
      end = b"\xff\xd9" if data[:2] == b"\xff\xd8" else data[-12:]
      return data[:rng.integers(len(data) - len(end))] + end
  else:
    kind = rng.integers(7)
    if kind == 6:                                      # a path outside
      text = data.decode("utf-8", "replace")
      names = list(re.finditer(r"[\w.]+\.(png|jpg)", text))
      if names:
        m = names[rng.integers(len(names))]
        outside = ["../../elsewhere.png", "/etc/passwd", "../a.png"][
            rng.integers(3)]
        return (text[:m.start()] + outside + text[m.end():]).encode()
      return data[::-1]
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


def _absurd_header(data, rng):
  """The image's header made to declare an absurd size (its checksum
  kept right, so only the size is wrong)."""
  height, width = (int(v) for v in rng.choice(
      [0, 1, 30000, 60000, 2 ** 16 - 1], 2))
  out = bytearray(data)
  if data[:4] == b"\x89PNG":  # IHDR
    out[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    out[29:33] = zlib.crc32(bytes(out[12:29])).to_bytes(4, "big")
    return bytes(out)
  i = 2
  while not 0xC0 <= out[i + 1] <= 0xC3:  # to the start of frame
    i += 2 + int.from_bytes(out[i + 2:i + 4], "big")
  out[i + 5:i + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
  return bytes(out)


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


def test_the_fuzzed_readers_stay_under_2_gb(tmp_path):
  """Every format's cases above, in a process of its own whose peak
  resident memory is measured (absurd headers are refused unread)."""
  script = textwrap.dedent(f"""
      import sys
      sys.path.insert(0, {os.path.dirname(__file__)!r})
      import pathlib, test_fuzz_readers as t
      for name in sorted(t.FORMATS):
        t.test_corrupted_files_give_sane_records_or_named_errors(
            pathlib.Path({str(tmp_path)!r}) / name, name)
      # This process's own peak (VmHWM; ru_maxrss would count the test
      # process it was forked from).
      print(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
      """)
  out = subprocess.run([sys.executable, "-c", script], capture_output=True,
                       text=True, cwd=os.path.dirname(__file__))
  assert out.returncode == 0, out.stderr[-2000:]
  peak_kib = int(out.stdout.split()[-1])
  assert peak_kib < 2 * 1024 ** 2, f"peak resident memory {peak_kib} KiB"


def test_fuzzed_photos_with_any_name_in_predict_and_the_data_check(tmp_path):
  """A folder of photos, many corrupted, named with every byte value a
  Linux file name may hold: vq.predict's input listing and the data check
  give each an image or an error naming it, and leave none out unlisted."""
  rng = np.random.default_rng(7)
  root = os.path.join(os.fsencode(tmp_path), b"clean")
  os.makedirs(root)
  _photo(str(tmp_path / "photo.jpg"))
  _photo(str(tmp_path / "photo.png"))
  allowed = [b for b in range(1, 256) if b != ord("/")]
  names = []
  for case in range(48):
    ext = (b".jpg", b".png")[case % 2]
    original = (tmp_path / f"photo{ext.decode()}").read_bytes()
    name = bytes(int(b) for b in rng.choice(allowed, 12)) + ext
    data = original if case % 4 == 0 else _corrupt(original, rng)
    with open(os.path.join(root, name), "wb") as f:
      f.write(data)
    names.append(name)
  frames = list(predict.iterate_inputs(os.fsdecode(root)))
  assert sorted(os.fsencode(os.path.basename(f.source)) for f in frames) == \
      sorted(names)
  for frame in frames:
    if frame.error is None:
      assert frame.image.dtype == np.uint8 and frame.image.shape[2] == 3
    else:  # named as Python writes it (bytes that are not text escaped)
      assert repr(os.path.basename(frame.source))[1:-1] in frame.error
  assert 0 < sum(f.error is None for f in frames) < len(frames)

  train, eval_ = read_image_folder(os.fsdecode(tmp_path), ("clean",))
  source = AnnotatedImages(train + eval_)
  data = Datasets(source, AnnotatedImages([]), None, None)
  kept, report = check.check_datasets(data, threads=2)
  failed = {repr(os.path.basename(f.source))[1:-1] for f in frames
            if f.error}
  assert report["train"]["left_out"] == len(failed)
  assert all(any(name in reason for name in failed)
             for reason in report["train"]["reasons"])
  assert len(kept.train) == len(frames) - len(failed)
