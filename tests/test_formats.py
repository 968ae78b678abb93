"""The formats users arrive with, written as the tools export them: COCO
detection JSON, an Ultralytics data.yaml, Labelme and CVAT polygons."""
import json
import os
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT
from vq.data.formats.coco import read_coco_detection
from vq.data.errors import AnnotationError
from vq.data.formats.polygon_exports import read_cvat, read_labelme
from vq.data.formats.segmentation_readers import (SegmentationImages,
                                                  read_polygon_json)
from vq.data.sources import AnnotatedImages
from vq.data.formats.ultralytics_yaml import read_ultralytics
from vq.tasks import get_task_class

sys.path.insert(0, ROOT)
from configs import unet_damage, yolo  # noqa: E402  pylint: disable=g-import-not-at-top


def write_jpeg(path, width, height, seed=0):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  image = np.random.default_rng(seed).integers(0, 256, (height, width, 3),
                                               np.uint8)
  cv2.imwrite(str(path), image)


# The head of a COCO instances file as the dataset ships it (val2017), with
# one image of no annotations and a crowd region.
COCO = {
    "info": {"description": "COCO 2017 Dataset", "version": "1.0",
             "year": 2017},
    "licenses": [{"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/",
                  "id": 1, "name": "Attribution-NonCommercial-ShareAlike"}],
    "images": [
        {"license": 4, "file_name": "000000397133.jpg", "height": 427,
         "width": 640, "date_captured": "2013-11-14 17:02:52", "id": 397133},
        {"license": 1, "file_name": "000000037777.jpg", "height": 230,
         "width": 352, "date_captured": "2013-11-14 20:55:31", "id": 37777},
        {"license": 1, "file_name": "000000252219.jpg", "height": 428,
         "width": 640, "date_captured": "2013-11-14 22:32:02", "id": 252219},
    ],
    "annotations": [
        {"segmentation": [[382.48, 268.63, 330.24, 379.12, 385.06, 380.0]],
         "area": 3212.1, "iscrowd": 0, "image_id": 397133,
         "bbox": [217.62, 240.54, 38.99, 57.75], "category_id": 44,
         "id": 82445},
        {"segmentation": [[102.49, 118.47, 7.9, 122.11, 0.0, 146.6]],
         "area": 6013.7, "iscrowd": 0, "image_id": 37777,
         "bbox": [0.0, 106.0, 102.49, 62.81], "category_id": 64, "id": 1497},
        {"segmentation": {"counts": [179, 27, 392], "size": [427, 640]},
         "area": 1542.0, "iscrowd": 1, "image_id": 397133,
         "bbox": [1.0, 164.0, 120.0, 60.0], "category_id": 44, "id": 9000},
    ],
    "categories": [{"supercategory": "kitchen", "id": 44, "name": "bottle"},
                   {"supercategory": "furniture", "id": 64,
                    "name": "potted plant"}],
}


def test_coco_detection_boxes_are_pycocotools_boxes_normalised(tmp_path):
  from pycocotools.coco import COCO as PyCOCO
  path = tmp_path / "instances_val2017.json"
  path.write_text(json.dumps(COCO))
  for image in COCO["images"]:
    write_jpeg(tmp_path / "val2017" / image["file_name"], image["width"],
               image["height"])
  names = ("bottle", "potted plant")
  records = read_coco_detection(str(path), str(tmp_path / "val2017"), names)
  reference = PyCOCO(str(path))
  assert [r["id"] for r in records] == ["397133", "37777", "252219"]
  for record in records:
    image = reference.imgs[int(record["id"])]
    anns = reference.loadAnns(reference.getAnnIds(imgIds=image["id"]))
    expected = [[x / image["width"], y / image["height"],
                 (x + w) / image["width"], (y + h) / image["height"]]
                for x, y, w, h in (a["bbox"] for a in anns)]
    np.testing.assert_allclose(record["boxes"],
                               np.reshape(expected, (-1, 4)), atol=1e-6)
    assert record["classes"].tolist() == [
        names.index(reference.cats[a["category_id"]]["name"]) for a in anns]
    assert record["difficult"].tolist() == [bool(a["iscrowd"]) for a in anns]
  assert len(records[2]["boxes"]) == 0   # an image with no objects
  loaded = AnnotatedImages(records)[1]
  assert loaded["image"].shape == (230, 352, 3)

  with pytest.raises(AnnotationError, match=r"category 64 \('potted plant'\) "
                     r"is not one of \['bottle'\]"):
    read_coco_detection(str(path), str(tmp_path / "val2017"), ("bottle",))


def test_a_detection_run_reads_coco_json(tmp_path):
  path = tmp_path / "instances.json"
  path.write_text(json.dumps(COCO))
  for image in COCO["images"]:
    write_jpeg(tmp_path / "images" / image["file_name"], image["width"],
               image["height"])
  config = yolo.get_config("variant=test")
  config.data.update({"source": "coco", "train_path": str(path),
                      "eval_path": str(path),
                      "image_dir": str(tmp_path / "images"),
                      "class_names": ("bottle", "potted plant")})
  data = get_task_class("detection")(config).datasets()
  batch = data.eval_transform(data.eval[0])
  assert batch["image"].shape == (32, 32, 3)


def write_ultralytics(root):
  """coco8's layout: datasets/parts/{images,labels}/{train,val}, the YAML
  in another folder pointing at it with a relative `path`."""
  data = root / "datasets" / "parts"
  labels = {"train": {"a_01": "0 0.5 0.5 0.25 0.4\n1 0.1 0.2 0.1 0.1\n",
                      "a_02": ""},
            "val": {"b_01": "2 0.7 0.3 0.2 0.2\n"}}
  for split, files in labels.items():
    for k, (stem, text) in enumerate(files.items()):
      write_jpeg(data / "images" / split / f"{stem}.jpg", 333 + k, 251)
      if text:
        (data / "labels" / split).mkdir(parents=True, exist_ok=True)
        (data / "labels" / split / f"{stem}.txt").write_text(text)
  (root / "cfg").mkdir()
  yaml_path = root / "cfg" / "parts.yaml"
  yaml_path.write_text(
      "# Parts dataset\n"
      "path: ../datasets/parts # dataset root dir\n"
      "train: images/train # train images (relative to 'path')\n"
      "val: images/val # val images (relative to 'path')\n"
      "test: # test images (optional)\n\n"
      "# Classes\n"
      "names:\n  0: nut\n  1: washer\n  2: bolt\n")
  return yaml_path


def test_an_ultralytics_yaml_gives_its_splits_and_labels(tmp_path):
  yaml_path = write_ultralytics(tmp_path)
  train = read_ultralytics(str(yaml_path), "train")
  assert [r["id"] for r in train] == ["a_01", "a_02"]
  np.testing.assert_allclose(train[0]["boxes"],
                             [[0.375, 0.3, 0.625, 0.7], [0.05, 0.15, 0.15, 0.25]],
                             atol=1e-6)
  assert train[0]["classes"].tolist() == [0, 1]
  assert len(train[1]["boxes"]) == 0     # no label file: no objects
  assert read_ultralytics(str(yaml_path), "val")[0]["classes"].tolist() == [2]

  config = yolo.get_config("variant=test")
  config.data.update({"source": "ultralytics", "train_path": str(yaml_path),
                      "class_names": ("nut", "washer", "bolt")})
  data = get_task_class("detection")(config).datasets()
  assert (len(data.train), len(data.eval)) == (2, 1)
  config.data.class_names = ("nut", "washer", "bracket")
  with pytest.raises(ValueError, match=r"names the classes \('nut', "
                     r"'washer', 'bolt'\); set data.class_names"):
    get_task_class("detection")(config).datasets()


REGIONS = [("scratch", [[12.5, 20.0], [150.0, 28.0], [148.0, 40.5],
                        [10.0, 33.0]]),
           ("dent", [[200.0, 100.0], [260.0, 110.0], [240.0, 180.0]])]
CLASSES = ("scratch", "dent", "spacing")


def write_labelme(folder, width=301, height=211):
  """Labelme 5 files: one per image, the image beside it."""
  folder.mkdir(parents=True, exist_ok=True)
  for stem, regions in (("car_001", REGIONS), ("car_002", [])):
    write_jpeg(folder / f"{stem}.jpg", width, height)
    (folder / f"{stem}.json").write_text(json.dumps({
        "version": "5.2.1", "flags": {},
        "shapes": [{"label": label, "points": points, "group_id": None,
                    "description": "", "shape_type": "polygon", "flags": {}}
                   for label, points in regions],
        "imagePath": f"{stem}.jpg", "imageData": None,
        "imageHeight": height, "imageWidth": width}, indent=2))


def write_cvat(path, image_dir, width=301, height=211):
  """CVAT for images 1.1 export."""
  polygons = "".join(
      f'    <polygon label="{label}" source="manual" occluded="0" '
      f'points="{";".join(f"{x:.2f},{y:.2f}" for x, y in points)}" '
      f'z_order="0">\n    </polygon>\n' for label, points in REGIONS)
  path.write_text(
      '<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n'
      '  <version>1.1</version>\n  <meta><task><name>cars</name></task>'
      '</meta>\n'
      f'  <image id="0" name="car_001.jpg" width="{width}" height="{height}">'
      f'\n{polygons}  </image>\n'
      f'  <image id="1" name="car_002.jpg" width="{width}" height="{height}">'
      '\n  </image>\n</annotations>\n')
  for stem in ("car_001", "car_002"):
    write_jpeg(image_dir / f"{stem}.jpg", width, height)


def _damage_format(tmp_path):
  """The same polygons in the damage format's JSON."""
  path = tmp_path / "annotations.json"
  path.write_text(json.dumps([
      {"image_id": "car_001.jpg", "damage_level": 1,
       "regions": [{"points": p, "class_name": CLASSES.index(label) + 1}
                   for label, p in REGIONS]},
      {"image_id": "car_002.jpg", "damage_level": 0, "regions": []}]))
  return read_polygon_json(str(path), str(tmp_path / "labelme"))


def test_labelme_and_cvat_exports_give_the_damage_formats_masks(tmp_path):
  write_labelme(tmp_path / "labelme")
  write_cvat(tmp_path / "annotations.xml", tmp_path / "labelme")
  reference = SegmentationImages(_damage_format(tmp_path))
  for records in (read_labelme(str(tmp_path / "labelme"), CLASSES),
                  read_cvat(str(tmp_path / "annotations.xml"),
                            str(tmp_path / "labelme"), CLASSES)):
    images = SegmentationImages(records)
    assert len(images) == 2
    for i in range(2):
      for key in ("image", "mask", "label"):
        np.testing.assert_array_equal(images[i][key], reference[i][key])
    assert images[0]["mask"][..., :2].any((0, 1)).all()

  with pytest.raises(AnnotationError, match=r"car_001.json shape 1: label "
                     r"'dent' is not one of \['scratch', 'spacing'\]"):
    read_labelme(str(tmp_path / "labelme"), ("scratch", "spacing"))


def write_labelme_set(folder, copies):
  """`copies` times write_labelme's pair in one folder, renamed apart."""
  folder.mkdir(parents=True, exist_ok=True)
  for i in range(copies):
    write_labelme(folder / f"batch_{i}")
    for f in os.listdir(folder / f"batch_{i}"):
      os.rename(folder / f"batch_{i}" / f, folder / f"{i}_{f}")
    os.rmdir(folder / f"batch_{i}")
    for f in folder.glob(f"{i}_*.json"):
      data = json.loads(f.read_text())
      data["imagePath"] = f"{i}_{data['imagePath']}"
      f.write_text(json.dumps(data))


def test_a_damage_run_reads_labelme(tmp_path):
  write_labelme_set(tmp_path / "labelme", 12)
  config = unet_damage.get_config("variant=test")
  config.data.update({"source": "labelme",
                      "train_path": str(tmp_path / "labelme")})
  data = get_task_class("segmentation")(config).datasets()
  # 24 images, 12 damaged: an 8:1:1 split, the validation part evaluated.
  assert len(data.train) >= 16 and 1 <= len(data.eval) <= 4
  assert data.eval_transform(data.eval[0])["mask"].shape == (64, 64, 3)
