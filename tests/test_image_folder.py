"""The image-folder layout for classification, on JPEG and PNG files of odd
sizes, as torchvision's ImageFolder reads it."""
import os
import sys

import cv2
import numpy as np
import pytest

from vq.data import classification
from vq.data.formats.image_folder import read_image_folder

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from configs import gate  # noqa: E402


def _photo(path, h, w, value):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  image = np.full((h, w, 3), value, np.uint8)
  image[h // 3:, :, 0] = 255 - value
  assert cv2.imwrite(str(path), image)


def _flat_tree(root, counts):
  for name, n in counts.items():
    for i in range(n):
      ext = ".JPG" if i % 2 else ".png"
      _photo(root / name / f"IMG_{i:04d}{ext}", 37 + i, 53, 30 * len(name))
  (root / "clean" / "notes.txt").write_text("not an image")


def test_flat_layout_is_split_per_class(tmp_path):
  _flat_tree(tmp_path, {"clean": 10, "damaged": 5})
  train, eval_ = read_image_folder(str(tmp_path), ("clean", "damaged"),
                                   validation_fraction=0.2, seed=3)
  labels = lambda records: sorted(r["label"] for r in records)
  assert labels(eval_) == [0, 0, 1]          # 20 % of 10, of 5
  assert labels(train) == [0] * 8 + [1] * 4
  paths = {r["image_path"] for r in train} | {r["image_path"] for r in eval_}
  assert len(paths) == 15 and not any(p.endswith(".txt") for p in paths)
  again = read_image_folder(str(tmp_path), ("clean", "damaged"),
                            validation_fraction=0.2, seed=3)[1]
  assert eval_ == again


def test_split_folders_and_the_config_read_them(tmp_path):
  for split, n in (("train", 3), ("val", 2)):
    _flat_tree(tmp_path / split, {"clean": n, "damaged": n})
  config = gate.get_config("variant=test")
  config.data.source = "image_folder"
  config.data.path = str(tmp_path)
  data = classification.datasets(config.data)
  assert (len(data.train), len(data.eval)) == (6, 4)
  record = data.eval_transform(data.eval[3])
  assert record["image"].shape == (32, 32, 3) and record["label"] == 1
  augmented = data.train_transform(data.train[0], np.random.default_rng(0))
  assert augmented["image"].shape == (32, 32, 3)


def test_layout_errors_name_the_folder(tmp_path):
  _flat_tree(tmp_path, {"clean": 3, "damaged": 3, "dented": 2})
  with pytest.raises(ValueError, match=r"\['dented'\] are not in"):
    read_image_folder(str(tmp_path), ("clean", "damaged"))
  with pytest.raises(FileNotFoundError, match=r"no folder for the classes "
                     r"\['scratched'\]"):
    read_image_folder(str(tmp_path), ("clean", "damaged", "dented",
                                      "scratched"))
  empty = tmp_path / "empty"
  (empty / "clean").mkdir(parents=True)
  _flat_tree(empty, {"damaged": 2})
  with pytest.raises(FileNotFoundError, match="empty/clean: no images"):
    read_image_folder(str(empty), ("clean", "damaged"))
  with pytest.raises(FileNotFoundError, match="image folder not found"):
    read_image_folder(str(tmp_path / "missing"), ("clean",))


def test_embedded_sources_refuse_other_class_names():
  config = gate.get_config("variant=test")
  config.data.class_names = ("ok", "scratch", "dent")
  with pytest.raises(ValueError, match="draws the classes .'clean', 'damaged'."):
    classification.datasets(config.data)
  config.data.class_names = ("clean", "damaged")
  data = classification.datasets(config.data)
  labels = {int(data.eval_transform(data.eval[i])["label"])
            for i in range(len(data.eval))}
  assert labels == {0, 1}
