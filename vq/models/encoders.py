"""ImageNet-style encoders that tasks build on and import weights into."""
from vq.models.efficientnet import LITE_BLOCKS, efficientnet
from vq.models.mobilenet_v2 import MobileNetV2

ENCODERS = ("mobilenet_v2", "efficientnet_b0", *LITE_BLOCKS)


def build_encoder(architecture, alpha=1.0, padding="keras",
                  frozen_bn_layers=frozenset(), name="encoder",
                  depthwise="auto"):
  """An encoder returning its maps at strides 2, 4, 8, 16 and 32.

  `padding` is the convention of the weights it will hold ('keras' or
  'torch'); `frozen_bn_layers` names its BatchNorm layers that keep their
  running statistics in training; `depthwise` is the depthwise
  convolutions' implementation (`layers.DepthwiseConv`).
  """
  if architecture == "mobilenet_v2":
    return MobileNetV2(alpha=alpha, feature_maps=True, padding=padding,
                       frozen_bn_layers=frozen_bn_layers, name=name,
                       depthwise=depthwise)
  if architecture in ENCODERS:
    return efficientnet(architecture, feature_maps=True, padding=padding,
                        frozen_bn_layers=frozen_bn_layers, name=name,
                        depthwise=depthwise)
  raise ValueError(f"encoder must be one of {ENCODERS}, got "
                   f"{architecture!r}")
