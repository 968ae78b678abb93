"""What one compiled train step costs on a device: its FLOPs and memory,
the device's peak and memory, and the model FLOPs utilisation (MFU) a
measured step time gives. Every figure is per device.

FLOPs are the model's: XLA's cost analysis of the program as written (the
lowered, global program, divided over the devices), not of the compiled
one, whose optimisation passes add work the model does not ask for (fusion
recomputes shared elementwise producers: +8 % for a MobileNetV2 train step
on CPU; the CPU backend expands a grouped convolution's weight gradient
into a dense one: 5.4x). Memory is the compiled program's (per device).
"""
import dataclasses

from vq.config_base import ConfigError

# Dense bfloat16 peak TFLOP/s by device kind (a substring of
# `jax.Device.device_kind`, first match wins); other kinds (CPUs) have no MFU.
PEAK_TFLOPS = (
    ("H200", 989.0), ("H100", 989.0), ("A100", 312.0), ("L4", 121.0),
    ("TPU v5 lite", 197.0), ("TPU v5e", 197.0), ("TPU v5p", 459.0),
    ("TPU v5", 459.0), ("TPU v4", 275.0),
)
GB = 1e9


def peak_tflops(device_kind):
  """The kind's dense bf16 peak in TFLOP/s, or None where unknown."""
  for name, peak in PEAK_TFLOPS:
    if name.lower() in device_kind.lower():
      return peak
  return None


@dataclasses.dataclass(frozen=True)
class StepCost:
  """Per device: FLOPs of one step and the bytes its program holds."""
  flops: float
  argument_bytes: int   # the state and the batch
  output_bytes: int
  alias_bytes: int      # outputs written over donated arguments
  temp_bytes: int       # activations and other temporaries

  @property
  def peak_bytes(self):
    return (self.argument_bytes + self.output_bytes - self.alias_bytes +
            self.temp_bytes)

  def describe(self):
    return (f"{self.flops / 1e9:.3g} GFLOPs per step; memory "
            f"{self.peak_bytes / GB:.3g} GB (arguments "
            f"{self.argument_bytes / GB:.3g}, outputs "
            f"{self.output_bytes / GB:.3g} of which "
            f"{self.alias_bytes / GB:.3g} reuse donated arguments, "
            f"temporaries {self.temp_bytes / GB:.3g})")


def _flops(stage):
  costs = stage.cost_analysis()
  if isinstance(costs, (list, tuple)):  # older JAX: one dict per program
    costs = costs[0] if costs else {}
  return float((costs or {}).get("flops", 0.0))


def model_flops(lowered, num_devices=1):
  """The model's FLOPs per device: XLA's count of a `jax.stages.Lowered`
  (global) program, divided over `num_devices`."""
  return _flops(lowered) / num_devices


def compile_and_analyse(jitted, *args, num_devices=1):
  """(`jitted` compiled for `args`, its StepCost on each of `num_devices`
  devices): model FLOPs of the lowered program over the devices, memory of
  the compiled one."""
  lowered = jitted.lower(*args)
  compiled = lowered.compile()
  return compiled, analyse(compiled, model_flops(lowered, num_devices))


def analyse(compiled, flops):
  """StepCost of a `jax.stages.Compiled` program doing `flops` per device."""
  memory = compiled.memory_analysis()
  return StepCost(
      flops=flops,
      argument_bytes=int(memory.argument_size_in_bytes),
      output_bytes=int(memory.output_size_in_bytes),
      alias_bytes=int(memory.alias_size_in_bytes),
      temp_bytes=int(memory.temp_size_in_bytes))


def device_memory_bytes(device, limit_gb=0.0):
  """The memory a step may use on `device`: `limit_gb` when set, else what
  the device reports (GPUs, TPUs); None where it reports nothing (CPU)."""
  if limit_gb:
    return int(limit_gb * GB)
  stats = device.memory_stats() or {}
  return stats.get("bytes_limit")


def check_fits(cost, limit_bytes, batch_size, batch_bytes, num_devices):
  """Refuses (ConfigError) a step whose program needs more than
  `limit_bytes`, with the estimate and the largest global batch that would
  fit, taking the memory beyond the state as proportional to the batch.
  `batch_bytes` is the batch's share of the arguments (per device)."""
  if limit_bytes is None or cost.peak_bytes <= limit_bytes:
    return
  per_device_batch = batch_size // num_devices
  fixed = cost.argument_bytes - batch_bytes  # the state
  per_example = (cost.peak_bytes - fixed) / per_device_batch
  fitting = int((limit_bytes - fixed) // per_example) if per_example else 0
  if fitting > 0:
    advice = f"a batch_size of at most {fitting * num_devices} should fit"
  elif fixed < limit_bytes:
    advice = (f"one image per device needs about {per_example / GB:.3g} GB "
              f"beside the state's {fixed / GB:.3g} GB: smaller images "
              f"(data.image_size, data.crop_size) or a smaller model")
  else:
    advice = (f"the state alone ({fixed / GB:.3g} GB, replicated on each "
              f"device) does not fit: a smaller model")
  raise ConfigError(
      f"the train step needs about {cost.peak_bytes / GB:.3g} GB per device "
      f"at batch_size={batch_size} ({cost.describe()}), more than the "
      f"{limit_bytes / GB:.3g} GB of the device; {advice}. "
      f"device_memory_gb sets the limit checked")


def utilisation(flops, seconds_per_step, device_kind, peak=0.0):
  """{'tflops_per_device', and 'mfu' where the device's peak is known
  (`peak` TFLOP/s, else by `device_kind`)}."""
  if not flops or seconds_per_step <= 0:
    return {}
  achieved = flops / seconds_per_step / 1e12
  scalars = {"tflops_per_device": achieved}
  peak = peak or peak_tflops(device_kind)
  if peak:
    scalars["mfu"] = achieved / peak
  return scalars
