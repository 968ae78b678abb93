"""Encoder weights from Keras and torchvision files, compared with the
source framework's own outputs on random weights and BatchNorm statistics.
"""
import os
import sys

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vq import checkpoint, train
from vq.config_base import ConfigError
from vq.models import keras_import, pretrained, preprocessing
from vq.models import torchvision_import
from vq.models.efficientnet import EfficientNetB0
from vq.models.encoders import build_encoder
from vq.models.mobilenet_v2 import MobileNetV2
from vq.tasks import encoder_weights
from vq.tasks.detection import default_config as detection_defaults

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from configs import keypoints, unet_damage, yolo  # noqa: E402  pylint: disable=g-import-not-at-top

SIZE = 64
ARCHITECTURES = {"mobilenet_v2": MobileNetV2, "efficientnet_b0": EfficientNetB0}


def assert_close(got, expected):
  expected = np.asarray(expected)
  assert np.abs(expected).max() > 1e-2  # not a degenerate comparison
  np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4,
                             atol=1e-4 * np.abs(expected).max())


def random_keras(architecture, alpha=1.0, include_top=True, seed=0):
  """A Keras application with random weights and BatchNorm statistics (an
  EfficientNet normalises its input with ImageNet's mean and variance)."""
  import keras
  kwargs = dict(input_shape=(SIZE, SIZE, 3), include_top=include_top,
                weights=None, classifier_activation=None)
  model = (keras.applications.MobileNetV2(alpha=alpha, **kwargs)
           if architecture == "mobilenet_v2" else
           keras.applications.EfficientNetB0(**kwargs))
  rng = np.random.default_rng(seed)
  for layer in model.layers:
    kind = type(layer).__name__
    if kind == "BatchNormalization":
      g, b, m, v = layer.get_weights()
      layer.set_weights([rng.uniform(0.5, 1.5, g.shape),
                         rng.normal(0, 0.1, b.shape),
                         rng.normal(0, 0.1, m.shape),
                         rng.uniform(0.5, 1.5, v.shape)])
    elif kind == "Normalization":
      layer.set_weights([np.array(preprocessing.IMAGENET_MEAN),
                         np.array(preprocessing.IMAGENET_STD) ** 2,
                         layer.get_weights()[2]])
      layer.finalize_state()  # what Keras computes with, from the weights
  return model


def save_legacy_h5(model, path):
  """The layout of Keras's published ImageNet files (HDF5, one group per
  layer, `layer_names` and `weight_names` attributes)."""
  with h5py.File(path, "w") as f:
    f.attrs["layer_names"] = [l.name.encode() for l in model.layers]
    f.attrs["backend"] = b"tensorflow"
    f.attrs["keras_version"] = b"2.2.4"
    for layer in model.layers:
      group = f.create_group(layer.name)
      names = [f"{layer.name}/{w.name}:0".encode() for w in layer.weights]
      group.attrs["weight_names"] = names
      for name, value in zip(names, layer.get_weights()):
        group.create_dataset(name.decode(), data=value)


def images(seed=0, n=2):
  return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3),
                                              np.uint8)


def vq_outputs(architecture, variables, x, alpha, include_top, padding):
  model = ARCHITECTURES[architecture](
      include_top=include_top, padding=padding,
      **({"alpha": alpha} if architecture == "mobilenet_v2" else {}))
  return jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)


@pytest.mark.parametrize("architecture,alpha,include_top,layout", [
    ("mobilenet_v2", 0.35, True, "keras3"),
    ("mobilenet_v2", 0.35, False, "published"),
    ("mobilenet_v2", 1.0, True, "published"),
    ("mobilenet_v2", 1.0, False, "keras3"),
    ("efficientnet_b0", 1.0, True, "keras3"),
    ("efficientnet_b0", 1.0, False, "published"),
])
def test_keras_file_gives_keras_outputs(tmp_path, architecture, alpha,
                                        include_top, layout):
  model = random_keras(architecture, alpha, include_top)
  if layout == "published":
    path = str(tmp_path / "weights.h5")
    save_legacy_h5(model, path)
  else:
    path = str(tmp_path / "model.weights.h5")
    model.save_weights(path)
  conventions = pretrained.file_conventions(path, architecture)
  raw = images()
  if architecture == "mobilenet_v2":
    # Keras's own preprocessing for these weights; its model takes [-1, 1].
    import keras
    keras_input = keras.applications.mobilenet_v2.preprocess_input(
        raw.astype(np.float32))
  else:
    keras_input = raw.astype(np.float32)  # the model rescales itself
  expected = model(keras_input, training=False)

  variables = keras_import.load_keras(path, architecture, alpha)
  assert ("predictions" in variables["params"]) == include_top
  got = vq_outputs(architecture, variables,
                   preprocessing.scale_images(raw, conventions["input_scaling"]),
                   alpha, include_top, conventions["padding"])
  assert_close(got, expected)


def random_torchvision(architecture, width_mult=1.0, seed=0):
  import torch
  import torchvision
  torch.manual_seed(seed)
  model = (torchvision.models.mobilenet_v2(width_mult=width_mult)
           if architecture == "mobilenet_v2" else
           torchvision.models.efficientnet_b0()).eval()
  with torch.no_grad():
    for m in model.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        m.running_mean.normal_(0, 0.1)
        m.running_var.uniform_(0.5, 1.5)
        m.weight.uniform_(0.5, 1.5)
        m.bias.normal_(0, 0.1)
  return model


def save_state_dict(state_dict, path):
  import torch
  if path.endswith(".safetensors"):
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in state_dict.items()}, path)
  else:
    torch.save(state_dict, path)


@pytest.mark.parametrize("architecture,alpha,include_top,suffix", [
    ("mobilenet_v2", 1.0, True, ".pth"),
    ("mobilenet_v2", 1.0, False, ".safetensors"),
    ("mobilenet_v2", 0.35, True, ".safetensors"),
    ("mobilenet_v2", 0.35, False, ".pth"),
    ("efficientnet_b0", 1.0, True, ".safetensors"),
    ("efficientnet_b0", 1.0, False, ".pth"),
])
def test_torchvision_file_gives_torchvision_outputs(
    tmp_path, architecture, alpha, include_top, suffix):
  import torch
  import torchvision.transforms.functional as tvf
  model = random_torchvision(architecture, alpha)
  path = str(tmp_path / f"model{suffix}")
  # Without top: the `features` module's own state dict.
  save_state_dict(model.state_dict() if include_top else
                  model.features.state_dict(), path)
  raw = images()
  x = tvf.normalize(torch.from_numpy(raw).permute(0, 3, 1, 2).float() / 255,
                    preprocessing.IMAGENET_MEAN, preprocessing.IMAGENET_STD)
  with torch.no_grad():
    expected = (model(x) if include_top else
                model.features(x).permute(0, 2, 3, 1)).numpy()

  conventions = pretrained.file_conventions(path, architecture)
  assert conventions == {"padding": "torch", "input_scaling": "torch"}
  variables = torchvision_import.load_torchvision(path, architecture, alpha)
  got = vq_outputs(architecture, variables,
                   preprocessing.scale_images(raw, "torch"), alpha,
                   include_top, "torch")
  assert_close(got, expected)


def test_tensors_that_do_not_fit_are_named_with_both_shapes(tmp_path):
  path = str(tmp_path / "small.safetensors")
  save_state_dict(random_torchvision("mobilenet_v2", 0.35).state_dict(), path)
  with pytest.raises(ValueError, match=r"'features\.0\.0\.weight' has shape "
                     r"\(16, 3, 3, 3\).*needs \(3, 3, 3, 32\)"):
    pretrained.load_file(path, "mobilenet_v2")  # the file is alpha 0.35
  loaded = pretrained.load_file(path, "mobilenet_v2", 0.35)
  encoder = build_encoder("mobilenet_v2", 1.0, "torch")
  variables = jax.eval_shape(encoder.init, jax.random.key(0),
                             jnp.zeros((1, 32, 32, 3)))
  with pytest.raises(ValueError, match=r"bn_Conv1/mean has shape \(16,\), "
                     r"the model's encoder \(32,\)"):
    pretrained.insert(variables, loaded, "", path)
  with pytest.raises(ValueError, match="not a Keras MobileNetV2"):
    other = str(tmp_path / "efficientnet.weights.h5")
    random_keras("efficientnet_b0", include_top=False).save_weights(other)
    keras_import.load_keras(other, "mobilenet_v2", 1.0)


def _features(task, variables, raw):
  """The encoder's maps (strides 2 ... 32) of a task's model on uint8
  images, as the model computes them."""
  spec = task.encoder()
  encoder = build_encoder(spec.architecture, spec.alpha, task.padding)
  own = {k: v[spec.module_path] for k, v in variables.items()}
  return jax.jit(lambda v, x: encoder.apply(v, x, train=False))(
      own, task.model_input(jnp.asarray(raw)))


def _keras_maps(model, names, x):
  import keras
  probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
  return [np.asarray(y) for y in probe(x, training=False)]


def _keras_segmentation_config(tmp_path):
  source = random_keras("mobilenet_v2", 0.35, include_top=False)
  path = str(tmp_path / "mobilenet_v2_0.35_no_top.h5")
  save_legacy_h5(source, path)
  config = unet_damage.get_config("variant=test")
  config.model.backbone_weights = path
  return source, config


def _assert_keras_features(source, task, variables):
  import keras
  assert (task.input_scaling, task.padding) == ("keras", "keras")
  raw = images(1)
  got = _features(task, variables, raw)
  expected = _keras_maps(source, ["expanded_conv_project_BN", "out_relu"],
                         keras.applications.mobilenet_v2.preprocess_input(
                             raw.astype(np.float32)))
  assert_close(got[0], expected[0])
  assert_close(got[-1], expected[1])
  return got[0], expected[0]


def test_a_segmentation_model_starts_from_a_keras_encoder(tmp_path):
  from vq.tasks.segmentation import SegmentationTask
  source, config = _keras_segmentation_config(tmp_path)
  task = SegmentationTask(config)
  variables = task.init_variables(jax.random.key(0))
  _, expected = _assert_keras_features(source, task, variables)
  # The [0, 1] input of random initialisation gives other features.
  task.input_scaling = "unit"
  unit = _features(task, variables, images(1))[0]
  assert np.abs(unit - expected).max() > 0.1 * np.abs(expected).max()


@pytest.mark.slow  # 65 s
def test_a_segmentation_run_keeps_a_frozen_keras_encoder(tmp_path):
  from vq.tasks.segmentation import SegmentationTask
  source, config = _keras_segmentation_config(tmp_path)
  config.freeze = ("^encoder/",)
  config.num_train_steps = 2
  config.eval_every_steps = 2
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir)
  saved = checkpoint.load_variables(workdir)
  task = SegmentationTask(config)
  _assert_keras_features(source, task, saved)
  # The decoder trained: the run did not just keep its initial state.
  assert not np.allclose(
      saved["params"]["head"]["kernel"],
      task.init_variables(jax.random.key(config.seed))["params"]["head"][
          "kernel"])


def test_a_detection_run_starts_from_a_torchvision_backbone(tmp_path,
                                                           monkeypatch):
  import torch
  import torchvision.transforms.functional as tvf
  source = random_torchvision("mobilenet_v2", 0.35)
  path = str(tmp_path / "mobilenet_v2.pth")
  save_state_dict(source.state_dict(), path)
  config = yolo.get_config("variant=test")
  config.model.backbone = "mobilenet_v2"
  config.model.widths = detection_defaults().model.widths
  config.model.alpha = 0.35
  config.data.image_size = SIZE
  config.model.backbone_weights = path
  config.freeze = ("^backbone/",)
  workdir = str(tmp_path / "run")
  reads = []
  read = pretrained.load_file
  monkeypatch.setattr(pretrained, "load_file",
                      lambda *args: reads.append(args) or read(*args))
  train.train_and_evaluate(config, workdir)
  assert len(reads) == 1  # the state's shapes and the state: one read
  # A rewritten file is read again.
  os.utime(path, ns=(os.stat(path).st_atime_ns,
                     os.stat(path).st_mtime_ns + 10**9))
  encoder = encoder_weights.Encoder("mobilenet_v2", 0.35, "backbone")
  encoder_weights.load(path, encoder)
  assert len(reads) == 2
  with pytest.raises(FileNotFoundError,
                     match=r"backbone_weights: .*missing\.pth not found"):
    encoder_weights.load(str(tmp_path / "missing.pth"), encoder)
  from vq.tasks.detection import DetectionTask
  task = DetectionTask(config)
  assert (task.input_scaling, task.padding) == ("torch", "torch")
  raw = images(2)
  got = _features(task, checkpoint.load_variables(workdir), raw)
  x = tvf.normalize(torch.from_numpy(raw).permute(0, 3, 1, 2).float() / 255,
                    preprocessing.IMAGENET_MEAN, preprocessing.IMAGENET_STD)
  with torch.no_grad():
    early = source.features[:2](x).permute(0, 2, 3, 1).numpy()
    last = source.features(x).permute(0, 2, 3, 1).numpy()
  assert_close(got[0], early)
  assert_close(got[-1], last)


def test_weights_and_conventions_that_disagree_are_refused(tmp_path):
  path = str(tmp_path / "mobilenet_v2.pth")
  save_state_dict(random_torchvision("mobilenet_v2", 0.35).state_dict(), path)
  config = keypoints.get_config("variant=test")
  config.model.backbone_weights = path
  config.model.padding = "keras"
  from vq.tasks.keypoints import KeypointsTask
  with pytest.raises(ConfigError, match="need 'torch'"):
    KeypointsTask(config)
  config = unet_damage.get_config("variant=test")
  config.model.architecture = "unet"
  config.model.decoder_widths = (256, 128, 64, 32, 16)
  config.model.encoder = "mobilenet_v2"
  config.model.alpha = 1.0
  config.model.backbone_weights = path
  from vq.tasks.segmentation import SegmentationTask
  with pytest.raises(ConfigError, match="needs a model with an encoder"):
    SegmentationTask(config)
