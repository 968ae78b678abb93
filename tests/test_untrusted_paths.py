"""An annotation naming an image outside its dataset folder is refused with
the file and record, in every reader that takes image names from
annotations; `allow_outside` lets it through."""
import json
import os

import pytest

from vq.data.formats import (coco, keypoint_readers, polygon_exports,
                             segmentation_readers, voc)
from vq.data.errors import AnnotationError

ESCAPES = ["../outside.png", "sub/../../outside.png", "{tmp}/elsewhere.png",
           "link/outside.png"]


def _voc(root, name):
  (root / "Annotations").mkdir()
  (root / "JPEGImages").mkdir()
  (root / "Annotations" / "a.xml").write_text(
      f"<annotation><filename>{name}</filename><size><width>8</width>"
      "<height>8</height><depth>3</depth></size><object><name>dent</name>"
      "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>4</xmax><ymax>4</ymax>"
      "</bndbox></object></annotation>")
  return (lambda allow: voc.read_voc(str(root), ("dent",), None, allow),
          r"Annotations/a\.xml", root / "JPEGImages")


def _coco(root, name):
  (root / "images").mkdir()
  path = root / "instances.json"
  path.write_text(json.dumps({
      "images": [{"id": 7, "file_name": name, "width": 8, "height": 8}],
      "annotations": [{"image_id": 7, "category_id": 1,
                       "bbox": [1, 1, 3, 3]}],
      "categories": [{"id": 1, "name": "dent"}]}))
  return (lambda allow: coco.read_coco_detection(
      str(path), str(root / "images"), ("dent",), allow),
          r"instances\.json: image id 7", root / "images")


def _labelme(root, name):
  (root / "a.json").write_text(json.dumps({
      "imagePath": name, "imageHeight": 8, "imageWidth": 8,
      "shapes": [{"label": "dent", "shape_type": "polygon",
                  "points": [[1, 1], [4, 1], [4, 4]]}]}))
  return (lambda allow: polygon_exports.read_labelme(
      str(root), ("dent",), allow_outside=allow), r"a\.json", root)


def _cvat(root, name):
  (root / "images").mkdir()
  path = root / "annotations.xml"
  path.write_text(
      f'<annotations><image name="{name}" width="8" height="8">'
      '<polygon label="dent" points="1,1;4,1;4,4"/></image></annotations>')
  return (lambda allow: polygon_exports.read_cvat(
      str(path), str(root / "images"), ("dent",), allow_outside=allow),
          r"annotations\.xml image", root / "images")


def _severstal(root, name):
  (root / "images").mkdir()
  path = root / "train.csv"
  path.write_text(f"ImageId,ClassId,EncodedPixels\nok.jpg,1,1 3\n"
                  f'"{name}",2,5 2\n')
  return (lambda allow: segmentation_readers.read_severstal_csv(
      str(path), str(root / "images"), 4, include_unlisted=False,
      allow_outside=allow), r"train\.csv:3", root / "images")


def _polygon_json(root, name):
  (root / "images").mkdir()
  path = root / "polygons.json"
  path.write_text(json.dumps([{"image_id": name, "damage_level": 0}]))
  return (lambda allow: segmentation_readers.read_polygon_json(
      str(path), str(root / "images"), 3, allow),
          r"polygons\.json record 0", root / "images")


def _keypoint_csv(root, name):
  path = root / "kp.csv"
  path.write_text(f"image,x1,y1\nok.png,1,2\n{name},3,4\n")
  return (lambda allow: keypoint_readers.read_keypoints_csv(
      str(path), 1, allow), r"kp\.csv:3", root)


def _coco_keypoints(root, name):
  (root / "images").mkdir()
  path = root / "kp.json"
  path.write_text(json.dumps({
      "images": [{"id": 3, "file_name": name}],
      "annotations": [{"image_id": 3, "keypoints": [1, 2, 2]}]}))
  return (lambda allow: keypoint_readers.read_coco_keypoints(
      str(path), str(root / "images"), 1, allow),
          r"kp\.json: annotation 0", root / "images")


@pytest.mark.parametrize("name", ESCAPES)
@pytest.mark.parametrize("fixture", [_voc, _coco, _labelme, _cvat,
                                     _severstal, _polygon_json, _keypoint_csv,
                                     _coco_keypoints])
def test_an_image_outside_the_dataset_is_refused(tmp_path, fixture, name):
  name = name.format(tmp=tmp_path)
  root = tmp_path / "data"
  root.mkdir()
  read, where, image_dir = fixture(root, name)
  os.symlink(tmp_path, image_dir / "link")  # a folder that leads out
  (image_dir / "sub").mkdir()
  for image in (image_dir.parent / "outside.png", tmp_path / "elsewhere.png",
                tmp_path / "outside.png", image_dir / "ok.png",
                image_dir / "ok.jpg"):
    image.write_bytes(b"")  # readers that check existence find them
  with pytest.raises(AnnotationError, match=where + r".*outside the "
                     r"dataset folder.*allow_outside_paths"):
    read(False)
  paths = [r["image_path"] for r in read(True)]
  assert os.path.join(str(image_dir), name) in paths


def test_names_inside_the_dataset_still_read(tmp_path):
  root = tmp_path / "data"
  root.mkdir()
  read, _, image_dir = _coco(root, "sub/../x.png")
  assert read(False)[0]["image_path"] == str(image_dir / "sub/../x.png")
