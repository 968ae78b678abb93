"""MobileNetV2 training-step time on CPU: fine-tuned vs frozen backbone.

  python -m vq.benchmarks.mobilenet_step [--grouped]

alpha 1.0 at 224x224, batch 16, Adam, softmax cross-entropy over 10 classes;
median of 5 steps after compilation. Frozen: every parameter but the
classifier gets zero updates and BatchNorm uses running statistics.
--grouped swaps vq's shifted-add depthwise convolution for flax's grouped
nn.Conv, to measure what it saves.
"""
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from vq.models import mobilenet_v2
from vq.models.layers import same_padding


class GroupedDepthwise(nn.Module):
  """flax's grouped convolution, for comparison."""
  strides: int = 1
  padding: str = "SAME"

  @nn.compact
  def __call__(self, x):
    s = self.strides
    pad = ((same_padding(x.shape[1], 3, s), same_padding(x.shape[2], 3, s))
           if self.padding == "SAME" else ((1, 1), (1, 1)))
    return nn.Conv(x.shape[-1], (3, 3), strides=s, padding=pad,
                   feature_group_count=x.shape[-1], use_bias=False)(x)


def step_time(frozen):
  model = mobilenet_v2.MobileNetV2(num_classes=10)
  x = jnp.ones((16, 224, 224, 3))
  y = jnp.zeros((16,), jnp.int32)
  v = model.init(jax.random.key(0), x[:1])
  if frozen:
    model = model.clone(frozen_bn_layers=frozenset(v["batch_stats"]))
    labels = jax.tree.map(lambda _: "frozen", v["params"])
    labels["predictions"] = jax.tree.map(lambda _: "trained",
                                         v["params"]["predictions"])
    tx = optax.multi_transform({"trained": optax.adam(1e-3),
                                "frozen": optax.set_to_zero()}, labels)
  else:
    tx = optax.adam(1e-3)

  @jax.jit
  def step(params, stats, opt, x, y):
    def loss_fn(p):
      logits, upd = model.apply({"params": p, "batch_stats": stats}, x,
                                train=True, mutable=["batch_stats"])
      return optax.softmax_cross_entropy_with_integer_labels(
          logits, y).mean(), upd["batch_stats"]
    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt = tx.update(grads, opt, params)
    return optax.apply_updates(params, updates), stats, opt, loss

  state = (v["params"], v["batch_stats"], tx.init(v["params"]))
  state = step(*state, x, y)[:3]
  times = []
  for _ in range(5):
    t = time.perf_counter()
    out = step(*state, x, y)
    jax.block_until_ready(out)
    times.append(time.perf_counter() - t)
    state = out[:3]
  return float(np.median(times))


def main():
  if "--grouped" in sys.argv:
    mobilenet_v2.DepthwiseConv = GroupedDepthwise
  name = "grouped nn.Conv" if "--grouped" in sys.argv else "shifted adds"
  for frozen in (False, True):
    print(f"depthwise {name}, {'frozen' if frozen else 'fine-tuned'}: "
          f"{step_time(frozen):.3f} s/step")


if __name__ == "__main__":
  main()
