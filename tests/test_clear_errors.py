"""Errors a user can read: each names the file, record or field at fault
and what was expected. The data check leaves bad records out at start (or
stops the run) and writes what it found to the workdir."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, free_port
from vq import run_config, train
from vq.config_base import ConfigError
from vq.data import check
from vq.data.errors import AnnotationError
from vq.data.images import write_image
from vq.data.formats.keypoint_readers import read_keypoints_csv
from vq.data.formats.yolo_txt import read_yolo_txt
from vq.models import torchvision_import
from vq.tasks.segmentation import SegmentationTask

sys.path.insert(0, ROOT)
from configs import unet_steel  # noqa: E402


def _yolo_tree(root, names=("a", "b", "c", "d")):
  (root / "images").mkdir(parents=True)
  (root / "labels").mkdir()
  for name in names:
    write_image(root / "images" / f"{name}.jpg",
                np.full((24, 32, 3), 90, np.uint8))
    (root / "labels" / f"{name}.txt").write_text("0 0.5 0.5 0.25 0.25\n")
  return root


def test_a_latin_1_label_file_names_file_and_line(tmp_path):
  root = _yolo_tree(tmp_path / "yolo")
  (root / "labels" / "b.txt").write_bytes(
      "0 0.5 0.5 0.2 0.2\n# pièce rayée\n".encode("latin-1"))
  with pytest.raises(AnnotationError, match=r"b\.txt:2: not UTF-8 text "
                     r"\(byte 0xe8"):
    read_yolo_txt(str(root), 2)
  csv_path = tmp_path / "kp.csv"
  csv_path.write_bytes("image,x1,y1\nrayée.png,1,2\n".encode("latin-1"))
  with pytest.raises(AnnotationError, match=r"kp\.csv:2: not UTF-8"):
    read_keypoints_csv(str(csv_path), 1)
  csv_path.write_bytes("\ufeffimage,x1,y1\na.png,1,2\n".encode("utf-8"))
  assert read_keypoints_csv(str(csv_path), 1)[0]["id"] == "a.png"


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_a_truncated_weights_file_is_named(tmp_path, suffix):
  import torch
  path = tmp_path / f"mobilenet{suffix}"
  tensors = {"features.0.0.weight": torch.zeros(32, 3, 3, 3)}
  if suffix == ".pth":
    torch.save(tensors, path)
  else:
    from safetensors.torch import save_file
    save_file(tensors, str(path))
  path.write_bytes(path.read_bytes()[:200])
  with pytest.raises(ValueError, match=rf"mobilenet\{suffix}: cannot be read "
                     "as a weights file"):
    torchvision_import.load_torchvision(str(path))


def test_a_unet_input_that_does_not_halve_evenly_is_refused():
  config = unet_steel.get_config("variant=test")
  config.data.image_size = (30, 30)
  with pytest.raises(ValueError, match=r"data.image_size \(30, 30\) must be "
                     r"a multiple of 4 .*e\.g\. \(32, 32\)"):
    SegmentationTask(config)


def test_class_names_that_the_embedded_data_lacks_are_refused(test_config,
                                                               tmp_path):
  test_config.data.class_names = ("nut", "washer")
  with pytest.raises(ValueError, match="draws the classes"):
    train.train_and_evaluate(test_config, str(tmp_path))


def test_an_unknown_config_field_is_one_message(tmp_path):
  config_file = tmp_path / "typo.py"
  config_file.write_text(
      "import sys\nsys.path.insert(0, %r)\n" % ROOT +
      "from configs import yolo\n"
      "def get_config():\n"
      "  c = yolo.get_config('variant=test')\n"
      "  c.optimizer.learnig_rate = 0.1\n"
      "  return c\n")
  result = subprocess.run(
      [sys.executable, "-m", "vq.main", f"--config={config_file}",
       f"--workdir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True,
      text=True, timeout=120)
  assert result.returncode == 1
  assert "did you mean optimizer.learning_rate" in result.stderr
  assert "Traceback" not in result.stderr


def test_a_misspelt_override_is_one_message(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "vq.main", "--config=configs/yolo.py",
       f"--workdir={tmp_path / 'run'}", "--config.batch_sise=4"], cwd=ROOT,
      capture_output=True, text=True, timeout=120)
  assert result.returncode == 1
  assert "Traceback" not in result.stderr
  lines = [l for l in result.stderr.splitlines() if "Flags parsing" in l]
  assert len(lines) == 1, result.stderr
  assert "--config.batch_sise" in lines[0]
  assert 'Did you mean "batch_size"' in lines[0]
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("tool,args", [
    ("vq.predict", ["--input=.", "--output=out"]),
    ("vq.export", ["--format=onnx", "--output=m.onnx"]),
    ("vq.evaluate", []),
])
def test_the_tools_report_a_run_without_checkpoints_in_one_message(
    tmp_path, tool, args):
  """Every command-line tool reports a user's mistake in one line (exit
  status 1); -v=1 adds the traceback."""
  run = tmp_path / "run"
  run.mkdir()
  (run / "config.json").write_text(
      unet_steel.get_config("variant=test").to_json())
  command = [sys.executable, "-m", tool, f"--workdir={run}", *args]
  result = subprocess.run(command, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 1, result.stderr
  assert f"no checkpoint in {run}/checkpoints" in result.stderr
  assert "Traceback" not in result.stderr
  if tool == "vq.predict":
    verbose = subprocess.run(command + ["-v=1"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert verbose.returncode != 0 and "Traceback" in verbose.stderr


@pytest.mark.parametrize("content", [b'{"task": "segmentation", "mod',
                                     b"\xff\xfe[1, 2]", b"[1, 2]",
                                     b'{"model": {}}'])
def test_a_damaged_config_json_is_named(tmp_path, content):
  (tmp_path / "config.json").write_bytes(content)
  with pytest.raises(ConfigError, match=r"config\.json: damaged or not a vq "
                     r"run's config"):
    run_config.load_config(str(tmp_path))


def test_evaluate_reports_a_damaged_config_json_in_one_message(tmp_path):
  run = tmp_path / "run"
  run.mkdir()
  text = unet_steel.get_config("variant=test").to_json()
  (run / "config.json").write_text(text[:len(text) // 2])
  result = subprocess.run(
      [sys.executable, "-m", "vq.evaluate", f"--workdir={run}"], cwd=ROOT,
      capture_output=True, text=True, timeout=120)
  assert result.returncode == 1
  assert "Traceback" not in result.stderr
  assert f"{run}/config.json: damaged" in result.stderr


def test_the_data_check_leaves_bad_records_out_and_reports_them(
    test_config, tmp_path):
  root = _yolo_tree(tmp_path / "yolo")
  (root / "images" / "b.jpg").write_bytes(b"")                 # zero bytes
  whole = (root / "images" / "c.jpg").read_bytes()
  (root / "images" / "c.jpg").write_bytes(whole[:len(whole) // 2])
  (root / "labels" / "d.txt").write_text("0 0.5 0.5 0.25\n")   # 4 fields
  test_config.data.source = "yolo_txt"
  test_config.data.class_names = ("part",)
  test_config.data.train_path = str(root)
  # A bad label line stops the reading itself (the reader names it) ...
  with pytest.raises(AnnotationError, match=r"d\.txt:1: expected 5 fields"):
    train.train_and_evaluate(test_config, str(tmp_path / "run0"))
  (root / "labels" / "d.txt").write_text("0 0.5 0.5 0.25 0.25\n")
  # ... bad images are left out at start, and listed.
  test_config.num_train_steps = 0  # no train step: the data check is checked
  train.train_and_evaluate(test_config, str(tmp_path / "run"))
  with open(tmp_path / "run" / "data_check.json") as f:
    report = json.load(f)
  for split in ("train", "eval"):
    assert report[split]["records"] == 4 and report[split]["left_out"] == 2
    reasons = " ".join(report[split]["reasons"])
    assert "b.jpg" in reasons and "not a readable image (0 bytes" in reasons
    assert "c.jpg" in reasons and "truncated JPEG" in reasons
  table = check.summary_table(report)
  assert "left out" in table and "truncated JPEG" in table
  # A fatal check stops before training, naming every bad file.
  test_config.data_check = "fatal"
  with pytest.raises(check.DataCheckError, match=r"(?s)4 bad records.*b\.jpg"):
    train.train_and_evaluate(test_config, str(tmp_path / "run2"))
  # Nothing left: the empty split names the data fields.
  for name in ("a", "d"):
    (root / "images" / f"{name}.jpg").write_bytes(b"")
  test_config.data_check = "skip"
  with pytest.raises(ValueError, match=r"the training dataset is empty "
                     r"\(data.source='yolo_txt', .*train_path"):
    train.train_and_evaluate(test_config, str(tmp_path / "run3"))


def test_check_data_command(tmp_path):
  root = _yolo_tree(tmp_path / "yolo", names=("a", "b"))
  (root / "images" / "b.jpg").write_bytes(b"\xff\xd8\xff")
  result = subprocess.run(
      [sys.executable, "-m", "vq.check_data",
       f"--config={os.path.join(ROOT, 'configs', 'yolo.py')}:variant=test",
       "--config.data.source=yolo_txt", "--config.data.class_names=('part',)",
       f"--config.data.train_path={root}",
       f"--output={tmp_path / 'report.json'}"],
      cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode == 1, result.stderr
  assert "b.jpg" in result.stdout and "truncated JPEG" in result.stdout
  with open(tmp_path / "report.json") as f:
    assert json.load(f)["train"]["left_out"] == 1


CHECK_SCRIPT = """
import json, sys
from vq import distributed
distributed.initialize_if_launched()
from vq.data import check
from vq.data.sources import Datasets, RecordSource

class Noted(RecordSource):
  def __getitem__(self, index):
    sys.stderr.write(f"loaded {index}\\n")
    if index in (1, 4):
      raise ValueError(f"record {index} is bad")
    return self.records[index]

source = Noted([{"id": f"r{i}"} for i in range(7)])
data = Datasets(source, source, None, None)
import jax
kept, report = check.check_datasets(
    data, shard=(jax.process_index(), jax.process_count()),
    gather=distributed.allgather_lists)
print(json.dumps({"kept": [source.records[i]["id"]
                           for i in kept.train.indices], "report": report}))
"""


def test_two_processes_share_the_data_check_and_keep_the_same_records():
  port = free_port()
  procs = [subprocess.Popen(
      [sys.executable, "-c", CHECK_SCRIPT], cwd=ROOT, text=True,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      env=dict(os.environ, JAX_COORDINATOR_ADDRESS=f"localhost:{port}",
               VQ_NUM_PROCESSES="2", VQ_PROCESS_ID=str(i)))
      for i in range(2)]
  outs = [p.communicate(timeout=120) for p in procs]
  assert all(p.returncode == 0 for p in procs), outs[0][1][-2000:]
  results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
  for i, (result, (_, err)) in enumerate(zip(results, outs)):
    loaded = {int(line.split()[1]) for line in err.splitlines()
              if line.startswith("loaded ")}
    assert loaded == set(range(i, 7, 2))  # its share, train and eval alike
    assert result["kept"] == ["r0", "r2", "r3", "r5", "r6"]
    assert result["report"]["train"]["left_out"] == 2
    assert result["report"]["eval"]["reasons"] == [
        "r1: ValueError: record 1 is bad", "r4: ValueError: record 4 is bad"]
  assert results[0] == results[1]
