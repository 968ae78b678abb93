"""COCO JSON annotation files: the shared loading (images indexed by id,
annotations checked against them) and the detection reader."""
import json
import os

import numpy as np

from vq.data.errors import AnnotationError, read_json
from vq.data.paths import dataset_path


def load_coco(path, what="COCO annotations"):
  """-> (the parsed file, {image id: image entry}); a file without
  'images' / 'annotations', or an image without id or file_name, is an
  error naming the entry."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{what} file not found: {path}")
  coco = read_json(path)
  for key in ("images", "annotations"):
    if key not in coco:
      raise AnnotationError(f"{path}: no '{key}' list")
  images = {}
  for i, image in enumerate(coco["images"]):
    missing = [k for k in ("id", "file_name") if k not in image]
    if missing:
      raise AnnotationError(f"{path}: images[{i}] has no {missing} "
                            f"(entry: {json.dumps(image)[:200]})")
    images[image["id"]] = image
  for i, ann in enumerate(coco["annotations"]):
    if ann.get("image_id") not in images:
      raise AnnotationError(f"{path}: annotation {i} (image_id "
                            f"{ann.get('image_id')}): no such image in "
                            f"'images'")
  return coco, images


def read_coco_detection(path, image_dir, class_names, allow_outside=False):
  """COCO detection JSON (instances_*.json) -> records {id, image_path,
  boxes [K, 4] normalised x1y1x2y2, classes [K], difficult [K] (iscrowd),
  expected_hw, annotation}.

  Categories map to `class_names` by name; an annotation of a category that
  is not a class is an error. Every image in 'images' is a record (without
  annotations: no objects).
  """
  coco, images = load_coco(path, "COCO detection")
  class_names = list(class_names)
  categories = {c["id"]: c.get("name") for c in coco.get("categories", [])}
  objects = {image_id: [] for image_id in images}
  for i, ann in enumerate(coco["annotations"]):
    where = f"{path}: annotation {i} (image_id {ann['image_id']})"
    name = categories.get(ann.get("category_id"))
    if name not in class_names:
      raise AnnotationError(
          f"{where}: category {ann.get('category_id')} ({name!r}) is not one "
          f"of {class_names} (data.class_names)")
    image = images[ann["image_id"]]
    width, height = image.get("width"), image.get("height")
    if not width or not height:
      raise AnnotationError(f"{path}: image {ann['image_id']} has no width "
                            f"and height to normalise its boxes by")
    bbox = ann.get("bbox", [])
    if len(bbox) != 4 or bbox[2] <= 0 or bbox[3] <= 0:
      raise AnnotationError(f"{where}: bbox must be [x, y, width, height] "
                            f"with positive sizes, got {bbox}")
    x, y, w, h = (float(v) for v in bbox)
    if x < -1 or y < -1 or x + w > width + 1 or y + h > height + 1:
      raise AnnotationError(f"{where}: bbox {bbox} leaves the {width}x"
                            f"{height} image")
    objects[ann["image_id"]].append(
        ([x / width, y / height, (x + w) / width, (y + h) / height],
         class_names.index(name), bool(ann.get("iscrowd", 0))))
  records = []
  for image_id, image in images.items():
    boxes, classes, crowd = zip(*objects[image_id]) if objects[image_id] else (
        (), (), ())
    records.append({
        "id": str(image_id),
        "image_path": dataset_path(image_dir, image["file_name"],
                                   f"{path}: image id {image_id}",
                                   allow_outside),
        "boxes": np.clip(np.array(boxes, np.float32).reshape(-1, 4), 0, 1),
        "classes": np.array(classes, np.int32),
        "difficult": np.array(crowd, bool),
        "expected_hw": ((int(image["height"]), int(image["width"]))
                        if image.get("height") and image.get("width")
                        else None),
        "annotation": f"{path} image {image_id}",
    })
  return records
