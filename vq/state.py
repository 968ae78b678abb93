"""The train state: everything a step reads and writes, as one pytree."""
from typing import Any

import flax.struct
import jax


class NonFiniteLossError(FloatingPointError):
  """The loss became NaN or Inf; the run stops without saving that state."""


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # int32 scalar
  params: Any
  batch_stats: Any  # BatchNorm running statistics ({} for models without)
  opt_state: Any
  rng: jax.Array  # uint32 [2]; each step folds in its step number
