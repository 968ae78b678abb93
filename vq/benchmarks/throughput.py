r"""Training throughput of configs on whatever backend this runs on.

  python -m vq.benchmarks.throughput [--config=configs/unet_steel.py:variant=full]
      [--steps=10] [--batch_size=0] [--config.compute_dtype=bfloat16]

For each config (default: every `variant=full`), the trainer's own train
step, state and input pipeline: the step compiled once, then `--steps`
steps timed after two warm-up steps. Prints per config: the global batch,
step time, images/s, TFLOP/s per device and MFU (the model's FLOPs, XLA's
count of the lowered step; MFU where the device's peak is known,
vq.step_cost), the
step's memory per device, and the fraction of the time spent waiting for
data. A batch whose step does not fit the device (on CPU: the host's free
memory) is halved until it does.
"""
import importlib
import time

import jax
from absl import app, flags
from ml_collections import config_flags

from vq import config_base, sharding, step_cost, train
from vq.data import pipeline
from vq.tasks import get_task_class

FULL_CONFIGS = ("configs/yolo.py:variant=full",
                "configs/unet_steel.py:variant=full",
                "configs/unet_damage.py:variant=full",
                "configs/keypoints.py:variant=full",
                "configs/draem.py:variant=full")

FLAGS = flags.FLAGS


def _define_flags():
  """The command's flags (defined when run, so that `measure` can be
  imported beside other tools' flags)."""
  config_flags.DEFINE_config_file("config", None, "one config (default: "
                                  "every variant=full)", lock_config=False)
  flags.DEFINE_integer("steps", 10, "timed steps")
  flags.DEFINE_integer("batch_size", 0, "global batch (0: the config's)")


def _host_memory_bytes():
  with open("/proc/meminfo") as f:
    fields = dict(line.split(":", 1) for line in f)
  return int(fields["MemAvailable"].split()[0]) * 1024


def _compiled_fitting(task, config, mesh, data):
  """(config, state, compiled step, StepCost, iterator) at the config's
  batch or the largest halving of it whose step fits the device."""
  limit = (step_cost.device_memory_bytes(jax.local_devices()[0],
                                         config.device_memory_gb)
           or _host_memory_bytes())
  while True:
    init_state, shardings, _, tx, schedule, _ = train.state_factory(
        task, config, mesh)
    state = jax.jit(init_state, out_shardings=shardings)()
    step = train.jit_train_step(task, tx, schedule, shardings, mesh)
    iterator = pipeline.train_iterator(
        pipeline.train_dataset(data.train, data.train_transform,
                               global_batch_size=config.batch_size,
                               seed=config.seed),
        config.data_threads,
        pipeline.data_workers(config.data_workers, jax.default_backend()))
    batch = sharding.global_batch(next(iterator), mesh)
    compiled, cost = step_cost.compile_and_analyse(
        step, state, batch, num_devices=mesh.devices.size)
    smaller = config.batch_size // 2
    if cost.peak_bytes <= limit or smaller < mesh.devices.size:
      return config, state, compiled, cost, iterator, batch
    print(f"  batch {config.batch_size}: {cost.peak_bytes / 1e9:.3g} GB > "
          f"{limit / 1e9:.3g} GB, halving")
    iterator.close()
    config.batch_size = smaller - smaller % mesh.devices.size


def measure(config, steps):
  """{batch_size, seconds_per_step, images_per_second, tflops_per_device,
  mfu (None without a known peak), memory_gb, data_wait_fraction}."""
  mesh = sharding.make_mesh()
  task = get_task_class(config.task)(config)
  config.data_check = "off"
  data = train.load_checked_data(task, config)
  config, state, compiled, cost, iterator, batch = _compiled_fitting(
      task, config, mesh, data)
  try:
    for _ in range(2):  # warm-up
      state, metrics = compiled(state, batch)
      batch = sharding.global_batch(next(iterator), mesh)
    jax.block_until_ready(metrics)
    wait, start = 0.0, time.perf_counter()
    for _ in range(steps):
      state, metrics = compiled(state, batch)
      t0 = time.perf_counter()
      batch = sharding.global_batch(next(iterator), mesh)
      wait += time.perf_counter() - t0
    jax.block_until_ready(metrics)
    seconds = (time.perf_counter() - start) / steps
  finally:
    iterator.close()
  use = step_cost.utilisation(cost.flops, seconds,
                              jax.devices()[0].device_kind,
                              config.device_peak_tflops)
  return {"batch_size": config.batch_size, "seconds_per_step": seconds,
          "images_per_second": config.batch_size / seconds,
          "tflops_per_device": use.get("tflops_per_device", 0.0),
          "mfu": use.get("mfu"), "memory_gb": cost.peak_bytes / 1e9,
          "data_wait_fraction": wait / (seconds * steps)}


def _load(spec):
  """'configs/NAME.py:ARG' -> the config (run from the repository root)."""
  path, _, arg = spec.partition(":")
  module = importlib.import_module(path[:-len(".py")].replace("/", "."))
  return module.get_config(arg or None)


def main(argv):
  del argv
  configs = ([(config_flags.get_config_filename(FLAGS["config"]),
               FLAGS.config)]
             if FLAGS.config else [(s, _load(s)) for s in FULL_CONFIGS])
  print(f"{jax.device_count()} x {jax.devices()[0].device_kind} "
        f"({jax.default_backend()})")
  print(f"{'config':40s} {'batch':>5s} {'s/step':>8s} {'img/s':>8s} "
        f"{'TFLOP/s':>8s} {'MFU':>6s} {'GB':>6s} {'wait':>5s}")
  for name, config in configs:
    if FLAGS.batch_size:
      config.batch_size = FLAGS.batch_size
    config_base.validate(config, get_task_class(config.task).default_config())
    r = measure(config, FLAGS.steps)
    mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
    print(f"{name:40s} {r['batch_size']:5d} {r['seconds_per_step']:8.3f} "
          f"{r['images_per_second']:8.1f} {r['tflops_per_device']:8.3f} "
          f"{mfu:>6s} {r['memory_gb']:6.2f} {r['data_wait_fraction']:5.2f}",
          flush=True)


if __name__ == "__main__":
  _define_flags()
  app.run(main)
