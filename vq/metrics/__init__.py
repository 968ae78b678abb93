"""Evaluation metrics, computed on the host from model outputs."""
from vq.metrics.detection import (ImageDetections, coco_average_precision,
                                  detection_metrics, voc_average_precision)

__all__ = ["ImageDetections", "coco_average_precision", "detection_metrics",
           "voc_average_precision"]
