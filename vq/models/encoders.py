"""ImageNet-style encoders that tasks build on and import weights into."""
from vq.models.efficientnet import EfficientNetB0
from vq.models.mobilenet_v2 import MobileNetV2

ENCODERS = ("mobilenet_v2", "efficientnet_b0", "efficientnet_lite0")


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
  if architecture in ("efficientnet_b0", "efficientnet_lite0"):
    return EfficientNetB0(lite=architecture == "efficientnet_lite0",
                          feature_maps=True, padding=padding,
                          frozen_bn_layers=frozen_bn_layers, name=name,
                          depthwise=depthwise)
  raise ValueError(f"encoder must be one of {ENCODERS}, got "
                   f"{architecture!r}")
