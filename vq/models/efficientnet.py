"""EfficientNet-B0 (Tan & Le, 2019) as the Keras application defines it,
and EfficientNet-Lite0, -Lite1 and -Lite2 (`lite=True`: the same blocks
without squeeze-and-excitation, ReLU6 instead of swish; Lite1 and Lite2
have more blocks, Lite2 wider ones, `blocks=LITE_BLOCKS[...]`; their
ImageNet weights expect 'keras' padding and image / 127.5 - 1).

Layer names follow Keras ('stem_conv', 'block2a_expand_conv', 'top_bn', ...)
so Keras weights load by name; `padding='torch'` gives torchvision's variant
(symmetric padding, BatchNorm epsilon 1e-5). Keras's input Rescaling and
Normalization layers are left out: the task scales the input
(vq/models/preprocessing.py; ImageNet weights of both expect ImageNet mean
and standard deviation).
"""
import flax.linen as nn
import jax.numpy as jnp

from vq.models.layers import DepthwiseConv

# (kernel, repeats, input filters, output filters, expansion, stride)
B0_BLOCKS = (
    (3, 1, 32, 16, 1, 1), (3, 2, 16, 24, 6, 2), (5, 2, 24, 40, 6, 2),
    (3, 3, 40, 80, 6, 2), (5, 3, 80, 112, 6, 1), (5, 4, 112, 192, 6, 2),
    (3, 1, 192, 320, 6, 1),
)
# EfficientNet-Lite keeps B0's stem and head widths and the repeats of its
# first and last stages, and scales the other repeats (Lite1: depth 1.1;
# Lite2: depth 1.2 and width 1.1, filters rounded to multiples of 8), as
# the published checkpoints hold.
LITE_BLOCKS = {
    "efficientnet_lite0": B0_BLOCKS,
    "efficientnet_lite1": (
        (3, 1, 32, 16, 1, 1), (3, 3, 16, 24, 6, 2), (5, 3, 24, 40, 6, 2),
        (3, 4, 40, 80, 6, 2), (5, 4, 80, 112, 6, 1), (5, 5, 112, 192, 6, 2),
        (3, 1, 192, 320, 6, 1)),
    "efficientnet_lite2": (
        (3, 1, 32, 16, 1, 1), (3, 3, 16, 24, 6, 2), (5, 3, 24, 48, 6, 2),
        (3, 4, 48, 88, 6, 2), (5, 4, 88, 120, 6, 1), (5, 5, 120, 208, 6, 2),
        (3, 1, 208, 352, 6, 1)),
}
SE_RATIO = 0.25


class EfficientNetB0(nn.Module):
  """EfficientNet-B0: MBConv blocks with squeeze-and-excitation, swish.

  Attributes:
    lite: EfficientNet-Lite instead (no squeeze-and-excitation, ReLU6).
    blocks: the stages (B0_BLOCKS; LITE_BLOCKS for Lite1 and Lite2).
    include_top: global average pooling, dropout and a dense classifier.
    num_classes: classifier outputs.
    drop_connect_rate: stochastic depth of the last block (Keras: 0.2),
      linearly less for earlier blocks; needs a 'dropout' rng in training.
    feature_maps: return the maps at strides 2, 4, 8, 16 and 32 (B0 and
      Lite0, Lite1: 16, 24, 40, 112 and 1280 channels; Lite2: 16, 24, 48,
      120 and 1280) for a segmentation decoder.
    padding: 'keras' (TensorFlow 'SAME', BN epsilon 1e-3) or 'torch'
      (symmetric, BN epsilon 1e-5).
    frozen_bn_layers: names of BatchNorm layers that always use their
      running statistics (layers of a frozen part of the network).
  """
  lite: bool = False
  blocks: tuple = B0_BLOCKS
  include_top: bool = True
  num_classes: int = 1000
  drop_connect_rate: float = 0.2
  feature_maps: bool = False
  padding: str = "keras"
  frozen_bn_layers: frozenset = frozenset()
  depthwise: str = "auto"

  def _bn(self, name, train):
    eps = {"keras": 1e-3, "torch": 1e-5}[self.padding]
    frozen = name in self.frozen_bn_layers
    return nn.BatchNorm(use_running_average=not train or frozen,
                        momentum=0.99, epsilon=eps, name=name)

  def _act(self, x):
    return nn.relu6(x) if self.lite else nn.swish(x)

  def _conv(self, x, features, name, kernel=1, stride=1):
    pad = ("SAME" if kernel == 1 or self.padding == "keras" else
           ((kernel // 2, kernel // 2),) * 2)
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                   padding=pad, use_bias=False, name=name)(x)

  def _block(self, x, kernel, filters_in, filters_out, expansion, stride,
             drop_rate, name, train):
    h = x
    filters = filters_in * expansion
    if expansion != 1:
      h = self._conv(h, filters, name + "expand_conv")
      h = self._act(self._bn(name + "expand_bn", train)(h))
    h = DepthwiseConv(
        kernel_size=kernel, strides=stride, name=name + "dwconv",
        padding="SYMMETRIC" if self.padding == "torch" else "SAME",
        implementation=self.depthwise)(h)
    h = self._act(self._bn(name + "bn", train)(h))
    if not self.lite:
      squeezed = max(1, int(filters_in * SE_RATIO))
      se = jnp.mean(h, axis=(1, 2), keepdims=True)
      se = nn.swish(nn.Conv(squeezed, (1, 1), name=name + "se_reduce")(se))
      h = h * nn.sigmoid(nn.Conv(filters, (1, 1),
                                 name=name + "se_expand")(se))
    h = self._conv(h, filters_out, name + "project_conv")
    h = self._bn(name + "project_bn", train)(h)
    if stride == 1 and filters_in == filters_out:
      if drop_rate > 0:
        h = nn.Dropout(drop_rate, broadcast_dims=(1, 2, 3),
                       deterministic=not train)(h)
      h = h + x
    return h

  @nn.compact
  def __call__(self, x, train: bool = False):
    if self.padding not in ("keras", "torch"):
      raise ValueError(f"padding must be 'keras' or 'torch', got "
                       f"{self.padding!r}")
    x = self._conv(x, 32, "stem_conv", kernel=3, stride=2)
    x = self._act(self._bn("stem_bn", train)(x))
    total = sum(b[1] for b in self.blocks)
    b, features = 0, []
    for i, (kernel, repeats, f_in, f_out, expansion, stride) in enumerate(
        self.blocks):
      if stride == 2:
        features.append(x)
      for j in range(repeats):
        x = self._block(x, kernel, f_in if j == 0 else f_out, f_out,
                        expansion, stride if j == 0 else 1,
                        self.drop_connect_rate * b / total,
                        f"block{i + 1}{chr(ord('a') + j)}_", train)
        b += 1
    x = self._conv(x, 1280, "top_conv")
    x = self._act(self._bn("top_bn", train)(x))
    if self.feature_maps:
      return features + [x]
    if not self.include_top:
      return x
    x = jnp.mean(x, axis=(1, 2))
    x = nn.Dropout(0.2, deterministic=not train)(x)
    return nn.Dense(self.num_classes, name="predictions")(x)


def efficientnet(architecture, **kwargs):
  """EfficientNet-B0 or a Lite network by name ('efficientnet_b0',
  'efficientnet_lite0', ...); `kwargs` are EfficientNetB0's attributes."""
  if architecture == "efficientnet_b0":
    return EfficientNetB0(**kwargs)
  return EfficientNetB0(lite=True, blocks=LITE_BLOCKS[architecture], **kwargs)
