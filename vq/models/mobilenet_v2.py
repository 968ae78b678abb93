"""MobileNetV2 (Sandler et al., 2018) as the Keras application defines it.

Layer names follow Keras ('Conv1', 'bn_Conv1', 'block_3_expand', ...), so
Keras weights load by name; `padding='torch'` gives torchvision's variant
(symmetric padding, BatchNorm epsilon 1e-5), so its weights give its outputs.
"""
import flax.linen as nn
import jax.numpy as jnp

from vq.models.layers import DepthwiseConv, same_padding

# (expansion t, output channels c, repeats n, first stride s)
INVERTED_RESIDUAL_SETTING = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)


def make_divisible(v, divisor=8, min_value=None):
  """Rounds channels to a multiple of 8, never more than 10 % down."""
  min_value = min_value or divisor
  new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
  return new_v + divisor if new_v < 0.9 * v else new_v


def relu6(x):
  return jnp.clip(x, 0.0, 6.0)


class MobileNetV2(nn.Module):
  """MobileNetV2.

  Attributes:
    alpha: width multiplier.
    include_top: global average pooling + a dense classifier (logits, no
      softmax). Without it, `__call__` returns the last feature map
      (1280 channels for alpha <= 1).
    num_classes: classifier outputs.
    padding: 'keras' (TensorFlow 'SAME', BN epsilon 1e-3) or 'torch'
      (symmetric, BN epsilon 1e-5).
    bn_momentum: running-statistics decay (Keras 0.999, PyTorch 0.9).
    frozen_bn_layers: names of BatchNorm layers that always use their
      running statistics (layers of a frozen part of the network).
    feature_maps: return the feature maps at strides 2, 4, 8, 16 and 32
      (16, 24, 32, 96, 1280 channels at alpha 1) for a segmentation decoder.
  """
  alpha: float = 1.0
  include_top: bool = True
  num_classes: int = 1000
  padding: str = "keras"
  bn_momentum: float = 0.99
  frozen_bn_layers: frozenset = frozenset()
  feature_maps: bool = False
  depthwise: str = "auto"

  def _bn(self, name, train):
    eps = {"keras": 1e-3, "torch": 1e-5}[self.padding]
    frozen = name in self.frozen_bn_layers
    return nn.BatchNorm(use_running_average=not train or frozen,
                        momentum=self.bn_momentum, epsilon=eps, name=name)

  def _conv(self, x, features, kernel, stride, name):
    if kernel == 1:
      pad = "VALID"
    elif self.padding == "torch":
      pad = ((1, 1), (1, 1))
    else:
      pad = (same_padding(x.shape[1], kernel, stride),
             same_padding(x.shape[2], kernel, stride))
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                   padding=pad, use_bias=False, name=name)(x)

  def _block(self, x, expansion, filters, stride, block_id, train):
    in_channels = x.shape[-1]
    out_channels = make_divisible(int(filters * self.alpha), 8)
    prefix = f"block_{block_id}_" if block_id else "expanded_conv_"
    h = x
    if block_id:
      h = self._conv(h, expansion * in_channels, 1, 1, prefix + "expand")
      h = relu6(self._bn(prefix + "expand_BN", train)(h))
    h = DepthwiseConv(
        strides=stride, name=prefix + "depthwise",
        padding="SYMMETRIC" if self.padding == "torch" else "SAME",
        implementation=self.depthwise)(h)
    h = relu6(self._bn(prefix + "depthwise_BN", train)(h))
    h = self._conv(h, out_channels, 1, 1, prefix + "project")
    h = self._bn(prefix + "project_BN", train)(h)
    if in_channels == out_channels and stride == 1:
      h = h + x
    return h

  @nn.compact
  def __call__(self, x, train: bool = False):
    if self.padding not in ("keras", "torch"):
      raise ValueError(f"padding must be 'keras' or 'torch', got "
                       f"{self.padding!r}")
    x = self._conv(x, make_divisible(32 * self.alpha, 8), 3, 2, "Conv1")
    x = relu6(self._bn("bn_Conv1", train)(x))
    block_id, features = 0, []
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
      if s == 2:
        features.append(x)  # the last map before each downsampling
      for i in range(n):
        x = self._block(x, t, c, s if i == 0 else 1, block_id, train)
        block_id += 1
    last = make_divisible(1280 * self.alpha, 8) if self.alpha > 1.0 else 1280
    x = self._conv(x, last, 1, 1, "Conv_1")
    x = relu6(self._bn("Conv_1_bn", train)(x))
    if self.feature_maps:
      return features + [x]
    if not self.include_top:
      return x
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name="predictions")(x)
