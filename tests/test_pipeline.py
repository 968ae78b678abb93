"""The grain training stream: worker processes change where records are
decoded and augmented, not which batches come or in what order."""
import sys

import numpy as np
import pytest

from conftest import ROOT
from vq.data import pipeline
from vq.tasks import get_task_class


def _stream(num_workers, num_batches, state=None):
  sys.path.insert(0, ROOT)
  from configs import unet_steel
  config = unet_steel.get_config("variant=test")
  data = get_task_class(config.task)(config).datasets()
  dataset = pipeline.train_dataset(data.train, data.train_transform,
                                   global_batch_size=4, seed=0)
  iterator = pipeline.train_iterator(dataset, num_threads=2,
                                     num_workers=num_workers)
  try:
    if state is not None:
      iterator.set_state(state)
    batches = [next(iterator) for _ in range(num_batches)]
    return batches, iterator.get_state()
  finally:
    iterator.close()


def test_worker_processes_give_the_same_batches_and_resume_exactly():
  in_process, _ = _stream(0, 6)
  first, state = _stream(2, 3)
  rest, _ = _stream(2, 3, state)   # resumed from the checkpointable state
  for a, b in zip(in_process, first + rest):
    assert a.keys() == b.keys()
    for k in a:
      np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_auto_data_workers_leave_the_cpu_step_its_cores():
  assert pipeline.auto_data_workers("cpu", 64) == 0
  assert pipeline.auto_data_workers("gpu", 16) == 14
  assert pipeline.auto_data_workers("gpu", 2) == 1
  assert pipeline.auto_data_workers("tpu", 240) == pipeline.MAX_AUTO_WORKERS
  assert pipeline.data_workers("auto", "cpu") == 0
  assert pipeline.data_workers("3", "gpu") == pipeline.data_workers(3,
                                                                    "gpu") == 3
  with pytest.raises(ValueError, match=r"data_workers must be 'auto' or a "
                     r"number .* got 'two'"):
    pipeline.data_workers("two", "cpu")


def test_auto_data_workers_resume_with_the_count_a_run_started_with(
    tmp_path):
  from vq import train
  assert train.resolved_data_workers("auto", str(tmp_path)) == 0
  (tmp_path / "config.json").write_text('{"data_workers": "3"}')
  assert train.resolved_data_workers("auto", str(tmp_path)) == 3
  assert train.resolved_data_workers("1", str(tmp_path)) == 1
  (tmp_path / "config.json").write_text('{"data_workers": 2}')   # older runs
  assert train.resolved_data_workers("auto", str(tmp_path)) == 2
