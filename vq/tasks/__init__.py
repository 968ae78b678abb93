"""Tasks by name: the one place that lists them."""
from vq.tasks.detection import DetectionTask

TASKS = {
    DetectionTask.name: DetectionTask,
}


def get_task_class(name):
  if name not in TASKS:
    raise ValueError(f"config.task must be one of {sorted(TASKS)}, got "
                     f"{name!r}")
  return TASKS[name]
