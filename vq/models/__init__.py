"""Pure Flax Linen models."""
from vq.models.yolo import YOLO

__all__ = ["YOLO"]
