"""U-Net step time on CPU: a training step at 256x256 and Severstal-size
inference.

  python -m vq.benchmarks.unet_step [--stock]

U-Net with base width 32 (32..512), float32, batch 8 at 256x256: one Adam
step on softmax cross-entropy over 5 classes. Inference: the same U-Net on a
batch of 4 images of 256x1600, eval mode. Median of 5 runs after
compilation. --stock swaps vq's einsum up-convolution for flax's
nn.ConvTranspose, to measure what it saves.
"""
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from vq.benchmarks.timing import median_time
from vq.models import unet

WIDTHS = (32, 64, 128, 256, 512)


def train_step_time(model):
  x = jnp.ones((8, 256, 256, 3))
  y = jnp.zeros((8, 256, 256), jnp.int32)
  v = model.init(jax.random.key(0), x[:1])
  tx = optax.adam(1e-4)

  @jax.jit
  def step(params, stats, opt, x, y):
    def loss_fn(p):
      out, upd = model.apply({"params": p, "batch_stats": stats}, x,
                             train=True, mutable=["batch_stats"])
      return optax.softmax_cross_entropy_with_integer_labels(
          out["logits"], y).mean(), upd["batch_stats"]
    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt = tx.update(grads, opt, params)
    return optax.apply_updates(params, updates), stats, opt, loss

  args = (v["params"], v["batch_stats"], tx.init(v["params"]), x, y)
  return median_time(step, *args)


def inference_time(model):
  x = jnp.ones((4, 256, 1600, 3))
  v = model.init(jax.random.key(0), x[:1, :64, :64])
  forward = jax.jit(lambda v, x: model.apply(v, x, train=False)["logits"])
  return median_time(forward, v, x)


def main(argv):
  if "--stock" in argv:
    unet.UpConv2x2 = lambda features, name: nn.ConvTranspose(
        features, (2, 2), strides=(2, 2), name=name)
  model = unet.UNet(5, WIDTHS)
  print(f"devices: {jax.devices()}")
  print(f"train step 256x256 batch 8: {train_step_time(model):.3f} s")
  print(f"inference 256x1600 batch 4: {inference_time(model):.3f} s")


if __name__ == "__main__":
  main(sys.argv[1:])
