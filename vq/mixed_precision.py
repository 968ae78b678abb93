"""Mixed precision for every model, none of them changed for it.

Parameters, optimizer state and BatchNorm statistics stay float32. A forward
pass in a compute dtype (bfloat16) casts the parameters and the inputs to
it, so that convolutions and dense layers compute in it, and brings the
normalisation layers' outputs (whose statistics flax reduces in float32)
back to it; the outputs return as float32, so losses, softmax and metrics
are float32. Gradients flow through the casts to the float32 parameters.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from vq.config_base import ConfigError

COMPUTE_DTYPES = ("auto", "float32", "bfloat16")
_NORMALISATIONS = (nn.BatchNorm, nn.LayerNorm, nn.GroupNorm)


def compute_dtype(name="auto"):
  """The dtype `config.compute_dtype` names; 'auto': bfloat16 on GPU/TPU,
  float32 on CPU."""
  if name not in COMPUTE_DTYPES:
    raise ConfigError(f"compute_dtype must be one of {COMPUTE_DTYPES}, got "
                      f"{name!r}")
  if name == "auto":
    name = "float32" if jax.default_backend() == "cpu" else "bfloat16"
  return jnp.dtype(name)


def cast_floats(tree, dtype):
  """`tree` with its floating-point arrays in `dtype` (others unchanged)."""
  return jax.tree.map(
      lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating)
      else x, tree)


def _normalisations_return(dtype):
  def interceptor(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if (context.method_name == "__call__" and
        isinstance(context.module, _NORMALISATIONS)):
      return cast_floats(out, dtype)
    return out
  return interceptor


def apply(model, variables, inputs, dtype, **kwargs):
  """`model.apply(variables, inputs, **kwargs)` computed in `dtype`, its
  floating-point results in float32 (the batch_stats of a training pass
  included, which flax computes in float32 anyway)."""
  if dtype == jnp.float32:
    return model.apply(variables, inputs, **kwargs)
  variables = dict(variables, params=cast_floats(variables["params"], dtype))
  with nn.intercept_methods(_normalisations_return(dtype)):
    out = model.apply(variables, cast_floats(inputs, dtype), **kwargs)
  return cast_floats(out, jnp.float32)
