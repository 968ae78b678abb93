"""3x3 convolution speed on CPU with and without YNNPACK convolutions.

  python -m vq.benchmarks.conv_flag

Runs the same forward + backward in two fresh processes, one with
--xla_cpu_experimental_ynn_fusion_type=-individual_convolution (what
`import vq` sets) and one with XLA's default, and prints both medians.
"""
import os
import subprocess
import sys

_PROGRAM = r"""
import time, jax, jax.numpy as jnp, flax.linen as nn, numpy as np
class Net(nn.Module):
  @nn.compact
  def __call__(self, x):
    for w in (32, 32, 64, 64):
      x = nn.relu(nn.Conv(w, (3, 3))(x))
    return x
m = Net(); x = jnp.ones((8, 128, 128, 3)); v = m.init(jax.random.key(0), x)
g = jax.jit(jax.grad(lambda v, x: jnp.mean(m.apply(v, x) ** 2)))
jax.block_until_ready(g(v, x)); ts = []
for _ in range(5):
  t = time.perf_counter(); jax.block_until_ready(g(v, x))
  ts.append(time.perf_counter() - t)
print(np.median(ts))
"""

FLAG = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"


def main():
  print("| XLA_FLAGS | seconds per forward + backward |\n|---|---|")
  for flags in ("", FLAG):
    env = dict(os.environ, XLA_FLAGS=flags)
    out = subprocess.run([sys.executable, "-c", _PROGRAM], env=env,
                         capture_output=True, text=True, check=True)
    print(f"| `{flags or '(none)'}` | {float(out.stdout.split()[-1]):.3f} |")


if __name__ == "__main__":
  main()
