import os
import shutil
import socket
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import orbax.checkpoint as ocp
import pytest
# torchvision (the reference for weight import tests) crashes the process
# when imported after Keras; importing it first avoids that.
import torchvision  # noqa: F401  pylint: disable=unused-import

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Many tests compile the same small programs (the test configs' train and
# eval steps): a compilation cache for this session, shared with the
# subprocess tests, compiles each once.
# pytest-xdist's workers inherit the directory the controller made; the
# process that made it removes it at the end.
_MADE_CACHE = "VQ_TEST_XLA_CACHE" not in os.environ
os.environ.setdefault("VQ_TEST_XLA_CACHE",
                      tempfile.mkdtemp(prefix="vq_test_xla_cache_"))
os.environ["JAX_COMPILATION_CACHE_DIR"] = os.environ["VQ_TEST_XLA_CACHE"]
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
# Tests check behaviour, not speed, and most of their time is XLA
# compiling small programs: its backend at optimisation level 1 compiles
# them several times faster (a DRAEM test config's initialisation: 27 s ->
# 7 s on 2 cores; level 0 was faster still, but its code for the Severstal
# recipe's train step gave NaN where levels 1 and 2 do not). Subprocess
# tests inherit it unless they set XLA_FLAGS.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_backend_optimization_level=1").strip()


def pytest_sessionfinish(session):
  del session
  if _MADE_CACHE:
    shutil.rmtree(os.environ["VQ_TEST_XLA_CACHE"], ignore_errors=True)


def wide_anomaly_tree(root):
  """An MVTec AD category `cat` of 24x72 PNG photographs under `root`: 4
  for training, 2 good and 2 defective test images (a dark bar, masked)."""
  rng = np.random.default_rng(0)
  for folder in ("train/good", "test/good", "test/bar", "ground_truth/bar"):
    (root / "cat" / folder).mkdir(parents=True)
  def surface():
    return rng.integers(100, 140, (24, 72, 3), np.uint8)
  for i in range(4):
    cv2.imwrite(str(root / "cat" / "train" / "good" / f"{i}.png"), surface())
  for i in range(2):
    cv2.imwrite(str(root / "cat" / "test" / "good" / f"{i}.png"), surface())
    image, mask = surface(), np.zeros((24, 72), np.uint8)
    image[8:14, 20 + 20 * i:40 + 20 * i] = 10
    mask[8:14, 20 + 20 * i:40 + 20 * i] = 255
    cv2.imwrite(str(root / "cat" / "test" / "bar" / f"{i}.png"), image)
    cv2.imwrite(str(root / "cat" / "ground_truth" / "bar" / f"{i}_mask.png"),
                mask)


def free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def run_helper(workdir, overrides, env=None, background=False):
  """Starts tests/train_helper.py in a fresh process (own XLA flags)."""
  import json
  cmd = [sys.executable, os.path.join(ROOT, "tests", "train_helper.py"),
         str(workdir), json.dumps(overrides)]
  full_env = dict(os.environ, **(env or {}))
  proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, cwd=ROOT)
  return proc if background else finish_helper(proc)


def finish_helper(proc, timeout=300):
  import json
  out, err = proc.communicate(timeout=timeout)
  if proc.returncode != 0:
    raise AssertionError(f"training failed ({proc.returncode}):\n{err[-4000:]}")
  line = [l for l in out.splitlines() if l.startswith("SUMMARY ")][-1]
  return json.loads(line[len("SUMMARY "):])


def load_params(workdir, step, collection="params"):
  """A checkpoint's parameters (or another state field) as numpy arrays,
  whatever its device layout."""
  import jax
  path = os.path.join(workdir, "checkpoints", str(step), "state")
  checkpointer = ocp.PyTreeCheckpointer()
  tree = checkpointer.metadata(path).item_metadata.tree
  state = checkpointer.restore(path, restore_args=jax.tree.map(
      lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree))
  return {k: np.asarray(v) for k, v in _flatten(state[collection]).items()}


def _flatten(tree, prefix=""):
  flat = {}
  for k, v in tree.items():
    if isinstance(v, dict):
      flat.update(_flatten(v, f"{prefix}{k}/"))
    else:
      flat[prefix + k] = v
  return flat


@pytest.fixture
def test_config():
  sys.path.insert(0, ROOT)
  from configs import yolo
  return yolo.get_config("variant=test")


@pytest.fixture
def keypoints_test_config():
  sys.path.insert(0, ROOT)
  from configs import keypoints
  return keypoints.get_config("variant=test")
