"""Ultralytics dataset YAML (`data.yaml`): where a YOLO txt dataset's
images are and what its classes are called.

  path: ../datasets/parts     # root; relative to the YAML file's folder
  train: images/train         # a folder, a .txt list of images, or a list
  val: images/val
  names: {0: nut, 1: washer}  # or a list

Labels follow Ultralytics' rule: the image path with its last `/images/`
replaced by `/labels/` and the extension by `.txt` (`class cx cy w h`,
normalised). An image without a label file has no objects.
"""
import os

import numpy as np

from vq.data.errors import AnnotationError, read_text
from vq.data.images import IMAGE_EXTENSIONS, find_images
from vq.data.formats.yolo_txt import parse_yolo_txt


def load_yaml(path):
  """-> (the parsed YAML, the dataset root, class names)."""
  import yaml  # pylint: disable=g-import-not-at-top
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Ultralytics dataset YAML not found: {path}")
  try:
    data = yaml.safe_load(read_text(path))
  except yaml.YAMLError as e:
    raise AnnotationError(f"{path}: not valid YAML ({e})") from None
  if not isinstance(data, dict) or "names" not in data:
    raise AnnotationError(f"{path}: expected a mapping with 'names' (and "
                          f"'train', 'val')")
  names = data["names"]
  if isinstance(names, dict):
    if sorted(names) != list(range(len(names))):
      raise AnnotationError(f"{path}: names must be numbered 0..N-1, got "
                            f"{sorted(names)}")
    names = [names[i] for i in range(len(names))]
  folder = os.path.dirname(os.path.abspath(path))
  root = os.path.join(folder, str(data.get("path") or ""))
  return data, os.path.normpath(root), tuple(str(n) for n in names)


def check_class_names(path, class_names):
  """The YAML's names must be `data.class_names` (the model's outputs are
  fixed by the config, before any file is read)."""
  _, _, names = load_yaml(path)
  if tuple(class_names) != names:
    raise ValueError(f"{path} names the classes {names}; set "
                     f"data.class_names to them (it is "
                     f"{tuple(class_names)})")


def _image_paths(entry, root, path, split):
  entries = entry if isinstance(entry, list) else [entry]
  images = []
  for e in entries:
    full = os.path.normpath(os.path.join(root, str(e)))
    if os.path.isdir(full):
      images += find_images(full)
    elif full.endswith(".txt") and os.path.isfile(full):
      base = os.path.dirname(full)
      images += [os.path.normpath(os.path.join(base, line.strip()))
                 for line in read_text(full).splitlines() if line.strip()]
    elif full.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(full):
      images.append(full)
    else:
      raise FileNotFoundError(f"{path}: {split}: {full} is not a folder, an "
                              f"image list or an image")
  if not images:
    raise FileNotFoundError(f"{path}: {split}: no images")
  return images


def label_path(image_path):
  """Ultralytics' img2label_paths for one image."""
  head, sep, tail = image_path.rpartition(f"{os.sep}images{os.sep}")
  if not sep:
    raise AnnotationError(f"{image_path}: not under an 'images' folder, so "
                          f"it has no labels folder")
  return os.path.splitext(f"{head}{os.sep}labels{os.sep}{tail}")[0] + ".txt"


def read_ultralytics(path, split):
  """The `split` ('train' or 'val') of the dataset a data.yaml describes ->
  records {id, image_path, boxes, classes}."""
  data, root, names = load_yaml(path)
  if split not in data:
    raise AnnotationError(f"{path}: no '{split}' entry")
  records = []
  for image_path in _image_paths(data[split], root, path, split):
    label = label_path(image_path)
    if os.path.isfile(label):
      boxes, classes = parse_yolo_txt(label, len(names))
    else:
      boxes, classes = np.zeros((0, 4), np.float32), np.zeros(0, np.int32)
    records.append({"id": os.path.splitext(os.path.basename(image_path))[0],
                    "image_path": image_path, "boxes": boxes,
                    "classes": classes})
  return records
