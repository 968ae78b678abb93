"""Tasks by name: the one place that lists them."""
from vq.tasks.anomaly import AnomalyTask
from vq.tasks.classification import ClassificationTask
from vq.tasks.detection import DetectionTask
from vq.tasks.keypoints import KeypointsTask
from vq.tasks.segmentation import SegmentationTask

TASKS = {
    AnomalyTask.name: AnomalyTask,
    ClassificationTask.name: ClassificationTask,
    DetectionTask.name: DetectionTask,
    KeypointsTask.name: KeypointsTask,
    SegmentationTask.name: SegmentationTask,
}


def get_task_class(name):
  if name not in TASKS:
    raise ValueError(f"config.task must be one of {sorted(TASKS)}, got "
                     f"{name!r}")
  return TASKS[name]
