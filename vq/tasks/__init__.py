"""Tasks by name: the one place that lists them."""
from vq.task_registry import TASKS, get_task_class, register
from vq.tasks.anomaly import AnomalyTask
from vq.tasks.classification import ClassificationTask
from vq.tasks.detection import DetectionTask
from vq.tasks.keypoints import KeypointsTask
from vq.tasks.segmentation import SegmentationTask

register(AnomalyTask, ClassificationTask, DetectionTask, KeypointsTask,
         SegmentationTask)
__all__ = ["TASKS", "get_task_class"]
