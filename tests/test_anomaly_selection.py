"""eval.scoring=auto: each category scored by the memory recipe whose map
has the higher pixel AUROC on its validation half; prediction adopts that
recipe for the category it decides for."""
import os
import sys

import ml_collections
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from vq import config_base, export
from vq.data.check import Kept, item_names
from vq.data.sources import Datasets, RecordSource
from vq.tasks import anomaly
from vq.tasks import anomaly_selection as selection
from vq.tasks.anomaly import AnomalyTask

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from configs import draem  # noqa: E402


def test_choose_takes_the_higher_measure_the_first_name_on_ties():
  assert selection.choose({"b": 0.9, "a": 0.8}) == "b"
  assert selection.choose({"b": 0.8, "a": 0.8}) == "a"
  assert selection.choose({"a": float("nan"), "b": 0.1}) == "b"
  scalars = {"x/candidate/a/val_pixel_auroc": 0.7,
             "x/candidate/b/val_pixel_auroc": 0.75,
             "y/candidate/a/val_pixel_auroc": 0.9}  # y: b not evaluated
  assert selection.chosen_candidates(scalars, ("x", "y"), ("a", "b")) == {
      "x": "b"}


def test_candidate_fields_are_checked_and_named():
  config_base.validate(draem.get_config(), anomaly.default_config())
  config = draem.get_config("variant=test")
  config.eval.candidates.patchcore.eval.memory.blurr = 3.0
  with pytest.raises(config_base.ConfigError,
                     match=r"(?s)eval.candidates.patchcore: .*eval.memory.blurr "
                           r"\(did you mean eval.memory.blur"):
    AnomalyTask(config)
  config = draem.get_config("variant=test")
  config.eval.candidates.gabor = ml_collections.ConfigDict(
      {"eval": {"scoring": "fused"}})
  with pytest.raises(config_base.ConfigError,
                     match="eval.candidates.gabor: candidates are memory "
                           "scorings .* got 'fused'"):
    AnomalyTask(config)
  config.eval.candidates = ml_collections.ConfigDict()
  with pytest.raises(config_base.ConfigError, match="none is given"):
    AnomalyTask(config)
  # The colour loss shapes the networks' training, which auto skips.
  with pytest.raises(config_base.ConfigError,
                     match="colour=1 changes how DRAEM's networks train"):
    draem.get_config("colour=1")
  assert draem.get_config("colour=1,scoring=fused").loss.colour


def _halves_auroc(scores, labels, seed=0):
  """Image AUROC on the validation / test halves, the split drawn here."""
  order = np.random.default_rng(seed).permutation(len(labels))
  n = int(round(0.5 * len(labels)))
  return [roc_auc_score(labels[i], scores[i]) for i in (order[:n],
                                                        order[n:])]


def test_auto_reports_each_category_with_its_chosen_candidate(tmp_path):
  """Every candidate is evaluated as a memory run with its fields; each
  category's headline figures and threshold are those of the candidate
  with the higher validation-half pixel AUROC; the halves' image AUROC
  equal scikit-learn's on the candidate's own scores. Prediction then
  adopts the chosen candidate's settings."""
  config = draem.get_config("variant=test")
  config.data.categories = ("brick", "grass")
  config.data.cache_dir = str(tmp_path / "cache")
  config.eval.memory.images = 6
  config.eval.candidates.patchcore.eval.memory.images = 6
  task = AnomalyTask(config)
  scalars, pictures, rows = task.evaluate([], None)
  names = ("gabor", "patchcore")
  chosen = selection.chosen_candidates(scalars, task.class_names, names)
  assert set(chosen) == {"brick", "grass"}
  for category, name in chosen.items():
    values = {n: scalars[f"{category}/candidate/{n}/val_pixel_auroc"]
              for n in names}
    assert values[name] == max(values.values())
    for k in ("image_auroc", "pixel_auroc"):
      assert scalars[f"{category}/{k}"] == \
          scalars[f"{category}/candidate/{name}/{k}"]
  assert scalars["image_auroc"] == pytest.approx(np.mean(
      [scalars[f"{c}/image_auroc"] for c in task.class_names]))
  assert {f"input_map_truth/{n}" for n in set(chosen.values())} == \
      set(pictures)

  # Each candidate's own scores (its memory maps are kept from the
  # evaluation: no second search).
  for name, own in task.candidates.items():
    assert own.config.eval.scoring == "memory"
    data = own.datasets()
    records = [data.eval_transform(data.eval[i])
               for i in range(len(data.eval))]
    host = {k: np.stack([r[k] for r in records]) for k in records[0]}
    host, outs, extra = own.scored_outputs(host, {}, data)
    own_scalars, _, _ = own.metrics(host, outs, extra, data)
    for c, category in enumerate(task.class_names):
      sel = host["category"] == c
      assert own_scalars[f"{category}/image_auroc"] == pytest.approx(
          scalars[f"{category}/candidate/{name}/image_auroc"])
      val, test = _halves_auroc(outs["score/memory"][sel],
                                host["label"][sel])
      prefix = f"{category}/candidate/{name}/"
      assert scalars[prefix + "val_image_auroc"] == pytest.approx(val)
      assert scalars[prefix + "test_image_auroc"] == pytest.approx(test)
      if chosen[category] == name:  # its rows: the chosen candidate's scores
        own_rows = [r for r in rows if r["category"] == category]
        assert {r["scoring"] for r in own_rows} == {name}
        np.testing.assert_allclose([r["score"] for r in own_rows],
                                   outs["score/memory"][sel], rtol=1e-6)

  calibration = task.calibrate(scalars)
  for category, name in chosen.items():
    assert calibration[category][selection.CANDIDATE] == name
    assert calibration[category]["threshold"] == \
        scalars[f"{category}/threshold"]
  with pytest.raises(ValueError, match="name one with --category"):
    AnomalyTask(config).select_category("")
  predictor = AnomalyTask(config)
  predictor.calibration = calibration
  predictor.needs_training_images = False  # as an ONNX export's
  predictor.select_category("grass")
  adopted = task.candidates[chosen["grass"]].config
  assert predictor.config.eval.scoring == "memory"
  assert predictor.config.eval.memory.features == \
      adopted.eval.memory.features
  assert predictor.input_shape == task.candidates[
      chosen["grass"]].input_shape
  predictor.select_category("brick")  # then another category's choice
  assert predictor.config.eval.memory.features == task.candidates[
      chosen["brick"]].config.eval.memory.features
  predictor.select_category("grass")
  meta = export.metadata(predictor, 4, "onnx")
  assert meta["calibration"]["grass"][selection.CANDIDATE] == chosen["grass"]
  assert meta["settings"]["data"]["keep_aspect"] == adopted.data.keep_aspect


def test_candidates_keep_the_records_the_check_kept():
  """A candidate reads the run's files at its own shape: the check's
  choice of records carries over; other files are refused."""
  def files(*names):
    return RecordSource([{"image_path": n} for n in names])
  def data(train, test):
    return Datasets(train, test, None, None)
  run = data(Kept(files("a", "bad", "c"), [0, 2]), files("t1", "t2"))
  kept = selection.kept_by_check(data(files("a", "bad", "c"),
                                      files("t1", "t2")), run, "patchcore")
  assert item_names(kept.train) == ["a", "c"]
  assert item_names(kept.eval) == ["t1", "t2"]
  with pytest.raises(config_base.ConfigError, match="eval.candidates.patch"
                     "core reads other train records than the run"):
    selection.kept_by_check(data(files("x", "bad", "c"), files("t1", "t2")),
                            run, "patchcore")
