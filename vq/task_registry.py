"""Task classes by name. `vq.tasks` registers every task when it is
imported; modules inside the tasks (and the run's config reader) look them
up here without importing the tasks themselves."""

TASKS = {}


def register(*task_classes):
  for task_class in task_classes:
    TASKS[task_class.name] = task_class


def get_task_class(name):
  if name not in TASKS:
    raise ValueError(f"config.task must be one of {sorted(TASKS)}, got "
                     f"{name!r}")
  return TASKS[name]
