"""vq.predict and vq.evaluate on a trained run: records land at the right
pixels of the original photo, bad inputs are listed, not fatal."""
import csv
import io
import json
import os
import subprocess
import sys

import cv2
import jax.numpy as jnp
import numpy as np
import pytest

from vq import evaluate, predict, prediction_outputs, train
from vq.tasks import TASKS

ROOT = os.path.join(os.path.dirname(__file__), "..")
sys.path.insert(0, ROOT)
from configs import unet_steel, yolo  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Runs of two families, their initial state evaluated and saved
  (num_train_steps=0; keypoint records are checked in
  test_task_contract.py)."""
  made = {}
  for name, module in [("detection", yolo), ("segmentation", unet_steel)]:
    config = module.get_config("variant=test")
    config.num_train_steps = 0
    workdir = str(tmp_path_factory.mktemp(name))
    train.train_and_evaluate(config, workdir)
    made[name] = workdir
  return made


def _bright_box(images):
  """Normalised (x1, y1, x2, y2) of the pixels brighter than 128."""
  on = images.max(-1) > 128
  h, w = on.shape[1:]
  cols, rows = on.any(1), on.any(2)
  first = lambda a: jnp.argmax(a, 1)
  last = lambda a: a.shape[1] - jnp.argmax(a[:, ::-1], 1)
  return jnp.stack([first(cols) / w, first(rows) / h, last(cols) / w,
                    last(rows) / h], -1)


def _fake_predict(name):
  """A predict that finds the bright square, in the task's output form."""
  def detection(self, variables, images):
    n = images.shape[0]
    return {"boxes": _bright_box(images)[:, None], "scores": jnp.ones((n, 1)),
            "classes": jnp.zeros((n, 1), jnp.int32),
            "num_valid": jnp.ones(n, jnp.int32)}

  def segmentation(self, variables, images):
    on = (images.max(-1) > 128)[..., None]
    masks = jnp.concatenate([on, jnp.zeros_like(on)[..., [0] * 3]], -1)
    return {"masks": masks, "probs": masks.astype(jnp.float32)}
  return {"detection": detection, "segmentation": segmentation}[name]


@pytest.mark.parametrize("name", ["detection", "segmentation"])
def test_records_are_in_original_pixels(name, runs, tmp_path, monkeypatch):
  monkeypatch.setattr(TASKS[name], "predict", _fake_predict(name))
  photo = np.full((300, 480, 3), 40, np.uint8)
  photo[120:180, 240:360] = 220  # x 240..360, y 120..180
  cv2.imwrite(str(tmp_path / "photo.jpg"), photo)
  summary = predict.predict(runs[name], str(tmp_path / "photo.jpg"),
                            str(tmp_path / "out"), batch_size=2)
  assert summary["images"] == 1 and not summary["failed"]
  with open(tmp_path / "out" / "predictions.jsonl") as f:
    record = json.loads(f.readline())
  assert (record["height"], record["width"]) == (300, 480)
  # The model saw a 32x32 (or 32x64) resize: one input pixel is 15 (or
  # 7.5) original pixels, so results are exact to about one input pixel.
  if name == "detection":
    np.testing.assert_allclose(record["detections"][0]["box"],
                               [240, 120, 360, 180], atol=16)
  else:
    from vq.data.formats import rle
    mask = rle.decode(record["masks"]["pits"], (300, 480))
    ys, xs = np.nonzero(mask)
    np.testing.assert_allclose([xs.min(), ys.min(), xs.max() + 1,
                                ys.max() + 1], [240, 120, 360, 180], atol=10)
    submission = (tmp_path / "out" / "submission.csv").read_text()
    assert submission.splitlines()[1].startswith("photo.jpg,1,")
  assert os.path.isfile(tmp_path / "out" / "overlays" / "photo.jpg")


def test_a_glob_of_folders_names_the_images_inside(tmp_path):
  for part in ("a/test/good", "a/test/cut", "b/test/good"):
    (tmp_path / part).mkdir(parents=True)
    cv2.imwrite(str(tmp_path / part / "000.png"), np.zeros((4, 4), np.uint8))
  (tmp_path / "a" / "test" / "notes.txt").write_text("not an image")
  files = predict._image_files(str(tmp_path / "*" / "test"))
  assert [os.path.relpath(f, tmp_path) for f in files] == [
      "a/test/notes.txt", "a/test/cut/000.png", "a/test/good/000.png",
      "b/test/good/000.png"]
  frames = list(predict.iterate_inputs(str(tmp_path / "*" / "test")))
  assert [f.skipped is not None for f in frames] == [True, False, False,
                                                     False]
  assert "notes.txt" in frames[0].skipped
  single = str(tmp_path / "a" / "test" / "cut" / "000.png")
  assert predict._image_files(single) == [single]


def test_bad_inputs_are_listed_and_the_rest_processed(runs, tmp_path):
  inputs = tmp_path / "in"
  inputs.mkdir()
  good = np.full((40, 50, 3), 90, np.uint8)
  cv2.imwrite(str(inputs / "good.jpg"), good)
  cv2.imwrite(str(inputs / "grey.png"), good[..., 0])
  cv2.imwrite(str(inputs / "deep.png"), good.astype(np.uint16) * 257)
  cv2.imwrite(str(inputs / "rgba.png"), np.dstack([good, good[..., :1]]))
  (inputs / "zero.jpg").write_bytes(b"")
  encoded = cv2.imencode(".jpg", good)[1].tobytes()
  (inputs / "cut.jpg").write_bytes(encoded[:20])
  (inputs / "broken.mp4").write_bytes(b"not a video")
  video = cv2.VideoWriter(str(inputs / "clip.mp4"),
                          cv2.VideoWriter_fourcc(*"mp4v"), 5, (64, 48))
  for i in range(5):
    video.write(np.full((48, 64, 3), 40 * i, np.uint8))
  video.release()
  progress = io.StringIO()  # as a log file gets it: no carriage returns
  summary = predict.predict(runs["detection"], str(inputs),
                            str(tmp_path / "out"), batch_size=4,
                            every_n_frames=2, progress=progress)
  assert "\r" not in progress.getvalue()
  assert progress.getvalue().splitlines()[-1].startswith("7 images, ")
  assert progress.getvalue().endswith(" images/s, 3 failed\n")
  failed = "\n".join(summary["failed"])
  assert len(summary["failed"]) == 3
  for name in ("zero.jpg", "cut.jpg", "broken.mp4"):
    assert name in failed
  assert summary["images"] == 4 + 3  # 4 images, frames 0, 2, 4
  lines = (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
  frames = [json.loads(l) for l in lines if '"frame"' in l]
  assert [r["frame"] for r in frames] == [0, 2, 4]
  assert all(r["file"].endswith("clip.mp4") for r in frames)
  assert os.path.isfile(tmp_path / "out" / "overlays" / "clip_annotated.mp4")
  out = subprocess.run(
      [sys.executable, "-m", "vq.predict", f"--workdir={runs['detection']}",
       f"--input={inputs / 'zero.jpg'}", f"--output={tmp_path / 'o2'}"],
      cwd=ROOT, capture_output=True, text=True)
  assert out.returncode == 1 and "zero.jpg" in out.stderr


def test_evaluate_a_run_on_other_data(runs):
  config = json.load(open(os.path.join(runs["segmentation"], "config.json")))
  scalars, path = evaluate.evaluate(runs["segmentation"])
  assert os.path.basename(path) == "step0.json" and "miou" in scalars
  from vq.runs import load_config
  other = load_config(runs["segmentation"])
  other.data.synthetic_eval_size = 4
  other.data.synthetic_seed = 7
  scalars_other, path_other = evaluate.evaluate(runs["segmentation"], other)
  assert path_other != path and os.path.basename(path_other).startswith(
      "step0_data")
  saved = json.load(open(path_other))
  assert saved["data"]["synthetic_seed"] == 7 and saved["step"] == 0
  with open(path_other.replace(".json", "_images.csv")) as f:
    rows = list(csv.DictReader(f))  # generated images: named by position
  assert [r["file"] for r in rows] == [f"record {i}" for i in range(4)]
  assert np.mean([float(r["dice"]) for r in rows]) == pytest.approx(
      scalars_other["dice"])
  assert config["data"]["synthetic_seed"] == 0
  assert saved["changes"] == {
      "data.synthetic_eval_size": {"from": 16, "to": 4},
      "data.synthetic_seed": {"from": 0, "to": 7}}
  # Another decision setting on the run's own data: files of its own.
  other = load_config(runs["segmentation"])
  other.eval.defect_min_area += 1
  _, path_min_area = evaluate.evaluate(runs["segmentation"], other)
  assert os.path.basename(path_min_area).startswith("step0_config")
  assert json.load(open(path_min_area))["changes"] == {"eval.defect_min_area": {
      "from": config["eval"]["defect_min_area"],
      "to": config["eval"]["defect_min_area"] + 1}}
  assert json.load(open(path))["changes"] == {}


def test_a_run_config_from_older_code_loads(tmp_path, caplog):
  from vq import run_config
  saved = json.loads(yolo.get_config("variant=test").to_json())
  del saved["data_check"]             # a field added after the run
  saved["data"]["old_field"] = 3      # one removed since
  saved["batch_size"] = 5
  saved["data_workers"] = 0           # an int before 'auto' made it text
  (tmp_path / "config.json").write_text(json.dumps(saved))
  with caplog.at_level("WARNING"):
    config = run_config.load_config(str(tmp_path))
  assert config.data_check == "skip" and config.batch_size == 5
  assert config.data_workers == "0"
  assert "old_field" not in config.data
  assert "data.old_field is no longer used" in caplog.text


def test_only_anomaly_runs_take_a_category():
  from vq.tasks.detection import DetectionTask
  task = DetectionTask(yolo.get_config("variant=test"))
  task.select_category("")   # nothing to choose
  with pytest.raises(ValueError, match="--category applies to anomaly runs, "
                                       "not detection"):
    task.select_category("carpet")


def test_a_submission_has_one_quoted_row_per_input_path(tmp_path):
  """Names holding commas, quotes and newlines stay one CSV field; images
  of one name in two subfolders get their paths under --input."""
  root = tmp_path / "in"
  root.mkdir()
  sources = [root / 'x,4,1 99999\ny"z.jpg', root / "a" / "p.jpg",
             root / "b" / "p.jpg"]
  prediction_outputs.prepare(str(tmp_path / "out"), {"test": 1},
                             "predictions.jsonl")
  writer = prediction_outputs.RecordWriter(
      str(tmp_path / "out"), lambda i, r: i,
      submission_classes=("pit", "line"), overlays=False,
      input_root=str(root))
  for source in sources:
    frame = predict.Frame(str(source), image=np.zeros((4, 4, 3), np.uint8))
    writer.write(frame, {"masks": {"line": "1 3"}})
  writer.close()
  with open(tmp_path / "out" / "submission.csv", newline="") as f:
    rows = list(csv.reader(f))
  assert rows == [["ImageId", "ClassId", "EncodedPixels"],
                  ['x,4,1 99999\ny"z.jpg', "2", "1 3"],
                  ["a/p.jpg", "2", "1 3"], ["b/p.jpg", "2", "1 3"]]


def test_detection_rows_count_each_images_objects(runs):
  """The detection run's rows (at predict.score_threshold) add up: every
  object found or missed, the objects those of the generated split."""
  from vq.runs import load_config
  data = TASKS["detection"](load_config(runs["detection"])).datasets()
  with open(os.path.join(runs["detection"], "eval_images.csv")) as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == len(data.eval)
  objects = [sum(data.eval_transform(data.eval[i])["gt_classes"] >= 0)
             for i in range(len(data.eval))]
  assert [int(r["objects"]) for r in rows] == objects
  for r in rows:
    assert int(r["found"]) + int(r["missed"]) == int(r["objects"])
