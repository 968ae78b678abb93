"""The trainer: config errors, resume, NaN stop, sharding, processes, SIGTERM."""
import csv
import errno
import json
import os
import signal
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT, finish_helper, free_port, load_params, run_helper
from vq import guards, train
from vq.config_base import ConfigError
from vq.checkpoint import CheckpointMismatchError

CONSTANT_LR = {"optimizer.schedule": "constant"}


def test_unknown_config_field_fails_at_start(test_config, tmp_path):
  test_config.optimizer.learnig_rate = 0.1
  with pytest.raises(ValueError, match="did you mean optimizer.learning_rate"):
    train.train_and_evaluate(test_config, str(tmp_path))


@pytest.mark.slow  # 60 s; tests/test_pipeline.py checks the stream itself
def test_worker_processes_give_the_same_stream_and_resume_exactly(
    test_config, tmp_path):
  test_config.update_from_flattened_dict(CONSTANT_LR)
  test_config.num_train_steps = 6
  in_process = train.train_and_evaluate(test_config, str(tmp_path / "threads"))
  test_config.data_workers = "2"
  test_config.num_train_steps = 3
  first = train.train_and_evaluate(test_config, str(tmp_path / "workers"))
  test_config.num_train_steps = 6
  second = train.train_and_evaluate(test_config, str(tmp_path / "workers"))
  assert [s for s, _ in second["losses"]] == [4, 5, 6]
  assert first["losses"] + second["losses"] == in_process["losses"]


def test_missing_dataset_path_fails_at_start(test_config, tmp_path):
  test_config.data.source = "voc"
  test_config.data.train_path = str(tmp_path / "no_such_voc")
  with pytest.raises(FileNotFoundError, match="no_such_voc"):
    train.train_and_evaluate(test_config, str(tmp_path / "run"))
  test_config.data.train_path = ""
  with pytest.raises(ValueError, match="data.source=.voc. needs data.train_path"):
    train.train_and_evaluate(test_config, str(tmp_path / "run"))


def test_resume_is_exact_and_other_models_are_refused(test_config, tmp_path):
  test_config.update_from_flattened_dict(CONSTANT_LR)
  test_config.num_train_steps = 8
  straight = train.train_and_evaluate(test_config, str(tmp_path / "straight"))
  test_config.num_train_steps = 4
  first = train.train_and_evaluate(test_config, str(tmp_path / "resumed"))
  test_config.num_train_steps = 8
  second = train.train_and_evaluate(test_config, str(tmp_path / "resumed"))
  assert [s for s, _ in first["losses"]] == [1, 2, 3, 4]
  assert [s for s, _ in second["losses"]] == [5, 6, 7, 8]
  # Bitwise on CPU: same program, same data order, same per-step rng.
  assert first["losses"] + second["losses"] == straight["losses"]
  # data_workers=auto is recorded as the count it chose (none on CPU).
  with open(tmp_path / "resumed" / "config.json") as f:
    assert json.load(f)["data_workers"] == "0"
  a = load_params(tmp_path / "straight", 8)
  b = load_params(tmp_path / "resumed", 8)
  assert a.keys() == b.keys()
  for k in a:
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)

  widths = test_config.model.widths
  test_config.model.widths = (4, 8, 16)
  test_config.num_train_steps = 10
  before = _mtimes(tmp_path / "resumed")
  with pytest.raises(CheckpointMismatchError, match="different model"):
    train.train_and_evaluate(test_config, str(tmp_path / "resumed"))
  # Refused before writing anything: no new file, config.json untouched.
  assert _mtimes(tmp_path / "resumed") == before

  # The same model trained otherwise: refused with the differences, unless
  # allowed (then recorded); the step count alone changed above.
  test_config.model.widths = widths
  lr = test_config.optimizer.learning_rate
  test_config.batch_size = 4
  test_config.optimizer.learning_rate = 0.5
  with pytest.raises(ConfigError, match=r"trained to step 8 with another "
                     rf"config \(batch_size: 8 -> 4; optimizer.learning_rate: "
                     rf"{lr} -> 0.5\).*allow_changes"):
    train.train_and_evaluate(test_config, str(tmp_path / "resumed"))
  assert _mtimes(tmp_path / "resumed") == before
  test_config.allow_changes = True
  third = train.train_and_evaluate(test_config, str(tmp_path / "resumed"))
  assert [s for s, _ in third["losses"]] == [9, 10]
  with open(tmp_path / "resumed" / "config_changes.jsonl") as f:
    assert [json.loads(line) for line in f] == [{"step": 8, "changes": {
        "batch_size": {"from": 8, "to": 4},
        "optimizer.learning_rate": {"from": lr, "to": 0.5}}}]


def _mtimes(folder):
  return {p: (folder / p).stat().st_mtime_ns for p in os.listdir(folder)}


def test_two_runs_cannot_share_a_workdir(test_config, tmp_path):
  with guards.WorkdirLock(str(tmp_path), True):  # another run holds it
    with pytest.raises(RuntimeError, match="another run is using"):
      train.train_and_evaluate(test_config, str(tmp_path))
  assert not os.path.exists(tmp_path / "config.json")


# SGD whose learning rate jumps from 1e-3 to 1e35 at step 4 of 8.
EXPLODING = {
    "optimizer.name": "sgd", "optimizer.schedule": "step",
    "optimizer.step_boundaries": (0.5,), "optimizer.step_factor": 1e38,
    "optimizer.learning_rate": 1e-3, "num_train_steps": 8}


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(test_config,
                                                              tmp_path):
  # The learning rate jumps to 1e35 at step 4: step 5's update explodes the
  # parameters, so the loss of step 6 is no longer finite.
  test_config.update_from_flattened_dict(dict(
      EXPLODING, checkpoint_every_steps=2, log_every_steps=2))
  with pytest.raises(train.NonFiniteLossError,
                     match=r"non-finite loss at step 6: class=.*loss=") as e:
    train.train_and_evaluate(test_config, str(tmp_path))
  assert "checkpoint (step 4)" in str(e.value)
  steps = sorted(int(d) for d in os.listdir(tmp_path / "checkpoints"))
  assert steps[-1] == 4


def test_exploded_parameters_are_never_saved(test_config, tmp_path):
  # Step 5's update (learning rate 1e35) explodes the parameters while the
  # loss of step 5, computed before it, is finite: step 5 is not saved.
  test_config.update_from_flattened_dict(dict(
      EXPLODING, checkpoint_every_steps=1, log_every_steps=1))
  with pytest.raises(train.NonFiniteLossError,
                     match=r"state after step 5 has non-finite values or "
                     r"gives a non-finite loss.*checkpoint \(step 4\)"):
    train.train_and_evaluate(test_config, str(tmp_path))
  steps = sorted(int(d) for d in os.listdir(tmp_path / "checkpoints"))
  assert steps[-1] == 4
  params = load_params(tmp_path, 4)
  assert all(np.all(np.isfinite(v)) for v in params.values())
  # Resuming restores the finite step 4 and stops at the same update.
  with pytest.raises(train.NonFiniteLossError, match="after step 5"):
    train.train_and_evaluate(test_config, str(tmp_path))


def test_a_negative_step_count_is_refused(test_config, tmp_path):
  test_config.num_train_steps = -1
  with pytest.raises(ValueError, match=r"num_train_steps must be >= 0 \(0: "
                     r"evaluate the initial state\), got -1"):
    train.train_and_evaluate(test_config, str(tmp_path))


def test_the_state_check_reads_every_floating_array():
  # A non-finite moment of the optimiser leaves the step's loss finite.
  state = {"params": jnp.ones(3), "mu": jnp.array([0.0, jnp.inf]),
           "step": jnp.int32(3)}
  assert not train._all_finite(state)  # pylint: disable=protected-access
  state["mu"] = jnp.zeros(2)
  assert train._all_finite(state)  # pylint: disable=protected-access


def test_one_device_and_eight_devices_give_the_same_losses(test_config,
                                                          tmp_path):
  overrides = dict(CONSTANT_LR, num_train_steps=4)
  eight = run_helper(
      tmp_path / "eight", overrides, background=True,
      env={"XLA_FLAGS": os.environ["XLA_FLAGS"] +  # conftest.py's level
           " --xla_force_host_platform_device_count=8"})
  # The test process has one device (tests/train_helper.py's config).
  test_config.update_from_flattened_dict(overrides)
  one = train.train_and_evaluate(test_config, str(tmp_path / "one"))
  eight = finish_helper(eight)
  assert len(one["losses"]) == 4
  np.testing.assert_allclose([l for _, l in eight["losses"]],
                             [l for _, l in one["losses"]], rtol=1e-5)
  np.testing.assert_allclose(eight["eval"]["voc_map50"],
                             one["eval"]["voc_map50"], atol=1e-6)


def test_two_processes_train_like_one(test_config, tmp_path):
  """From a prepared TFDS dataset: each process reads its own shard, and
  together they make the one-process batches (the same losses)."""
  from test_tfds import case
  from vq.prepare_tfds import prepare
  prepare(case("voc", tmp_path), "vq_voc_two", str(tmp_path / "tfds"))
  overrides = dict(CONSTANT_LR, num_train_steps=4, **{
      "data.source": "tfds", "data.tfds_name": "vq_voc_two",
      "data.tfds_data_dir": str(tmp_path / "tfds"),
      "data.class_names": ("nut", "bolt")})
  port = free_port()
  procs = [run_helper(tmp_path / "multi", overrides, background=True, env={
      "JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
      "VQ_NUM_PROCESSES": "2", "VQ_PROCESS_ID": str(i)}) for i in range(2)]
  # One process, this one, meanwhile (tests/train_helper.py's config).
  test_config.update_from_flattened_dict(overrides)
  single = train.train_and_evaluate(test_config, str(tmp_path / "single"))
  multi = [finish_helper(p) for p in procs]
  for m in multi:
    np.testing.assert_allclose([l for _, l in m["losses"]],
                               [l for _, l in single["losses"]], rtol=1e-5)
  a = load_params(tmp_path / "multi", 4)
  b = load_params(tmp_path / "single", 4)
  for k in a:
    np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-6, err_msg=k)


def test_sigterm_saves_and_exits_cleanly_then_resumes(tmp_path):
  workdir = tmp_path / "run"
  cmd = [sys.executable, "-m", "vq.main",
         f"--config={ROOT}/configs/yolo.py:variant=test",
         f"--workdir={workdir}", "--config.num_train_steps=100000",
         "--config.checkpoint_every_steps=100000",
         "--config.eval_every_steps=100000", "--config.log_every_steps=5",
         "--config.optimizer.schedule=constant"]
  proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
  for line in proc.stderr:  # wait until training runs
    if "train/loss=" in line:
      break
  proc.send_signal(signal.SIGTERM)
  rest = proc.stderr.read()
  assert proc.wait(timeout=120) == 0, rest[-3000:]
  assert "exiting" in rest
  saved = [int(d) for d in os.listdir(workdir / "checkpoints")]
  assert len(saved) == 1 and 5 <= saved[0] < 100000
  # Resuming runs only the remaining steps.
  resumed = run_helper(workdir, dict(CONSTANT_LR, num_train_steps=saved[0] + 2))
  assert [s for s, _ in resumed["losses"]] == [saved[0] + 1, saved[0] + 2]


@pytest.mark.parametrize("damage", [
    "truncated_array",
    pytest.param("missing_metadata", marks=pytest.mark.slow)])  # 12 s more
def test_a_corrupt_latest_checkpoint_falls_back_to_the_one_before(
    test_config, tmp_path, damage, caplog):
  test_config.update_from_flattened_dict(dict(
      CONSTANT_LR, num_train_steps=4, checkpoint_every_steps=2,
      eval_every_steps=4))
  train.train_and_evaluate(test_config, str(tmp_path))
  step4 = tmp_path / "checkpoints" / "4"
  if damage == "truncated_array":
    arrays = [p for p in step4.rglob("*") if p.is_file() and
              p.stat().st_size > 1000 and "state" in p.parts]
    assert arrays
    for path in arrays:
      path.write_bytes(path.read_bytes()[:path.stat().st_size // 3])
  else:
    for path in step4.rglob("_METADATA"):
      path.unlink()
  test_config.num_train_steps = 6
  with caplog.at_level("WARNING"):
    summary = train.train_and_evaluate(test_config, str(tmp_path))
  assert [s for s, _ in summary["losses"]] == [3, 4, 5, 6]
  warning = " ".join(r.getMessage() for r in caplog.records)
  assert "checkpoint 4" in warning and "cannot be restored" in warning
  assert (tmp_path / "corrupt_checkpoints" / "4").is_dir()
  steps = sorted(int(d) for d in os.listdir(tmp_path / "checkpoints"))
  assert steps[-1] == 6


def test_results_that_cannot_be_written_still_leave_the_step_saved(
    test_config, tmp_path, monkeypatch):
  # A full disk while the last evaluation's per-image rows are written:
  # the step is saved before the error ends the run, and the results of
  # the evaluation before stay whole, with no partial file beside them.
  test_config.update_from_flattened_dict(dict(
      num_train_steps=4, eval_every_steps=2, checkpoint_every_steps=100))
  writes = []

  def writerows(writer, rows):
    writes.append(len(rows))
    if len(writes) == 2:
      raise OSError(errno.ENOSPC, "No space left on device")
    return original(writer, rows)

  original = csv.DictWriter.writerows
  monkeypatch.setattr(csv.DictWriter, "writerows", writerows)
  with pytest.raises(OSError, match="No space left"):
    train.train_and_evaluate(test_config, str(tmp_path))
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["4"]
  with open(tmp_path / "eval_results.json") as f:
    assert json.load(f)["step"] == 4
  with open(tmp_path / "eval_images.csv") as f:
    assert len(f.readlines()) == 1 + writes[0]
  assert not [n for n in os.listdir(tmp_path) if "partial" in n]


def test_two_processes_stop_together_when_the_results_cannot_be_written(
    tmp_path):
  # Only the chief writes the results; the other process must hear of its
  # failure and save the step with it, not train on alone and wait
  # forever on the chief's next collective.
  workdir = tmp_path / "run"
  (workdir / "eval_images.csv").mkdir(parents=True)
  port = free_port()
  procs = [run_helper(workdir, dict(
      num_train_steps=4, eval_every_steps=2, checkpoint_every_steps=100),
      background=True, env={"JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
                            "VQ_NUM_PROCESSES": "2", "VQ_PROCESS_ID": str(i)})
           for i in range(2)]
  try:
    errors = [p.communicate(timeout=240)[1] for p in procs]
  finally:
    for p in procs:
      p.kill()
  assert all(p.returncode != 0 for p in procs), errors
  assert "Is a directory" in errors[0]
  assert "another process could not write the evaluation of step 2" in (
      errors[1])
  assert os.listdir(workdir / "checkpoints") == ["2"]
