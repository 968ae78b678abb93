"""Evaluation metrics, computed on the host from model outputs."""
from vq.metrics.detection import (ImageDetections, coco_average_precision,
                                  detection_metrics, voc_average_precision)

__all__ = ["ImageDetections", "coco_average_precision", "detection_metrics",
           "voc_average_precision"]
from vq.metrics.segmentation import (binary_classification, class_overlap,
                                     dice_per_image, image_presence,
                                     iou_from_totals, iou_totals)

__all__ += ["binary_classification", "class_overlap", "dice_per_image",
            "image_presence", "iou_from_totals", "iou_totals"]
from vq.metrics.anomaly import (aupro, auroc, average_precision,
                                f1_optimal_threshold, pixel_metrics,
                                recall_threshold)

__all__ += ["aupro", "auroc", "average_precision", "f1_optimal_threshold",
            "pixel_metrics", "recall_threshold"]
