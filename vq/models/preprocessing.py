"""The input scaling a model's weights expect, applied to uint8 images
inside the jitted step.

  unit   image / 255                       random initialisation (vq's own)
  keras  image / 127.5 - 1                 Keras MobileNetV2 ('tf' mode)
  torch  (image / 255 - mean) / std        torchvision (ImageNet mean, std)
"""
import json
import os

import jax.numpy as jnp

SCALINGS = ("unit", "keras", "torch")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DESCRIPTIONS = {
    "unit": "image / 255",
    "keras": "image / 127.5 - 1",
    "torch": "(image / 255 - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225)",
}


def scale_images(images, scaling):
  """uint8 (or float 0..255) images [..., C] -> float32 model input."""
  x = images.astype(jnp.float32)
  if scaling == "unit":
    return x / 255.0
  if scaling == "keras":
    return x / 127.5 - 1.0
  if scaling == "torch":
    channels = x.shape[-1]
    mean = jnp.asarray(IMAGENET_MEAN[:channels] if channels == 3 else
                       (sum(IMAGENET_MEAN) / 3,) * channels)
    std = jnp.asarray(IMAGENET_STD[:channels] if channels == 3 else
                      (sum(IMAGENET_STD) / 3,) * channels)
    return (x / 255.0 - mean) / std
  raise ValueError(f"model.input_scaling must be one of {SCALINGS} or "
                   f"'auto', got {scaling!r}")


def scaling_of_weights(path):
  """The scaling a weights file expects: Keras .h5 -> keras, torchvision
  .pth / .safetensors -> torch, a vq workdir -> the scaling it trained
  with (read from its config.json)."""
  if os.path.isdir(path):
    config_path = os.path.join(path, "config.json")
    if not os.path.isfile(config_path):
      raise FileNotFoundError(f"{path} is not a vq run: no config.json")
    with open(config_path) as f:
      model = json.load(f).get("model", {})
    scaling = model.get("input_scaling", "unit")
    return "unit" if scaling == "auto" else scaling
  if path.endswith(".h5"):
    return "keras"
  if path.endswith((".pth", ".pt", ".safetensors")):
    return "torch"
  raise ValueError(f"{path}: expected a vq workdir, a Keras .h5 or a "
                   f"torchvision .pth/.safetensors file")


def input_scaling(model_config, weights_field="backbone_weights"):
  """`model.input_scaling`, with 'auto' resolved from the weights the
  config names (unit without weights)."""
  scaling = model_config.get("input_scaling", "unit")
  if scaling != "auto":
    if scaling not in SCALINGS:
      raise ValueError(f"model.input_scaling must be one of {SCALINGS} or "
                       f"'auto', got {scaling!r}")
    return scaling
  weights = model_config.get(weights_field, "")
  return scaling_of_weights(weights) if weights else "unit"
