"""ONNX and StableHLO exports give the JAX outputs (every family at its test
size) and carry their metadata."""
import json
import os
import sys

import jax
import numpy as np
import onnx
import onnxruntime
import pytest

from vq import export
from vq.predict import load_exported
from vq.tasks import TASKS

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from configs import (draem, keypoints, pretrain_mobilenet, unet_damage,  # noqa: E402
                     unet_scratch, unet_steel, yolo)

CASES = {"detection": (yolo, ""), "segmentation": (unet_damage, ""),
         # The Severstal recipe's forward: a per-class head gating the
         # softmax, classes voted.
         "segmentation_softmax": (unet_steel, "",
                                  {"eval.class_vote_radius": 2,
                                   "model.image_head": True,
                                   "model.image_head_per_class": True,
                                   "model.classification_guided": True}),
         "keypoints": (keypoints, ""), "anomaly": (draem, "scoring=baseline"),
         "classification": (pretrain_mobilenet, ""),
         "unet3plus": (unet_scratch, "model=unet3plus"),
         "deeplabv3": (unet_scratch, "model=deeplabv3"),
         "unet_space_to_depth": (unet_steel, "", {"model.space_to_depth": 2})}


def _task(case):
  module, arg, *overrides = CASES[case]
  config = module.get_config(",".join(filter(None, ["variant=test", arg])))
  for fields in overrides:
    config.update_from_flattened_dict(fields)
  task = TASKS[config.task](config)
  return task, task.init_variables(jax.random.key(0))


def _images(task, n):
  return np.random.default_rng(n).integers(
      0, 256, (n, *task.input_shape)).astype(np.uint8)


def _assert_close(got, expected):
  assert sorted(got) == sorted(expected)
  for k in expected:
    np.testing.assert_allclose(np.asarray(got[k], np.float64),
                               np.asarray(expected[k], np.float64),
                               atol=1e-4, err_msg=k)


# Converting and compiling the MobileNetV2-, DRAEM- and ASPP-based models
# takes 15-60 s each on 2 CPU cores: those cases run with -m slow.
SLOW_ONNX = ("anomaly", "classification", "deeplabv3", "keypoints",
             "segmentation")
SLOW_STABLEHLO = ("anomaly", "classification", "keypoints", "segmentation",
                  "unet_space_to_depth")


def _cases(slow):
  return [pytest.param(c, marks=pytest.mark.slow) if c in slow else c
          for c in sorted(CASES)]


@pytest.mark.parametrize("case", _cases(SLOW_ONNX))
def test_onnx_forward_equals_jax(case):
  task, variables = _task(case)
  model = export.export_onnx(task, variables)
  session = onnxruntime.InferenceSession(model.SerializeToString())
  images = _images(task, 3)  # the export has a symbolic batch
  names = [o.name for o in session.get_outputs()]
  got = dict(zip(names, session.run(names, {"images": images})))
  _assert_close(got, jax.device_get(task.forward(variables, images)))


@pytest.mark.parametrize("case", _cases(SLOW_STABLEHLO))
def test_stablehlo_predict_equals_jax(case):
  task, variables = _task(case)
  exported = jax.export.deserialize(export.export_stablehlo(task, variables))
  for n in (1, 3):
    images = _images(task, n)
    _assert_close(exported.call(images),
                  jax.device_get(task.predict(variables, images)))


def test_exported_files_carry_metadata_and_predict(tmp_path, monkeypatch):
  task, variables = _task("detection")
  monkeypatch.setattr(export.runs, "load_run",
                      lambda workdir, step, calibration: (
                          task.config, task, variables, 7))
  for fmt, name in (("onnx", "m.onnx"), ("stablehlo", "m.stablehlo")):
    path = str(tmp_path / name)
    meta = export.export_run("RUN", fmt, path)
    if fmt == "onnx":
      props = {p.key: p.value for p in onnx.load(path).metadata_props}
      assert json.loads(props["vq"]) == meta
    else:
      assert json.load(open(path + ".json")) == meta
    assert meta["class_names"] == list(task.class_names)
    assert meta["input"]["shape"] == ["batch", 32, 32, 3] and meta["step"] == 7
    loaded_task, predict_fn = load_exported(path)
    images = _images(task, 2)
    _assert_close(predict_fn(images),
                  jax.device_get(task.predict(variables, images)))
    assert loaded_task.class_names == task.class_names
    # Damaged copies: one message naming the file, whatever the parser
    # raised inside.
    whole = open(path, "rb").read()
    for damage, content in (("cut", whole[:len(whole) // 3]),
                            ("flipped", whole[:40] + bytes(
                                b ^ 0xFF for b in whole[40:400]) +
                             whole[400:])):
      broken = str(tmp_path / f"{damage}_{name}")
      open(broken, "wb").write(content)
      if fmt == "stablehlo":
        open(broken + ".json", "w").write(json.dumps(meta))
      with pytest.raises(ValueError, match=rf"{damage}_m\.\w+: damaged or "
                         "not a vq export"):
        load_exported(broken)
    if fmt == "stablehlo":
      open(path + ".json", "w").write(json.dumps(meta)[:50])
      with pytest.raises(ValueError, match=r"m\.stablehlo\.json: damaged"):
        load_exported(path)
