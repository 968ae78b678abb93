"""Polygon annotations exported by labelling tools, as the damage format's
records (`segmentation_readers.read_polygon_json`'s): regions of
{"points": [[x, y], ...], "class_name": 1..C} per image.

- Labelme: a folder of per-image JSON files, each
  {"imagePath": ..., "imageHeight": H, "imageWidth": W,
   "shapes": [{"label": ..., "points": [[x, y], ...],
               "shape_type": "polygon"}, ...]}
  with the image beside it (or where `imagePath` says, relative to the JSON,
  or to `image_dir` where the images lie in a folder of their own).
- CVAT for images 1.1: annotations.xml with
  <image name=... width=... height=...><polygon label=...
  points="x1,y1;x2,y2;..."/></image>, images in a folder.

Labels map to classes by name (`data.class_names`); a label that is not a
class is an error naming the file, unless listed in `ignore_labels`. Shapes
other than polygons (rectangles become 4-point polygons) are refused.
"""
import os
import xml.etree.ElementTree as ET

from vq.data.errors import AnnotationError, read_json, read_text
from vq.data.paths import dataset_path


def _region(label, points, class_names, ignore_labels, where):
  """-> a damage-format region, or None for an ignored label."""
  if label in ignore_labels:
    return None
  if label not in class_names:
    raise AnnotationError(f"{where}: label {label!r} is not one of "
                          f"{list(class_names)} (data.class_names)")
  if len(points) < 3:
    raise AnnotationError(f"{where}: a polygon needs 3 or more points, got "
                          f"{len(points)}")
  return {"points": [[float(x), float(y)] for x, y in points],
          "class_name": class_names.index(label) + 1}


def _record(image_path, regions, num_classes, where):
  if not os.path.isfile(image_path):
    raise FileNotFoundError(f"{where}: image not found: {image_path}")
  regions = [r for r in regions if r is not None]
  return {"image_path": image_path, "regions": regions,
          "label": int(bool(regions)), "num_classes": num_classes,
          "where": where}


def _labelme_points(shape, where):
  kind = shape.get("shape_type") or "polygon"
  points = shape.get("points", [])
  if kind == "rectangle" and len(points) == 2:
    (x1, y1), (x2, y2) = points
    return [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]
  if kind != "polygon":
    raise AnnotationError(f"{where}: shape_type {kind!r}; expected polygon "
                          f"or rectangle")
  return points


def read_labelme(folder, class_names, ignore_labels=(), allow_outside=False,
                 image_dir=None):
  """A folder of Labelme JSON files -> polygon records (each `imagePath`
  relative to `image_dir` if given, else to the JSON's folder)."""
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"Labelme folder not found: {folder}")
  files = sorted(f for f in os.listdir(folder) if f.endswith(".json"))
  if not files:
    raise FileNotFoundError(f"Labelme folder {folder}: no .json files")
  class_names = list(class_names)
  records = []
  for name in files:
    path = os.path.join(folder, name)
    data = read_json(path)
    if not isinstance(data, dict) or "imagePath" not in data:
      raise AnnotationError(f"{path}: expected a Labelme file with "
                            f"imagePath and shapes")
    regions = []
    for i, shape in enumerate(data.get("shapes", [])):
      where = f"{path} shape {i}"
      regions.append(_region(shape.get("label"), _labelme_points(shape, where),
                             class_names, ignore_labels, where))
    image_path = dataset_path(image_dir or folder,
                              data["imagePath"].replace("\\", "/"),
                              path, allow_outside)
    record = _record(image_path, regions, len(class_names), path)
    record["expected_hw"] = (data.get("imageHeight"), data.get("imageWidth"))
    records.append(record)
  return records


def read_cvat(path, image_dir, class_names, ignore_labels=(),
              allow_outside=False):
  """A CVAT for images 1.1 annotations.xml -> polygon records."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"CVAT annotations not found: {path}")
  try:
    root = ET.fromstring(read_text(path))
  except ET.ParseError as e:
    raise AnnotationError(f"{path}: not valid XML ({e})") from None
  class_names = list(class_names)
  records = []
  for image in root.iter("image"):
    name = image.get("name")
    if not name:
      raise AnnotationError(f"{path}: an <image> without a name")
    regions = []
    for i, polygon in enumerate(image.findall("polygon")):
      where = f"{path} image {name} polygon {i}"
      try:
        points = [tuple(float(v) for v in p.split(","))
                  for p in polygon.get("points", "").split(";") if p]
      except ValueError:
        raise AnnotationError(f"{where}: points must be 'x,y;x,y;...', got "
                              f"{polygon.get('points')!r}") from None
      regions.append(_region(polygon.get("label"), points, class_names,
                             ignore_labels, where))
    record = _record(dataset_path(image_dir, name, f"{path} image {name}",
                                  allow_outside), regions,
                     len(class_names), f"{path} image {name}")
    record["expected_hw"] = (int(image.get("height", 0)),
                             int(image.get("width", 0)))
    records.append(record)
  if not records:
    raise AnnotationError(f"{path}: no <image> elements")
  return records
