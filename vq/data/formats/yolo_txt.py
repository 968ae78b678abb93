"""YOLO txt detection folders: images/ beside labels/ with the same stems.

Each label line is `class cx cy w h`, coordinates normalised to [0, 1]. An
image without a label file has no objects.
"""
import io
import os

import numpy as np

from vq.data.images import find_images
from vq.data.errors import AnnotationError, read_text


def parse_yolo_txt(path, num_classes):
  """Reads one label file -> (boxes [K, 4] normalised x1y1x2y2, classes [K])."""
  boxes, classes = [], []
  with io.StringIO(read_text(path)) as f:
    for line_no, line in enumerate(f, 1):
      fields = line.split()
      if not fields:
        continue
      where = f"{path}:{line_no}"
      if len(fields) != 5:
        raise AnnotationError(
            f"{where}: expected 5 fields 'class cx cy w h', got {len(fields)}")
      try:
        cls = int(fields[0])
        cx, cy, w, h = (float(v) for v in fields[1:])
      except ValueError:
        raise AnnotationError(
            f"{where}: expected an integer class and 4 numbers, got "
            f"{line.strip()!r}") from None
      if not 0 <= cls < num_classes:
        raise AnnotationError(
            f"{where}: class {cls} outside 0..{num_classes - 1}")
      if not (0 <= cx <= 1 and 0 <= cy <= 1 and 0 < w <= 1 and 0 < h <= 1):
        raise AnnotationError(
            f"{where}: cx, cy must be in [0, 1] and w, h in (0, 1] "
            f"(normalised), got {cx} {cy} {w} {h}")
      boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
      classes.append(cls)
  return (np.clip(np.array(boxes, np.float32).reshape(-1, 4), 0, 1),
          np.array(classes, np.int32))


def read_yolo_txt(root, num_classes):
  """Reads ROOT/images + ROOT/labels into annotation records."""
  images = find_images(os.path.join(root, "images"))
  if not images:
    raise FileNotFoundError(f"YOLO folder {root}: no images in images/")
  records = []
  for image_path in images:
    stem = os.path.splitext(os.path.basename(image_path))[0]
    label = os.path.join(root, "labels", f"{stem}.txt")
    if os.path.isfile(label):
      boxes, classes = parse_yolo_txt(label, num_classes)
    else:
      boxes, classes = np.zeros((0, 4), np.float32), np.zeros(0, np.int32)
    records.append({"id": stem, "image_path": image_path, "boxes": boxes,
                    "classes": classes})
  return records
