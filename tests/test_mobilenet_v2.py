import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vq.models import torchvision_import
from vq.models.layers import DepthwiseConv, depthwise_implementation
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


# Odd and even sizes matter only where 'SAME' pads unevenly (stride 2).
@pytest.mark.parametrize("stride,size", [(1, 7), (2, 7), (2, 8)])
@pytest.mark.parametrize("padding", ["SAME", "SYMMETRIC"])
@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("implementation", ["shifted", "grouped"])
def test_depthwise_matches_grouped_convolution(stride, size, padding, kernel,
                                               implementation):
  import flax.linen as nn
  x = jax.random.normal(jax.random.key(0), (2, size, size, 5))
  dw = DepthwiseConv(kernel_size=kernel, strides=stride, padding=padding,
                     implementation=implementation)
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


def test_depthwise_auto_is_shifted_on_cpu_with_the_same_parameters():
  assert jax.default_backend() == "cpu"
  assert depthwise_implementation("auto") == "shifted"
  with pytest.raises(ValueError, match="model.depthwise must be one of"):
    depthwise_implementation("strided")
  shapes = {d: jax.tree.map(lambda a: a.shape, jax.eval_shape(
      MobileNetV2(alpha=0.35, depthwise=d).init, jax.random.key(0),
      jnp.zeros((1, 32, 32, 3)))) for d in ("grouped", "shifted", "auto")}
  assert shapes["grouped"] == shapes["shifted"] == shapes["auto"]


def test_torchvision_state_dict_maps_every_tensor():
  model = MobileNetV2(padding="torch")
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0),
                                             jnp.zeros((1, 32, 32, 3))))
  v = jax.tree.map(lambda a: np.random.default_rng(int(np.prod(a.shape))).normal(
      size=a.shape).astype(np.float32), shapes)
  # Write the state dict torchvision would hold, with its names and shapes.
  sd = {}
  for prefix, name, kind in torchvision_import.mobilenet_v2_names() + [
      torchvision_import.CLASSIFIERS["mobilenet_v2"]]:
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
