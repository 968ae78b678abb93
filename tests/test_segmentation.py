"""The segmentation task end to end: every config trains and evaluates."""
import os
import sys
import types

import jax
import numpy as np
import pytest

from vq import train
from vq.data.augment import preprocess
from vq.data.embedded import synthetic_car, synthetic_steel
from vq.data.formats import rle
from vq.data.images import write_image
from vq.data.segmentation import MaskTransform
from vq.data.sources import RecordSource
from vq.tasks.segmentation import SegmentationTask

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from configs import unet_damage, unet_scratch, unet_steel  # noqa: E402


@pytest.mark.parametrize("config_module,arg,expected", [
    (unet_steel, "", ["iou/pits", "iou/cracks", "miou", "dice",
                      "image_accuracy"]),
    pytest.param(unet_steel, "model=binary_unet",
                 ["iou/defect", "image_recall"],
                 marks=pytest.mark.slow),  # 13 s; the binary set-up is
                                           # also in unet_scratch's tests
    (unet_damage, "", ["iou/scratch", "iou/dent", "iou/spacing",
                       "image_head_accuracy", "image_head_f1"]),
    # The other architectures' models are checked in
    # test_segmentation_models.py and test_export.py; training them here
    # takes 15-20 s each.
    pytest.param(unet_scratch, "model=unet3plus",
                 ["iou/scratch", "image_head_accuracy"],
                 marks=pytest.mark.slow),
    pytest.param(unet_scratch, "model=deeplabv3", ["iou/scratch", "dice"],
                 marks=pytest.mark.slow),
])
def test_configs_train_and_evaluate(config_module, arg, expected, tmp_path):
  config = config_module.get_config(",".join(filter(None, ["variant=test",
                                                           arg])))
  summary = train.train_and_evaluate(config, str(tmp_path))
  assert summary["step"] == 4
  assert all(np.isfinite(loss) for _, loss in summary["losses"])
  for name in expected:
    assert name in summary["eval"], name
  assert 0.0 <= summary["eval"]["dice"] <= 1.0


def test_scratch_options_grayscale_highlights_rmsprop(tmp_path):
  config = unet_scratch.get_config("variant=test")
  config.data.grayscale = True
  config.data.remove_highlights = True
  config.optimizer.name = "rmsprop"
  config.optimizer.schedule = "cosine_restarts"
  config.optimizer.restart_period = 2
  task = SegmentationTask(config)
  assert task.dummy_input().shape == (1, 32, 32, 1)
  data = task.datasets()
  assert data.eval_transform(data.eval[0])["image"].shape == (32, 32, 1)
  summary = train.train_and_evaluate(config, str(tmp_path))
  assert summary["step"] == 4


def test_remove_highlights_fills_only_the_highlight():
  image = np.full((32, 32, 3), 100, np.uint8)
  image[10:14, 10:14] = 255
  out = preprocess.remove_highlights(image, dilate=1)
  assert out[10:14, 10:14].max() < 150
  np.testing.assert_array_equal(out[20:, 20:], image[20:, 20:])
  plain = np.full((8, 8, 3), 90, np.uint8)
  assert preprocess.remove_highlights(plain) is plain


def test_trains_from_severstal_csv(tmp_path):
  rows = ["ImageId,ClassId,EncodedPixels"]
  os.makedirs(tmp_path / "images")
  for i in range(20):
    r = synthetic_steel.generate(4, i, (32, 64))
    write_image(tmp_path / "images" / f"{i}.jpg", r["image"])
    rows += [f"{i}.jpg,{k + 1},{rle.encode(r['mask'][..., k])}"
             for k in range(4) if r["mask"][..., k].any()]
  (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
  # The Severstal recipe: native crops, softmax CE + batch Dice, the image
  # head gating the masks.
  config = unet_steel.get_config("data=severstal,variant=test")
  config.data.image_size = (32, 64)
  config.data.crop_size = (16, 32)
  config.data.train_path = str(tmp_path / "train.csv")
  config.data.image_dir = str(tmp_path / "images")
  data = SegmentationTask(config).datasets()
  assert len(data.train) == 16 and len(data.eval) == 2
  assert data.train_transform(data.train[0], np.random.default_rng(0))[
      "image"].shape == (16, 32, 3)
  summary = train.train_and_evaluate(config, str(tmp_path / "run"))
  assert summary["step"] == 4 and "miou" in summary["eval"]
  assert "image_head_accuracy" in summary["eval"]


def test_the_severstal_recipe_fits_other_classes_and_image_sizes(tmp_path):
  """A 3-class steel set of 200x200 photos in the Severstal CSV form: the
  recipe's per-class areas go by class name (Severstal's pits and cracks
  120 pixels, any other class 30) and its 128x256 crops shrink to the
  images."""
  rng = np.random.default_rng(0)
  os.makedirs(tmp_path / "images")
  rows = ["ImageId,ClassId,EncodedPixels"]
  for i in range(10):
    write_image(tmp_path / "images" / f"{i:04x}.jpg",
                rng.integers(0, 255, (200, 200, 3)).astype(np.uint8))
    mask = np.zeros((200, 200), bool)
    mask[20:40, 30 + i:90] = True
    rows.append(f"{i:04x}.jpg,{i % 3 + 1},{rle.encode(mask)}")
  (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
  config = unet_steel.get_config("data=severstal")
  assert SegmentationTask(config).min_areas == (120, 30, 30, 120)
  config.data.class_names = ("edge", "hole", "stain")
  config.data.image_size = (208, 208)
  config.data.train_path = str(tmp_path / "train.csv")
  config.data.image_dir = str(tmp_path / "images")
  task = SegmentationTask(config)
  assert task.min_areas == (30, 30, 30)
  data = task.datasets()
  crop = data.train_transform(data.train[0], np.random.default_rng(0))
  assert crop["image"].shape == (128, 208, 3)
  assert crop["mask"].shape == (128, 208, 3)
  config.eval.min_areas = ("edge=50", "stain=7")
  with pytest.raises(ValueError, match=r"eval.min_areas has no value for "
                     r"\['hole'\]: name them, or add '\*=value'"):
    SegmentationTask(config)


def test_polygon_json_split(tmp_path):
  path = synthetic_car.write_dataset(str(tmp_path), 30, image_size=64)
  config = unet_damage.get_config("variant=test")
  config.data.source = "polygon_json"
  config.data.train_path = path
  config.data.image_dir = str(tmp_path / "images")
  data = SegmentationTask(config).datasets()
  train_set, val_set = data.train, data.eval
  assert len(train_set) == 24 and len(val_set) == 3
  train_images = {r["image_path"] for r in train_set.records}
  assert not train_images & {r["image_path"] for r in val_set.records}
  batch = data.train_transform(train_set[0], np.random.default_rng(0))
  assert batch["mask"].shape == (64, 64, 3) and batch["image"].shape == (64, 64, 3)
  # The photo recipe: native-resolution crops for training, whole images
  # for evaluation.
  config = unet_damage.get_config("data=polygon_json,variant=test")
  assert config.loss.dice_over == "batch"
  config.data.crop_size = (32, 32)
  config.data.train_path = path
  config.data.image_dir = str(tmp_path / "images")
  data = SegmentationTask(config).datasets()
  crop = data.train_transform(data.train[0], np.random.default_rng(0))
  assert crop["image"].shape == (32, 32, 3)
  # Scratch and dent make a crop's damage label, not the panel gap.
  assert data.train_transform.label_channels == (0, 1)
  assert data.eval_transform(data.eval[0])["mask"].shape == (64, 64, 3)


@pytest.mark.parametrize("field,value,message", [
    ("loss.name", "focal", "loss.name must be one of"),
    ("eval.refine", ("scratches",), "eval.refine names unknown classes"),
    ("eval.thresholds", (0.5, 0.5), "eval.thresholds needs 1 or 3 values"),
    ("model.architecture", "segnet", "model.architecture must be"),
    ("model.cat_width", 8, "does not use model.cat_width .only unet3plus"),
    ("model.skip_connections", False,
     "'encoder_unet' does not use model.skip_connections .only unet"),
    ("eval.class_vote_radius", 4, "votes among the classes of a softmax"),
    ("eval.class_vote_radius", -1, "eval.class_vote_radius must be 0 .off."),
    ("loss.class_weights", (1, 2, 2, 2), "weighs the classes of a softmax"),
    ("data.defect_crop_share", 80.0,
     r"data.defect_crop_share is a probability \(0 to 1\), got 80.0"),
])
def test_config_errors(field, value, message):
  config = unet_damage.get_config("variant=test")
  config.update_from_flattened_dict({field: value})
  with pytest.raises(ValueError, match=message):
    SegmentationTask(config)


def test_class_weights_need_one_per_class_and_the_background():
  config = unet_steel.get_config("variant=test")   # softmax over 4 classes
  config.loss.class_weights = (1, 2, 2, 2)
  with pytest.raises(ValueError, match=r"needs 5 positive weights .the "
                     r"background, then each class., got \(1.0, 2.0"):
    SegmentationTask(config)
  config.loss.class_weights = (1, 2, 0, 2, 2)
  with pytest.raises(ValueError, match="needs 5 positive weights"):
    SegmentationTask(config)
  config.loss.class_weights = (1, 2, 2, 2, 2)
  assert SegmentationTask(config).class_weights == (1.0, 2.0, 2.0, 2.0, 2.0)


def test_space_to_depth_block_is_checked():
  config = unet_steel.get_config("variant=test")
  config.model.space_to_depth = 0
  with pytest.raises(ValueError, match=r"model.space_to_depth must be 1 \(off"):
    SegmentationTask(config)
  # A folded U-Net of 3 levels needs sides that are multiples of 2 * 4.
  config.model.space_to_depth = 2
  config.data.image_size = (32, 60)
  with pytest.raises(ValueError, match=r"must be a multiple of 8"):
    SegmentationTask(config)


def test_classification_guided_needs_an_image_head():
  config = unet_steel.get_config("variant=test")
  config.model.classification_guided = True
  with pytest.raises(ValueError, match="set model.image_head=True for 'unet'"):
    SegmentationTask(config)
  config.model.image_head = True
  SegmentationTask(config)


def test_per_class_image_head_needs_the_image_head():
  config = unet_steel.get_config("variant=test")
  config.model.image_head_per_class = True
  with pytest.raises(ValueError, match="set model.image_head=True as well"):
    SegmentationTask(config)
  config.model.architecture = "deeplabv3"
  config.model.image_head = True
  with pytest.raises(ValueError, match="does not use model.image_head"):
    SegmentationTask(config)


def _per_class_task(guided):
  config = unet_steel.get_config("variant=test")
  config.model.image_head = True
  config.model.image_head_per_class = True
  config.model.classification_guided = guided
  return SegmentationTask(config)


def test_per_class_image_head_loss_is_a_sigmoid_cross_entropy_per_class():
  task = _per_class_task(guided=False)   # pits, lines, patches, cracks
  variables = task.init_variables(jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (2, *task.input_shape), np.uint8)
  mask = np.zeros((2, *task.input_shape[:2], 4), np.uint8)
  mask[0, :3, :3, 1] = 1             # image 0 holds lines,
  mask[1, 5:9, 5:9, 3] = 1           # image 1 cracks and pits
  mask[1, 0, 0, 0] = 1
  batch = {"image": images, "mask": mask, "label": np.int32([1, 1])}
  _, (terms, _) = task.loss(variables["params"], variables["batch_stats"],
                            batch, jax.random.PRNGKey(1))
  logits = np.asarray(task.model.apply(
      variables, task.model_input(images), train=True,
      mutable=["batch_stats"])[0]["image_logits"], np.float64)
  assert logits.shape == (2, 4)
  present = np.array([[0, 1, 0, 0], [1, 0, 0, 1]], np.float64)
  # Sigmoid cross-entropy written out: summed over classes, mean over images.
  p = 1 / (1 + np.exp(-logits))
  expected = -(present * np.log(p) + (1 - present) * np.log(1 - p))
  assert float(terms["image"]) == pytest.approx(expected.sum(1).mean(),
                                                rel=1e-4)


def test_guided_per_class_head_clears_the_classes_it_finds_absent():
  free = _per_class_task(guided=False)
  variables = free.init_variables(jax.random.PRNGKey(0))
  # A head that calls pits and patches present, lines and cracks absent.
  head = variables["params"]["image_head"]
  bias = np.array([4.0, -4.0, 4.0, -4.0], np.float32)
  variables["params"]["image_head"] = {
      "kernel": np.zeros_like(head["kernel"]), "bias": bias}
  images = np.random.default_rng(0).integers(
      0, 256, (2, *free.input_shape), np.uint8)
  plain = free.forward(variables, images)
  np.testing.assert_allclose(plain["class_probs"][0],
                             1 / (1 + np.exp(-bias)), rtol=1e-5)
  np.testing.assert_allclose(plain["image_probs"],
                             plain["class_probs"].max(-1))
  gated = _per_class_task(guided=True).forward(variables, images)
  probs = np.asarray(gated["probs"])
  assert not probs[..., [1, 3]].any()
  np.testing.assert_allclose(probs[..., [0, 2]],
                             plain["probs"][..., [0, 2]])
  assert not np.isin(gated["class_map"], [2, 4]).any()  # 0 is background
  # Without the gate, the untrained network predicts lines or cracks
  # somewhere: the gate changed the map.
  assert np.isin(plain["class_map"], [2, 4]).any()


def test_flip_averaged_predictions_follow_the_flipped_image():
  config = unet_steel.get_config("variant=test")
  config.loss.name = "bce_dice"
  config.model.image_head = True
  task = SegmentationTask(config)
  variables = task.init_variables(jax.random.PRNGKey(0))
  images = np.random.default_rng(0).integers(
      0, 256, (2, *task.input_shape), np.uint8)
  mirrored = images[:, :, ::-1]
  plain = task.forward(variables, images)["probs"]
  assert not np.allclose(task.forward(variables, mirrored)["probs"],
                         plain[:, :, ::-1], atol=1e-4)
  config.eval.tta_flips = ("horizontal",)
  task = SegmentationTask(config)
  out = task.forward(variables, images)
  out_mirrored = task.forward(variables, mirrored)
  np.testing.assert_allclose(out_mirrored["probs"], out["probs"][:, :, ::-1],
                             atol=1e-5)
  np.testing.assert_allclose(out_mirrored["image_probs"], out["image_probs"],
                             atol=1e-5)
  # ... and are the mean of the two views' sigmoids.
  logits = task.model.apply(variables, task.model_input(mirrored))["logits"]
  expected = (plain + jax.nn.sigmoid(logits)[:, :, ::-1]) / 2
  np.testing.assert_allclose(out["probs"], expected, atol=1e-5)


def test_evaluation_reports_which_classes_are_confused():
  config = unet_steel.get_config("variant=test")
  config.eval.defect_min_area = 2
  task = SegmentationTask(config)   # pits, lines, patches, cracks
  true = np.zeros((3, 8, 8, 4), bool)
  pred = np.zeros((3, 8, 8, 4), bool)
  true[0, :2, :4, 0] = True         # image 0: 8 pixels of pits,
  pred[0, :2, :3, 3] = True         # 6 of them called cracks,
  pred[0, :2, 3, 0] = True          # 2 called pits
  true[1, 4:, 4:, 3] = True         # image 1: 16 pixels of cracks,
  pred[1, 4:, 4:, 3] = True         # all found
  pred[2, 0, 0, 0] = True           # image 2 clean: 1 pixel of pits
  batch = {"batch_mask": np.ones(3, bool), "mask": true.astype(np.uint8),
           "label": true.any((1, 2, 3)).astype(np.int32),
           "image": np.zeros((3, 8, 8, 3), np.uint8)}
  # A per-class image head that calls cracks on every image, pits on none.
  class_probs = np.tile(np.float32([0.2, 0.1, 0.1, 0.9]), (3, 1))
  files = types.SimpleNamespace(eval=RecordSource(
      [{"image_path": f"{i}.jpg"} for i in range(3)]))
  scalars, _, rows = task.evaluate(
      [(batch, {"masks": pred, "class_probs": class_probs})], files)
  # Per image (hand-worked): image 0's pits 2 * 2 / (2 + 8), its cracks
  # 6 pixels on none; image 2's pit is under the minimum area.
  assert [(r["file"], r["label"], r["decision"]) for r in rows] == [
      ("0.jpg", 1, "defective"), ("1.jpg", 1, "defective"),
      ("2.jpg", 0, "good")]
  assert [[r[f"dice/{c}"] for c in ("pits", "lines", "patches", "cracks")]
          for r in rows] == [[0.4, 1, 1, 0], [1, 1, 1, 1], [0, 1, 1, 1]]
  assert [r["dice"] for r in rows] == pytest.approx([0.6, 1.0, 0.75])
  assert scalars["image_head_precision/cracks"] == pytest.approx(1 / 3)
  assert scalars["image_head_recall/cracks"] == 1.0
  assert scalars["image_head_recall/pits"] == 0.0
  assert scalars["confusion/cracks_on_pits"] == pytest.approx(6 / 8)
  assert scalars["confusion/pits_on_cracks"] == 0.0
  assert "confusion/pits_on_lines" not in scalars  # no true lines
  assert "confusion/pits_on_pits" not in scalars
  # Cracks are predicted on images 0 and 1 and held by image 1 only; the
  # single pixel of pits on image 2 is under the minimum area.
  assert scalars["image_precision/cracks"] == pytest.approx(0.5)
  assert scalars["image_recall/cracks"] == 1.0
  assert scalars["image_precision/pits"] == 1.0
  assert scalars["image_recall/pits"] == 1.0


def test_unknown_tta_flip_is_refused():
  config = unet_steel.get_config("variant=test")
  config.eval.tta_flips = ("diagonal",)
  with pytest.raises(ValueError, match="eval.tta_flips must be one of "
                     "horizontal, vertical; got 'diagonal'"):
    SegmentationTask(config)


def test_unknown_data_source_is_refused():
  config = unet_damage.get_config("variant=test")
  config.data.source = "coco"
  with pytest.raises(ValueError, match="data.source for segmentation must be "
                     "one of .*'mask_folder'.*got 'coco'"):
    SegmentationTask(config).datasets()


def test_mask_channels_must_match_class_names():
  config = unet_steel.get_config("variant=test")
  record = SegmentationTask(config).datasets().eval[0]
  config.data.class_names = ("pits", "lines")
  # The embedded generator's classes are checked at start ...
  with pytest.raises(ValueError, match="draws the classes .'pits', 'lines', "
                     "'patches', 'cracks'.; data.class_names is"):
    SegmentationTask(config).datasets()
  # ... and every record's mask channels when it is transformed.
  transform = MaskTransform(tuple(config.data.image_size),
                            tuple(config.data.class_names))
  with pytest.raises(ValueError, match="4 mask channels, the config names 2"):
    transform(record)
