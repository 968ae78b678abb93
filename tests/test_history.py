"""Run histories, the best checkpoint, and an ablation that reruns to the
same table."""
import os
import sys

import grain
import jax.numpy as jnp
import pytest

from vq import history, train
from vq.checkpoint import Checkpoints

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "launch"))
from ablation import run_ablation  # noqa: E402


def test_best_checkpoint_is_kept_beside_the_latest(tmp_path):
  iterator = iter(grain.MapDataset.range(10).to_iter_dataset())
  checkpoints = Checkpoints(str(tmp_path), keep=1, best_metric="auroc")
  for step, value in zip(range(1, 5), [0.5, 0.9, 0.3, 0.4]):
    checkpoints.save(step, {"w": jnp.full(3, step)}, iterator, {"task": "t"},
                     metrics={"auroc": value, "other": 1.0})
  checkpoints.wait_until_finished()
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["2", "4"]
  checkpoints.close()
  low = Checkpoints(str(tmp_path / "low"), keep=1, best_metric="error",
                    best_mode="min")
  for step, value in zip(range(1, 4), [3.0, 1.0, 2.0]):
    low.save(step, {"w": jnp.zeros(2)}, iterator, {"task": "t"},
             metrics={"error": value})
  low.wait_until_finished()
  assert sorted(os.listdir(tmp_path / "low" / "checkpoints")) == ["2", "3"]
  low.close()


def test_history_keeps_the_last_record_of_each_step(tmp_path):
  for step, value in [(2, 1.0), (4, 2.0), (2, 3.0)]:
    history.append(str(tmp_path), history.EVAL, step, {"m": value})
  assert history.read(str(tmp_path), history.EVAL) == [
      {"step": 2, "m": 3.0}, {"step": 4, "m": 2.0}]


def test_a_half_written_history_line_is_set_aside(tmp_path, caplog):
  """A process killed mid-write leaves half a line: reading skips it (and
  any other line that is not a record) with a warning; the next append
  moves it to <history>.broken instead of joining it to the new record."""
  path = tmp_path / history.EVAL
  path.write_bytes(b'{"step": 1, "m": 0.5}\nnot json\n{"step": 2, "m": 0.')
  with caplog.at_level("WARNING"):
    assert history.read(str(tmp_path), history.EVAL) == [
        {"step": 1, "m": 0.5}]
  assert "eval_history.jsonl:2: not a JSON" in caplog.text
  assert "eval_history.jsonl:3: not a JSON" in caplog.text
  history.append(str(tmp_path), history.EVAL, 2, {"m": 0.75})
  assert path.read_bytes().endswith(b'not json\n{"step": 2, "m": 0.75}\n')
  assert (tmp_path / (history.EVAL + ".broken")).read_bytes() == \
      b'{"step": 2, "m": 0.\n'
  assert history.read(str(tmp_path), history.EVAL) == [
      {"step": 1, "m": 0.5}, {"step": 2, "m": 0.75}]


@pytest.mark.slow  # three evaluations: 20 s; the history is read by other tests
def test_every_evaluation_is_in_the_history(test_config, tmp_path):
  test_config.eval_every_steps = 2
  train.train_and_evaluate(test_config, str(tmp_path))
  evaluations = history.read(str(tmp_path), history.EVAL)
  assert [r["step"] for r in evaluations] == [2, 4, 6]
  assert all("voc_map50" in r for r in evaluations)
  logged = history.read(str(tmp_path), history.TRAIN)
  assert [r["step"] for r in logged] == [2, 3, 4, 6]


def test_an_evaluation_error_keeps_the_training(test_config, tmp_path,
                                                monkeypatch):
  def broken(*args):
    raise ValueError("evaluation failed")
  monkeypatch.setattr(train, "_evaluate", broken)
  with pytest.raises(ValueError, match="evaluation failed"):
    train.train_and_evaluate(test_config, str(tmp_path))
  # Step 3 was saved on schedule; the error at step 6 saved step 6 first.
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["3", "6"]


@pytest.mark.slow  # 25 s: two runs, then the launcher again
def test_rerunning_an_ablation_reproduces_its_table(test_config, tmp_path):
  runs = {"a": {}, "b": {"optimizer.learning_rate": 1e-4}}
  first = run_ablation(test_config, runs, str(tmp_path))
  assert "nan" not in first.lower() and first.count("| 6 |") == 2
  curves = (tmp_path / "loss_curves.png").read_bytes()
  assert run_ablation(test_config, runs, str(tmp_path)) == first
  assert (tmp_path / "loss_curves.png").read_bytes() == curves
