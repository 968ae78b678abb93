"""Building blocks shared by the models."""
import functools

import flax.linen as nn
import jax

LEAKY_SLOPE = 0.1


def leaky_relu(x):
  """Leaky ReLU with YOLO's slope: x if x > 0 else 0.1 x."""
  return jax.nn.leaky_relu(x, LEAKY_SLOPE)


class ConvBN(nn.Module):
  """Convolution (no bias) -> BatchNorm -> activation."""
  features: int
  kernel_size: int = 3
  strides: int = 1
  activation: callable = leaky_relu
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x, train: bool):
    x = nn.Conv(self.features, (self.kernel_size, self.kernel_size),
                strides=(self.strides, self.strides), padding="SAME",
                use_bias=False, name="conv")(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                     epsilon=self.bn_epsilon, name="bn")(x)
    return self.activation(x)


max_pool_2x2 = functools.partial(nn.max_pool, window_shape=(2, 2),
                                 strides=(2, 2))
