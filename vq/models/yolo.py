"""YOLOv1-style detector: a convolutional network to an S x S x (B*5 + C) grid.

Output layout is NHWC-like: [batch, S (rows, y), S (columns, x), B*5 + C]. Per
cell, B boxes as (x, y, w, h, confidence) then C class probabilities; x, y are
offsets inside the cell and w, h are relative to the whole image. Box values
pass through a logistic (sigmoid), class scores through a softmax.
"""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vq.models.encoders import build_encoder
from vq.models.layers import ConvBN, leaky_relu, max_pool_2x2

# The YOLOv1 paper's 24 convolutional layers (Redmon et al., 2016, Fig. 3):
# (kernel, features, stride) per layer, "M" for a 2x2 max-pool.
YOLO_V1_BACKBONE = (
    (7, 64, 2), "M", (3, 192, 1), "M",
    (1, 128, 1), (3, 256, 1), (1, 256, 1), (3, 512, 1), "M",
    *((1, 256, 1), (3, 512, 1)) * 4, (1, 512, 1), (3, 1024, 1), "M",
    *((1, 512, 1), (3, 1024, 1)) * 2, (3, 1024, 1), (3, 1024, 2),
    (3, 1024, 1), (3, 1024, 1),
)


def tiny_backbone(widths: Sequence[int]):
  """A small fully-convolutional backbone: 3x3 conv + max-pool per width."""
  layers = []
  for w in widths:
    layers += [(3, w, 1), "M"]
  return tuple(layers[:-1])  # the last stage keeps its resolution


class YOLO(nn.Module):
  """YOLOv1 detector.

  Attributes:
    backbone: layer list as in YOLO_V1_BACKBONE, or an ImageNet encoder's
      name ('mobilenet_v2', 'efficientnet_b0'; its stride-32 map, under
      'backbone/...').
    num_boxes: B, boxes per cell.
    num_classes: C.
    grid_size: S; used by the 'dense' head, which fixes it.
    head: 'dense' (the paper: flatten -> Dense(hidden) -> Dense(S*S*(B*5+C))),
      'dense_fcn' (the same head as convolutions, see `dense_head_as_conv`:
      output [N, H', W', S, S, B*5+C], one grid per window position, 1x1 at
      the training size) or 'conv' (a different head: a k x k conv then a
      1x1 conv per cell; any input size gives a grid of its own size).
    head_hidden: width of the head's hidden layer.
    head_kernel: k of the 'conv' head's first layer.
    dense_window: 'dense_fcn': (height, width) of the feature map the dense
      head was trained on.
    dropout_rate: dropout after the hidden layer (the paper uses 0.5).
    alpha, padding, frozen_bn_layers: of an encoder backbone (MobileNetV2
      width, 'keras' or 'torch' convention, BatchNorm layers kept at their
      statistics).
  """
  backbone: tuple | str
  num_boxes: int
  num_classes: int
  grid_size: int = 7
  head: str = "conv"
  head_hidden: int = 4096
  head_kernel: int = 3
  dropout_rate: float = 0.0
  dense_window: tuple = (1, 1)
  alpha: float = 1.0
  padding: str = "keras"
  frozen_bn_layers: frozenset = frozenset()
  depthwise: str = "auto"

  @nn.compact
  def __call__(self, images, train: bool = False):
    x = images
    if isinstance(self.backbone, str):
      x = build_encoder(self.backbone, self.alpha, self.padding,
                        self.frozen_bn_layers, name="backbone",
                        depthwise=self.depthwise)(x, train)[-1]
    else:
      for i, layer in enumerate(self.backbone):
        if layer == "M":
          x = max_pool_2x2(x)
        else:
          k, f, s = layer
          x = ConvBN(f, k, s, name=f"conv{i}")(x, train)
    out_channels = self.num_boxes * 5 + self.num_classes
    if self.head == "dense":
      s = self.grid_size
      x = x.reshape(x.shape[0], -1)
      x = leaky_relu(nn.Dense(self.head_hidden, name="hidden")(x))
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
      x = nn.Dense(s * s * out_channels, name="out")(x)
      x = x.reshape(x.shape[0], s, s, out_channels)
    elif self.head == "dense_fcn":
      s = self.grid_size
      x = leaky_relu(nn.Conv(self.head_hidden, self.dense_window,
                             padding="VALID", name="hidden")(x))
      x = nn.Conv(s * s * out_channels, (1, 1), name="out")(x)
      x = x.reshape(*x.shape[:3], s, s, out_channels)
    elif self.head == "conv":
      k = (self.head_kernel, self.head_kernel)
      x = leaky_relu(nn.Conv(self.head_hidden, k, padding="SAME",
                             name="hidden")(x))
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
      x = nn.Conv(out_channels, (1, 1), name="out")(x)
    else:
      raise ValueError(f"head must be 'dense', 'dense_fcn' or 'conv', got "
                       f"{self.head!r}")
    boxes = jax.nn.sigmoid(x[..., :self.num_boxes * 5])
    probs = jax.nn.softmax(x[..., self.num_boxes * 5:], axis=-1)
    return jnp.concatenate([boxes, probs], axis=-1)


def dense_head_as_conv(variables, feature_hw):
  """A trained 'dense' head's variables for the 'dense_fcn' head.

  The hidden Dense layer reads the flattened [h, w, C] feature map, so its
  kernel reshaped to (h, w, C, hidden) is a VALID convolution with the same
  output at the training size; the output Dense is a 1x1 convolution. On a
  larger input the network then slides the whole head over the features.
  """
  h, w = feature_hw
  params = dict(variables["params"])
  hidden = params["hidden"]["kernel"]
  params["hidden"] = dict(params["hidden"], kernel=hidden.reshape(
      h, w, hidden.shape[0] // (h * w), hidden.shape[1]))
  out = params["out"]["kernel"]
  params["out"] = dict(params["out"], kernel=out.reshape(1, 1, *out.shape))
  return dict(variables, params=params)
