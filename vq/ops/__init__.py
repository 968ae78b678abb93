"""jit-compiled image and box ops."""
from vq.ops.boxes import (batched_nms, box_area, box_iou, center_to_corners,
                          nms, paired_iou)

__all__ = ["batched_nms", "box_area", "box_iou", "center_to_corners", "nms", "paired_iou"]
from vq.ops.yolo import decode_grid, postprocess as yolo_postprocess

__all__ += ["decode_grid", "yolo_postprocess"]
from vq.ops.filters import (box_mean, depthwise_filter, gaussian_kernel,
                            gaussian_window, guided_filter, laplacian_sharpen,
                            separable_filter, unsharp_mask)
from vq.ops.mask_policy import apply_mask_policy, vote_classes

__all__ += ["apply_mask_policy", "box_mean", "depthwise_filter",
            "gaussian_kernel", "gaussian_window", "guided_filter",
            "laplacian_sharpen", "separable_filter", "unsharp_mask",
            "vote_classes"]
