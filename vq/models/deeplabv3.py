"""DeepLabV3 (Chen et al., 2017): atrous spatial pyramid pooling on an
encoder's stride-16 features, bilinear upsampling to the input size."""
import flax.linen as nn
import jax.numpy as jnp

from vq.models.layers import ConvBN, resize_bilinear
from vq.models.encoders import build_encoder
from vq.models.unet import PlainEncoder


class ASPP(nn.Module):
  """1x1 conv, three dilated 3x3 convs and image pooling, fused by 1x1."""
  features: int = 256
  rates: tuple = (6, 12, 18)
  dropout_rate: float = 0.5

  @nn.compact
  def __call__(self, x, train):
    relu = dict(activation=nn.relu)
    branches = [ConvBN(self.features, 1, name="conv1x1", **relu)(x, train)]
    for r in self.rates:
      y = nn.Conv(self.features, (3, 3), padding="SAME", kernel_dilation=r,
                  use_bias=False, name=f"atrous{r}")(x)
      y = nn.BatchNorm(use_running_average=not train, name=f"atrous{r}_bn")(y)
      branches.append(nn.relu(y))
    pooled = ConvBN(self.features, 1, name="pool", **relu)(
        jnp.mean(x, axis=(1, 2), keepdims=True), train)
    branches.append(jnp.broadcast_to(pooled, branches[0].shape))
    y = ConvBN(self.features, 1, name="project", **relu)(
        jnp.concatenate(branches, -1), train)
    return nn.Dropout(self.dropout_rate, deterministic=not train)(y)


class DeepLabV3(nn.Module):
  """DeepLabV3 with torchvision's head: ASPP -> 3x3 conv-BN-ReLU -> 1x1.

  Attributes:
    num_classes: output channels.
    encoder: 'plain' (U-Net's contracting path at `widths`, 5 levels: the
      deepest is at stride 16), 'mobilenet_v2' or 'efficientnet_b0' (their
      stride-16 map).
    widths: plain encoder widths.
    alpha: MobileNetV2 width multiplier.
    aspp_width: channels of the ASPP branches and head.
    rates: ASPP dilation rates (6, 12, 18 at output stride 16).
    padding: the encoder's convention, 'keras' or 'torch' (its weights').
    frozen_bn_layers: encoder BatchNorm layers kept at their statistics.
  """
  num_classes: int
  encoder: str = "plain"
  widths: tuple = (64, 128, 256, 512, 1024)
  alpha: float = 1.0
  aspp_width: int = 256
  rates: tuple = (6, 12, 18)
  padding: str = "keras"
  frozen_bn_layers: frozenset = frozenset()
  depthwise: str = "auto"

  @nn.compact
  def __call__(self, x, train: bool = False):
    h, w = x.shape[1:3]
    if self.encoder == "plain":
      features = PlainEncoder(self.widths, name="encoder")(x, train)
    else:
      features = build_encoder(self.encoder, self.alpha, self.padding,
                               self.frozen_bn_layers,
                               depthwise=self.depthwise)(x, train)
    stride16 = [f for f in features if f.shape[1] * 16 >= h][-1]
    y = ASPP(self.aspp_width, self.rates, name="aspp")(stride16, train)
    y = ConvBN(self.aspp_width, activation=nn.relu, name="head_conv")(y, train)
    y = nn.Conv(self.num_classes, (1, 1), name="head")(y)
    return {"logits": resize_bilinear(y, (h, w))}
