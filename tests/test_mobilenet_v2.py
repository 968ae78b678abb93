import os
import sys

import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vq.models import keras_import, torchvision_import
from vq.models.layers import DepthwiseConv
from vq.models.mobilenet_v2 import MobileNetV2


def counts(model, size=224):
  v = jax.eval_shape(lambda: model.init(jax.random.key(0),
                                        jnp.zeros((1, size, size, 3))))
  n = lambda t: int(sum(np.prod(x.shape) for x in jax.tree.leaves(t)))
  return n(v["params"]), n(v["batch_stats"])


def test_published_parameter_counts():
  # Keras: 3,538,984 parameters of which 34,112 non-trainable.
  assert counts(MobileNetV2()) == (3_504_872, 34_112)
  assert counts(MobileNetV2(include_top=False)) == (2_223_872, 34_112)
  assert counts(MobileNetV2(padding="torch")) == (3_504_872, 34_112)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [7, 8])
@pytest.mark.parametrize("padding", ["SAME", "SYMMETRIC"])
@pytest.mark.parametrize("kernel", [3, 5])
def test_depthwise_matches_grouped_convolution(stride, size, padding, kernel):
  import flax.linen as nn
  x = jax.random.normal(jax.random.key(0), (2, size, size, 5))
  dw = DepthwiseConv(kernel_size=kernel, strides=stride, padding=padding)
  v = dw.init(jax.random.key(1), x)
  conv_padding = ("SAME" if padding == "SAME" else
                  ((kernel // 2, kernel // 2),) * 2)
  ref = nn.Conv(5, (kernel, kernel), strides=stride, padding=conv_padding,
                feature_group_count=5, use_bias=False)
  np.testing.assert_allclose(dw.apply(v, x), ref.apply(v, x), atol=1e-5)
  g1 = jax.grad(lambda v: jnp.sum(dw.apply(v, x) ** 2))(v)
  g2 = jax.grad(lambda v: jnp.sum(ref.apply(v, x) ** 2))(v)
  np.testing.assert_allclose(g1["params"]["kernel"], g2["params"]["kernel"],
                             rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def keras_weights(tmp_path_factory):
  import keras
  model = keras.applications.MobileNetV2(input_shape=(224, 224, 3),
                                         weights=None,
                                         classifier_activation=None)
  rng = np.random.default_rng(0)
  for layer in model.layers:  # random BatchNorm statistics, not 0 and 1
    if type(layer).__name__ == "BatchNormalization":
      g, b, m, v = layer.get_weights()
      layer.set_weights([rng.uniform(0.5, 1.5, g.shape), rng.normal(0, 0.1, b.shape),
                         rng.normal(0, 0.1, m.shape), rng.uniform(0.5, 1.5, v.shape)])
  path = str(tmp_path_factory.mktemp("keras") / "mobilenet_v2.weights.h5")
  model.save_weights(path)
  x = rng.uniform(-1, 1, (2, 224, 224, 3)).astype(np.float32)
  return path, x, np.asarray(model(x, training=False))


def test_keras_weights_give_keras_outputs(keras_weights):
  path, x, expected = keras_weights
  variables = keras_import.load_keras(path, 'mobilenet_v2')
  model = MobileNetV2(padding="keras")
  logits = model.apply(variables, jnp.asarray(x), train=False)
  # Logits, not softmax outputs (each class's probability is ~1e-3).
  assert np.abs(expected).max() > 0.1
  np.testing.assert_allclose(logits, expected, rtol=1e-4,
                             atol=1e-4 * np.abs(expected).max())
  init = jax.eval_shape(lambda: model.init(jax.random.key(0), x[:1]))
  assert jax.tree.structure(init) == jax.tree.structure(variables)


def test_torchvision_state_dict_maps_every_tensor():
  model = MobileNetV2(padding="torch")
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0),
                                             jnp.zeros((1, 32, 32, 3))))
  v = jax.tree.map(lambda a: np.random.default_rng(int(np.prod(a.shape))).normal(
      size=a.shape).astype(np.float32), shapes)
  # Write the state dict torchvision would hold, with its names and shapes.
  sd = {}
  for prefix, name, kind in torchvision_import.mobilenet_v2_names() + [
      torchvision_import.CLASSIFIER]:
    p = v["params"][name]
    if kind in ("conv", "dw"):
      sd[prefix + ".weight"] = np.transpose(p["kernel"], (3, 2, 0, 1))
    elif kind == "bn":
      s = v["batch_stats"][name]
      sd.update({prefix + ".weight": p["scale"], prefix + ".bias": p["bias"],
                 prefix + ".running_mean": s["mean"],
                 prefix + ".running_var": s["var"],
                 prefix + ".num_batches_tracked": np.array(1)})
    else:
      sd[prefix + ".weight"] = p["kernel"].T
      sd[prefix + ".bias"] = p["bias"]
  assert sd["features.0.0.weight"].shape == (32, 3, 3, 3)
  assert sd["features.2.conv.1.0.weight"].shape == (96, 1, 3, 3)
  assert sd["features.18.0.weight"].shape == (1280, 320, 1, 1)
  assert sd["classifier.1.weight"].shape == (1000, 1280)
  assert len(sd) == 314  # torchvision's mobilenet_v2().state_dict()
  loaded = torchvision_import.variables_from_torchvision(sd)
  flat_a = flax.traverse_util.flatten_dict(loaded)
  flat_b = flax.traverse_util.flatten_dict(jax.device_get(v))
  assert flat_a.keys() == flat_b.keys()
  for k in flat_a:
    np.testing.assert_array_equal(flat_a[k], flat_b[k], err_msg=str(k))
  del sd["features.5.conv.1.0.weight"]
  with pytest.raises(KeyError, match="features.5.conv.1.0.weight"):
    torchvision_import.variables_from_torchvision(sd)


def test_torchvision_file_gives_torchvision_logits(tmp_path):
  import torch
  import torchvision
  torch.manual_seed(0)
  model = torchvision.models.mobilenet_v2(weights=None).eval()
  with torch.no_grad():
    for m in model.modules():  # random BatchNorm statistics and affine
      if isinstance(m, torch.nn.BatchNorm2d):
        m.running_mean.normal_(0, 0.1)
        m.running_var.uniform_(0.5, 1.5)
        m.weight.uniform_(0.5, 1.5)
        m.bias.normal_(0, 0.1)
  path = tmp_path / "mobilenet_v2.pth"
  torch.save(model.state_dict(), path)
  x = np.random.default_rng(0).normal(size=(2, 96, 96, 3)).astype(np.float32)
  with torch.no_grad():
    expected = model(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
  variables = torchvision_import.load_torchvision(str(path))
  logits = MobileNetV2(padding="torch").apply(variables, jnp.asarray(x),
                                              train=False)
  assert np.abs(expected).max() > 0.1
  np.testing.assert_allclose(logits, expected, rtol=1e-4,
                             atol=1e-4 * np.abs(expected).max())


def test_a_keras_file_brings_the_input_scaling_its_weights_expect(
    keras_weights):
  import keras
  sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
  from configs import keypoints
  from vq.tasks.keypoints import KeypointsTask
  path, _, _ = keras_weights
  config = keypoints.get_config("variant=test")
  config.model.alpha = 1.0
  config.data.image_size = 96
  config.model.backbone_weights = path
  task = KeypointsTask(config)
  assert task.input_scaling == "keras"   # 'auto' from the .h5 file
  variables = task.init_variables(jax.random.key(0))
  images = np.random.default_rng(1).integers(0, 256, (2, 96, 96, 3),
                                             np.uint8)
  reference = keras.applications.MobileNetV2(
      input_shape=(96, 96, 3), weights=None, classifier_activation=None)
  reference.load_weights(path)
  # The first block's output (stride 2): deep features of random weights
  # hardly depend on the input.
  features = keras.Model(reference.input,
                         reference.get_layer("expanded_conv_project_BN").output)
  expected = np.asarray(features(
      keras.applications.mobilenet_v2.preprocess_input(
          images.astype(np.float32)), training=False))
  backbone = MobileNetV2(alpha=1.0, include_top=False, padding="keras",
                         feature_maps=True)
  weights = {k: v["backbone"] for k, v in variables.items()}
  got = backbone.apply(weights, task.model_input(jnp.asarray(images)),
                       train=False)[0]
  np.testing.assert_allclose(got, expected, rtol=1e-4,
                             atol=1e-4 * np.abs(expected).max())
  # The [0, 1] input of random initialisation gives other features.
  unit = backbone.apply(weights, jnp.asarray(images) / 255.0, train=False)[0]
  assert np.abs(unit - expected).max() > 0.1 * np.abs(expected).max()
