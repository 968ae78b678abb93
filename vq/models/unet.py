"""U-Net (Ronneberger et al., 2015) and U-Net on an ImageNet-style encoder.

Both return {"logits": [N, H, W, num_classes]} and, with `image_classes`,
"image_logits" [N, image_classes] from a head on the deepest features (a
global classifier trained beside the masks).
"""
import flax.linen as nn
import jax.numpy as jnp

from vq.models.encoders import build_encoder
from vq.models.layers import (ConvBN, UpConv2x2, depth_to_space,
                              max_pool_2x2, space_to_depth)

UNET_WIDTHS = (64, 128, 256, 512, 1024)
DECODER_WIDTHS = (256, 128, 64, 32, 16)


class DoubleConv(nn.Module):
  """Two 3x3 conv -> BatchNorm -> ReLU."""
  features: int

  @nn.compact
  def __call__(self, x, train):
    x = ConvBN(self.features, activation=nn.relu, name="conv1")(x, train)
    return ConvBN(self.features, activation=nn.relu, name="conv2")(x, train)


class PlainEncoder(nn.Module):
  """U-Net's contracting path: DoubleConv per width, 2x2 max-pool between;
  returns the maps at strides 1, 2, 4, ... (one per width)."""
  widths: tuple = UNET_WIDTHS

  @nn.compact
  def __call__(self, x, train):
    features = []
    for i, w in enumerate(self.widths):
      if i:
        x = max_pool_2x2(x)
      x = DoubleConv(w, name=f"down{i}")(x, train)
      features.append(x)
    return features


def image_head(features, image_classes, pool="mean"):
  """Global pool ('mean' or 'max') of the deepest map -> dense logits. The
  max does not shrink a defect's evidence on images larger than the
  training crops."""
  pooled = (jnp.max if pool == "max" else jnp.mean)(features, axis=(1, 2))
  return nn.Dense(image_classes, name="image_head")(pooled)


class UNet(nn.Module):
  """The original U-Net with 'same' padding and BatchNorm.

  At widths (64, ..., 1024) with 3 input channels and one output class it has
  31,037,633 parameters, as the common PyTorch implementation.

  Attributes:
    num_classes: output channels.
    widths: encoder widths; the decoder mirrors them.
    skip_connections: False gives the plain encoder-decoder CNN baseline.
    image_classes: >0 adds the image-level head.
    space_to_depth: b > 1 runs the network on b x b pixel blocks folded into
      channels and unfolds b*b logits per output pixel (a 1-pixel line
      survives; the first level costs about b*b times less).
  """
  num_classes: int
  widths: tuple = UNET_WIDTHS
  skip_connections: bool = True
  image_classes: int = 0
  image_pool: str = "mean"
  space_to_depth: int = 1

  @nn.compact
  def __call__(self, x, train: bool = False):
    block = self.space_to_depth
    if block > 1:
      x = space_to_depth(x, block)
    features = PlainEncoder(self.widths, name="encoder")(x, train)
    x = features[-1]
    for i in range(len(self.widths) - 2, -1, -1):
      w = self.widths[i]
      x = UpConv2x2(w, name=f"up{i}")(x)
      if self.skip_connections:
        x = jnp.concatenate([features[i], x], axis=-1)
      x = DoubleConv(w, name=f"decoder{i}")(x, train)
    logits = nn.Conv(self.num_classes * block * block, (1, 1),
                     name="head")(x)
    out = {"logits": depth_to_space(logits, block) if block > 1 else logits}
    if self.image_classes:
      out["image_logits"] = image_head(features[-1], self.image_classes,
                                       self.image_pool)
    return out


def upsample_nearest(x, factor=2):
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


class EncoderUNet(nn.Module):
  """U-Net whose contracting path is MobileNetV2 or EfficientNet-B0.

  The decoder is the one of segmentation_models_pytorch's Unet: per stage a
  nearest x2 upsampling, the encoder skip concatenated, two conv-BN-ReLU;
  the fifth stage (full resolution) has no skip; a 3x3 conv head.

  Attributes:
    num_classes: output channels.
    encoder: 'mobilenet_v2' | 'efficientnet_b0'.
    alpha: MobileNetV2 width multiplier.
    decoder_widths: one width per decoder stage (5).
    image_classes: >0 adds the image-level head.
    padding: the encoder's convention, 'keras' or 'torch' (its weights').
    frozen_bn_layers: encoder BatchNorm layers kept at their statistics.
    depthwise: the encoder's depthwise convolutions (`DepthwiseConv`).
  """
  num_classes: int
  encoder: str = "mobilenet_v2"
  alpha: float = 1.0
  decoder_widths: tuple = DECODER_WIDTHS
  image_classes: int = 0
  image_pool: str = "mean"
  padding: str = "keras"
  frozen_bn_layers: frozenset = frozenset()
  depthwise: str = "auto"

  @nn.compact
  def __call__(self, x, train: bool = False):
    h, w = x.shape[1:3]
    if h % 32 or w % 32:
      raise ValueError(f"EncoderUNet needs image sides divisible by 32, got "
                       f"{h}x{w}")
    features = build_encoder(self.encoder, self.alpha, self.padding,
                             self.frozen_bn_layers,
                             depthwise=self.depthwise)(x, train)
    skips = features[-2::-1] + [None]
    x = features[-1]
    for i, (width, skip) in enumerate(zip(self.decoder_widths, skips)):
      x = upsample_nearest(x)
      if skip is not None:
        x = jnp.concatenate([x, skip], axis=-1)
      x = DoubleConv(width, name=f"decoder{i}")(x, train)
    out = {"logits": nn.Conv(self.num_classes, (3, 3), name="head")(x)}
    if self.image_classes:
      out["image_logits"] = image_head(features[-1], self.image_classes,
                                       self.image_pool)
    return out
