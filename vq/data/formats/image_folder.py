"""The image-folder layout of classification data (torchvision's
ImageFolder, Keras' image_dataset_from_directory):

  root/<class>/*.jpg                  split per class by a seeded fraction
  root/train/<class>/*.jpg            or split folders as given:
  root/val/<class>/*.jpg              train and data.eval_split
"""
import os

import numpy as np

from vq.data.images import find_images


def _class_folders(folder, class_names):
  """{class index: sorted image paths} of `folder`/<class>/."""
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"image folder not found: {folder}")
  found = sorted(n for n in os.listdir(folder)
                 if os.path.isdir(os.path.join(folder, n)))
  unknown = [n for n in found if n not in class_names]
  if unknown:
    raise ValueError(f"{folder}: class folders {unknown} are not in "
                     f"data.class_names {tuple(class_names)}")
  missing = [n for n in class_names if n not in found]
  if missing:
    raise FileNotFoundError(f"{folder}: no folder for the classes {missing} "
                            f"(expected {folder}/<class>/*.jpg)")
  files = {}
  for k, name in enumerate(class_names):
    files[k] = find_images(os.path.join(folder, name))
    if not files[k]:
      raise FileNotFoundError(f"{os.path.join(folder, name)}: no images")
  return files


def _records(files, pick=None):
  return [{"image_path": path, "label": k}
          for k, paths in files.items()
          for i, path in enumerate(paths) if pick is None or pick(k, i)]


def read_image_folder(root, class_names, eval_split="val",
                      validation_fraction=0.2, seed=0):
  """(train records, eval records): {'image_path', 'label'} each.

  With `root/train/` the split folders are used as they are; otherwise
  every class is split alone, `validation_fraction` of it (at least one
  image) held out, chosen by `seed`.
  """
  if os.path.isdir(os.path.join(root, "train")):
    return (_records(_class_folders(os.path.join(root, "train"),
                                    class_names)),
            _records(_class_folders(os.path.join(root, eval_split),
                                    class_names)))
  files = _class_folders(root, class_names)
  held_out = {}
  for k, paths in files.items():
    if len(paths) < 2:
      raise ValueError(f"{os.path.join(root, class_names[k])}: one image "
                       "cannot be split into train and eval")
    n = min(max(1, int(round(validation_fraction * len(paths)))),
            len(paths) - 1)
    order = np.random.default_rng([seed, k]).permutation(len(paths))
    held_out[k] = set(order[:n].tolist())
  return (_records(files, lambda k, i: i not in held_out[k]),
          _records(files, lambda k, i: i in held_out[k]))
