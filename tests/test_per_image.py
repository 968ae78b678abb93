"""An evaluation's row per image: written by training (WORKDIR/
eval_images.csv) and by vq.evaluate (evaluations/<name>_images.csv), each
row naming the file the data check kept, with the score prediction gives
that file."""
import csv
import json
import os
import sys

import cv2
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from configs import draem, gate  # noqa: E402
from conftest import wide_anomaly_tree  # noqa: E402
from vq import evaluate, per_image, predict, train  # noqa: E402


def _rows(path):
  with open(path, newline="", encoding="utf-8") as f:
    return list(csv.DictReader(f))


def _predictions(workdir, folder, output, **kwargs):
  """{file name: prediction record} of vq.predict over `folder`."""
  predict.predict(str(workdir), str(folder), str(output),
                  progress=open(os.devnull, "w"), **kwargs)
  with open(output / "predictions.jsonl") as f:
    records = [json.loads(line) for line in f]
  return {os.path.basename(r["file"]): r for r in records}


def test_anomaly_rows_name_each_test_file(tmp_path, caplog):
  """A row per test image the data check kept, in the split's order: its
  file, category, defect kind and label as the folders say, the score and
  decision prediction gives that file; the rows' scores give the
  evaluation's image AUROC (scikit-learn's); vq.evaluate, which runs the
  data check as training does, writes them again."""
  data = tmp_path / "data"
  wide_anomaly_tree(data)
  test = data / "cat" / "test"
  (test / "good" / "0a.png").write_bytes(b"not a PNG")  # left out
  config = draem.get_config("variant=test")  # auto: a candidate chosen
  config.data.update({"source": "mvtec", "path": str(data),
                      "categories": ("cat",)})
  run = tmp_path / "run"
  summary = train.train_and_evaluate(config, str(run))
  rows = _rows(run / per_image.EVAL_IMAGES)
  expected = [test / "bar" / "0.png", test / "bar" / "1.png",
              test / "good" / "0.png", test / "good" / "1.png"]
  assert [r["file"] for r in rows] == [str(p) for p in expected]
  assert [(r["category"], r["defect_type"], r["label"]) for r in rows] == [
      ("cat", "bar", "1"), ("cat", "bar", "1"), ("cat", "good", "0"),
      ("cat", "good", "0")]
  scores = [float(r["score"]) for r in rows]
  assert roc_auc_score([int(r["label"]) for r in rows], scores) == \
      pytest.approx(summary["eval"]["image_auroc"])
  threshold = summary["eval"]["cat/threshold"]
  assert [r["decision"] for r in rows] == [
      "defective" if s >= threshold else "good" for s in scores]
  validation = round(config.data.validation_fraction * len(rows))
  assert sorted(r["half"] for r in rows) == sorted(
      ["validation"] * validation + ["test"] * (len(rows) - validation))
  for label, rate in (("1", "test_recall"), ("0", "test_false_alarm_rate")):
    decided = [r["decision"] == "defective" for r in rows
               if r["half"] == "test" and r["label"] == label]
    assert decided  # the test half holds a good and a defective image
    assert summary["eval"][f"cat/{rate}"] == np.mean(decided)
  for kind in ("bar", "good"):
    predicted = _predictions(run, test / kind, tmp_path / f"out_{kind}",
                             category="cat")
    for r in rows:
      if r["defect_type"] == kind:
        record = predicted[os.path.basename(r["file"])]
        assert record["score"] == pytest.approx(float(r["score"]), abs=1e-5)
        # The validation image whose score set the threshold sits on it:
        # prediction's score, equal to float32 precision, may fall on
        # either side.
        if float(r["score"]) != pytest.approx(threshold, rel=1e-5):
          assert record["decision"] == r["decision"]

  caplog.clear()
  _, path = evaluate.evaluate(str(run))
  assert _rows(path.replace(".json", "_images.csv")) == rows
  chosen = rows[0]["scoring"]
  assert chosen in ("gabor", "patchcore")
  assert os.path.isfile(path.replace(  # the chosen candidate's pictures
      ".json", f"_input_map_truth_{chosen}_0.png"))
  assert "1 bad records left out" in caplog.text
  assert str(test / "good" / "0a.png") in caplog.text


def _folder_tree(root):
  """A classification image folder: train/ and val/, one class of light
  photographs and one of dark, of odd sizes; one unreadable val file."""
  rng = np.random.default_rng(0)
  for split, n in (("train", 4), ("val", 3)):
    for name, value in (("clean", 200), ("damaged", 40)):
      folder = root / split / name
      folder.mkdir(parents=True)
      for i in range(n):
        image = np.clip(value + rng.normal(0, 10, (37 + i, 53, 3)), 0, 255)
        assert cv2.imwrite(str(folder / f"IMG_{i}.jpg"),
                           image.astype(np.uint8))
  (root / "val" / "clean" / "IMG_1a.jpg").write_bytes(b"\xff\xd8 cut short")


def test_classification_rows_name_each_validation_file(tmp_path):
  """A row per validation image the data check kept: its file, its true
  class (the folder's), the predicted class and probability prediction
  gives that file, and whether they agree; their mean is the accuracy."""
  _folder_tree(tmp_path / "data")
  config = gate.get_config("variant=test")
  config.data.source = "image_folder"
  config.data.path = str(tmp_path / "data")
  config.num_train_steps = 0
  run = tmp_path / "run"
  summary = train.train_and_evaluate(config, str(run))
  rows = _rows(run / per_image.EVAL_IMAGES)
  val = tmp_path / "data" / "val"
  assert sorted(r["file"] for r in rows) == sorted(
      str(val / kind / f"IMG_{i}.jpg") for kind in ("clean", "damaged")
      for i in range(3))
  for r in rows:
    assert r["label"] == os.path.basename(os.path.dirname(r["file"]))
    assert r["correct"] == str(r["label"] == r["class"])
  assert np.mean([r["correct"] == "True" for r in rows]) == pytest.approx(
      summary["eval"]["accuracy"])
  for kind in ("clean", "damaged"):
    predicted = _predictions(run, val / kind, tmp_path / f"out_{kind}")
    for r in rows:
      if r["label"] == kind:
        record = predicted[os.path.basename(r["file"])]
        assert record["class"] == r["class"]
        assert record["score"] == pytest.approx(float(r["score"]), abs=1e-4)


def test_a_file_name_that_is_not_utf8_is_written_escaped(tmp_path):
  """A name of any bytes a Linux file may hold (read back by os.fsdecode)
  does not stop the writing of the rows: its stray byte is escaped."""
  name = os.fsdecode(b"/data/cat/test/good/scan\xff,1.png")
  path = str(tmp_path / "rows.csv")
  per_image.write_csv(path, [{"file": name, "score": 0.5}])
  assert _rows(path) == [{"file": "/data/cat/test/good/scan\\udcff,1.png",
                          "score": "0.5"}]

