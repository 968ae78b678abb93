"""Small pieces every task uses."""
import jax.numpy as jnp


def float_images(batch):
  """The batch's uint8 images as float32 in [0, 1]."""
  return batch["image"].astype(jnp.float32) / 255.0


def apply_train(model, params, batch_stats, images, rngs=None):
  """Training-mode forward pass: (outputs, updated batch_stats)."""
  out, updates = model.apply({"params": params, "batch_stats": batch_stats},
                             images, train=True, mutable=["batch_stats"],
                             rngs=rngs)
  return out, updates["batch_stats"]
