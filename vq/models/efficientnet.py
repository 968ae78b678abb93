"""EfficientNet-B0 (Tan & Le, 2019) as the Keras application defines it.

Layer names follow Keras ('stem_conv', 'block2a_expand_conv', 'top_bn', ...)
so its ImageNet weights can be mapped by name. Keras's input Rescaling and
Normalization layers are left out: inputs are [0, 1] images.
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
SE_RATIO = 0.25


class EfficientNetB0(nn.Module):
  """EfficientNet-B0: MBConv blocks with squeeze-and-excitation, swish.

  Attributes:
    include_top: global average pooling, dropout and a dense classifier.
    num_classes: classifier outputs.
    drop_connect_rate: stochastic depth of the last block (Keras: 0.2),
      linearly less for earlier blocks; needs a 'dropout' rng in training.
    feature_maps: return the maps at strides 2, 4, 8, 16 and 32 (16, 24, 40,
      112 and 1280 channels) for a segmentation decoder.
  """
  include_top: bool = True
  num_classes: int = 1000
  drop_connect_rate: float = 0.2
  feature_maps: bool = False

  def _bn(self, name, train):
    return nn.BatchNorm(use_running_average=not train, momentum=0.99,
                        epsilon=1e-3, name=name)

  def _conv(self, x, features, name, kernel=1, stride=1):
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                   padding="SAME", use_bias=False, name=name)(x)

  def _block(self, x, kernel, filters_in, filters_out, expansion, stride,
             drop_rate, name, train):
    h = x
    filters = filters_in * expansion
    if expansion != 1:
      h = self._conv(h, filters, name + "expand_conv")
      h = nn.swish(self._bn(name + "expand_bn", train)(h))
    h = DepthwiseConv(kernel_size=kernel, strides=stride, padding="SAME",
                      name=name + "dwconv")(h)
    h = nn.swish(self._bn(name + "bn", train)(h))
    squeezed = max(1, int(filters_in * SE_RATIO))
    se = jnp.mean(h, axis=(1, 2), keepdims=True)
    se = nn.swish(nn.Conv(squeezed, (1, 1), name=name + "se_reduce")(se))
    se = nn.sigmoid(nn.Conv(filters, (1, 1), name=name + "se_expand")(se))
    h = self._conv(h * se, filters_out, name + "project_conv")
    h = self._bn(name + "project_bn", train)(h)
    if stride == 1 and filters_in == filters_out:
      if drop_rate > 0:
        h = nn.Dropout(drop_rate, broadcast_dims=(1, 2, 3),
                       deterministic=not train)(h)
      h = h + x
    return h

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = self._conv(x, 32, "stem_conv", kernel=3, stride=2)
    x = nn.swish(self._bn("stem_bn", train)(x))
    total = sum(b[1] for b in B0_BLOCKS)
    b, features = 0, []
    for i, (kernel, repeats, f_in, f_out, expansion, stride) in enumerate(
        B0_BLOCKS):
      if stride == 2:
        features.append(x)
      for j in range(repeats):
        x = self._block(x, kernel, f_in if j == 0 else f_out, f_out,
                        expansion, stride if j == 0 else 1,
                        self.drop_connect_rate * b / total,
                        f"block{i + 1}{chr(ord('a') + j)}_", train)
        b += 1
    x = self._conv(x, 1280, "top_conv")
    x = nn.swish(self._bn("top_bn", train)(x))
    if self.feature_maps:
      return features + [x]
    if not self.include_top:
      return x
    x = jnp.mean(x, axis=(1, 2))
    x = nn.Dropout(0.2, deterministic=not train)(x)
    return nn.Dense(self.num_classes, name="predictions")(x)
