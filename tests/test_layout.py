"""The layers of the package: the data layer stands on its own, and no
module hides an import inside a function to get around an import cycle."""
import ast
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(__file__), "..")
# Imported where they are used, each for a reason other than a cycle: a
# heavy or optional library only some commands need.
DEFERRED = {
    "tensorflow_datasets": "TFDS: only data.source=tfds and the builders",
    "tensorflow_datasets.scripts.cli": "TFDS's build command only",
    "vq.tfds_builders": "imports TFDS (vq.build_tfds only)",
    "onnx": "ONNX export and prediction only",
    "onnxruntime": "ONNX prediction only",
    "jax2onnx": "ONNX export only",
    "keras": "Keras weight files only",
    "safetensors.numpy": "torchvision .safetensors files only",
    "skimage": "its photographs, for the embedded anomaly sources",
    "yaml": "Ultralytics dataset files only",
    "simple_parsing": "TFDS's build command only",
    "jax.experimental": "multi-host helpers, several processes only",
}


def _function_imports():
  """(file, line, module) of every import inside a function under vq/."""
  found = []
  for folder, _, files in os.walk(os.path.join(ROOT, "vq")):
    for name in files:
      if not name.endswith(".py"):
        continue
      path = os.path.join(folder, name)
      tree = ast.parse(open(path).read())
      for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
          continue
        for node in ast.walk(function):
          if isinstance(node, ast.Import):
            found += [(path, node.lineno, a.name) for a in node.names]
          elif isinstance(node, ast.ImportFrom):
            found.append((path, node.lineno, node.module))
  return found


def test_no_import_inside_a_function_but_deferred_libraries():
  hidden = [f"{os.path.relpath(p, ROOT)}:{line} imports {module}"
            for p, line, module in _function_imports()
            if module not in DEFERRED]
  assert not hidden, hidden


def test_the_data_layer_imports_no_task_run_or_trainer():
  code = ("import importlib, pkgutil, sys, vq.data\n"
          "for m in pkgutil.iter_modules(vq.data.__path__):\n"
          "  importlib.import_module('vq.data.' + m.name)\n"
          "print(' '.join(sorted(m for m in sys.modules "
          "if m.startswith('vq.'))))")
  loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.split()
  above = [m for m in loaded
           if m.split(".")[1] in ("tasks", "runs", "run_config", "train",
                                  "benchmarks", "predict", "evaluate")]
  assert not above, above
  assert "vq.data.anomaly" in loaded
