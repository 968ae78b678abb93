"""config.compute_dtype: bfloat16 activations and convolutions, float32
parameters, statistics, losses and metrics."""
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vq import mixed_precision, train
from vq.config_base import ConfigError
from vq.tasks.segmentation import SegmentationTask

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from configs import (draem, keypoints, pretrain_mobilenet,  # noqa: E402
                     unet_damage, unet_steel, yolo)


def _equations(jaxpr):
  for eqn in jaxpr.eqns:
    yield eqn
    for param in eqn.params.values():
      inner = getattr(param, "jaxpr", param)
      if hasattr(inner, "eqns"):
        yield from _equations(inner)


def test_auto_is_float32_on_cpu_and_names_are_checked():
  assert mixed_precision.compute_dtype("auto") == jnp.float32
  assert mixed_precision.compute_dtype("bfloat16") == jnp.bfloat16
  with pytest.raises(ConfigError, match="compute_dtype must be one of"):
    mixed_precision.compute_dtype("float16x")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_convolutions_run_in_the_compute_dtype_and_the_rest_in_float32(
    dtype):
  """An encoder U-Net's loss: every convolution in the compute dtype; the
  loss, the gradients and the BatchNorm statistics float32."""
  config = unet_damage.get_config("variant=test")
  config.compute_dtype = dtype
  task = SegmentationTask(config)
  variables = jax.eval_shape(task.init_variables, jax.random.key(0))
  batch = {"image": jnp.zeros((2, 64, 64, 3), jnp.uint8),
           "mask": jnp.zeros((2, 64, 64, 3), jnp.uint8),
           "label": jnp.zeros((2,), jnp.int32)}

  def loss(params, batch_stats):
    return task.loss(params, batch_stats, batch, jax.random.key(1))

  closed = jax.make_jaxpr(jax.value_and_grad(loss, has_aux=True))(
      variables["params"], variables["batch_stats"])
  convolutions = [e for e in _equations(closed.jaxpr)
                  if e.primitive.name == "conv_general_dilated"]
  assert len(convolutions) > 40
  assert {str(v.aval.dtype) for e in convolutions for v in e.invars} == {dtype}
  (value, (_, stats)), grads = jax.eval_shape(
      jax.value_and_grad(loss, has_aux=True), variables["params"],
      variables["batch_stats"])
  for tree in (value, stats, grads):
    assert {str(x.dtype) for x in jax.tree.leaves(tree)} == {"float32"}


@pytest.mark.slow  # 12 runs of 50 steps: about 7.5 minutes on 2 cores
@pytest.mark.parametrize("config_module", [yolo, unet_steel, unet_damage,
                                           keypoints, draem,
                                           pretrain_mobilenet])
def test_bfloat16_trains_like_float32(config_module, tmp_path):
  """50 steps of each family's test variant: the bfloat16 losses follow the
  float32 ones (mean over the last 10 steps within 15 %), and the
  evaluation's headline metric stays within 0.1 (a pixel error within
  5 %)."""
  runs = {}
  for dtype in ("float32", "bfloat16"):
    config = config_module.get_config("variant=test")
    config.num_train_steps = 50
    config.eval_every_steps = config.checkpoint_every_steps = 50
    config.log_every_steps = 10
    config.compute_dtype = dtype
    if "cache_dir" in config.data:
      config.data.cache_dir = str(tmp_path / "cache")
    if "synthetic_eval_size" in config.data:
      # 16 images: one image is 0.0625 of the accuracy, and after 50 steps
      # the two runs' near-chance accuracies (0.375 and 0.25) differ by
      # two; on 128 they are 0.27 and 0.31.
      config.data.synthetic_eval_size = 128
    runs[dtype] = train.train_and_evaluate(config, str(tmp_path / dtype))
  last = {d: np.mean([l for _, l in r["losses"][-10:]])
          for d, r in runs.items()}
  assert all(np.isfinite(v) for v in last.values()), last
  assert last["bfloat16"] == pytest.approx(last["float32"], rel=0.15), last
  metric = config.best_metric
  if metric:
    # Metrics in [0, 1] within 0.1; the keypoint error, in pixels, within
    # 5 % (6.67 px against 6.85 px with grouped depthwise convolutions).
    reference = runs["float32"]["eval"][metric]
    bound = 0.05 * reference if metric == "mean_error_px" else 0.1
    assert abs(runs["bfloat16"]["eval"][metric] - reference) <= bound, (
        metric, runs["bfloat16"]["eval"][metric], reference)
