"""The patch memory at one short side (eval.memory.short_side): each
photograph's own pixels scaled to it and scored at their own shape, in
the evaluation, prediction and a StableHLO export alike."""
import csv
import json
import sys

import cv2
import jax
import numpy as np
import pytest

sys.path.insert(0, ".")
from configs import draem  # noqa: E402
from vq import config_base, export, predict  # noqa: E402
from vq.data.augment import letterbox, short_side  # noqa: E402
from vq.data.formats import rle  # noqa: E402
from vq.ops import texture_memory  # noqa: E402
from vq.tasks.anomaly import AnomalyTask  # noqa: E402

# (height, width) -> at short side 32 from a 32x32 letterbox.
SHAPES = ((24, 72), (48, 48), (72, 24))
VIEWS = ((32, 96), (32, 32), (96, 32))
BLUR = 2.0


@pytest.mark.parametrize("hw,side,expected", [
    ((102, 256), 192, (192, 480)),   # 192 x 2.51 = 481.9 -> 15 x 32
    ((256, 102), 192, (480, 192)),
    ((256, 256), 192, (192, 192)),
    ((100, 130), 192, (192, 256)),   # 249.6 -> 7.8 x 32 -> 8 x 32
    ((100, 110), 192, (192, 224)),   # 211.2 -> 6.6 x 32 -> 7 x 32
    ((11, 32), 32, (32, 96)),
])
def test_scaled_shape_hand_worked(hw, side, expected):
  assert short_side.scaled_shape(hw, side) == expected


def test_a_box_goes_out_and_back_in():
  valid = letterbox.valid_mask((24, 72), (32, 32))
  box = short_side.box_of(valid)
  assert box == letterbox.fit_box((24, 72), (32, 32)) == (10, 0, 11, 32)
  canvas = np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8)
  view = short_side.from_box(canvas, box, 32)
  np.testing.assert_array_equal(view, cv2.resize(
      canvas[10:21], (96, 32), interpolation=cv2.INTER_LINEAR))
  back = short_side.into_box(np.ones((32, 96)), box, (32, 32))
  assert back[10:21].min() == 1 and back.sum() == 11 * 32
  with pytest.raises(ValueError, match="no valid pixel"):
    short_side.box_of(np.zeros((4, 4)))


def test_border_rings_pool_maps_of_several_shapes():
  rng = np.random.default_rng(1)
  maps = [rng.gamma(2.0, size=(12, 20)), rng.gamma(2.0, size=(2, 16, 12))]
  got = texture_memory.border_rings(maps, 5)  # 12 // 4: 3 rings
  pixels = [(m, texture_memory.distance_to_edge(*m.shape))
            for m in (maps[0], maps[1][0], maps[1][1])]
  inside = np.mean([v for m, d in pixels for v in m[d >= 3]])
  expected = [np.mean([v for m, d in pixels for v in m[d == k]]) / inside
              for k in range(3)]
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  level = texture_memory.border_level(got, (8, 9))
  assert level[0, 4] == got[0] and level[2, 2] == got[2] and level[3, 4] == 1


def _tree(root):
  """An MVTec AD category `cat` of photographs of three shapes: 8 for
  training, 2 good test images and 2 with a dark bar (masked)."""
  rng = np.random.default_rng(0)
  for folder in ("train/good", "test/good", "test/bar", "ground_truth/bar"):
    (root / "cat" / folder).mkdir(parents=True)
  def write(folder, name, hw, bar=False):
    image = rng.integers(100, 140, (*hw, 3), np.uint8)
    if bar:
      mask = np.zeros(hw, np.uint8)
      mask[hw[0] // 3:hw[0] // 2, hw[1] // 3:2 * hw[1] // 3] = 255
      image[mask > 0] = 10
      cv2.imwrite(str(root / "cat" / "ground_truth" / folder /
                      f"{name}_mask.png"), mask)
    cv2.imwrite(str(root / "cat" / ("test" if folder != "good" or name[0] ==
                                     "t" else "train") / folder /
                    f"{name}.png"), image)
  for i in range(8):
    write("good", f"{i}", SHAPES[i % 3])
  for i in range(2):
    write("good", f"t{i}", SHAPES[i])
    write("bar", f"{i}", SHAPES[2 - i], bar=True)


def _config(root):
  config = draem.get_config("variant=test,scoring=patchcore")
  config.data.update({"source": "mvtec", "path": str(root),
                      "categories": ("cat",)})
  config.eval.memory.update(short_side=32, images=4, coreset=0.0, blur=BLUR)
  config.eval.reference_images = 2
  return config


def _brute_force_map(task, view, rows):
  """A view's distances to `rows` by NumPy, enlarged and blurred by
  OpenCV."""
  f = np.asarray(task.texture.features(view[None]))[0]
  d = np.sqrt(((f.reshape(-1, f.shape[-1])[:, None] - rows[None]) ** 2
               ).sum(-1)).min(1).reshape(f.shape[:2]).astype(np.float32)
  d = cv2.resize(d, view.shape[1::-1], interpolation=cv2.INTER_LINEAR)
  return cv2.GaussianBlur(d, (17, 17), BLUR,
                          borderType=cv2.BORDER_REFLECT_101)


def test_each_photograph_is_scored_at_its_own_short_side(tmp_path):
  """The memory holds the patch features of each training photograph's
  box scaled to short side 32 (three shapes); its edge rings are measured
  on the references' maps of their shapes; a test image's score is its
  map's maximum at its own shape, the map put back into its box of the
  letterbox (0 outside) for the pixel metrics; prediction reads the
  photograph at the same shape and gives the same score."""
  _tree(tmp_path / "data")
  config = _config(tmp_path / "data")
  task = AnomalyTask(config)
  assert task.input_shape == (32, 32, 3) and task.scores_own_shape
  data = task.datasets()
  memory = task.texture.memory_for("cat", data)
  photographs = [data.train[i]["image"] for i in range(6)]
  views = [short_side.from_box(
      letterbox.letterbox(p, (32, 32)),
      letterbox.fit_box(p.shape[:2], (32, 32)), 32) for p in photographs]
  assert [v.shape[:2] for v in views] == list(VIEWS) * 2
  # 4 for the memory, 2 references (a quarter of 8).
  expected_rows = np.concatenate([np.asarray(task.texture.features(
      v[None]))[0].reshape(-1, 152) for v in views[:4]])
  np.testing.assert_allclose(memory.rows, expected_rows, rtol=1e-5,
                             atol=1e-5)
  references = [_brute_force_map(task, v, memory.rows) for v in views[4:]]
  np.testing.assert_allclose(
      memory.border_rings,
      texture_memory.border_rings(references, 16 + 4), rtol=1e-3)
  assert len(memory.border_rings) == 8   # a quarter of the short side

  items = [data.eval_transform(data.eval[i]) for i in range(len(data.eval))]
  host = {k: np.stack([x[k] for x in items])
          for k in ("image", "valid", "category")}
  out = task.texture.evaluated_outputs(host, data)
  for item, canvas_map, score in zip(items, out["memory_map"],
                                     out["score/memory"]):
    box = short_side.box_of(item["valid"])
    view = short_side.from_box(item["image"], box, 32)
    expected = _brute_force_map(task, view, memory.rows) / (
        texture_memory.border_level(memory.border_rings, view.shape[:2]))
    assert score == pytest.approx(expected.max(), rel=1e-3)
    np.testing.assert_allclose(
        canvas_map, short_side.into_box(expected, box, (32, 32)), rtol=1e-3,
        atol=1e-3)
    assert not canvas_map[item["valid"] == 0].any()

  task.select_category("cat")
  photograph = cv2.imread(str(tmp_path / "data" / "cat" / "test" / "bar" /
                              "0.png"))[..., ::-1]
  resized = task.resize_input(photograph)
  assert resized.shape == (96, 32, 3)
  predicted = jax.device_get(jax.jit(task.predict)({}, resized[None]))
  bar = [i for i, r in enumerate(data.eval.records)
         if r["defect_type"] == "bar" and r["image_path"].endswith("0.png")]
  assert predicted["score"][0] == pytest.approx(out["score/memory"][bar[0]],
                                                rel=1e-4)
  record = task.to_record(jax.tree.map(lambda x: x[0], predicted), (72, 24))
  assert np.asarray(record["map"]).shape == (96, 32)  # the photograph's
  assert rle.decode(record["region"], (72, 24)).shape == (72, 24)


def test_predictions_and_a_stablehlo_export_at_the_photographs_shapes(
    tmp_path):
  """A run of the patch memory at short side 32: vq.predict batches the
  photographs of three shapes by shape, each record in its photograph's
  pixels; a StableHLO file is exported for one photograph shape
  (--photo_shape), predicts as the run does there and names the shape it
  takes when given another."""
  from vq import train  # pylint: disable=g-import-not-at-top
  _tree(tmp_path / "data")
  config = _config(tmp_path / "data")
  summary = train.train_and_evaluate(config, str(tmp_path / "run"))
  assert summary["eval"]["image_auroc"] == 1.0
  test = tmp_path / "data" / "cat" / "test"
  out = tmp_path / "out"
  predict.predict(str(tmp_path / "run"), str(test), str(out), category="cat",
                  batch_size=4, progress=open("/dev/null", "w"))
  with open(out / "predictions.jsonl") as f:
    records = {r["file"].split("test/")[-1]: r for r in map(json.loads, f)}
  assert len(records) == 4
  # The scores and decisions the evaluation wrote for the same files.
  with open(tmp_path / "run" / "eval_images.csv") as f:
    evaluated = {r["file"].split("test/")[-1]: r for r in csv.DictReader(f)}
  for name, record in records.items():
    hw = cv2.imread(str(test / name)).shape[:2]
    assert rle.decode(record["region"], hw).sum() == record["region_area"]
    assert record["score"] == pytest.approx(float(evaluated[name]["score"]),
                                            rel=1e-4)
    assert record["decision"] == evaluated[name]["decision"]
  with pytest.raises(ValueError, match="--photo_shape=HEIGHTxWIDTH"):
    export.export_run(str(tmp_path / "run"), "stablehlo",
                      str(tmp_path / "m.stablehlo"), category="cat")
  meta = export.export_run(str(tmp_path / "run"), "stablehlo",
                           str(tmp_path / "m.stablehlo"), category="cat",
                           photo_shape=export.parse_shape("72x24"))
  assert meta["input"]["shape"] == ["batch", 96, 32, 3]
  assert meta["input"]["photo_shape"] == [72, 24]
  out_hlo = tmp_path / "out_hlo"
  predict.predict("", str(test / "bar" / "0.png"), str(out_hlo),
                  category="cat", model=str(tmp_path / "m.stablehlo"),
                  progress=open("/dev/null", "w"))
  with open(out_hlo / "predictions.jsonl") as f:
    exported, = map(json.loads, f)
  assert exported["score"] == pytest.approx(records["bar/0.png"]["score"],
                                            rel=1e-4)
  # A photograph of another shape is listed as failed, named; the file's
  # function itself refuses the shape.
  summary = predict.predict("", str(test), str(tmp_path / "out_other"),
                            category="cat", model=str(tmp_path / "m.stablehlo"),
                            progress=open("/dev/null", "w"))
  assert summary["images"] == 1 and len(summary["failed"]) == 3
  for failed in summary["failed"]:
    name = failed.split("'")[1].split("test/")[-1]
    h, w = cv2.imread(str(test / name)).shape[:2]
    assert failed.endswith(
        f": a {h}x{w} photograph; this file scores photographs of 72x24 "
        f"(export the run again with --photo_shape={h}x{w} for these)")
  _, predict_fn = predict.load_exported(str(tmp_path / "m.stablehlo"))
  with pytest.raises(ValueError, match=r"m\.stablehlo: takes images of "
                     r"96x32x3 \(photographs of 72x24.*got 32x32x3"):
    predict_fn(np.zeros((1, 32, 32, 3), np.uint8))
  with pytest.raises(ValueError, match="expected HEIGHTxWIDTH"):
    export.parse_shape("72")


def test_short_side_settings_are_checked():
  for ratio in (1.0, 0.0):  # 0: embedded squares would set it to 0
    config = draem.get_config("variant=test,scoring=patchcore")
    config.eval.memory.update(short_side=40, aspect_ratio=ratio)
    with pytest.raises(config_base.ConfigError, match="a multiple of 32"):
      AnomalyTask(config)
  config = draem.get_config("variant=test,scoring=memory")
  config.eval.memory.update(short_side=32, aspect_ratio=1.0)
  with pytest.raises(config_base.ConfigError, match="features=gabor"):
    AnomalyTask(config)
  config = draem.get_config("variant=test,scoring=fused")
  config.eval.memory.update(features="efficientnet_lite0", short_side=32)
  with pytest.raises(config_base.ConfigError, match="adds DRAEM's map"):
    AnomalyTask(config)


def test_photographs_of_one_shape_keep_their_letterbox(tmp_path):
  """eval.memory.aspect_ratio=0 (configs/draem.py): photographs that share
  one shape are letterboxed at one scale already, so the short side is
  set to 0 (the candidates' too, under auto) and recorded; with the ratio
  set by hand it applies."""
  from conftest import wide_anomaly_tree  # pylint: disable=g-import-not-at-top
  wide_anomaly_tree(tmp_path / "data")
  for scoring in ("patchcore", "default"):
    config = draem.get_config(f"variant=test,scoring={scoring}")
    config.data.update({"source": "mvtec", "path": str(tmp_path / "data"),
                        "categories": ("cat",)})
    memory = (config.eval.candidates.patchcore.eval.memory
              if scoring == "default" else config.eval.memory)
    memory.short_side = 32
    task = AnomalyTask(config)
    assert config.eval.memory.aspect_ratio == 3.0 and memory.short_side == 0
    chosen = task.candidates.get("patchcore", task)
    assert not chosen.scores_own_shape
  config = _config(tmp_path / "data")
  config.eval.memory.aspect_ratio = 1.0
  assert AnomalyTask(config).scores_own_shape
