"""Building blocks shared by the models."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

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


def same_padding(size, kernel, stride):
  """TensorFlow 'SAME' padding (before, after) of one spatial axis."""
  out = -(-size // stride)
  total = max((out - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2


DEPTHWISE = ("auto", "grouped", "shifted")


def depthwise_implementation(name="auto"):
  """'grouped' or 'shifted' for `name`; 'auto' picks by backend: XLA's
  grouped convolution on GPU/TPU, shifted multiply-adds on CPU."""
  if name not in DEPTHWISE:
    raise ValueError(f"model.depthwise must be one of {DEPTHWISE}, got "
                     f"{name!r}")
  if name == "auto":
    return "shifted" if jax.default_backend() == "cpu" else "grouped"
  return name


class DepthwiseConv(nn.Module):
  """k x k depthwise convolution: XLA's grouped convolution, or k * k
  shifted multiply-adds.

  Both have the parameter of nn.Conv with feature_group_count=C ('kernel'
  [k, k, 1, C]) and the same outputs. On CPU XLA computes the shifted form's
  weight gradient as a cheap reduction instead of a full C x C convolution
  (docs/benchmarks.md); on GPU/TPU the grouped convolution is the fast form.

  Attributes:
    kernel_size: k (odd).
    strides: 1 or 2.
    padding: 'SAME' (TensorFlow/Keras: extra padding after) or 'SYMMETRIC'
      (PyTorch: k // 2 pixels on each side).
    implementation: 'auto' (`depthwise_implementation`), 'grouped' or
      'shifted'.
  """
  kernel_size: int = 3
  strides: int = 1
  padding: str = "SAME"
  kernel_init: callable = nn.initializers.lecun_normal()
  implementation: str = "auto"

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    k = self.kernel_size
    kernel = self.param("kernel", self.kernel_init, (k, k, 1, c), jnp.float32)
    s = self.strides
    h, w = x.shape[1:3]
    if self.padding == "SAME":
      ph, pw = same_padding(h, k, s), same_padding(w, k, s)
    elif self.padding == "SYMMETRIC":
      ph = pw = (k // 2, k // 2)
    else:
      raise ValueError(f"padding must be SAME or SYMMETRIC, got {self.padding!r}")
    kernel = kernel.astype(x.dtype)
    if depthwise_implementation(self.implementation) == "grouped":
      return jax.lax.conv_general_dilated(
          x, kernel, (s, s), (ph, pw), feature_group_count=c,
          dimension_numbers=("NHWC", "HWIO", "NHWC"))
    out_h = (h + sum(ph) - k) // s + 1
    out_w = (w + sum(pw) - k) // s + 1
    xp = jnp.pad(x, ((0, 0), ph, pw, (0, 0)))
    out = None
    for i in range(k):
      for j in range(k):
        tap = jax.lax.slice(
            xp, (0, i, j, 0),
            (xp.shape[0], i + (out_h - 1) * s + 1, j + (out_w - 1) * s + 1, c),
            (1, s, s, 1))
        term = tap * kernel[i, j, 0]
        out = term if out is None else out + term
    return out


class UpConv2x2(nn.Module):
  """2x2 stride-2 transposed convolution as one einsum and a reshape.

  Same parameters as nn.ConvTranspose(features, (2, 2), strides=(2, 2))
  ('kernel' [2, 2, in, out], 'bias' [out]): each input pixel becomes a 2x2
  block, so no output pixel sums over two taps and the einsum is exact. XLA on
  CPU runs it several times faster than the generic transposed convolution.
  """
  features: int
  use_bias: bool = True
  kernel_init: callable = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x):
    n, h, w, c = x.shape
    kernel = self.param("kernel", self.kernel_init, (2, 2, c, self.features),
                        jnp.float32)
    # nn.ConvTranspose applies its kernel spatially flipped.
    y = jnp.einsum("nhwc,ijcf->nhiwjf", x, kernel[::-1, ::-1])
    y = y.reshape(n, 2 * h, 2 * w, self.features)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,),
                         jnp.float32)
    return y


def space_to_depth(x, block):
  """NHWC [N, H, W, C] -> [N, H/b, W/b, b*b*C]: each b x b block of pixels
  becomes one pixel's channels (nothing is lost; tf.nn.space_to_depth's
  channel order)."""
  n, h, w, c = x.shape
  if h % block or w % block:
    raise ValueError(f"space_to_depth needs sides divisible by {block}, got "
                     f"{h}x{w}")
  x = x.reshape(n, h // block, block, w // block, block, c)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(n, h // block, w // block,
                                               block * block * c)


def depth_to_space(x, block):
  """The inverse of `space_to_depth`: [N, H, W, b*b*C] -> [N, bH, bW, C]."""
  n, h, w, c = x.shape
  x = x.reshape(n, h, w, block, block, c // (block * block))
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(n, h * block, w * block,
                                               c // (block * block))


@functools.lru_cache(maxsize=None)
def _interpolation_matrix(size_in, size_out):
  """[size_out, size_in] bilinear weights with half-pixel centres and no
  antialiasing (`jax.image.resize(..., antialias=False)` along one axis)."""
  centres = (np.arange(size_out) + 0.5) * size_in / size_out - 0.5
  weights = np.maximum(0.0, 1.0 - np.abs(centres[:, None] -
                                         np.arange(size_in)[None, :]))
  return (weights / weights.sum(1, keepdims=True)).astype(np.float32)


def resize_bilinear(x, hw):
  """NHWC bilinear resize as two matrix products: the same values as
  `jax.image.resize`, with weights that are constants of the spatial sizes
  only (any batch size, exportable)."""
  rows = _interpolation_matrix(x.shape[1], hw[0])
  cols = _interpolation_matrix(x.shape[2], hw[1])
  return jnp.einsum("hH,nHWc,wW->nhwc", rows, x.astype(jnp.float32), cols,
                    precision=jax.lax.Precision.HIGHEST).astype(x.dtype)


def block_mean(x, factor):
  """NHWC mean over factor x factor blocks: a shrink by a whole factor, as
  OpenCV's INTER_AREA (any batch size, exportable)."""
  if factor == 1:
    return x
  _, h, w, c = x.shape
  return x.reshape(x.shape[0], h // factor, factor, w // factor, factor,
                   c).mean((2, 4))
