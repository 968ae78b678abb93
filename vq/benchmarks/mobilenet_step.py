"""MobileNetV2 training-step time on CPU: fine-tuned vs frozen backbone.

  python -m vq.benchmarks.mobilenet_step [--grouped]

alpha 1.0 at 224x224, batch 16, Adam, softmax cross-entropy over 10 classes;
median of 5 steps after compilation. Frozen: every parameter but the
classifier gets zero updates and BatchNorm uses running statistics.
Depthwise convolutions as shifted multiply-adds (the CPU default), or with
--grouped as XLA's grouped convolution (`model.depthwise=grouped`, the
GPU/TPU default).
"""
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vq.models import mobilenet_v2


def step_time(frozen, depthwise):
  model = mobilenet_v2.MobileNetV2(num_classes=10, depthwise=depthwise)
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
  depthwise = "grouped" if "--grouped" in sys.argv else "shifted"
  for frozen in (False, True):
    print(f"depthwise {depthwise}, {'frozen' if frozen else 'fine-tuned'}: "
          f"{step_time(frozen, depthwise):.3f} s/step")


if __name__ == "__main__":
  main()
