"""FLOPs and memory of a compiled step (XLA's analyses) against counts
derived here from the layers' shapes, the memory check at start, and MFU
in TensorBoard."""
import glob
import os
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vq import step_cost, train
from vq.config_base import ConfigError
from vq.models import layers
from vq.models.mobilenet_v2 import MobileNetV2
from vq.models.unet import UNet

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from configs import unet_steel  # noqa: E402


def _layers(model, variables, x):
  """(module, input shape, output shape) of every convolution, dense,
  depthwise, up-convolution and BatchNorm layer the forward pass calls."""
  kinds = (nn.Conv, nn.Dense, nn.BatchNorm, layers.DepthwiseConv,
           layers.UpConv2x2)
  found = []

  def record(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if context.method_name == "__call__" and isinstance(context.module,
                                                        kinds):
      found.append((context.module, args[0].shape, out.shape))
    return out
  with nn.intercept_methods(record):
    jax.eval_shape(lambda v, x: model.apply(v, x), variables, x)
  return found


def _taps(size, kernel, stride, pad_before, out):
  """Kernel taps that fall inside the input, summed over output positions
  along one axis (XLA does not count products with padding)."""
  return sum(sum(1 for i in range(kernel)
                 if 0 <= o * stride - pad_before + i < size)
             for o in range(out))


def _same_before(size, kernel, stride):
  out = -(-size // stride)
  return max((out - 1) * stride + kernel - size, 0) // 2


def _multiply_adds(module, shape_in, shape_out):
  """2 x the multiply-adds of one layer (0 for BatchNorm)."""
  if isinstance(module, nn.Dense):
    return 2 * np.prod(shape_out) * shape_in[-1]
  n, h, w, c = shape_in
  if isinstance(module, layers.UpConv2x2):
    return 2 * np.prod(shape_out) * c
  if isinstance(module, layers.DepthwiseConv):
    k, s, cin = module.kernel_size, module.strides, 1
    before = ((_same_before(h, k, s), _same_before(w, k, s))
              if module.padding == "SAME" else (k // 2, k // 2))
  elif isinstance(module, nn.Conv):
    (k, _), s = module.kernel_size, (module.strides or 1)
    s = s if isinstance(s, int) else s[0]
    cin = c // module.feature_group_count
    if module.padding == "VALID":
      before = (0, 0)
    elif module.padding == "SAME":
      before = (_same_before(h, k, s), _same_before(w, k, s))
    else:
      before = (module.padding[0][0], module.padding[1][0])
  else:
    return 0
  return (2 * n * shape_out[-1] * cin *
          _taps(h, k, s, before[0], shape_out[1]) *
          _taps(w, k, s, before[1], shape_out[2]))


def _xla_flops(fn, *args):
  return step_cost.model_flops(jax.jit(fn).lower(*args))


# Primitives counted one FLOP per output element (XLA's convention for
# elementwise work, comparisons, selects and conversions included);
# reductions count one per input element; data movement counts nothing.
_ELEMENTWISE = {"add", "add_any", "sub", "mul", "div", "max", "min", "neg",
                "abs", "square", "integer_pow", "select_n", "eq", "ne", "ge",
                "gt", "le", "lt", "convert_element_type"}
_REDUCTIONS = {"reduce_sum", "reduce_max", "reduce_min"}


def _dilated_taps(size, kernel, stride, pad_before, out, lhs_dilation,
                  rhs_dilation):
  """Kernel taps that land on an input pixel (not padding, not a hole of a
  dilated input), summed over the output positions along one axis."""
  taps = 0
  for o in range(out):
    for i in range(kernel):
      p = o * stride - pad_before + i * rhs_dilation
      taps += (p >= 0 and p % lhs_dilation == 0 and
               p // lhs_dilation < size)
  return taps


def _convolution_flops(eqn):
  p = eqn.params
  lhs, rhs = (v.aval.shape for v in eqn.invars[:2])
  out = eqn.outvars[0].aval.shape
  spec = p["dimension_numbers"]
  taps = np.prod([_dilated_taps(
      lhs[spec.lhs_spec[2 + d]], rhs[spec.rhs_spec[2 + d]],
      p["window_strides"][d], p["padding"][d][0], out[spec.out_spec[2 + d]],
      p["lhs_dilation"][d], p["rhs_dilation"][d])
                  for d in range(len(spec.lhs_spec) - 2)])
  batch = lhs[spec.lhs_spec[0]] // p["batch_group_count"]
  return 2 * batch * out[spec.out_spec[1]] * rhs[spec.rhs_spec[1]] * taps


def _jaxpr_flops(jaxpr):
  """FLOPs of a traced program, from its equations' shapes: convolutions
  and matrix products as 2 x multiply-adds, elementwise work as above."""
  total = 0
  for eqn in jaxpr.eqns:
    inner = [v for v in eqn.params.values()
             if isinstance(v, (jax.extend.core.ClosedJaxpr,
                               jax.extend.core.Jaxpr))]
    for sub in inner:
      total += _jaxpr_flops(getattr(sub, "jaxpr", sub))
    name = eqn.primitive.name
    if name == "conv_general_dilated":
      total += _convolution_flops(eqn)
    elif name == "dot_general":
      (contracting, _), _ = eqn.params["dimension_numbers"]
      lhs = eqn.invars[0].aval.shape
      total += 2 * np.prod(eqn.outvars[0].aval.shape) * np.prod(
          [lhs[i] for i in contracting])
    elif name in _ELEMENTWISE:
      total += np.prod(eqn.outvars[0].aval.shape)
    elif name in _REDUCTIONS:
      total += np.prod(eqn.invars[0].aval.shape)
  return total


def test_unet_train_step_flops_equal_the_layers_count():
  """Forward, input gradient and weight gradient of every layer: 3 x the
  forward count, less the first layer's input gradient (nothing needs it);
  BatchNorm, ReLU and Adam's elementwise work is under 1 % at these
  widths."""
  model = UNet(2)
  x = jnp.zeros((4, 64, 64, 3))
  variables = jax.eval_shape(model.init, jax.random.key(0), x)
  found = _layers(model, variables, x)
  forward = [_multiply_adds(*layer) for layer in found]
  analytic = 3 * sum(forward) - forward[0]

  def loss(params, batch_stats):
    out, _ = model.apply({"params": params, "batch_stats": batch_stats}, x,
                         train=True, mutable=["batch_stats"])
    return jnp.mean(out["logits"])
  measured = _xla_flops(jax.grad(loss), variables["params"],
                        variables["batch_stats"])
  assert measured == pytest.approx(analytic, rel=0.02)


def test_mobilenet_v2_flops_equal_the_layers_count():
  """Inference: every convolution and the classifier, plus BatchNorm as a
  scale and a shift (2 per element) and ReLU6 as two comparisons (2 per
  element, after every BatchNorm but the projections')."""
  model = MobileNetV2(depthwise="grouped")
  x = jnp.zeros((2, 96, 96, 3))
  variables = jax.eval_shape(model.init, jax.random.key(0), x)
  analytic = 0
  for module, shape_in, shape_out in _layers(model, variables, x):
    analytic += _multiply_adds(module, shape_in, shape_out)
    if isinstance(module, nn.BatchNorm):
      relu6 = not module.name.endswith("project_BN")
      analytic += (2 + 2 * relu6) * np.prod(shape_out)
  measured = _xla_flops(lambda v, x: model.apply(v, x), variables, x)
  assert measured == pytest.approx(analytic, rel=0.02)


@pytest.mark.parametrize("depthwise", ["grouped", "shifted"])
def test_mobilenet_v2_train_step_flops_equal_the_programs_count(depthwise):
  """The gradient of a training-mode forward pass (BatchNorm on batch
  statistics) against a count of the traced program's equations; either
  depthwise form (the compiled CPU program of the grouped one does 5x the
  work, see vq.step_cost: the model's FLOPs are not that)."""
  model = MobileNetV2(depthwise=depthwise)
  x = jnp.zeros((2, 96, 96, 3))
  variables = jax.eval_shape(model.init, jax.random.key(0), x)

  def loss(params, batch_stats):
    out, _ = model.apply({"params": params, "batch_stats": batch_stats}, x,
                         train=True, mutable=["batch_stats"])
    return jnp.mean(out)
  args = variables["params"], variables["batch_stats"]
  counted = _jaxpr_flops(jax.make_jaxpr(jax.grad(loss))(*args).jaxpr)
  assert _xla_flops(jax.grad(loss), *args) == pytest.approx(counted,
                                                             rel=0.02)


def _unet_step_cost(batch):
  model = UNet(1, widths=(8, 16, 32))
  x = jax.ShapeDtypeStruct((batch, 64, 64, 3), jnp.float32)
  variables = jax.eval_shape(model.init, jax.random.key(0), x)

  def loss(params, batch_stats, x):
    out, _ = model.apply({"params": params, "batch_stats": batch_stats}, x,
                         train=True, mutable=["batch_stats"])
    return jnp.mean(out["logits"])
  _, cost = step_cost.compile_and_analyse(
      jax.jit(jax.grad(loss)), variables["params"], variables["batch_stats"],
      x)
  return cost, batch * 64 * 64 * 3 * 4


def test_a_step_over_the_limit_is_refused_with_a_batch_that_fits():
  big, batch_bytes = _unet_step_cost(16)
  small, _ = _unet_step_cost(4)
  limit = (big.peak_bytes + small.peak_bytes) // 2
  step_cost.check_fits(big, big.peak_bytes, 16, batch_bytes, 1)  # fits
  with pytest.raises(ConfigError, match=r"needs about .* GB per device at "
                     r"batch_size=16 .*a batch_size of at most (\d+) should "
                     r"fit") as refused:
    step_cost.check_fits(big, limit, 16, batch_bytes, 1)
  advised = int(refused.value.args[0].split("at most ")[1].split()[0])
  assert 4 <= advised < 16
  fitted, _ = _unet_step_cost(advised)
  assert fitted.peak_bytes <= limit * 1.05


def test_training_stops_at_start_when_the_step_does_not_fit(tmp_path):
  config = unet_steel.get_config("variant=test")
  config.device_memory_gb = 1e-4
  with pytest.raises(ConfigError, match=r"needs about .* GB per device .*"
                     r"more than the 0.0001 GB"):
    train.train_and_evaluate(config, str(tmp_path))
  assert not glob.glob(str(tmp_path / "checkpoints" / "*"))


@pytest.mark.slow  # compiles the full U-Net's step at 256x1600: ~45 s
def test_the_full_steel_recipe_is_refused_on_a_small_device(tmp_path):
  config = unet_steel.get_config("variant=full")
  config.data.synthetic_train_size = config.data.synthetic_eval_size = 16
  config.data_check = "off"
  config.device_memory_gb = 8.0
  with pytest.raises(ConfigError, match=r"batch_size=16 .*more than the 8 GB"):
    train.train_and_evaluate(config, str(tmp_path))


def _scalars(workdir, name):
  import tensorflow as tf
  values = []
  for path in glob.glob(os.path.join(workdir, "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == name:
          values.append(float(tf.make_ndarray(value.tensor)))
  return values


def test_tflops_and_mfu_reach_tensorboard(test_config, tmp_path):
  test_config.device_peak_tflops = 0.5
  summary = train.train_and_evaluate(test_config, str(tmp_path))
  tflops = _scalars(str(tmp_path), "tflops_per_device")
  mfu = _scalars(str(tmp_path), "mfu")
  assert tflops and all(t > 0 for t in tflops)
  np.testing.assert_allclose(mfu, np.array(tflops) / 0.5, rtol=1e-5)
  assert summary["train"]["tflops_per_device"] == pytest.approx(tflops[-1])
  table = (tmp_path / "parameters.txt").read_text()
  assert "kernel" in table and "Total:" in table


def test_peaks_by_device_kind():
  assert step_cost.peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
  assert step_cost.peak_tflops("TPU v5 lite") == 197.0
  assert step_cost.peak_tflops("TPU v5p") == 459.0
  assert step_cost.peak_tflops("cpu") is None
  assert step_cost.utilisation(2e12, 0.5, "cpu") == {"tflops_per_device": 4.0}
  assert step_cost.utilisation(2e12, 0.5, "NVIDIA A100-SXM4-40GB") == {
      "tflops_per_device": 4.0, "mfu": 4.0 / 312.0}


def test_the_throughput_benchmark_measures_the_trainer_step(test_config):
  from vq.benchmarks import throughput
  test_config.device_memory_gb = 100.0
  r = throughput.measure(test_config, steps=2)
  assert r["batch_size"] == test_config.batch_size
  assert r["images_per_second"] == pytest.approx(
      r["batch_size"] / r["seconds_per_step"])
  assert r["tflops_per_device"] > 0 and r["memory_gb"] > 0
  assert r["mfu"] is None  # no known peak for a CPU
  assert 0.0 <= r["data_wait_fraction"] <= 1.0
