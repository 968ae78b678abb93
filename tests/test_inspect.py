"""The inspection pipeline: the gate's threshold for a target recall, the
localisation crop, masks back in the photo's pixels, the stored
calibration, and the demo end to end."""
import json
import os
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from vq import inspect
from vq.data.formats import rle
from vq.data.images import write_image
from vq.inspection import demo
from vq.inspection import gate as gate_lib
from vq.inspection.localise import crop_box
from vq.inspection.pipeline import InspectionPipeline, Stage
from vq.predict import Frame
from vq.tasks import TASKS

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from configs import gate, inspect as inspect_config, unet_damage, yolo  # noqa: E402


def test_threshold_for_recall_hand_worked():
  scores = [0.9, 0.8, 0.3, 0.2, 0.7, 0.1]
  positives = [1, 1, 1, 0, 0, 1]   # positive scores: 0.9, 0.8, 0.3, 0.1
  assert gate_lib.threshold_for_recall(scores, positives, 0.5) == 0.8
  assert gate_lib.threshold_for_recall(scores, positives, 0.75) == 0.3
  assert gate_lib.threshold_for_recall(scores, positives, 0.76) == 0.1
  assert gate_lib.threshold_for_recall(scores, positives, 1.0) == 0.1
  with pytest.raises(ValueError, match="no defective image"):
    gate_lib.threshold_for_recall([0.5], [0], 0.9)
  with pytest.raises(ValueError, match=r"must be in \(0, 1\]"):
    gate_lib.threshold_for_recall(scores, positives, 0.0)


def test_crop_box_hand_worked():
  record = {"detections": [
      {"class": "car", "score": 0.5, "box": [10, 20, 50, 60]},
      {"class": "car", "score": 0.9, "box": [100, 100, 140, 120]},
      {"class": "person", "score": 0.99, "box": [0, 0, 160, 120]}]}
  # Best car box, 40 x 20, widened by 10 and 5 px, clipped to 160 x 120.
  assert crop_box(record, "car", 0.25, (120, 160)) == (90, 95, 150, 120)
  assert crop_box(record, "bus", 0.25, (120, 160)) is None


# Photos: grey background, a mid-grey "car", on damaged ones a bright patch.
CAR = (40, 30, 120, 90)           # x1, y1, x2, y2
PATCH = (60, 50, 84, 70)


def _photo(kind):
  image = np.full((160, 200, 3), 30, np.uint8)
  if kind != "empty":
    x1, y1, x2, y2 = CAR
    image[y1:y2, x1:x2] = 120
  if kind == "damaged":
    x1, y1, x2, y2 = PATCH
    image[y1:y2, x1:x2] = 250
  return image


def _fake_stage(name, task, predict_fn):
  return Stage(name, task, lambda images: predict_fn(jnp.asarray(images)), 4)


def _fake_stages():
  detector = TASKS["detection"](yolo.get_config("variant=test"))
  classifier = TASKS["classification"](gate.get_config("variant=test"))
  segmenter = TASKS["segmentation"](unet_damage.get_config("variant=test"))

  def detect(images):             # the box of the pixels brighter than 100
    on = images.max(-1) > 100
    h, w = on.shape[1:]
    cols, rows = on.any(1), on.any(2)
    first = lambda a: jnp.argmax(a, 1)
    last = lambda a: a.shape[1] - jnp.argmax(a[:, ::-1], 1)
    box = jnp.stack([first(cols) / w, first(rows) / h, last(cols) / w,
                     last(rows) / h], -1)
    found = on.any((1, 2))
    return {"boxes": box[:, None], "scores": found[:, None] * 0.9,
            "classes": jnp.zeros((len(images), 1), jnp.int32),
            "num_valid": found.astype(jnp.int32)}

  def classify(images):           # P(damaged) 0.9 with a bright patch
    damaged = (images.max((1, 2, 3)) > 200) * 0.8 + 0.1
    return {"probs": jnp.stack([1 - damaged, damaged], -1)}

  def segment(images):            # scratch = the bright pixels
    on = (images.max(-1) > 200)[..., None]
    return {"masks": jnp.concatenate([on, jnp.zeros_like(on)[..., [0, 0]]],
                                     -1)}
  return (_fake_stage("localise", detector, detect),
          _fake_stage("gate", classifier, classify),
          _fake_stage("segment", segmenter, segment))


def test_pipeline_stages_and_masks_in_photo_pixels():
  localise, gate_stage, segment = _fake_stages()
  pipeline = InspectionPipeline(segment, gate_stage, 0.5, "clean", localise,
                                localise.task.class_names[0], margin=0.1)
  kinds = ["damaged", "clean", "empty", "damaged", "clean", "clean"]
  frames = [Frame(f"photo{i}.jpg", image=_photo(k))
            for i, k in enumerate(kinds)]
  results = {f.source: r for f, r in pipeline.run(iter(frames))}
  assert len(results) == len(kinds)
  for i, kind in enumerate(kinds):
    r = results[f"photo{i}.jpg"]
    assert r["defective"] == (kind == "damaged"), (kind, r)
    if kind == "empty":
      assert r["stopped_by"] == "localise"
    elif kind == "clean":
      assert r["stopped_by"] == "gate" and r["gate_score"] == pytest.approx(
          0.1, abs=1e-4)
    else:
      # The car widened by 8 and 6 px, to one detector input pixel (the
      # photo is 3.1 times larger than the detector's input).
      x1, y1, x2, y2 = r["crop"]
      assert np.allclose([x1, y1, x2, y2], [32, 24, 128, 96], atol=5)
      mask = rle.decode(r["masks"]["scratch"], (160, 200)).astype(bool)
      truth = np.zeros((160, 200), bool)
      truth[PATCH[1]:PATCH[3], PATCH[0]:PATCH[2]] = True
      assert (mask & truth).sum() / (mask | truth).sum() > 0.8
  counts = {s.stats.name: (s.stats.images_in, s.stats.images_out)
            for s in pipeline.stages}
  assert counts == {"localise": (6, 5), "gate": (5, 2), "segment": (2, 2)}
  # Masks of classes that are not damage (e.g. panel gaps) are reported
  # without making the photo defective.
  dents_only = InspectionPipeline(segment, gate_stage, 0.5, "clean",
                                  defect_classes=("dent",))
  for _, r in dents_only.run(iter(frames[:1])):
    assert "scratch" in r["masks"] and not r["defective"]
  with pytest.raises(ValueError, match=r"\['rust'\] are not classes"):
    InspectionPipeline(segment, defect_classes=("rust",))


def test_gate_threshold_is_stored_and_reused(tmp_path, monkeypatch):
  _, gate_stage, _ = _fake_stages()
  config = inspect_config.get_config(f"runs={tmp_path}")
  config.gate.validation_path = ""    # the gate run's eval split
  first = inspect.gate_calibration(config, gate_stage, 4, str(tmp_path))
  # The fake gate scores damaged panels 0.9, clean ones 0.1.
  assert first["threshold"] == pytest.approx(0.9)
  assert first["validation_recall"] == 1.0
  with open(tmp_path / "pipeline.json") as f:
    assert json.load(f)["gate"] == first
  monkeypatch.setattr(gate_lib, "calibrate", lambda *a: pytest.fail(
      "the stored threshold applies"))
  assert inspect.gate_calibration(config, gate_stage, 4,
                                  str(tmp_path)) == first
  config.gate.target_recall = 0.5
  monkeypatch.setattr(gate_lib, "calibrate",
                      lambda *a: {"threshold": 0.7, "target_recall": 0.5})
  assert inspect.gate_calibration(config, gate_stage, 4,
                                  str(tmp_path))["threshold"] == 0.7


def test_gate_threshold_on_validation_photos(tmp_path):
  _, gate_stage, _ = _fake_stages()
  for kind, n in (("clean", 3), ("damaged", 4)):
    os.makedirs(tmp_path / kind)
    for i in range(n):
      write_image(tmp_path / kind / f"{i}.jpg", _photo(kind))
  chosen = gate_lib.calibrate_on_photos(gate_stage, str(tmp_path), "clean",
                                        0.9)
  assert chosen["threshold"] == pytest.approx(0.9)
  assert (chosen["validation_images"], chosen["validation_defective"]) == (
      7, 4)
  assert chosen["validation_pass_rate"] == pytest.approx(4 / 7)
  with pytest.raises(ValueError, match="expected a ok/ folder"):
    gate_lib.calibrate_on_photos(gate_stage, str(tmp_path), "ok", 0.9)


@pytest.mark.slow  # trains two runs: about 80 s
def test_demo_end_to_end(tmp_path):
  summary = demo.run_demo(str(tmp_path), "test", num_photos=10,
                          photo_size=128, progress=open(os.devnull, "w"))
  output = tmp_path / "pipeline" / "output"
  with open(output / "inspections.jsonl") as f:
    records = [json.loads(line) for line in f]
  assert len(records) == summary["photos"] == 10 and not summary["failed"]
  assert {os.path.basename(r["file"]) for r in records} == {
      f"photo_{i:05d}.jpg" for i in range(10)}
  assert len(os.listdir(output / "overlays")) == 10
  stages = {s["stage"]: s for s in summary["stages"]}
  assert list(stages) == ["read", "gate", "segment", "write"]
  assert stages["gate"]["images_in"] == 10
  assert stages["segment"]["images_in"] == stages["gate"]["images_out"]
  assert 0.0 <= summary["scores"]["recall"] <= 1.0
  with open(tmp_path / "pipeline" / "pipeline.json") as f:
    stored = json.load(f)["gate"]
  assert stored["validation_recall"] >= stored["target_recall"]
