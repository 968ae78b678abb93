"""Images at their own aspect ratio: letterboxing, metrics over the image's
pixels only, and predictions mapped back to the original pixels."""
import json
import sys

import cv2
import numpy as np
import pytest

sys.path.insert(0, ".")
from configs import draem, unet_damage  # noqa: E402
from conftest import wide_anomaly_tree  # noqa: E402
from vq.data import anomaly as anomaly_data  # noqa: E402
from vq.data.augment import letterbox# noqa: E402
from vq.data.formats import rle# noqa: E402
from vq.data.segmentation import MaskTransform  # noqa: E402
from vq.metrics.anomaly import aupro, pixel_metrics  # noqa: E402
from vq.tasks.anomaly import AnomalyTask  # noqa: E402
from vq.tasks.segmentation import SegmentationTask  # noqa: E402


@pytest.mark.parametrize("in_hw,out_hw,box", [
    ((100, 300), (64, 64), (21, 0, 21, 64)),    # 300 -> 64: 100 -> 21.3
    ((300, 100), (64, 64), (0, 21, 64, 21)),
    ((121, 600), (256, 256), (102, 0, 52, 256)),  # 121 * 256/600 = 51.6
    ((64, 64), (64, 64), (0, 0, 64, 64)),
    ((20, 30), (64, 64), (10, 0, 43, 64)),      # enlarged: 20 * 64/30 = 42.7
    ((256, 1600), (128, 400), (32, 0, 64, 400)),  # not square
])
def test_fit_box_hand_worked(in_hw, out_hw, box):
  assert letterbox.fit_box(in_hw, out_hw) == box


@pytest.mark.parametrize("side,ratio,hw", [
    (256, 1.0, (256, 256)),
    (256, 2.44, (160, 384)),  # 256 / 1.562 = 163.9 -> 160; 390.4 -> 384
    (256, 2.6, (160, 416)),   # 158.8 -> 160; 416 -> 416
    (256, 0.5, (384, 192)),   # upright: 181.0 -> 192; 384
    (128, 1.4, (96, 128)),    # 108.2 -> 96; 134.4 -> 128
    (32, 8.0, (32, 256)),     # at least one multiple: 11.3 -> 32
])
def test_aspect_shape_hand_worked(side, ratio, hw):
  assert anomaly_data.aspect_shape(side, ratio) == hw


def test_letterbox_keeps_the_aspect_ratio_and_reflects_the_margins():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 255, (10, 40, 3), np.uint8)
  out = letterbox.letterbox(image, (32, 32))
  assert out.shape == (32, 32, 3)
  # 40 -> 32 wide, 10 -> 8 high, 12 rows above and below.
  inner = cv2.resize(image, (32, 8), interpolation=cv2.INTER_AREA)
  np.testing.assert_array_equal(out[12:20], inner)
  # Reflected about the edge row (the edge itself not repeated).
  np.testing.assert_array_equal(out[11], inner[1])
  np.testing.assert_array_equal(out[20], inner[6])
  np.testing.assert_array_equal(out[5:12], inner[7:0:-1])
  assert letterbox.valid_mask((10, 40), (32, 32)).sum() == 8 * 32
  constant = letterbox.letterbox(image[..., 0], (32, 32), fill=7)
  assert constant.shape == (32, 32)
  assert (constant[:12] == 7).all() and (constant[20:] == 7).all()


def test_predictions_map_back_to_the_original_pixels():
  """A region drawn at the model's shape lands where the image is."""
  h, w = 90, 360                      # into 64x64: 16 rows high, at row 24
  model = np.zeros((64, 64), np.uint8)
  model[24:40, 16:32] = 1             # the image's columns 90..180, all rows
  back = letterbox.to_original(model, (h, w), True, cv2.INTER_NEAREST)
  expected = np.zeros((h, w), np.uint8)
  expected[:, 90:180] = 1
  np.testing.assert_array_equal(back, expected)
  stretched = letterbox.to_original(model, (h, w), False, cv2.INTER_NEAREST)
  assert stretched[:, 90:180].mean() < 0.5   # the stretch reads other rows


def test_pixel_metrics_count_only_valid_pixels():
  from sklearn.metrics import average_precision_score, roc_auc_score
  rng = np.random.default_rng(2)
  masks = np.zeros((3, 20, 20), np.uint8)
  masks[0, 8:12, 3:9] = 1
  masks[2, 6:10, 10:18] = 1
  maps = rng.random(masks.shape) + 0.5 * masks
  valid = np.zeros_like(masks)
  valid[:, 5:15] = 1                  # a letterboxed band of rows
  maps[valid == 0] = 5.0              # margins scored high would count
  m = pixel_metrics(maps, masks, valid=valid)
  kept = valid.astype(bool)
  assert m["pixel_auroc"] == pytest.approx(
      roc_auc_score(masks[kept], maps[kept]), abs=1e-12)
  assert m["pixel_ap"] == pytest.approx(
      average_precision_score(masks[kept], maps[kept]), abs=1e-12)
  assert m["aupro"] == pytest.approx(aupro(maps[:, 5:15], masks[:, 5:15]),
                                     abs=1e-12)
  assert pixel_metrics(maps, masks)["pixel_auroc"] < m["pixel_auroc"] - 0.1
  with pytest.raises(ValueError, match="valid pixels"):
    pixel_metrics(maps, masks, valid=valid[:, :10])


def test_anomaly_test_images_are_letterboxed_with_their_valid_pixels():
  transform = anomaly_data.TestTransform(32, 64, ("cat",), ("crack",),
                                         keep_aspect=True)
  image = np.full((40, 160, 3), 90, np.uint8)
  mask = np.zeros((40, 160), np.uint8)
  mask[10:20, 80:120] = 1
  out = transform({"image": image, "mask": mask, "label": np.int32(1),
                   "category": "cat", "defect_type": "crack"})
  # 160 -> 64 wide (2.5x smaller), 40 -> 16 high at row 24.
  np.testing.assert_array_equal(np.flatnonzero(out["valid"].any(1)),
                                np.arange(24, 40))
  assert out["image"].shape == (64, 64, 3) and (out["image"] == 90).all()
  np.testing.assert_array_equal(np.argwhere(out["mask"]).min(0), [28, 32])
  np.testing.assert_array_equal(np.argwhere(out["mask"]).max(0), [31, 47])
  stretched = anomaly_data.TestTransform(32, 64, ("cat",), ("crack",))(
      {"image": image, "mask": mask, "label": np.int32(1), "category": "cat",
       "defect_type": "crack"})
  assert stretched["valid"].all()


def test_anomaly_records_are_in_the_original_pixels():
  config = draem.get_config("variant=test")
  config.data.keep_aspect = True
  config.eval.scoring = "baseline"     # regions where DRAEM's map >= 0.5
  task = AnomalyTask(config)
  side = task.score_size
  image = np.full((50, 200, 3), 128, np.uint8)
  assert task.resize_input(image).shape == (side, side, 3)
  top, left, height, width = letterbox.fit_box((50, 200), (side, side))
  anomaly_map = np.zeros((side, side), np.float32)
  anomaly_map[top:top + height, left + width // 2:] = 0.9
  record = task.to_record({"map": anomaly_map, "score": 0.9}, (50, 200))
  region = rle.decode(record["region"], (50, 200))
  expected = np.zeros((50, 200), np.uint8)
  expected[:, 100:] = 1
  np.testing.assert_array_equal(region, expected)
  assert np.asarray(record["map"]).shape == (height, width)
  drawn = task.draw(image, record)
  assert drawn.shape == image.shape


def test_segmentation_predicts_in_the_original_pixels():
  config = unet_damage.get_config("variant=test")
  config.data.keep_aspect = True
  task = SegmentationTask(config)
  h, w = task.image_hw
  image = np.full((h, 3 * w, 3), 60, np.uint8)      # three times too wide
  fitted = task.resize_input(image)
  assert fitted.shape[:2] == (h, w)
  top, left, height, width = letterbox.fit_box((h, 3 * w), (h, w))
  masks = np.zeros((h, w, task.num_classes), bool)
  masks[top:top + height, left:left + width // 3, 0] = True
  record = task.to_record({"masks": masks}, (h, 3 * w))
  decoded = rle.decode(record["masks"][task.class_names[0]], (h, 3 * w))
  assert decoded[:, :w - 3].all() and not decoded[:, w + 3:].any()


def test_segmentation_eval_transform_letterboxes_image_and_mask():
  transform = MaskTransform((32, 64), ("a",), keep_aspect=True)
  image = np.full((32, 32, 3), 200, np.uint8)
  mask = np.ones((32, 32, 1), np.uint8)
  out = transform({"image": image, "mask": mask, "label": 1})
  assert out["image"].shape == (32, 64, 3) and out["mask"].shape == (32, 64, 1)
  assert out["mask"][:, 16:48].all() and not out["mask"][:, :16].any()
  assert (out["image"] == 200).all()   # margins reflect the image


@pytest.mark.slow  # a DRAEM training and prediction: 75 s on 2 cores
def test_draem_at_the_photographs_aspect_ratio(tmp_path):
  """Trains, evaluates over the image's pixels and predicts regions in the
  photographs' own 72x24 pixels."""
  from vq import predict, train
  wide_anomaly_tree(tmp_path / "data")
  config = draem.get_config("variant=test")
  config.data.update({"source": "mvtec", "path": str(tmp_path / "data"),
                      "categories": ("cat",), "keep_aspect": True})
  config.eval.scoring = "baseline"
  summary = train.train_and_evaluate(config, str(tmp_path / "run"))
  assert 0.0 <= summary["eval"]["pixel_auroc"] <= 1.0
  assert 0.0 <= summary["eval"]["cat/bar/pixel_auroc"] <= 1.0
  predict.predict(str(tmp_path / "run"),
                  str(tmp_path / "data" / "cat" / "test" / "bar"),
                  str(tmp_path / "out"), category="cat",
                  progress=open("/dev/null", "w"))
  with open(tmp_path / "out" / "predictions.jsonl") as f:
    records = [json.loads(line) for line in f]
  assert len(records) == 2
  for r in records:
    region = rle.decode(r["region"], (24, 72))
    assert region.sum() == r["region_area"]
    side = config.data.image_size
    top, left, height, width = letterbox.fit_box((24, 72), (side, side))
    assert np.load(tmp_path / "out" / r["map"]).shape == (height, width)


def test_the_memory_scores_wide_photographs_at_their_shape(tmp_path,
                                                          monkeypatch):
  """eval.memory.aspect_ratio=0 (configs/draem.py's memory scorings): the
  training photographs' 72x24 give the ratio 3, recorded in the config;
  the memory scoring reads them at 96x32 (ratio 3 at side 32: the shorter
  side 32 / sqrt(3) = 18.5 -> 32, the longer 3 x 32), evaluates, predicts
  and exports at that shape, no network run. The memory the evaluation
  built is kept in the run and read back by prediction and export, until
  a training file changes."""
  from vq import config_base, export, predict, run_config, train
  from vq.ops import texture_memory
  wide_anomaly_tree(tmp_path / "data")
  config = draem.get_config("variant=test,scoring=memory")
  config.data.update({"source": "mvtec", "path": str(tmp_path / "data"),
                      "categories": ("cat",), "keep_aspect": True})
  assert config.eval.memory.aspect_ratio == 0
  task = AnomalyTask(config)
  assert config.eval.memory.aspect_ratio == 3.0
  assert task.input_shape == (32, 96, 3)
  assert task.resize_input(np.zeros((24, 72, 3), np.uint8)).shape == (32, 96,
                                                                       3)
  summary = train.train_and_evaluate(config, str(tmp_path / "run"))
  stored = run_config.load_config(str(tmp_path / "run"))
  assert stored.eval.memory.aspect_ratio == 3.0
  # Dark bars on noise (letterboxed into a square: pixel AUROC 0.58).
  assert summary["eval"]["image_auroc"] == 1.0
  assert summary["eval"]["pixel_auroc"] > 0.64
  assert len(list((tmp_path / "run" / "memories").glob("*.npz"))) == 1
  def no_build(*unused, **unused_kw):
    raise AssertionError("a memory was built again")
  monkeypatch.setattr(texture_memory, "build_memory", no_build)
  out = tmp_path / "out"
  predict.predict(str(tmp_path / "run"),
                  str(tmp_path / "data" / "cat" / "test" / "bar"), str(out),
                  category="cat", progress=open("/dev/null", "w"))
  with open(out / "predictions.jsonl") as f:
    records = [json.loads(line) for line in f]
  _, _, height, width = letterbox.fit_box((24, 72), (32, 96))
  for r in records:
    assert np.load(out / r["map"]).shape == (height, width)
    assert rle.decode(r["region"], (24, 72)).sum() == r["region_area"] > 0
  meta = export.export_run(str(tmp_path / "run"), "stablehlo",
                           str(tmp_path / "m.stablehlo"), category="cat")
  assert meta["input"]["shape"] == ["batch", 32, 96, 3]
  predict.predict(str(tmp_path / "run"),
                  str(tmp_path / "data" / "cat" / "test" / "bar"),
                  str(tmp_path / "out_hlo"), category="cat",
                  model=str(tmp_path / "m.stablehlo"),
                  progress=open("/dev/null", "w"))
  with open(tmp_path / "out_hlo" / "predictions.jsonl") as f:
    exported = [json.loads(line) for line in f]
  assert [r["score"] for r in exported] == pytest.approx(
      [r["score"] for r in records], rel=1e-4)
  with pytest.raises(ValueError, match="runs no network, so an ONNX file"):
    export.export_run(str(tmp_path / "run"), "onnx", str(tmp_path / "m.onnx"))
  # A training photograph rewritten: the kept memory no longer fits.
  train_file = tmp_path / "data" / "cat" / "train" / "good" / "0.png"
  cv2.imwrite(str(train_file), np.full((24, 72, 3), 120, np.uint8))
  with pytest.raises(AssertionError, match="a memory was built again"):
    predict.predict(str(tmp_path / "run"), str(train_file),
                    str(tmp_path / "out_changed"), category="cat",
                    progress=open("/dev/null", "w"))
  monkeypatch.undo()
  # Built again and kept; a damaged kept memory is built again; a run whose
  # memories/ cannot be written still predicts.
  def run_predict(name):
    return predict.predict(str(tmp_path / "run"), str(train_file),
                           str(tmp_path / name), category="cat",
                           progress=open("/dev/null", "w"))
  run_predict("out_rebuilt")
  for kept in (tmp_path / "run" / "memories").glob("*.npz"):
    kept.write_bytes(b"damaged")
  with monkeypatch.context() as m:
    m.setattr(texture_memory, "build_memory", no_build)
    with pytest.raises(AssertionError, match="a memory was built again"):
      run_predict("out_damaged")
  def unwritable(*unused, **unused_kw):
    raise PermissionError("read-only file system")
  monkeypatch.setattr(np, "savez", unwritable)
  summary = run_predict("out_read_only")
  assert summary["images"] == 1 and not summary["failed"]
  config.eval.scoring = "fused"
  with pytest.raises(config_base.ConfigError, match="adds DRAEM's square"):
    AnomalyTask(config)
  config.eval.scoring = "memory"
  config.eval.memory.aspect_ratio = -1.0
  with pytest.raises(config_base.ConfigError, match="width / height ratio"):
    AnomalyTask(config)
  # The network scorings are square whatever the photographs.
  config.eval.scoring = "baseline"
  config.eval.memory.aspect_ratio = 0.0
  assert AnomalyTask(config).input_shape == (32, 32, 3)
  assert config.eval.memory.aspect_ratio == 1.0
  # An unreadable training file is skipped (the data check reports it).
  (tmp_path / "data" / "cat" / "train" / "good" / "9.png").write_bytes(
      b"not a PNG")
  config.eval.scoring = "memory"
  config.eval.memory.aspect_ratio = 0.0
  assert AnomalyTask(config).input_shape == (32, 96, 3)
  # Photographs of two shapes (one turned upright): no common ratio, a
  # square.
  cv2.imwrite(str(tmp_path / "data" / "cat" / "train" / "good" / "1.png"),
              np.zeros((72, 24, 3), np.uint8))
  config.eval.scoring = "memory"
  config.eval.memory.aspect_ratio = 0.0
  assert AnomalyTask(config).input_shape == (32, 32, 3)
  assert config.eval.memory.aspect_ratio == 1.0


def test_a_bad_training_file_left_out_by_the_data_check(tmp_path,
                                                        monkeypatch):
  """The memory reads the training images the data check kept (it indexed
  the unchecked list, past the end), and prediction reads the memory the
  evaluation kept: the digest names the folder's files, the bad one too."""
  from vq import predict, train
  from vq.ops import texture_memory
  wide_anomaly_tree(tmp_path / "data")
  (tmp_path / "data" / "cat" / "train" / "good" / "9.png").write_bytes(
      b"not a PNG")
  config = draem.get_config("variant=test,scoring=memory")
  config.data.update({"source": "mvtec", "path": str(tmp_path / "data"),
                      "categories": ("cat",)})
  summary = train.train_and_evaluate(config, str(tmp_path / "run"))
  assert 0.0 <= summary["eval"]["pixel_auroc"] <= 1.0
  def no_build(*unused, **unused_kw):
    raise AssertionError("a memory was built again")
  monkeypatch.setattr(texture_memory, "build_memory", no_build)
  result = predict.predict(str(tmp_path / "run"),
                           str(tmp_path / "data" / "cat" / "test" / "bar"),
                           str(tmp_path / "out"), category="cat",
                           progress=open("/dev/null", "w"))
  assert result["images"] == 2 and not result["failed"]


@pytest.mark.parametrize("images, references, level", [
    (100_000, 1, "INFO"),  # every training image there is: a note
    (3, 1, None),          # as many as asked: nothing
    (3, 2, "WARNING"),     # 4 images leave 1 reference of the 2 asked
])
def test_a_memory_short_of_images_says_so_at_its_level(tmp_path, caplog,
                                                      images, references,
                                                      level):
  wide_anomaly_tree(tmp_path / "data")
  config = draem.get_config("variant=test,scoring=memory")
  config.data.update({"source": "mvtec", "path": str(tmp_path / "data"),
                      "categories": ("cat",), "keep_aspect": True})
  config.eval.memory.images = images
  config.eval.reference_images = references
  with caplog.at_level("INFO"):
    AnomalyTask(config).datasets()
  notes = [r.levelname for r in caplog.records
           if "calibrate its maps" in r.getMessage()]
  assert notes == ([level] if level else [])
