"""Severstal CSV, polygon JSON and mask-folder readers; the stratified split."""
import json
import os
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT
from vq.data.embedded import synthetic_car
from vq.data.formats import rle, segmentation_readers as readers
from vq.data.errors import AnnotationError
from vq.data.images import write_image
from vq.data.augment.geometry import augment_kwargs
from vq.data.augment.mask_augment import random_crop, resize_and_augment
from vq.data.segmentation import MaskTransform
from vq.data.sources import report_resize

sys.path.insert(0, ROOT)
from configs import unet_steel  # noqa: E402


def _images(folder, names, hw=(8, 20)):
  os.makedirs(folder, exist_ok=True)
  for n in names:
    write_image(os.path.join(folder, n), np.full((*hw, 3), 100, np.uint8))


def _mask(hw=(8, 20), rows=slice(2, 5), cols=slice(3, 9)):
  m = np.zeros(hw, bool)
  m[rows, cols] = True
  return m


def test_severstal_long_form(tmp_path):
  _images(tmp_path / "img", ["a.jpg", "b.jpg", "clean.jpg"])
  m = _mask()
  (tmp_path / "train.csv").write_text(
      "ImageId,ClassId,EncodedPixels\n"
      f"a.jpg,3,{rle.encode(m)}\n"
      f"b.jpg,1,{rle.encode(~m)}\n")
  records = readers.read_severstal_csv(str(tmp_path / "train.csv"),
                                       str(tmp_path / "img"))
  assert [os.path.basename(r["image_path"]) for r in records] == [
      "a.jpg", "b.jpg", "clean.jpg"]
  source = readers.SegmentationImages(records)
  a, b, clean = source[0], source[1], source[2]
  assert a["mask"].shape == (8, 20, 4)
  np.testing.assert_array_equal(a["mask"][..., 2], m)
  assert a["mask"][..., [0, 1, 3]].sum() == 0 and a["label"] == 1
  np.testing.assert_array_equal(b["mask"][..., 0], ~m)
  assert clean["mask"].sum() == 0 and clean["label"] == 0


def test_severstal_wide_form(tmp_path):
  _images(tmp_path / "img", ["a.jpg"])
  m = _mask()
  rows = "".join(f"a.jpg_{k},{rle.encode(m) if k == 2 else ''}\n"
                 for k in range(1, 5))
  (tmp_path / "train.csv").write_text("ImageId_ClassId,EncodedPixels\n" + rows)
  records = readers.read_severstal_csv(str(tmp_path / "train.csv"),
                                       str(tmp_path / "img"))
  mask = readers.SegmentationImages(records)[0]["mask"]
  np.testing.assert_array_equal(mask[..., 1], m)
  assert mask.sum() == m.sum()


def test_severstal_errors_name_the_place(tmp_path):
  _images(tmp_path / "img", ["a.jpg"])
  csv = tmp_path / "train.csv"
  csv.write_text("ImageId,ClassId,EncodedPixels\na.jpg,7,1 3\n")
  with pytest.raises(AnnotationError, match=r"train.csv:2: ClassId '7'"):
    readers.read_severstal_csv(str(csv), str(tmp_path / "img"))
  csv.write_text("ImageId,ClassId,EncodedPixels\na.jpg,1,150 20\n")
  records = readers.read_severstal_csv(str(csv), str(tmp_path / "img"))
  with pytest.raises(AnnotationError, match=r"a.jpg: class 1: run 0 .* past"):
    readers.SegmentationImages(records)[0]
  csv.write_text("Image,Class\n")
  with pytest.raises(AnnotationError, match="expected columns"):
    readers.read_severstal_csv(str(csv), str(tmp_path / "img"))


def test_submission_round_trip(tmp_path):
  _images(tmp_path / "img", ["a.jpg"])
  masks = np.zeros((8, 20, 4), bool)
  masks[..., 1] = _mask()
  masks[..., 3] = _mask(rows=slice(0, 8), cols=slice(15, 17))
  readers.write_severstal_csv(str(tmp_path / "sub.csv"), {"a.jpg": masks})
  records = readers.read_severstal_csv(str(tmp_path / "sub.csv"),
                                       str(tmp_path / "img"))
  np.testing.assert_array_equal(
      readers.SegmentationImages(records)[0]["mask"].astype(bool), masks)


def test_polygon_json_reader(tmp_path):
  path = synthetic_car.write_dataset(str(tmp_path), 6, seed=3, image_size=64)
  records = readers.read_polygon_json(path, str(tmp_path / "images"))
  source = readers.SegmentationImages(records)
  for i in range(6):
    expected = synthetic_car.generate(3, i, 64)
    got = source[i]
    np.testing.assert_array_equal(got["mask"], expected["mask"])
    assert got["label"] == expected["label"]


def test_polygon_json_errors(tmp_path):
  _images(tmp_path / "img", ["p.png"])
  path = tmp_path / "a.json"
  path.write_text(json.dumps([{"image_id": "p.png", "regions": [
      {"points": [[0, 0], [5, 0]], "class_name": 1}]}]))
  records = readers.read_polygon_json(str(path), str(tmp_path / "img"))
  with pytest.raises(ValueError, match=r"a.json record 0 \(p.png\): region 0 "
                                       r"needs at least 3"):
    readers.SegmentationImages(records)[0]
  path.write_text(json.dumps([{"image_id": "missing"}]))
  with pytest.raises(FileNotFoundError, match="a.json record 0: no image"):
    readers.read_polygon_json(str(path), str(tmp_path / "img"))
  path.write_text(json.dumps([{"image_id": "p.png", "damage_level": 3}]))
  with pytest.raises(AnnotationError, match="damage_level must be 0 or 1"):
    readers.read_polygon_json(str(path), str(tmp_path / "img"))


def test_mask_folder(tmp_path):
  _images(tmp_path / "img", ["x.jpg", "y.jpg"])
  os.makedirs(tmp_path / "masks")
  cv2.imwrite(str(tmp_path / "masks" / "x.png"), _mask().astype(np.uint8) * 255)
  cv2.imwrite(str(tmp_path / "masks" / "y.png"), np.zeros((9, 20), np.uint8))
  records = readers.read_mask_folder(str(tmp_path / "img"),
                                     str(tmp_path / "masks"))
  source = readers.SegmentationImages(records)
  np.testing.assert_array_equal(source[0]["mask"][..., 0], _mask())
  with pytest.raises(AnnotationError, match=r"y.png: mask is 20x9, its image "
                                            r".*y.jpg is 20x8"):
    source[1]
  os.remove(tmp_path / "masks" / "y.png")
  with pytest.raises(FileNotFoundError, match="y.jpg: no mask"):
    readers.read_mask_folder(str(tmp_path / "img"), str(tmp_path / "masks"))


def test_stratified_split_balances_label_and_area():
  rng = np.random.default_rng(0)
  n = 1000
  labels = (rng.random(n) < 0.3).astype(int)
  area = np.where(labels == 1, rng.exponential(0.05, n), 0.0)
  records = [{"label": int(l)} for l in labels]
  train, val, test = readers.stratified_split(records, area, seed=1)
  assert sorted(train + val + test) == list(range(n))
  assert (len(train), len(val), len(test)) == (800, 100, 100)
  # Each part holds its share (within 2) of every area tercile.
  terciles = np.quantile(area[labels == 1], [1 / 3, 2 / 3])
  bins = np.where(labels == 1, 1 + np.searchsorted(terciles, area), 0)
  for part, share in zip((train, val, test), (0.8, 0.1, 0.1)):
    for b in range(4):
      assert abs(np.sum(bins[part] == b) - share * np.sum(bins == b)) <= 2
  again = readers.stratified_split(records, area, seed=1)
  assert again == [train, val, test]
  assert readers.stratified_split(records, area, seed=2)[1] != val


def test_augment_moves_mask_with_image():
  image = np.zeros((40, 60, 3), np.uint8)
  mask = np.zeros((40, 60, 2), np.uint8)
  image[10:20, 5:25] = 255
  mask[10:20, 5:25, 1] = 1
  rng = np.random.default_rng(0)
  for _ in range(10):
    r = resize_and_augment({"image": image, "mask": mask, "label": 1},
                           (32, 48), rng, scale_range=0.3, shift_range=0.2,
                           flip=True, flip_vertical=True)
    assert r["mask"].shape == (32, 48, 2) and r["image"].shape == (32, 48, 3)
    bright = r["image"][..., 0] > 127
    assert np.mean(bright == r["mask"][..., 1].astype(bool)) > 0.98
  with pytest.raises(ValueError, match="mask is 60x39 but its image is 60x40"):
    resize_and_augment({"image": image, "mask": mask[:39]}, 32)


def test_defect_crops_contain_a_defect_of_each_class_alike():
  image = np.zeros((40, 300, 3), np.uint8)
  mask = np.zeros((40, 300, 2), np.uint8)
  mask[10:12, 250:290, 0] = 1     # a large class-1 region at the right
  mask[30, 20, 1] = 1             # one class-2 pixel at the left
  record = {"image": image, "mask": mask}
  rng = np.random.default_rng(0)
  seen = np.zeros(2)
  for _ in range(200):
    crop = random_crop(record, (32, 64), rng, defect_share=1.0)
    assert crop["image"].shape == (32, 64, 3)
    assert crop["mask"].shape == (32, 64, 2) and crop["mask"].any()
    seen += crop["mask"].any((0, 1))
  assert 70 < seen[1] < 130       # the single pixel: about half the crops
  uniform = [random_crop(record, (32, 64), rng)["mask"].any()
             for _ in range(200)]
  assert np.mean(uniform) < 0.5
  # The image's label holds for a crop only where the crop holds a defect.
  labelled = dict(record, label=np.int32(1))
  crops = [random_crop(labelled, (32, 64), rng) for _ in range(50)]
  assert {(int(c["label"]), bool(c["mask"].any())) for c in crops} == {
      (0, False), (1, True)}
  # With label channels, a crop holding only the other class is clean.
  crops = [random_crop(labelled, (32, 64), rng, 1.0, label_channels=(1,))
           for _ in range(50)]
  assert {(int(c["label"]), bool(c["mask"][..., 1].any())) for c in crops} == {
      (0, False), (1, True)}
  small = random_crop({"image": image[:20, :30], "mask": mask[:20, :30]},
                      (32, 64), rng)
  assert small["image"].shape == (32, 64, 3)  # padded with zeros


def test_training_crops_and_native_evaluation():
  transform = MaskTransform((40, 300), ("a", "b"), crop_hw=(32, 64),
                            defect_crop_share=1.0)
  record = {"image": np.full((40, 300, 3), 7, np.uint8),
            "mask": np.zeros((40, 300, 2), np.uint8), "label": 0}
  record["mask"][30, 20, 1] = 1
  train = transform(record, np.random.default_rng(1))
  assert train["image"].shape == (32, 64, 3) and train["mask"].any()
  whole = transform(record)
  assert whole["image"].shape == (40, 300, 3)
  np.testing.assert_array_equal(whole["mask"], record["mask"])


def test_the_severstal_recipe_crops_native_pixels_unresampled():
  augment = augment_kwargs(unet_steel.get_config("data=severstal").data.augment)
  augment.update(brightness=0.0, contrast=0.0)  # geometry alone
  transform = MaskTransform((64, 200), ("a",), crop_hw=(32, 48),
                            augment=augment)
  rng = np.random.default_rng(3)
  image = rng.integers(0, 256, (64, 200, 3), dtype=np.uint8)
  record = {"image": image, "mask": np.zeros((64, 200, 1), np.uint8),
            "label": 0}
  views = [image, image[::-1], image[:, ::-1], image[::-1, ::-1]]
  for _ in range(10):
    crop = transform(record, rng)["image"]
    # An exact window of the image or of a flipped copy: no pixel blended.
    assert any(
        (np.lib.stride_tricks.sliding_window_view(v, crop.shape) ==
         crop).all(axis=(-3, -2, -1)).any() for v in views)


def test_the_photo_steel_set_is_read_by_the_severstal_reader(tmp_path):
  from vq.photo_sets import steel as photo_steel
  path = photo_steel.write_set(str(tmp_path), 6, seed=1)
  records = readers.read_severstal_csv(path, str(tmp_path / "train_images"))
  assert len(records) == 6
  source = readers.SegmentationImages(records)
  masks = np.stack([source[i]["mask"] for i in range(6)])
  assert masks.shape == (6, *photo_steel.STRIP_HW, 4)
  # The written JPEG strips hold what was drawn: same generator, same seed.
  rng = np.random.default_rng(1)
  photos = photo_steel.load_photos()
  for i in range(6):
    image, drawn = photo_steel.strip(rng, photos)
    np.testing.assert_array_equal(masks[i], drawn)
    assert np.abs(source[i]["image"].astype(int) - image).mean() < 3


@pytest.mark.parametrize("image_hw,level,message", [
    ((128, 160), "WARNING", "images are 320x240, the model sees 160x128: "
     "2.0x smaller; defects a few pixels wide may vanish: set "
     "data.image_size=(256, 320) (the nearest multiple of 32 the model "
     "accepts) and train on crops"),
    ((256, 320), "INFO", "images are 320x240, the model sees them at "
     "320x256, the nearest multiple of 32 it accepts"),
    ((512, 640), "WARNING", "the model sees them enlarged to 640x512; set "
     "data.image_size=(256, 320)"),
])
def test_the_resize_report_names_the_size_the_model_accepts(
    image_hw, level, message, caplog):
  caplog.set_level("INFO")
  source = [{"image": np.zeros((240, 320, 3), np.uint8)}]
  report_resize(source, image_hw, multiple=32)
  assert [r.levelname for r in caplog.records] == [level]
  assert message in caplog.text
