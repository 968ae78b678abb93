"""Every library vq imports is declared in pyproject.toml, once."""
import ast
import os
import re
import sys
import tomllib

ROOT = os.path.join(os.path.dirname(__file__), "..")
# Import name -> distribution name, where they differ.
DISTRIBUTIONS = {"cv2": "opencv-python-headless", "skimage": "scikit-image",
                 "ml_collections": "ml-collections", "absl": "absl-py",
                 "orbax": "orbax-checkpoint", "tensorflow": "tensorflow-cpu",
                 "tensorflow_datasets": "tensorflow-datasets", "yaml": "pyyaml",
                 "simple_parsing": "simple-parsing"}


def _name(requirement):
  return re.split(r"[<>=;\[ ]", requirement, maxsplit=1)[0].lower()


def _imports():
  found = set()
  for folder, _, files in os.walk(os.path.join(ROOT, "vq")):
    for f in files:
      if f.endswith(".py"):
        tree = ast.parse(open(os.path.join(folder, f)).read())
        for node in ast.walk(tree):
          if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
          elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module.split(".")[0])
  return found - set(sys.stdlib_module_names) - {"vq"}


def test_imports_are_declared_once():
  project = tomllib.load(open(os.path.join(ROOT, "pyproject.toml"), "rb"))
  required = [_name(r) for r in project["project"]["dependencies"]]
  optional = {_name(r) for extra in project["project"][
      "optional-dependencies"].values() for r in extra}
  duplicated = {n for n in required if required.count(n) > 1 and
                "tensorflow" not in n}  # tensorflow: one line per platform
  assert not duplicated
  declared = set(required) | optional
  missing = {m for m in _imports()
             if DISTRIBUTIONS.get(m, m).replace("_", "-") not in declared}
  assert not missing, f"imported but not declared: {sorted(missing)}"


def test_data_modules_stay_on_the_host():
  """vq/data runs in grain workers: NumPy and OpenCV only, never JAX (a jax
  call per sample is a device launch and a copy on an accelerator host)."""
  offenders = []
  for folder, _, files in sorted(os.walk(os.path.join(ROOT, "vq", "data"))):
    for f in sorted(n for n in files if n.endswith(".py")):
      tree = ast.parse(open(os.path.join(folder, f)).read())
      for node in ast.walk(tree):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom)
                 else [])
        offenders += [f"{f}: {n}" for n in names if n.split(".")[0] == "jax"
                      or n.startswith("vq.ops")]
  assert not offenders
