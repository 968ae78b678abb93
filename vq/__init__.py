"""vq: visual quality inspection models in JAX/Flax."""
import os

# XLA's CPU backend runs 3x3 convolutions about twice as fast when YNNPACK is
# not used for them (docs/benchmarks.md); the flag only affects the CPU.
_CPU_CONV_FLAG = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
if "xla_cpu_experimental_ynn_fusion_type" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " +
                             _CPU_CONV_FLAG).strip()
