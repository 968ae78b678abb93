"""The input scaling a model's weights expect, applied to uint8 images
inside the jitted step.

  unit   image / 255                       random initialisation (vq's own)
  keras  image / 127.5 - 1                 Keras MobileNetV2 ('tf' mode)
  torch  (image / 255 - mean) / std        torchvision, Keras EfficientNet
                                           (ImageNet mean, std)
"""
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
