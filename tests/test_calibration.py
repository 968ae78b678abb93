"""Prediction and export decide with a later evaluation's thresholds
(`--calibration=NAME`: the run's `vq.evaluate --name=NAME`), refused where
that evaluation scored the images otherwise."""
import csv
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from configs import draem  # noqa: E402
from conftest import wide_anomaly_tree  # noqa: E402
from vq import evaluate, export, predict, run_config, runs, train  # noqa: E402
from vq.tasks import get_task_class  # noqa: E402


def _decisions(run, folder, output, **kwargs):
  """The decisions of vq.predict over `folder`, one per image."""
  predict.predict(str(run), str(folder), str(output),
                  progress=open(os.devnull, "w"), category="cat", **kwargs)
  with open(output / "predictions.jsonl") as f:
    decisions = [json.loads(line)["decision"] for line in f]
  assert len(decisions) == len(os.listdir(folder))
  return decisions


def test_prediction_takes_the_thresholds_of_a_named_evaluation(tmp_path):
  data = tmp_path / "data"
  wide_anomaly_tree(data)
  config = draem.get_config("variant=test,scoring=memory")  # no network
  config.data.update({"source": "mvtec", "path": str(data),
                      "categories": ("cat",)})
  run = tmp_path / "run"
  trained = train.train_and_evaluate(config, str(run))["eval"]

  at_recall = run_config.load_config(str(run))
  at_recall.eval.threshold_recall = 1.0
  scalars, path = evaluate.evaluate(str(run), at_recall, name="recall100")
  with open(path) as f:
    record = json.load(f)
  assert record["changes"] == {
      "eval.threshold_recall": {"from": 0.0, "to": 1.0}}
  assert scalars["cat/threshold"] <= trained["cat/threshold"]
  meta = export.export_run(str(run), "stablehlo", str(tmp_path / "m.hlo"),
                           category="cat", calibration="recall100")
  assert meta["calibration"]["cat"]["threshold"] == scalars["cat/threshold"]
  assert meta["settings"]["eval"]["threshold_recall"] == 1.0

  # Thresholds written by hand below and above every score: each bar
  # defective, then good; prediction applies the named file's thresholds.
  with open(path.replace(".json", "_images.csv"), newline="") as f:
    scores = [float(r["score"]) for r in csv.DictReader(f)]
  bars = data / "cat" / "test" / "bar"
  for name, threshold, decision in (("below", min(scores) - 1, "defective"),
                                    ("above", max(scores) + 1, "good")):
    edited = dict(record, scalars=dict(scalars, **{"cat/threshold":
                                                   threshold}))
    (run / "evaluations" / f"{name}.json").write_text(json.dumps(edited))
    assert set(_decisions(run, bars, tmp_path / name,
                          calibration=name)) == {decision}
    with open(tmp_path / name / "run.json") as f:
      assert json.load(f)["identity"]["calibration"] == name


@pytest.mark.parametrize("edit, message", [
    ({"changes": {"eval.memory.blur": {"from": 12.0, "to": 16.0}}},
     r"changed eval.memory.blur, which change the scores.*only "
     r"eval.threshold_recall, data.validation_fraction, data.split_seed"),
    ({"step": 99}, r"evaluated step 99, not step 0: pass --step=99"),
    ({"changes": None}, "records the config fields it changed"),
    ({"scalars": None}, "records the config fields it changed"),
])
def test_an_evaluation_that_scored_otherwise_is_refused(tmp_path, edit,
                                                        message):
  record = {"step": 0, "data": {}, "changes": {}, "scalars": {}, **edit}
  record = {k: v for k, v in record.items() if v is not None}
  (tmp_path / "evaluations").mkdir()
  (tmp_path / "evaluations" / "e.json").write_text(json.dumps(record))
  with pytest.raises(ValueError, match=message):
    runs.calibrating_evaluation(str(tmp_path), "e", 0,
                                get_task_class("anomaly"))


def test_a_missing_evaluation_or_a_task_without_thresholds_is_named(
    tmp_path):
  with pytest.raises(FileNotFoundError, match=r"evaluations/e.json: no such "
                     r"evaluation; write it with python -m vq.evaluate"):
    runs.calibrating_evaluation(str(tmp_path), "e", 0,
                                get_task_class("anomaly"))
  with pytest.raises(ValueError, match="prediction of a segmentation run "
                     "takes no decision settings"):
    runs.calibrating_evaluation(str(tmp_path), "e", 0,
                                get_task_class("segmentation"))
  with pytest.raises(ValueError, match="an exported file carries the "
                     "calibration it was exported with"):
    predict.load_model(model=str(tmp_path / "m.onnx"), calibration="e")
