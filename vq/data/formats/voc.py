"""Pascal VOC detection folders: Annotations/*.xml beside JPEGImages/.

Layout:
  ROOT/Annotations/<id>.xml
  ROOT/JPEGImages/<filename named in the XML>
  ROOT/ImageSets/Main/<split>.txt   (optional: ids of a split, one per line)
"""
import os
import xml.etree.ElementTree as ET

import numpy as np

from vq.data.errors import AnnotationError, read_text
from vq.data.paths import dataset_path


def _child_text(node, tag, path):
  child = node.find(tag)
  if child is None or child.text is None:
    raise AnnotationError(f"{path}: missing <{tag}> in <{node.tag}>")
  return child.text.strip()


def _number(node, tag, path):
  text = _child_text(node, tag, path)
  try:
    return float(text)
  except ValueError:
    raise AnnotationError(
        f"{path}: <{tag}> must be a number, got {text!r}") from None


def parse_voc_xml(path, class_names):
  """Reads one VOC XML file.

  Returns:
    dict: filename, width, height, boxes float32 [K, 4] normalised
    (x1, y1, x2, y2), classes int32 [K], difficult bool [K].
  """
  try:
    root = ET.parse(path).getroot()
  except ET.ParseError as e:
    raise AnnotationError(f"{path}: not valid XML ({e})") from None
  filename = _child_text(root, "filename", path)
  size = root.find("size")
  if size is None:
    raise AnnotationError(f"{path}: missing <size>")
  width, height = _number(size, "width", path), _number(size, "height", path)
  if width <= 0 or height <= 0:
    raise AnnotationError(f"{path}: image size must be positive, got "
                          f"{width}x{height}")
  boxes, classes, difficult = [], [], []
  for i, obj in enumerate(root.findall("object")):
    name = _child_text(obj, "name", path)
    if name not in class_names:
      raise AnnotationError(
          f"{path}: object {i} has class {name!r}, expected one of "
          f"{list(class_names)}")
    bb = obj.find("bndbox")
    if bb is None:
      raise AnnotationError(f"{path}: object {i} has no <bndbox>")
    x1, y1, x2, y2 = (_number(bb, t, path)
                      for t in ("xmin", "ymin", "xmax", "ymax"))
    if not (0 <= x1 < x2 <= width + 1 and 0 <= y1 < y2 <= height + 1):
      raise AnnotationError(
          f"{path}: object {i} box ({x1}, {y1}, {x2}, {y2}) must satisfy "
          f"0 <= xmin < xmax <= width ({width}) and 0 <= ymin < ymax <= height "
          f"({height})")
    # VOC pixel coordinates are 1-based and inclusive.
    boxes.append([(x1 - 1) / width, (y1 - 1) / height, x2 / width,
                  y2 / height])
    classes.append(class_names.index(name))
    flag = obj.find("difficult")
    difficult.append(flag is not None and (flag.text or "0").strip() == "1")
  return {
      "filename": filename, "width": width, "height": height,
      "boxes": np.clip(np.array(boxes, np.float32).reshape(-1, 4), 0, 1),
      "classes": np.array(classes, np.int32),
      "difficult": np.array(difficult, bool),
  }


def read_voc(root, class_names, split=None, allow_outside=False):
  """Reads a VOC folder into annotation records (images are read lazily).

  Returns:
    list of dicts: id, image_path, boxes, classes, difficult, expected_hw
    (the <size> the boxes were normalised by), annotation (the XML path).
  """
  class_names = list(class_names)
  ann_dir = os.path.join(root, "Annotations")
  if not os.path.isdir(ann_dir):
    raise FileNotFoundError(f"VOC folder {root}: no Annotations/ folder")
  if split:
    split_file = os.path.join(root, "ImageSets", "Main", f"{split}.txt")
    if not os.path.isfile(split_file):
      raise FileNotFoundError(f"VOC split file not found: {split_file}")
    ids = [line.split()[0] for line in read_text(split_file).splitlines()
           if line.strip()]
  else:
    ids = sorted(f[:-4] for f in os.listdir(ann_dir) if f.endswith(".xml"))
  if not ids:
    raise FileNotFoundError(f"VOC folder {root}: no annotations found")
  records = []
  for image_id in ids:
    path = os.path.join(ann_dir, f"{image_id}.xml")
    if not os.path.isfile(path):
      raise FileNotFoundError(f"annotation file not found: {path}")
    ann = parse_voc_xml(path, class_names)
    records.append({
        "id": image_id,
        "image_path": dataset_path(os.path.join(root, "JPEGImages"),
                                   ann["filename"], path, allow_outside),
        "boxes": ann["boxes"], "classes": ann["classes"],
        "difficult": ann["difficult"],
        "expected_hw": (int(ann["height"]), int(ann["width"])),
        "annotation": path,
    })
  return records
