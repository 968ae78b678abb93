"""Pure Flax Linen models."""
from vq.models.deeplabv3 import DeepLabV3
from vq.models.draem import (DRAEM, DiscriminativeSubNetwork,
                             ReconstructiveSubNetwork)
from vq.models.efficientnet import EfficientNetB0
from vq.models.mobilenet_v2 import MobileNetV2
from vq.models.unet import EncoderUNet, UNet
from vq.models.unet3plus import UNet3Plus
from vq.models.yolo import YOLO

__all__ = ["DRAEM", "DeepLabV3", "DiscriminativeSubNetwork", "EfficientNetB0",
           "EncoderUNet", "MobileNetV2", "ReconstructiveSubNetwork", "UNet",
           "UNet3Plus", "YOLO"]
